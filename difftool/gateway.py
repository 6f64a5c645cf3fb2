"""Dual-run inside the gateway (`-mode=mixed` with `shadow` / `native+verify` routes).

What gateway/app.py calls, in order:

1. `dual_run_requested(routes)`: any route dual-run?
2. before the Go backend starts: `prepare_native(cfg, security, weed, full_version)` checks that the
   Go directories (`-dir`) and the native side's own directories (`-dir.native`, one per `-dir`)
   hold the same needles (or are all empty), says so in the log, and opens the native side on
   its own store (no heartbeat: the Go backend stays the one the master hears from, and since
   both stores receive every write the master's view holds for both);
3. `GatewayDualRun(routes, native, backend, cfg, weed_version)`: `.http_targets(go_http)` for the
   HTTP front, `.grpc_targets(relay)` for the gRPC front (called with its Go relay), `.admin(front)`
   for the admin API around the HTTP front, and `.engine.run` to start in a nursery.

Refusals (start-up fails with one message): no `-dir.native`, a `-dir.native` that is one of the
Go directories or has another count, stores that differ.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from difftool._admin import DiffAdminApi
from difftool._dualrun import StoresDiffer, check_stores, grpc_dual_targets, http_dual_targets
from difftool._engine import DUAL_RUN_TARGETS, DiffEngine
from gateway.backend import BackendView
from gateway.guard import Guard
from gateway.routes import RouteTable, Target
from weedpy.config import VolumeConfig
from weedpy.grpc import CallHandler, ServerOptions
from weedpy.http1 import Exchange
from weedpy.logs import get_logger
from weedpy.security import SecurityConfig

__all__ = ["dual_run_requested", "native_dirs", "prepare_native", "GatewayDualRun", "DualRunConfigError", "StoresDiffer"]

log = get_logger("difftool.gateway")
HttpHandler = Callable[[Exchange], Awaitable[None]]


class DualRunConfigError(ValueError):
    """Dual-run cannot start with this configuration; the message says why."""


def dual_run_requested(routes: RouteTable) -> bool:
    return bool(routes.targets() & DUAL_RUN_TARGETS)


def native_dirs(cfg: VolumeConfig) -> list[str]:
    raw = str(cfg["dir.native"] or "")
    dirs = [d.strip() for d in raw.split(",") if d.strip()]
    if not dirs:
        raise DualRunConfigError(
            "dual-run routes (shadow, native+verify) need -dir.native=DIR: the native side's own data directory "
            "(one per -dir), which receives every write as the Go directories do")
    if len(dirs) != len(cfg.dirs):
        raise DualRunConfigError(f"-dir.native names {len(dirs)} directories, -dir {len(cfg.dirs)}; give one per -dir")
    go = {os.path.realpath(d) for d in cfg.dirs}
    for d in dirs:
        if os.path.realpath(d) in go:
            raise DualRunConfigError(f"-dir.native {d} is also a Go directory; each side must own its files")
    return dirs


def prepare_native(cfg: VolumeConfig, security: SecurityConfig, weed_binary: str, full_version: str):  # -> NativeParts
    """Check the stores, then open the native side on its own directories (blocking)."""
    from native.server import build_parts, open_store

    dirs = native_dirs(cfg)
    total = 0
    for go_dir, nat_dir in zip(cfg.dirs, dirs):
        Path(nat_dir).mkdir(parents=True, exist_ok=True)
        result = check_stores(go_dir, nat_dir)  # raises StoresDiffer
        total += result.needles
        log.info("dual-run stores start equal", go_dir=go_dir, native_dir=nat_dir, volumes=result.volumes,
                 needles=result.needles, empty=result.volumes == 0)
    native_cfg = dataclasses.replace(cfg, dirs=tuple(dirs))
    store = open_store(native_cfg)
    short = " ".join(full_version.split()[:2])
    return build_parts(native_cfg, security, store, heartbeat=False, read_only_view=False, weed_binary=weed_binary,
                       version=(short, full_version))


class GatewayDualRun:
    def __init__(self, routes: RouteTable, native, backend: BackendView, cfg: VolumeConfig, go_version: str,
                 native_version: str, guard: Guard, native_grpc_options: ServerOptions,
                 go_grpc_options: ServerOptions) -> None:
        self.routes = routes
        self.native = native
        self._backend = backend
        self._guard = guard
        self._native_grpc_options = native_grpc_options
        self._go_grpc_options = go_grpc_options
        self.engine = DiffEngine(routes, versions={"go": go_version, "native": native_version})
        front = f"{cfg.ip}:{cfg.port}".encode()
        public = f"{cfg.ip}:{cfg.public_port}".encode()
        go_aliases = tuple((d.encode(), b"<data dir>") for d in cfg.dirs)
        nat_aliases = tuple((d.encode(), b"<data dir>") for d in native_dirs(cfg))
        versions = self.engine.versions

        def go_side() -> tuple[tuple[bytes, ...], tuple[tuple[bytes, bytes], ...], str]:
            ep = backend.current()
            own = [front, public]
            if ep is not None:
                own += [f"{ep.http[0]}:{ep.http[1]}".encode()]
                if ep.public is not None:
                    own.append(f"{ep.public[0]}:{ep.public[1]}".encode())
            return tuple(own), go_aliases, versions["go"]

        def native_side() -> tuple[tuple[bytes, ...], tuple[tuple[bytes, bytes], ...], str]:
            return (front, public), nat_aliases, versions["native"]

        self.sides = {"go": go_side, "native": native_side}

    def http_targets(self, go_http: HttpHandler) -> dict[Target, HttpHandler]:
        return http_dual_targets(self.engine, self.routes, go_http, self.native.http.handle, self.sides)

    def grpc_targets(self, go_relay: CallHandler) -> dict[Target, object]:
        return grpc_dual_targets(self.engine, self.routes, go_relay, self.native.router, self._go_grpc_options,
                                 self._native_grpc_options, self.sides)

    def admin(self, inner: HttpHandler) -> DiffAdminApi:
        return DiffAdminApi(self.engine, self._guard, inner)
