"""The gRPC front every mode serves through: route each call by its full method, apply the call's
deadline, log one event per call.

`GrpcFront(routes, targets)` is the `CallHandler` behind the gRPC listener: `routes` (the running
table, weedpy/serve/live_routes.py, read once per call: a call finishes on the table it started
with) picks a `Target` by full method path, `targets` maps it to a `CallTarget` (`name` + `async
def handle(call)`): the Go relay (gateway/), `NamedTarget("native", router)` over the native
handlers, or a dual-run target (difftool/). An unavailable or `off` target answers UNAVAILABLE.
One structlog event "grpc" per call: route, target, routes_v, status, duration_ms, peer; the
optional `meter` (a weedpy.serve.metrics RouteMeter) counts it for the metrics port, mixed mode's
`evidence` for the cutover rules. In mixed mode with volume owners (weedpy/serve/volume_owners.py)
a call whose first request message names a volume is read that far, then served by the volume's
owner (waiting while the volume is moved), and counted in the evidence for each volume it names.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import trio

from weedpy.grpc import CallHandler, GrpcError, ServerCall, Status, grpc_error_in, header_value
from weedpy.logs import FastEvent
from weedpy.serve.evidence import GRPC_SERVER_ERRORS, Evidence
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.metrics import RouteMeter
from weedpy.serve.routes import RouteTable, Target, grpc_endpoint
from weedpy.serve.volume_owners import (
    ALLOCATE_VOLUME,
    BATCH_DELETE,
    DELETE_COLLECTION,
    GO,
    NATIVE,
    ReplayCall,
    VolumeHeld,
    VolumeOwners,
    request_volumes,
    volume_methods,
)

__all__ = ["CallTarget", "GrpcFront", "NamedTarget", "SplitCalls", "request_id_trailer"]

GO_MAX_MESSAGE = 1 << 30  # weed/pb/grpc_client_server.go Max_Message_Size


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
                 evidence: Evidence | None = None, meter: RouteMeter | None = None,
                 owners: VolumeOwners | None = None, owned: CallTarget | None = None,
                 split: SplitCalls | None = None) -> None:
        # mixed mode: a call naming a volume goes to its owner (`owned`: native's writer store);
        # `split` answers the calls that name volumes of both sides (BatchDelete)
        self._owners = owners if owned is not None else None
        self._owned = owned
        self._split = split
        self._volume_methods = volume_methods() if self._owners is not None else frozenset()
        self._meter = meter  # the gateway's weedpy_grpc_* families (weedpy/serve/metrics.py)
        self._evidence = evidence  # counts each side's answers and server errors (mixed mode's cutover rules)
        self._live = routes if isinstance(routes, LiveRoutes) else LiveRoutes(routes, mode="fixed")
        self._targets = dict(targets)
        self._live.serves(self._targets)
        # the structlog event `get_logger("gateway.grpc").info("grpc", ...)` would write, compiled
        self._log_grpc = FastEvent(
            "gateway.grpc", "grpc", ("route", "target", "routes_v", "status", "duration_ms", "peer"), repeating=4,
            types=(float, str),
        ).emit

    async def handle(self, call: ServerCall) -> None:
        t0 = time.perf_counter()
        routes = self._live.table
        endpoint = grpc_endpoint(call.method)
        route_target = routes.lookup(endpoint).target
        target = self._targets.get(route_target)
        served_by = route_target.value
        named: dict[int, str] = {}  # the volumes the call names, and the side that served each
        failed = False
        try:
            if target is None:
                raise GrpcError(Status.UNAVAILABLE, f"{endpoint} is routed to {route_target.value}, which is not available")
            if endpoint in self._volume_methods:
                served_by = await self._by_owner(call, endpoint, target, served_by, named)
            elif endpoint == DELETE_COLLECTION and self._split is not None and self._owned is not None:
                await self._split.both(call, target, self._owned)
                served_by = "go+native"
            else:
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
                server_error = status.name in GRPC_SERVER_ERRORS
                self._evidence.answered(endpoint, served_by, server_error)
                for vid, side in named.items():
                    self._evidence.answered_volume(vid, side, server_error)
            elapsed = time.perf_counter() - t0
            if self._meter is not None:
                meter = self._meter
                meter.end(meter.begin(endpoint, b"", served_by), status.name, elapsed)
            self._log_grpc(endpoint, served_by, routes.version, status.name, round(elapsed * 1000, 3), call.peer)


    async def _by_owner(self, call: ServerCall, endpoint: str, target: CallTarget, served_by: str,
                        named: dict[int, str]) -> str:
        """Serve a call that names volumes from their owner (after any move of them); the side's name.
        `named` gets each volume the call names and the side that served it (the evidence)."""
        owners = self._owners
        assert owners is not None and self._owned is not None
        # Go's own limit (1 GiB): routing must not refuse what the owner would take (WriteNeedleBlob)
        first = await call.receive_message(max_length=GO_MAX_MESSAGE)
        vids = request_volumes(endpoint, first) if first is not None else None
        if first is None or not vids:
            await target.handle(call if first is None else ReplayCall(call, first))  # type: ignore[arg-type]
            return served_by
        named.update(dict.fromkeys(vids, served_by))
        try:
            sides = await owners.enter(vids)
        except VolumeHeld as exc:
            raise GrpcError(Status.UNAVAILABLE, str(exc)) from None
        try:
            replay = ReplayCall(call, first)
            owner_sides = set(sides.values())
            if len(owner_sides) > 1:
                if self._split is None or endpoint != BATCH_DELETE:
                    raise GrpcError(Status.FAILED_PRECONDITION, f"{endpoint} names volumes served by Go and by native "
                                    f"({', '.join(f'{v}: {s}' for v, s in sides.items())}); ask for each side's apart")
                named.update(sides)  # each side deletes its own volumes' file ids
                await self._split.batch_delete(replay, first, vids, sides, target, self._owned)  # type: ignore[arg-type]
                return "go+native"
            if endpoint == ALLOCATE_VOLUME and owners.new_volumes == NATIVE and owner_sides == {GO}:
                named.update(dict.fromkeys(named, NATIVE))
                await self._owned.handle(replay)  # type: ignore[arg-type]
                if call.status is Status.OK:
                    owners.set_owner(vids[0], NATIVE)
                    await owners.published()  # worker processes send its requests here from now on
                return NATIVE
            if owner_sides == {NATIVE}:
                named.update(dict.fromkeys(named, NATIVE))
                await self._owned.handle(replay)  # type: ignore[arg-type]
                return NATIVE
            await target.handle(replay)  # type: ignore[arg-type]
            return served_by
        finally:
            owners.leave(sides)


class SplitCalls(Protocol):
    """Answers a call naming volumes of both sides by asking each side for its own (weedpy/volume_moves.py)."""

    async def batch_delete(self, call: ServerCall, first: bytes, vids: list[int], sides: Mapping[int, str],
                           go: CallTarget, native: CallTarget) -> None: ...

    async def both(self, call: ServerCall, go: CallTarget, native: CallTarget) -> None:
        """A call for every volume of a kind (DeleteCollection): native's part, then Go's answers."""


def request_id_trailer(call: ServerCall) -> list[tuple[str, str]]:
    """Go's unary interceptor: every unary call ends with the caller's x-amz-request-id, or a new one."""
    rid = header_value(call.headers, b"x-amz-request-id")
    if rid:
        return [("x-amz-request-id", rid.decode("latin-1"))]
    import uuid  # uuid loads platform: not at start-up, only with the first call that needs an id

    return [("x-amz-request-id", str(uuid.uuid4()))]
