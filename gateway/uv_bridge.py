"""Proxy-mode workers on uvloop: the relay (gateway/uv_relay.py) in uvloop's callbacks, hosted by
weedpy/serve/uv_host.py (trio as uvloop's guest; what the relay hands over is served by trio's
`serve_connection` through the worker's whole HTTP handler: route API, front, relay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.backend import BackendView
from gateway.relay_fault import TEST_FAULT_ENV
from gateway.uv_relay import RelayHost, UvRelay
from weedpy.http1 import Request, ServerConnection
from weedpy.logs import get_logger
from weedpy.serve.http_front import DirectToken, HttpFront

__all__ = ["UvHttp"]

log = get_logger("gateway.uv_bridge")


class UvHttp(RelayHost):
    """A worker's plain-HTTP ports served by the uvloop relay (a `weedpy.serve.lifecycle.HttpServe`),
    and the relay's host: the worker's front decides and logs, its backend view says where Go is."""

    def __init__(self, front: HttpFront, backend: BackendView, front_address: str | None, pool_ttl: float,
                 on_error: Callable[[str], None], buffer_size: int = 0, faults: frozenset[str] = frozenset()) -> None:
        super().__init__(buffer_size)
        self._faults = faults  # armed test-only faults (gateway/relay_fault.py)
        if faults:
            log.warning("TEST-ONLY FAULT: the relay raises on purpose for the requests that ask",
                        callbacks=sorted(faults), env=TEST_FAULT_ENV)
        self._front = front
        self.done = front.direct_done
        self._backend = backend
        self._front_address = front_address
        self._pool_ttl = pool_ttl
        self._on_error = on_error
        self._relay: UvRelay | None = None

    def started(self, loop: asyncio.AbstractEventLoop, idle: float) -> Callable[[], None]:
        relay = self._relay = UvRelay(self, loop, pool_ttl=self._pool_ttl, front_address=self._front_address,
                                      buffer_size=self.buffer_size, faults=self._faults)
        close_connections = super().started(loop, idle)

        def close() -> None:
            close_connections()
            relay.close()

        return close

    def protocol(self, kind: str, conn: ServerConnection | None = None) -> Callable[[], asyncio.Protocol]:
        assert self._relay is not None and conn is None  # trio's relay never hands a connection back
        return self._relay.protocol(kind)

    # -- RelayHost -------------------------------------------------------------------------
    def route(self, port_kind: str, req: Request, client_host: str) -> tuple[tuple[str, int], DirectToken] | None:
        ep = self._backend.current()
        if ep is None:
            return None  # trio's path answers Go's absence
        token = self._front.direct_route(port_kind, req, client_host)
        if token is None:
            return None
        return (ep.public if port_kind == "public" and ep.public is not None else ep.http), token

    def error(self, reason: str) -> None:
        self._on_error(reason)
