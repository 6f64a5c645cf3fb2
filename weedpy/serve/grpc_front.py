"""The gRPC front every mode serves through: route each call by its full method, apply the call's
deadline, log one event per call.

`GrpcFront(routes, targets)` is the `CallHandler` behind the gRPC listener: `routes` (the running
table, weedpy/serve/live_routes.py, read once per call: a call finishes on the table it started
with) picks a `Target` by full method path, `targets` maps it to a `CallTarget` (`name` + `async
def handle(call)`): the Go relay (gateway/), `NamedTarget("native", router)` over the native
handlers, or a dual-run target (difftool/). An unavailable or `off` target answers UNAVAILABLE.
One structlog event "grpc" per call: route, target, routes_v, status, duration_ms, peer; the
optional `meter` (a weedpy.serve.metrics RouteMeter) counts it for the metrics port.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import trio

from weedpy.grpc import CallHandler, GrpcError, ServerCall, Status, grpc_error_in, header_value
from weedpy.logs import get_logger
from weedpy.serve.evidence import GRPC_SERVER_ERRORS, Evidence
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.metrics import RouteMeter
from weedpy.serve.routes import RouteTable, Target, grpc_endpoint

__all__ = ["CallTarget", "GrpcFront", "NamedTarget", "request_id_trailer"]

_log = get_logger("gateway.grpc")


class CallTarget(Protocol):
    """Where a routed call goes: `name` is what the logs call it ("go", "native", ...)."""

    @property
    def name(self) -> str: ...

    async def handle(self, call: ServerCall) -> None: ...


@dataclass(frozen=True, slots=True)
class NamedTarget:
    """Any CallHandler (e.g. a weedpy.grpc.Router of native handlers) as a named target."""

    name: str
    handler: CallHandler

    async def handle(self, call: ServerCall) -> None:
        await self.handler.handle(call)


class GrpcFront:
    """The CallHandler behind the gRPC listener: route, apply the deadline, log one event per call."""

    def __init__(self, routes: RouteTable | LiveRoutes, targets: Mapping[Target, CallTarget],
                 evidence: Evidence | None = None, meter: RouteMeter | None = None) -> None:
        self._meter = meter  # the gateway's weedpy_grpc_* families (weedpy/serve/metrics.py)
        self._evidence = evidence  # counts each side's answers and server errors (mixed mode's cutover rules)
        self._live = routes if isinstance(routes, LiveRoutes) else LiveRoutes(routes, mode="fixed")
        self._targets = dict(targets)
        self._live.serves(self._targets)

    async def handle(self, call: ServerCall) -> None:
        t0 = time.perf_counter()
        routes = self._live.table
        endpoint = grpc_endpoint(call.method)
        route_target = routes.lookup(endpoint).target
        target = self._targets.get(route_target)
        failed = False
        try:
            if target is None:
                raise GrpcError(Status.UNAVAILABLE, f"{endpoint} is routed to {route_target.value}, which is not available")
            await target.handle(call)
        except* Exception as group:  # a Cancelled alongside (client gone) propagates after this
            err = grpc_error_in(group)
            if err is None:
                failed = True  # the serving shell answers UNKNOWN and logs the traceback
                raise
            if not call.finished and not call.reset_by_peer:
                with contextlib.suppress(GrpcError):  # the client may be gone already
                    call.finish(err.status, err.message, err.trailing_metadata)
        finally:
            # The serving shell applies the deadline (and answers DEADLINE_EXCEEDED) around us.
            status = call.status
            if status is None:
                if call.reset_by_peer:
                    status = Status.CANCELLED
                elif trio.current_time() >= call.deadline:
                    status = Status.DEADLINE_EXCEEDED
                else:
                    status = Status.UNKNOWN if failed else Status.CANCELLED
            if self._evidence is not None:
                self._evidence.answered(endpoint, route_target.value, status.name in GRPC_SERVER_ERRORS)
            elapsed = time.perf_counter() - t0
            if self._meter is not None:
                meter = self._meter
                meter.end(meter.begin(endpoint, b"", route_target.value), status.name, elapsed)
            _log.info(
                "grpc",
                route=endpoint,
                target=route_target.value,
                routes_v=routes.version,
                status=status.name,
                duration_ms=round(elapsed * 1000, 3),
                peer=call.peer,
            )


def request_id_trailer(call: ServerCall) -> list[tuple[str, str]]:
    """Go's unary interceptor: every unary call ends with the caller's x-amz-request-id, or a new one."""
    rid = header_value(call.headers, b"x-amz-request-id")
    return [("x-amz-request-id", rid.decode("latin-1") if rid else str(uuid.uuid4()))]
