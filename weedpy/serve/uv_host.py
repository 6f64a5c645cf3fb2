"""HTTP served from uvloop's callbacks, with trio as uvloop's guest for everything else.

trio's connection loop (weedpy.http1.serve_connection) parks a task in trio's scheduler each
time a keep-alive connection waits for its client's next request: a task switch and a one-shot
epoll registration per request, a large share of a small request's CPU. A process that serves
its plain-HTTP ports here instead runs uvloop's event loop with trio in guest mode on it
(`run_trio_on_uvloop`): the common requests are answered by asyncio protocols in uvloop's
callbacks (proxy mode's relay, gateway/uv_relay.py; native mode's reads and uploads,
native/http/uv_serve.py), nothing is scheduled per request, and everything else (gRPC, the
heartbeat, control, any request those protocols do not serve) stays in trio on the same thread,
so both read the same objects without locks.

`UvHost` is the shared part, an `HttpServe` of weedpy.serve.lifecycle: the listening sockets are
accepted in trio (the connection spreading of weedpy/serve/spread.py unchanged), each accepted
socket becomes a protocol from the mode's factory, and a connection a protocol gives back
(`hand_over`, between requests, its answers written out) is served by trio's `serve_connection`
with the server's whole HTTP handler: the socket, the parser with what it has read, the request
it took and what of its body was taken. It comes back once trio's path has answered a request
the protocols would have answered themselves (`Exchange.served_fast`, native mode's plain reads
and uploads: a connection handed over while a volume was being swapped returns once that is
over), between two requests.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import uvloop

import os
import time

from weedpy.http1 import (
    NEED_DATA,
    RST_AVOIDANCE_DELAY,
    Data,
    EndOfMessage,
    FastStream,
    ProtocolError,
    Request,
    ServerConnection,
    Spread,
    accept_forever,
    go_bad_request,
    go_parses_request_line,
    serve_connection,
)
from weedpy.logs import get_logger
from weedpy.serve.lifecycle import HttpHandler

__all__ = ["UvHost", "UvConnection", "run_trio_on_uvloop"]

log = get_logger("serve.uv_host")


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
    """What a protocol's callbacks raise, as one JSON event like every other log line (asyncio's
    default handler writes a plain-text traceback through the stdlib's logging)."""
    exc = context.get("exception")
    log.error("event loop error", message=context.get("message", ""), error=None if exc is None else repr(exc),
              exc_info=exc if exc is not None else False)


