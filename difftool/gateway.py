"""Dual-run inside the gateway (`-mode=mixed` with `shadow` / `native+verify` routes).

What mixed mode (weedpy/mixed.py) calls, in order:

1. `dual_run_requested(routes)`: any route dual-run?
2. before the Go backend starts: `check_dual_run_stores(cfg)` checks that the Go directories
   (`-dir`) and the native side's own directories (`-dir.native`, one per `-dir`) hold the same
   needles (or are all empty) and says so in the log; the caller then opens the native side on
   its own store (no heartbeat: the Go backend stays the one the master hears from, and since
   both stores receive every write the master's view holds for both);
3. `GatewayDualRun(routes, native, backend, cfg, ...)`: `.http_targets(go_http)` for the HTTP
   front, `.grpc_targets(relay)` for the gRPC front (called with its Go relay), `.admin(front)`
   for the admin API around the HTTP front, and `.run` to start in a nursery.

Refusals (start-up fails with one message): no `-dir.native`, a `-dir.native` that is one of the
Go directories or has another count, stores that differ.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import trio

from difftool._admin import DiffAdminApi
from difftool._dualrun import StoresDiffer, check_stores, grpc_dual_targets, http_dual_targets
from difftool._engine import DUAL_RUN_TARGETS, DiffEngine
from difftool._metrics import differ_families
from difftool._null_master import NullMaster
from difftool._tee_grpc import TeeCall
from weedpy.config import VolumeConfig
from weedpy.grpc import CallHandler, ServerOptions
from weedpy.http1 import Exchange
from weedpy.logs import get_logger
from weedpy.serve.guard import Guard
from weedpy.serve.routes import RouteTable, Target
from weedpy.tls import VolumeTls

__all__ = ["dual_run_requested", "native_dirs", "control_dirs", "control_argv", "check_dual_run_stores",
           "GatewayDualRun", "DualRunConfigError", "StoresDiffer", "DualRunNative", "TeeCall"]

log = get_logger("difftool.gateway")
HttpHandler = Callable[[Exchange], Awaitable[None]]


class _Endpoints(Protocol):
    http: tuple[str, int]
    public: tuple[str, int] | None


class Backend(Protocol):
    """Where a Go backend listens right now (None while it is down): its own addresses are
    masked in the comparison like the front's."""

    def current(self) -> _Endpoints | None: ...


class DualRunNative(Protocol):
    """The native side: its HTTP handler and gRPC router."""

    @property
    def http(self) -> "_HasHandle": ...

    @property
    def router(self) -> CallHandler: ...


class _HasHandle(Protocol):
    async def handle(self, exch: Exchange) -> None: ...


class DualRunConfigError(ValueError):
    """Dual-run cannot start with this configuration; the message says why."""


def dual_run_requested(routes: RouteTable) -> bool:
    return bool(routes.targets() & DUAL_RUN_TARGETS)


def _side_dirs(cfg: VolumeConfig, flag: str, required: bool) -> list[str]:
    raw = str(cfg[flag] or "")
    dirs = [d.strip() for d in raw.split(",") if d.strip()]
    if not dirs:
        if required:
            raise DualRunConfigError(
                "dual-run routes (shadow, native+verify) need -dir.native=DIR: the native side's own data directory "
                "(one per -dir), which receives every write as the Go directories do")
        return []
    if cfg["dir.idx"]:
        raise DualRunConfigError("dual-run does not support -dir.idx yet: each side needs its own index directory")
    if len(dirs) != len(cfg.dirs):
        raise DualRunConfigError(f"-{flag} names {len(dirs)} directories, -dir {len(cfg.dirs)}; give one per -dir")
    taken = {os.path.realpath(d) for d in cfg.dirs}
    if flag == "dir.control":
        taken |= {os.path.realpath(d) for d in _side_dirs(cfg, "dir.native", False)}
    for d in dirs:
        if os.path.realpath(d) in taken:
            raise DualRunConfigError(f"-{flag} {d} is also another side's directory; each side must own its files")
    return dirs


def native_dirs(cfg: VolumeConfig) -> list[str]:
    return _side_dirs(cfg, "dir.native", True)


