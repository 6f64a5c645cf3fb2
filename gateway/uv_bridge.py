"""Proxy-mode workers on uvloop: trio runs as uvloop's guest, the relay (gateway/uv_relay.py) in
uvloop's callbacks, and connections cross from one to the other at request boundaries.

A proxy worker's process runs uvloop's event loop with trio in guest mode on it
(`run_trio_on_uvloop`): everything a worker does in trio (the control channel, route changes,
metrics, the backend's endpoints, draining) stays as it is, on the same thread as the relay, so
both read the same objects without locks. The plain-HTTP ports are accepted in trio (the
connection spreading of weedpy/serve/spread.py unchanged) and each accepted socket is given to
the relay; a connection the relay hands back (`RelayHost.hand_over`) is served by trio's
`serve_connection` through the worker's whole HTTP handler (route API, front, relay) from then on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import uvloop

from gateway.backend import BackendView
from gateway.uv_relay import UvRelay
from weedpy.http1 import FastStream, Request, ServerConnection, Spread, accept_forever, serve_connection
from weedpy.logs import get_logger
from weedpy.serve.http_front import HttpFront, RelayToken
from weedpy.serve.lifecycle import HttpHandler

__all__ = ["UvHttp", "run_trio_on_uvloop"]

log = get_logger("gateway.uv_bridge")


def run_trio_on_uvloop(async_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """`trio.run(async_fn, *args)`, with trio as the guest of a uvloop event loop."""
    loop = uvloop.new_event_loop()
    loop.set_exception_handler(_log_loop_error)
    asyncio.set_event_loop(loop)
    done: asyncio.Future[Any] = loop.create_future()
    # uvloop wakes on signals through signal.set_wakeup_fd itself (and restores the previous
    # descriptor when it stops: trio's own would be closed by then)
    trio.lowlevel.start_guest_run(async_fn, *args, run_sync_soon_threadsafe=loop.call_soon_threadsafe,
                                  done_callback=done.set_result, host_uses_signal_set_wakeup_fd=True)
    try:
        return loop.run_until_complete(done).unwrap()
    finally:
        loop.close()


def _log_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """What the relay's callbacks raise, as one JSON event like every other log line (asyncio's
    default handler writes a plain-text traceback through the stdlib's logging)."""
    exc = context.get("exception")
    log.error("event loop error", message=context.get("message", ""), error=None if exc is None else repr(exc),
              exc_info=exc if exc is not None else False)


class UvHttp:
    """A worker's plain-HTTP ports served by the uvloop relay (a `weedpy.serve.lifecycle.HttpServe`),
    and the relay's host: the worker's front decides and logs, its backend view says where Go is."""

    def __init__(self, front: HttpFront, backend: BackendView, front_address: str | None, pool_ttl: float,
                 on_error: Callable[[str], None], buffer_size: int = 0, faults: frozenset[str] = frozenset()) -> None:
        self._buffer_size = buffer_size  # caps every socket's buffers (0: the kernel's autotuning)
        self._faults = faults  # armed test-only faults (gateway/relay_fault.py)
        self._front = front
        self._backend = backend
        self._front_address = front_address
        self._pool_ttl = pool_ttl
        self._on_error = on_error
        self._relay: UvRelay | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._handler: HttpHandler | None = None
        self._connections: trio.Nursery | None = None
        self._spread: Spread | None = None
        self._idle = 0.0

    async def __call__(self, sock: socket.socket, kind: str, handler: HttpHandler, idle: float,
                       connections: trio.Nursery, spread: Spread | None) -> None:
        if self._relay is None:
            self._loop = asyncio.get_running_loop()
            self._token = trio.lowlevel.current_trio_token()
            self._handler, self._connections, self._spread, self._idle = handler, connections, spread, idle
            self._relay = UvRelay(self, self._loop, idle_timeout=idle, pool_ttl=self._pool_ttl,
                                  front_address=self._front_address, buffer_size=self._buffer_size,
                                  faults=self._faults)
            self._relay.start()
            connections.start_soon(self._close_with, self._relay)
        loop, factory = self._loop, self._relay.protocol(kind)
        assert loop is not None

        def adopt(conn: socket.socket) -> None:
            if spread is not None:
                spread.opened()
            loop.create_task(loop.connect_accepted_socket(factory, conn))

        await accept_forever(sock, adopt, self._buffer_size, spread)

    @staticmethod
    async def _close_with(relay: UvRelay) -> None:
        """The relay's connections end with the worker's connection nursery."""
        try:
            await trio.sleep_forever()
        finally:
            relay.close()

    # -- RelayHost -------------------------------------------------------------------------
    def route(self, port_kind: str, req: Request, client_host: str) -> tuple[tuple[str, int], RelayToken] | None:
        ep = self._backend.current()
        if ep is None:
            return None  # trio's path answers Go's absence
        token = self._front.relay_route(port_kind, req, client_host)
        if token is None:
            return None
        return (ep.public if port_kind == "public" and ep.public is not None else ep.http), token

    def done(self, token: RelayToken, req: Request, status: int, seconds: float, client_host: str) -> None:
        self._front.relay_done(token, req.method, status, seconds, client_host)

    def error(self, reason: str) -> None:
        self._on_error(reason)

    def closed(self) -> None:
        if self._spread is not None:
            self._spread.closed()

    def hand_over(self, sock: socket.socket, conn: ServerConnection, req: Request | None, port_kind: str) -> None:
        assert self._token is not None
        self._token.run_sync_soon(self._start_serving, sock, conn, req, port_kind)

    def _start_serving(self, sock: socket.socket, conn: ServerConnection, req: Request | None, kind: str) -> None:
        """In trio: serve a handed-over connection, unless the worker is past serving (it closes)."""
        assert self._connections is not None
        try:
            self._connections.start_soon(self._serve, sock, conn, req, kind)
        except RuntimeError:  # the connection nursery is closed: the worker is stopping
            sock.close()
            self.closed()

    async def _serve(self, sock: socket.socket, conn: ServerConnection, req: Request | None, kind: str) -> None:
        assert self._handler is not None
        try:
            await serve_connection(FastStream(sock), self._handler, idle_timeout=self._idle, port_kind=kind,
                                   conn=conn, first=req)
        except Exception:  # one connection's bug must not take the server down; the connection is gone
            log.exception("http connection failed", port_kind=kind)
        finally:
            self.closed()