class UvHost:
    """Serves plain-HTTP listening sockets with the protocols `protocol(kind)` makes; a subclass
    says which (`protocol`) and what starts with the first port (`started`). It keeps the open
    `UvConnection`s (`clients`) and closes those idle longer than the idle timeout, checking a
    few times per timeout."""

    def __init__(self, buffer_size: int = 0) -> None:
        self.buffer_size = buffer_size  # caps every accepted socket's send buffer (0: the kernel's)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.idle = 0.0
        self.clients: set[UvConnection] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._handler: HttpHandler | None = None
        self._connections: trio.Nursery | None = None
        self._spread: Spread | None = None

    def protocol(self, kind: str, conn: ServerConnection | None = None) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for one port (`admin` or `public`); `conn`: the parser of a
        connection trio's path hands back, with what it has read."""
        raise NotImplementedError

    def started(self, loop: asyncio.AbstractEventLoop, idle: float) -> Callable[[], None]:
        """The first port is served: start what the protocols share; returns what ends it (by
        default the idle timer, and `close_all` when the server stops)."""
        self.loop, self.idle = loop, idle
        self._tick()
        return self.close_all

    def _tick(self) -> None:
        assert self.loop is not None
        now = time.monotonic()
        self._timer = self.loop.call_later(min(1.0, max(self.idle / 4, 0.005)), self._tick)  # first: whatever fails below
        for client in list(self.clients):
            try:
                client.idle_check(now, self.idle)
            except Exception as exc:
                client.crashed(exc)

    def close_all(self) -> None:
        """End every connection (the server stops)."""
        if self._timer is not None:
            self._timer.cancel()
        for client in list(self.clients):
            if client.t is not None:
                client.t.abort()

    async def __call__(self, sock: socket.socket, kind: str, handler: HttpHandler, idle: float,
                       connections: trio.Nursery, spread: Spread | None) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self._token = trio.lowlevel.current_trio_token()
            self._handler, self._connections, self._spread, self.idle = handler, connections, spread, idle
            connections.start_soon(self._close_with, self.started(self.loop, idle))
        factory = self.protocol(kind)

        def adopt(conn: socket.socket) -> None:
            if spread is not None:
                spread.opened()
            self._adopt(conn, factory)

        await accept_forever(sock, adopt, self.buffer_size, spread)

    def _adopt(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol]) -> None:
        """Serve an accepted socket with a protocol; one that cannot be (no descriptor left for
        the transport, ...) is closed and no longer counted, with one event saying why."""
        assert self.loop is not None

        def made(task: asyncio.Task[Any]) -> None:
            exc = None if task.cancelled() else task.exception()
            if task.cancelled() or exc is not None:
                sock.close()
                self.closed()
                if exc is not None:
                    log.error("http connection not served", error=repr(exc))

        self.loop.create_task(self.loop.connect_accepted_socket(factory, sock)).add_done_callback(made)

    @staticmethod
    async def _close_with(close: Callable[[], None]) -> None:
        """The protocols' connections end with the server's connection nursery."""
        try:
            await trio.sleep_forever()
        finally:
            close()

    def closed(self) -> None:
        """A connection a protocol accepted has closed (not one handed over)."""
        if self._spread is not None:
            self._spread.closed()

    def hand_over(self, sock: socket.socket, conn: ServerConnection, req: Request | None, port_kind: str,
                  body: tuple[bytes, bool] | None = None) -> None:
        """Serve this connection on trio's path from now on, `req` first (`body`: what of its body
        was taken from `conn` already, and whether that was all of it)."""
        assert self._token is not None
        self._token.run_sync_soon(self._start_serving, sock, conn, req, port_kind, body)

    def _start_serving(self, sock: socket.socket, conn: ServerConnection, req: Request | None, kind: str,
                       body: tuple[bytes, bool] | None) -> None:
        """In trio: serve a handed-over connection, unless the server is past serving (it closes)."""
        assert self._connections is not None
        try:
            self._connections.start_soon(self._serve, sock, conn, req, kind, body)
        except RuntimeError:  # the connection nursery is closed: the server is stopping
            sock.close()
            self.closed()

    async def _serve(self, sock: socket.socket, conn: ServerConnection, req: Request | None, kind: str,
                     body: tuple[bytes, bool] | None) -> None:
        assert self._handler is not None
        back: list[bool] = []

        def hand_back(stream: FastStream, conn: ServerConnection) -> None:
            """A request trio's path served as the protocols would have: the connection goes back."""
            back.append(True)
            fd = os.dup(stream.sock.fileno())
            stream.close()  # trio's descriptor; the connection lives on in `fd`
            self._adopt(socket.socket(fileno=fd), self.protocol(kind, conn))

        try:
            await serve_connection(FastStream(sock), self._handler, idle_timeout=self.idle, port_kind=kind,
                                   conn=conn, first=req, first_body=body, hand_back=hand_back)
        except Exception:  # one connection's bug must not take the server down; the connection is gone
            log.exception("http connection failed", port_kind=kind)
        finally:
            if not back:  # still open in the protocols otherwise
                self.closed()