def control_dirs(cfg: VolumeConfig) -> list[str]:
    """The noise control's (a second Go backend's) directories, `-dir.control`; empty: no control."""
    return _side_dirs(cfg, "dir.control", False)


def check_dual_run_stores(cfg: VolumeConfig) -> list[str]:
    """The native side's directories, once each (and the control's) holds what its Go directory
    holds (blocking; raises DualRunConfigError or StoresDiffer)."""
    dirs = native_dirs(cfg)
    for other, side in ((dirs, "native"), (control_dirs(cfg), "go-control")):
        for go_dir, other_dir in zip(cfg.dirs, other):
            Path(other_dir).mkdir(parents=True, exist_ok=True)
            result = check_stores(go_dir, other_dir)  # raises StoresDiffer
            log.info("dual-run stores start equal", side=side, go_dir=go_dir, other_dir=other_dir,
                     volumes=result.volumes, needles=result.needles, empty=result.volumes == 0)
    return dirs


def control_argv(argv: list[str], cfg: VolumeConfig, master: str) -> list[str]:
    """The Go backend's argv turned into the control's: its own directories, the stand-in master
    (the control must not join the cluster: the master would see a third server holding the same
    volumes)."""
    out = [a for a in argv if not a.startswith("-master=")]
    return out + [f"-master={master}", f"-dir={','.join(control_dirs(cfg))}"]


class GatewayDualRun:
    """`control` (a second Go backend, reached through `control_relay`) is the noise control."""

    def __init__(self, routes: RouteTable, native: DualRunNative, backend: Backend, cfg: VolumeConfig, go_version: str,
                 native_version: str, guard: Guard, native_grpc_options: ServerOptions,
                 go_grpc_options: ServerOptions, control: Backend | None = None,
                 control_relay: CallHandler | None = None, tls: VolumeTls = VolumeTls()) -> None:
        self.routes = routes
        self.native = native
        self._backend = backend
        self._control = control
        self._control_relay = control_relay
        self._guard = guard
        self._native_grpc_options = native_grpc_options
        self._go_grpc_options = go_grpc_options
        versions = {"go": go_version, "native": native_version}
        if control is not None:
            versions["go-control"] = go_version
        self.engine = DiffEngine(routes, versions=versions)
        self.engine.control = control is not None
        self.null_master = NullMaster(tls=tls)  # the control dials it as the backend dials its master
        self._masters = tuple(cfg.masters)
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

        ctl_aliases = tuple((d.encode(), b"<data dir>") for d in control_dirs(cfg))

        def control_side() -> tuple[tuple[bytes, ...], tuple[tuple[bytes, bytes], ...], str]:
            ep = control.current() if control is not None else None
            own = [front, public]
            if ep is not None:
                own.append(f"{ep.http[0]}:{ep.http[1]}".encode())
                if ep.public is not None:
                    own.append(f"{ep.public[0]}:{ep.public[1]}".encode())
            return tuple(own), ctl_aliases, versions.get("go-control", "")

        self.sides = {"go": go_side, "native": native_side, "go-control": control_side}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The engine, and the control's stand-in master (start before the control backend)."""
        async with trio.open_nursery() as nursery:
            if self._control is not None:
                await self.null_master.learn_limit(self._masters)
                await nursery.start(self.null_master.run)
            await nursery.start(self.engine.run)
            task_status.started()
            await trio.sleep_forever()

    def http_targets(self, go_http: HttpHandler, control_http: HttpHandler | None = None) -> dict[Target, HttpHandler]:
        return http_dual_targets(self.engine, self.routes, go_http, self.native.http.handle, self.sides, control_http)

    def grpc_targets(self, go_relay: CallHandler) -> dict[Target, object]:
        return grpc_dual_targets(self.engine, self.routes, go_relay, self.native.router, self._go_grpc_options,
                                 self._native_grpc_options, self.sides, self._control_relay)

    def metrics(self) -> list:
        """The differ's families for the metrics port (difftool/_metrics.py)."""
        return differ_families(self.engine)

    def admin(self, inner: HttpHandler) -> DiffAdminApi:
        return DiffAdminApi(self.engine, self._guard, inner)
