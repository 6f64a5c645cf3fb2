"""Wiring for a gateway in dual-run: the front's target maps, the engine, the start-up store check.

    dual = build_dual_run(routes, go_http=..., native_http=..., go_grpc=..., native_grpc=..., sides=...)
    HttpFront(routes, dual.http_targets, ...)          # plus DiffAdminApi(dual.engine, guard, front.handle)
    GrpcFront(routes, dual.grpc_targets)
    nursery.start(dual.engine.run)

Targets: `shadow` serves Go and runs native; `native+verify` serves native and runs Go. While any
route is dual-run, the plain `go` and `native` targets are wrapped too, so every write reaches
both stores (mirrored by the engine, in order) whatever its own route says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

from difftool._engine import DiffEngine, EngineConfig
from difftool._stores import StoreComparison, compare_stores
from difftool._tee_grpc import DualRunGrpc
from difftool._tee_http import DualRunHttp, SideInfo
from weedpy.serve.routes import RouteTable, Target
from weedpy.grpc import CallHandler, ServerOptions
from weedpy.http1 import Exchange

__all__ = ["DualRun", "SideInfo", "build_dual_run", "check_stores", "StoresDiffer", "http_dual_targets",
           "grpc_dual_targets"]

HttpHandler = Callable[[Exchange], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class DualRun:
    engine: DiffEngine
    http_targets: dict[Target, HttpHandler]
    grpc_targets: dict[Target, object]  # Target -> gateway CallTarget


def grpc_dual_targets(
    engine: DiffEngine, routes: RouteTable, go_grpc: CallHandler, native_grpc: CallHandler,
    go_grpc_options: ServerOptions, native_grpc_options: ServerOptions, sides: dict[str, SideInfo],
    control: CallHandler | None = None,
) -> dict[Target, object]:
    """The gRPC front's dual-run targets (and, while mirroring, its plain go/native ones).

    `control` (a second Go backend) receives every compared request and every write too."""
    c = {"control": control, "control_options": go_grpc_options}
    grpc: dict[Target, object] = {
        Target.SHADOW: DualRunGrpc("shadow", go_grpc, native_grpc, native_grpc_options, "go", engine, routes, sides, **c),
        Target.NATIVE_VERIFY: DualRunGrpc("native+verify", native_grpc, go_grpc, go_grpc_options, "native", engine,
                                          routes, sides, **c),
    }
    if engine.mirroring:
        grpc[Target.GO] = DualRunGrpc("go", go_grpc, native_grpc, native_grpc_options, "go", engine, routes, sides, **c)
        grpc[Target.NATIVE] = DualRunGrpc("native", native_grpc, go_grpc, go_grpc_options, "native", engine, routes,
                                          sides, **c)
    return grpc


def http_dual_targets(
    engine: DiffEngine, routes: RouteTable, go_http: HttpHandler, native_http: HttpHandler, sides: dict[str, SideInfo],
    control: HttpHandler | None = None,
) -> dict[Target, HttpHandler]:
    """The HTTP front's dual-run targets (and, while mirroring, its plain go/native ones)."""
    http: dict[Target, HttpHandler] = {
        Target.SHADOW: DualRunHttp(go_http, native_http, "go", engine, routes, sides, control).handle,
        Target.NATIVE_VERIFY: DualRunHttp(native_http, go_http, "native", engine, routes, sides, control).handle,
    }
    if engine.mirroring:
        http[Target.GO] = DualRunHttp(go_http, native_http, "go", engine, routes, sides, control).handle
        http[Target.NATIVE] = DualRunHttp(native_http, go_http, "native", engine, routes, sides, control).handle
    return http


def build_dual_run(
    routes: RouteTable, *, go_http: HttpHandler, native_http: HttpHandler, go_grpc: CallHandler,
    native_grpc: CallHandler, go_grpc_options: ServerOptions, native_grpc_options: ServerOptions,
    sides: dict[str, SideInfo], config: EngineConfig = EngineConfig(), versions: dict[str, str] | None = None,
    control_http: HttpHandler | None = None, control_grpc: CallHandler | None = None,
) -> DualRun:
    engine = DiffEngine(routes, config, versions=versions)
    engine.control = control_http is not None or control_grpc is not None
    http = http_dual_targets(engine, routes, go_http, native_http, sides, control_http)
    grpc = grpc_dual_targets(engine, routes, go_grpc, native_grpc, go_grpc_options, native_grpc_options, sides,
                             control_grpc)
    return DualRun(engine, http, grpc)


class StoresDiffer(RuntimeError):
    """The two data directories of a dual-run do not start equal."""


def check_stores(go_dir: str | Path, native_dir: str | Path) -> StoreComparison:
    """Start-up rule of dual-run: both stores hold the same needles (both empty counts as equal)."""
    result = compare_stores(go_dir, native_dir)
    if not result.equal:
        shown = "\n  ".join(result.differences[:20])
        raise StoresDiffer(
            f"dual-run needs the Go data directory {go_dir} and the native one {native_dir} to hold the same "
            f"needles; they differ:\n  {shown}\n(copy one onto the other while both servers are stopped, "
            "or start both empty)"
        )
    return result