class UvConnection(asyncio.Protocol):
    """What every client connection served from uvloop's callbacks shares: its transport and
    parser, the client's address, the bookkeeping with its host, reading the next request, and
    the ways a connection ends (Go's 400, a close once written, a lingering close, a hand-over to
    trio's path, a bug's). A subclass serves the requests (`take_request` gives them) and says
    when the idle timeout applies (`waiting_for_client`, `timed_out`)."""

    __slots__ = ("host", "kind", "t", "conn", "client_host", "last_rx", "gone", "lingering", "wpaused", "started")

    def __init__(self, host: UvHost, kind: str, conn: ServerConnection | None = None) -> None:
        self.host = host
        self.kind = kind
        self.t: asyncio.Transport | None = None
        self.conn = conn if conn is not None else ServerConnection()
        self.client_host = ""
        self.last_rx = time.monotonic()
        self.gone = False  # closed or handed over: nothing more to do here
        self.lingering = False
        self.wpaused = False  # the client is slow to read: the next request waits until it catches up
        self.started = False  # an answer to the request in progress started going out

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client_host = peer[0] if isinstance(peer, tuple) else str(peer)
        self.host.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.t = None
        if self.gone:
            return
        self.gone = True
        self.host.clients.discard(self)
        self.ended()
        self.host.closed()

    def ended(self) -> None:
        """The connection closed under the request in progress, if any: end it."""

    def take_request(self) -> Request | None:
        """At a request boundary: the next request, once its head has arrived and the client has
        taken what was written to it (a pipelining client that reads nothing must not have every
        later answer made in memory: `pause_writing` is told once); else None, with reading
        resumed or paused as the connection needs, or the connection refused or closed."""
        t = self.t
        if self.wpaused:
            if t is not None:
                t.pause_reading()
            return None
        try:
            ev = self.conn.next_event()
        except ProtocolError as exc:
            self.refuse(exc)
            return None
        if ev is NEED_DATA:
            if t is not None:
                t.resume_reading()  # paused if the next request came while an answer was pending
            return None
        if type(ev) is not Request:
            if isinstance(ev, EndOfMessage | Data):
                self.refuse(ProtocolError("body without a request"))
            else:  # the client closed between requests
                self.shut()
            return None
        return ev

    def refuse(self, exc: ProtocolError) -> None:
        """Go's error answer for a request that cannot be read (unless an answer started), then close."""
        if not self.started and self.t is not None:
            self.t.write(go_bad_request(exc.status_hint, exc.public))
        self.shut()

    def shut(self) -> None:
        """Close once what was written has gone out."""
        if self.t is not None:
            self.t.close()

    def linger(self) -> None:
        """Close after an answer that left part of the request body on the wire (Go's
        closeWriteAndWait): FIN, then drop what the client still sends for RST_AVOIDANCE_DELAY."""
        t = self.t
        if t is None:
            return
        self.lingering = True
        t.resume_reading()
        if t.can_write_eof():
            t.write_eof()
        assert self.host.loop is not None
        self.host.loop.call_later(RST_AVOIDANCE_DELAY, self.shut)

    def hand_over(self, req: Request | None, body: tuple[bytes, bool] | None = None) -> None:
        """Give the connection to trio's path, once what was written to it has gone out; from
        now on nothing here reads or answers on it."""
        if self.t is None or self.gone:
            return
        self.gone = True
        self.host.clients.discard(self)
        self.t.pause_reading()
        self._detach(req, body, 0.005, time.monotonic() + self.host.idle)

    def _detach(self, req: Request | None, body: tuple[bytes, bool] | None, wait: float, until: float) -> None:
        """Hand over once the answers written have gone out, looking again after `wait` (doubled
        each time, at most half a second: a client that reads nothing costs no busy loop), and
        closing the connection if the client has not taken them by `until` (the idle timeout)."""
        t = self.t
        if t is None:  # the client closed meanwhile
            self.host.closed()
            return
        try:
            if t.get_write_buffer_size():
                if time.monotonic() > until:
                    t.abort()  # connection_lost: counted as closed there
                    self.gone = False
                    return
                assert self.host.loop is not None
                self.host.loop.call_later(wait, self._detach, req, body, min(wait * 2, 0.5), until)
                return
            fd = os.dup(t.get_extra_info("socket").fileno())
        except Exception as exc:
            self.gone = False  # still this side's connection: the bug's end closes it
            self.crashed(exc)
            return
        t.abort()  # closes this descriptor only: the connection lives on in `fd`
        sock = socket.socket(fileno=fd)
        try:
            self.host.hand_over(sock, self.conn, req, self.kind, body)
        except Exception as exc:  # trio's path never got it: the connection ends here
            sock.close()
            self.host.closed()
            self.report(exc, req)

    def waiting_for_client(self) -> bool:
        """Whether the connection now waits for the client's bytes (the idle timeout applies)."""
        return True

    def idle_check(self, now: float, timeout: float) -> None:
        """Close a connection that waited for its client longer than `timeout`, with Go's 400
        when what it waited for is a request line half sent that Go cannot parse."""
        if self.t is None or now - self.last_rx <= timeout or not self.waiting_for_client():
            return
        reply = self.timed_out()
        if reply is not None:
            self.t.write(reply)
            self.shut()
        else:
            self.t.abort()

    def timed_out(self) -> bytes | None:
        """The idle timeout ends the connection: what to write before it closes."""
        line = self.conn.partial_request_line()
        if line is not None and not go_parses_request_line(line):
            return go_bad_request(400)  # Go refuses a half-sent request line it cannot parse
        return None

    def crashed(self, exc: Exception) -> None:
        """A callback raised (a bug): report it and close the connection; the others go on."""
        self.report(exc, None)
        if self.t is not None:
            self.t.abort()

    def report(self, exc: Exception, req: Request | None) -> None:
        """One event for what a callback raised."""
        log.error("http connection failed", error=repr(exc), port_kind=self.kind, client=self.client_host,
                  method=None if req is None else req.method.decode("latin-1"),
                  path=None if req is None else req.target.decode("latin-1"), exc_info=exc)
