"""The HTTP front every mode serves through: name each request's endpoint, apply the server-level
rules, dispatch to the route's target, log.

Per request: the running route table read once (weedpy/serve/live_routes.py: a change made while
the request runs does not affect it), one lookup, the whitelist for admin writes and deletes (on the
real client address), then the route's target (the Go relay, the native handlers or a dual-run
target; a `native_pct` route picks native or its Go side by the file id, `native_share`). One
structlog event per request carries the endpoint name, the target that served it, the table
version, status and duration; the `meter` (weedpy/serve/metrics.py) counts it for the metrics
port: Go's request families in native mode, the gateway's route families otherwise; mixed
mode's `evidence` counts it for the cutover rules, per endpoint and, for a file id, per volume. In mixed
mode with volume owners (weedpy/serve/volume_owners.py) a file-id request whose volume native owns
goes to native's writer store whatever the route says (an `off` route stays off), and waits while
its volume is being moved; the volume lists (`/status`, the UI) are the route target's with
native's volumes merged in. A worker process's front names the actual target in its log line
(`owner_of`): `native` for a volume native owns, which it handed to the leader.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from weedpy.http1 import Exchange, Request, settle_body, simple_response
from weedpy.logs import FastEvent, Millis
from weedpy.serve.guard import Guard
from weedpy.serve.metrics import GoRequestMeter, RouteMeter
from weedpy.serve.replies import date_header, handler_headers, json_error
from weedpy.serve.evidence import Evidence, EvidenceTally
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.routes import RouteTable, Target, http_endpoint, native_share, request_path
from weedpy.serve.volume_owners import (
    OWNED_HTTP, OWNED_STATUS, StatusMerge, VolumeOwners, serve_by_owner, volume_of_path,
)

__all__ = ["HttpFront", "HttpTarget", "FrontState", "DirectToken"]

HttpTarget = Callable[[Exchange], Awaitable[None]]
_Resolved = tuple[str, "HttpTarget | None", "tuple[float, str, HttpTarget | None] | None"]
_GUARDED = frozenset({"admin.write", "admin.delete"})
_METHOD_NAMES = {m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS")}
_GO = Target.GO.value
# what `HttpFront.direct_route` hands a loop that serves a target directly: endpoint, target,
# table version, path, meter slot
DirectToken = tuple[str, str, str, bytes, Any]


class FrontState:
    """Flags the front consults; set by the lifecycle code (stopping flips /healthz to 503)."""

    __slots__ = ("stopping",)

    def __init__(self) -> None:
        self.stopping = False


class HttpFront:
    def __init__(
        self,
        routes: RouteTable | LiveRoutes,
        targets: Mapping[Target, HttpTarget],
        guard: Guard,
        server_header: bytes,
        state: FrontState,
        evidence: Evidence | EvidenceTally | None = None,
        meter: GoRequestMeter | RouteMeter | None = None,
        owners: VolumeOwners | None = None,
        owned: HttpTarget | None = None,
        status: StatusMerge | None = None,
        owner_of: Callable[[int], str | None] | None = None,
    ) -> None:
        # mixed mode: a file-id request goes to its volume's owner (`owned`: native's writer store);
        # `status` merges native's volumes into the volume lists
        self._owners = owners if owned is not None else None
        self._owned = owned
        self._status = status if self._owners is not None else None
        # a worker process: the side that actually serves a volume's requests, when not the route's
        self._owner_of = owner_of
        self._evidence = evidence  # counts each side's answers and 5xx (mixed mode's cutover rules)
        self._live = routes if isinstance(routes, LiveRoutes) else LiveRoutes(routes, mode="fixed")
        self._targets = dict(targets)
        self._live.serves(self._targets)
        # endpoint -> (its target's name, handler or None, the Go side of a native_pct split): a
        # table is immutable, so each endpoint is resolved once per table (an Enum key hashes
        # through Python on every lookup).
        self._table: RouteTable | None = None
        self._resolved: dict[str, _Resolved] = {}
        self._guard = guard
        self._server = server_header
        self._state = state
        self._meter = meter
        # `ms` is passed as whole microseconds (Millis): the line shows them as milliseconds
        self._log_http = FastEvent(
            "gateway.http", "http", ("route", "target", "routes_v", "method", "path", "status", "ms", "client"),
            repeating=4, types=(str, int, Millis, str),
        ).emit

    async def handle(self, exch: Exchange) -> None:
        t0 = time.perf_counter()
        req = exch.request
        path = request_path(req.target)
        endpoint = http_endpoint(exch.port_kind, req.method, path)
        table = self._live.table
        if table is not self._table:  # a new table: resolve again from now on
            self._table, self._resolved = table, {}
        resolved = self._resolved.get(endpoint)
        if resolved is None:
            resolved = self._resolved[endpoint] = self._resolve(table, endpoint)
        target_name, handler, split = resolved
        if split is not None and native_share(path) >= split[0]:
            target_name, handler = split[1], split[2]
        meter = self._meter
        routed_to = target_name
        vid: int | None = None
        slot = meter.begin(endpoint, req.method, target_name) if meter is not None else None
        try:
            if endpoint == "admin.healthz" and self._state.stopping:
                await self._reply(exch, 503, b"")
            elif endpoint in _GUARDED and not self._guard.allows(exch.client_host):
                await self._reply(exch, 401, b"")
            elif handler is None:
                await settle_body(exch)
                await exch.send(json_error(503, f"endpoint {endpoint} is routed to {target_name}, which is not available",
                                           close=exch.close_after))
                exch.status = 503
            elif self._owners is None and self._owner_of is None:
                await handler(exch)
            elif endpoint in OWNED_HTTP and (vid := volume_of_path(path)) is not None:
                target_name = await self._by_owner(exch, vid, target_name, handler)
            elif self._status is not None and endpoint in OWNED_STATUS:
                await self._status(exch, handler)
            else:
                await handler(exch)
        finally:
            if self._evidence is not None:  # per endpoint, and per volume for a file id
                evidence, server_error = self._evidence, exch.status >= 500
                evidence.answered(endpoint, target_name, server_error)
                if endpoint in OWNED_HTTP and (vid is not None or (vid := volume_of_path(path)) is not None):
                    evidence.answered_volume(vid, target_name, server_error)
            method = req.method
            elapsed = time.perf_counter() - t0
            if slot is not None:
                if target_name != routed_to:  # its volume's owner served it (mixed mode's route meter)
                    slot = meter.begin(endpoint, method, target_name) or slot
                meter.end(slot, exch.status, elapsed)
            self._log_http(
                endpoint, target_name, table.version, _METHOD_NAMES.get(method) or method.decode("latin-1"),
                path.decode("latin-1"), exch.status, int(elapsed * 1e6), exch.client_host,
            )

    def direct_route(self, port_kind: str, req: Request, client_host: str, target: str = _GO) -> DirectToken | None:
        """For a loop that serves requests of one target without an `Exchange` (weedpy/serve/uv_host.py:
        proxy mode's relay to `go`, native mode's reads and uploads): the request's endpoint,
        table version, path and meter slot when this front would hand it straight to `target`;
        None when anything else applies (another target or a split, the whitelist's refusal,
        /healthz while stopping, volume owners, the differ's tallies), so that the front itself
        serves it. `direct_done` ends what this began, `direct_forget` what is served elsewhere after all."""
        if self._owners is not None or self._owner_of is not None or self._evidence is not None:
            return None
        path = request_path(req.target)
        endpoint = http_endpoint(port_kind, req.method, path)
        table = self._live.table
        if table is not self._table:
            self._table, self._resolved = table, {}
        resolved = self._resolved.get(endpoint)
        if resolved is None:
            resolved = self._resolved[endpoint] = self._resolve(table, endpoint)
        target_name, handler, split = resolved
        if handler is None or split is not None or target_name != target:
            return None
        if endpoint in _GUARDED and not self._guard.allows(client_host):
            return None
        if endpoint == "admin.healthz" and self._state.stopping:
            return None
        meter = self._meter
        slot = meter.begin(endpoint, req.method, target_name) if meter is not None else None
        return endpoint, target_name, table.version, path, slot

    def direct_done(self, token: DirectToken, method: bytes, status: int, elapsed: float, client_host: str) -> None:
        """The log line and metrics of a request `direct_route` gave a token for."""
        endpoint, target, version, path, slot = token
        if slot is not None:
            self._meter.end(slot, status, elapsed)  # type: ignore[union-attr]
        self._log_http(endpoint, target, version, _METHOD_NAMES.get(method) or method.decode("latin-1"),
                       path.decode("latin-1"), status, int(elapsed * 1e6), client_host)

    def direct_forget(self, token: DirectToken) -> None:
        """A request `direct_route` gave a token for goes to the front after all (`handle` counts it)."""
        slot = token[4]
        if slot is not None and slot.in_flight is not None:
            slot.in_flight.value -= 1

    async def _by_owner(self, exch: Exchange, vid: int, target_name: str, handler: HttpTarget) -> str:
        """Serve a request for volume `vid` from its owner (after any move of it); the side's name.
        In a worker process the handler hands a volume native owns to the leader; the name is
        read once the request is done, so a request held by a move names its new owner."""
        if self._owners is None:
            await handler(exch)
            assert self._owner_of is not None
            return self._owner_of(vid) or target_name
        assert self._owned is not None
        return await serve_by_owner(self._owners, self._owned, exch, vid, handler) or target_name

    def _resolve(self, table: RouteTable, endpoint: str) -> _Resolved:
        route = table.lookup(endpoint)
        split = None
        if route.native_pct is not None:
            go = route.go_side
            split = (route.native_pct, go.value, self._targets.get(go))
        return route.target.value, self._targets.get(route.target), split

    async def _reply(self, exch: Exchange, status: int, body: bytes) -> None:
        """A refusal of the front's own (the whitelist's 401, /healthz's 503 while stopping),
        after the unread body is settled as Go's server settles it."""
        await settle_body(exch)
        hs = handler_headers(self._server, exch.request.header(b"origin") is not None)
        if exch.close_after:
            hs.append((b"Connection", b"close"))
        hs.append(date_header())
        await exch.send(simple_response(status, body, hs))
        exch.started = True
        exch.status = status
