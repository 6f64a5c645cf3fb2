"""The HTTP front every mode serves through: name each request's endpoint, apply the server-level
rules, dispatch to the route's target, log.

Per request: one route-table lookup, the whitelist for admin writes and deletes (on the real client
address), then the route's target (the Go relay, the native handlers or a dual-run target). One structlog event per request carries the endpoint name, the
target, the table version, status and duration.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from weedpy.http1 import Exchange, simple_response
from weedpy.logs import FastEvent
from weedpy.serve.guard import Guard
from weedpy.serve.replies import date_header, handler_headers, json_error
from weedpy.serve.routes import RouteTable, Target, http_endpoint, request_path

__all__ = ["HttpFront", "HttpTarget", "FrontState"]

HttpTarget = Callable[[Exchange], Awaitable[None]]
_GUARDED = frozenset({"admin.write", "admin.delete"})
_METHOD_NAMES = {m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS")}


class FrontState:
    """Flags the front consults; set by the lifecycle code (stopping flips /healthz to 503)."""

    __slots__ = ("stopping",)

    def __init__(self) -> None:
        self.stopping = False


class HttpFront:
    def __init__(
        self,
        routes: RouteTable,
        targets: Mapping[Target, HttpTarget],
        guard: Guard,
        server_header: bytes,
        state: FrontState,
    ) -> None:
        self._routes = routes
        self._targets = dict(targets)
        # endpoint -> (target, its name, its handler or None): the table is immutable, so each
        # endpoint is resolved once (an Enum key hashes through Python on every lookup).
        self._resolved: dict[str, tuple[Target, str, HttpTarget | None]] = {}
        self._guard = guard
        self._server = server_header
        self._state = state
        self._log_http = FastEvent(
            "gateway.http", "http", ("route", "target", "routes_v", "method", "path", "status", "ms", "client"), repeating=4,
        )

    async def handle(self, exch: Exchange) -> None:
        t0 = time.perf_counter()
        req = exch.request
        path = request_path(req.target)
        endpoint = http_endpoint(exch.port_kind, req.method, path)
        resolved = self._resolved.get(endpoint)
        if resolved is None:
            target = self._routes.lookup(endpoint).target
            resolved = self._resolved[endpoint] = (target, target.value, self._targets.get(target))
        target, target_name, handler = resolved
        try:
            if endpoint == "admin.healthz" and self._state.stopping:
                await self._reply(exch, 503, b"")
            elif endpoint in _GUARDED and not self._guard.allows(exch.client_host):
                await self._reply(exch, 401, b"")
            elif handler is None:
                await exch.send(json_error(503, f"endpoint {endpoint} is routed to {target_name}, which is not available"))
                exch.status = 503
            else:
                await handler(exch)
        finally:
            method = req.method
            self._log_http(
                endpoint, target_name, self._routes.version, _METHOD_NAMES.get(method) or method.decode("latin-1"),
                path.decode("latin-1"), exch.status, round((time.perf_counter() - t0) * 1000, 3), exch.client_host,
            )

    async def _reply(self, exch: Exchange, status: int, body: bytes) -> None:
        hs = handler_headers(self._server, exch.request.header(b"origin") is not None)
        hs.append(date_header())
        await exch.send(simple_response(status, body, hs))
        exch.started = True
        exch.status = status
