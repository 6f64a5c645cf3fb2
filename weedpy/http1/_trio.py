"""Thin trio shells around the HTTP/1.1 readers: a server connection loop and an upstream pool.

No parsing or routing here: `serve_connection` feeds bytes to a `ServerConnection` and hands each
request to a handler as an `Exchange`; `UpstreamPool` keeps keep-alive connections to one or more
upstream servers.
"""

from __future__ import annotations

import collections
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable

import trio

from weedpy.http1._fastio import FastStream, fast_connect
from weedpy.http1._gowire import GoResponse, go_response_bytes, serialize_head
from weedpy.http1._events import NEED_DATA, ConnectionClosed, Data, EndOfMessage, ProtocolError, Request
from weedpy.http1._parse import ServerConnection, go_parses_request_line
from weedpy.http1._write import LAST_CHUNK, chunk, go_bad_request
from weedpy.tls import TlsStream, open_tls_stream

__all__ = [
    "Exchange", "serve_connection", "settle_body", "UpstreamConn", "UpstreamPool", "RECV_SIZE", "send_go_response",
    "MAX_POST_HANDLER_READ", "RST_AVOIDANCE_DELAY",
]

RECV_SIZE = 65536
MAX_POST_HANDLER_READ = 256 << 10  # Go's maxPostHandlerReadBytes (net/http server.go)
RST_AVOIDANCE_DELAY = 0.5  # Go's rstAvoidanceDelay: how long a closing connection lingers


class Exchange:
    """One request on a client connection: the head, its body as it arrives, and the reply channel."""

    __slots__ = ("request", "client_host", "local_port", "port_kind", "_conn", "_stream", "_idle",
                 "_unread", "_taken", "body_done", "settled", "started", "close_after", "status", "bytes_out",
                 "yielded", "served_fast")

    def __init__(
        self, request: Request, conn: ServerConnection, stream: trio.abc.Stream, idle: float,
        client_host: str, local_port: int, port_kind: str,
    ) -> None:
        self.request = request
        self.client_host = client_host
        self.local_port = local_port
        self.port_kind = port_kind
        self._conn = conn
        self._stream = stream
        self._idle = idle
        self._unread = b""  # body bytes a handler took and gave back (see buffered_body)
        self._taken = 0  # body bytes taken from the parser (those given back included)
        self.body_done = False  # the request's EndOfMessage has been consumed
        self.settled = False  # the unread body was dealt with before the answer (settle_body)
        self.started = False  # a response head went out
        self.close_after = False  # the connection must close after this exchange
        self.status = 0
        self.bytes_out = 0
        # The handler waited in trio's scheduler (for a peer's bytes): the connection loop then
        # owes the other connections no checkpoint before its next request.
        self.yielded = False
        # The handler answered it the way a loop that serves such requests without trio would
        # (native mode's plain read or upload): the connection may go back to that loop.
        self.served_fast = False

    async def receive_body(self) -> bytes:
        """The next piece of the request body; b"" once it is complete."""
        if self._unread:
            data, self._unread = self._unread, b""
            return data
        if self.body_done:
            return b""
        conn = self._conn
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                stream = self._stream
                data = stream.receive_now(RECV_SIZE) if type(stream) is FastStream else None
                if data is None:
                    with trio.fail_after(self._idle):
                        if type(stream) is FastStream:
                            data = await stream.receive_after_wait(RECV_SIZE)
                        else:
                            data = await stream.receive_some(RECV_SIZE)
                    self.yielded = True
                conn.receive_data(data)
                continue
            if isinstance(ev, Data):
                self._taken += len(ev.data)
                return ev.data
            if isinstance(ev, EndOfMessage):
                self.body_done = True
                return b""
            raise ProtocolError("unexpected event in request body")

    @property
    def body_unread(self) -> int | None:
        """Bytes of a Content-Length body the handler has not read (None for a chunked one)."""
        length = self.request.content_length
        if length is None or self.request.chunked:
            return None
        return max(0, length - self._taken) + len(self._unread)

    def buffered_body(self) -> bytes | None:
        """The whole request body if all of it has already arrived, else None.

        Never waits: what the parser holds, plus what the kernel already has for a fast stream.
        When the body is incomplete (or broken) nothing is lost: the pieces taken come back
        first from `receive_body`, and a parse error or EOF met here is met again there.
        """
        if self.body_done:
            data, self._unread = self._unread, b""
            return data
        conn = self._conn
        pieces = [self._unread] if self._unread else []
        self._unread = b""
        try:
            while True:
                ev = conn.next_event()
                if isinstance(ev, Data):
                    self._taken += len(ev.data)
                    pieces.append(ev.data)
                elif isinstance(ev, EndOfMessage):
                    self.body_done = True
                    return b"".join(pieces)
                elif ev is NEED_DATA and type(self._stream) is FastStream:
                    data = self._stream.receive_now(RECV_SIZE)
                    if data is None:
                        break
                    conn.receive_data(data)  # b"": the parser records the EOF for later
                    if not data:
                        break
                else:
                    break
        except ProtocolError:
            pass  # stored in the parser: receive_body raises it again
        self._unread = b"".join(pieces)
        return None

    def taken_before(self, data: bytes, complete: bool) -> None:
        """Body bytes another loop took from the parser before this exchange began (`complete`:
        the body's end was taken too): `receive_body` returns them first."""
        self._unread = data
        self._taken = len(data)
        self.body_done = complete

    def unread(self, data: bytes) -> None:
        """Give back body bytes taken with `buffered_body`: `receive_body` returns them first."""
        self._unread = data + self._unread

    async def send(self, data: bytes) -> None:
        self.bytes_out += len(data)
        await self._stream.send_all(data)

    async def send_file(self, fd: int, offset: int, count: int, *, cached: bool = False) -> int:
        """Send `count` bytes of a file from `offset` (sendfile(2) when the stream is a plain
        socket, else pread + send); returns how many were sent (fewer if the file is short).

        The file is read in a worker thread: sendfile on a non-blocking socket never waits for
        the peer, but it reads the file's pages itself, from the disk when they are not cached
        (the event loop would stop for that long, every connection with it). When the caller has
        just read the range (`cached`), sendfile runs right here: a thread hop per socket
        buffer's worth cost more CPU than the copy itself."""
        sent = 0
        sock = getattr(self._stream, "sock", None)
        if sock is not None and hasattr(os, "sendfile"):
            out_fd = sock.fileno()
            while sent < count:
                try:
                    if cached:
                        n = os.sendfile(out_fd, fd, offset + sent, min(count - sent, 1 << 24))
                    else:
                        n = await trio.to_thread.run_sync(os.sendfile, out_fd, fd, offset + sent, min(count - sent, 1 << 24))
                except BlockingIOError:
                    if isinstance(self._stream, FastStream):
                        await self._stream.wait_writable()  # with Go's write deadline
                    else:
                        await trio.lowlevel.wait_writable(sock)
                    continue
                except OSError as exc:
                    raise trio.BrokenResourceError(str(exc)) from exc
                if n == 0:
                    break
                sent += n
            await trio.lowlevel.checkpoint()
        else:
            while sent < count:
                piece = await trio.to_thread.run_sync(os.pread, fd, min(count - sent, 1 << 20), offset + sent)
                if not piece:
                    break
                await self._stream.send_all(piece)
                sent += len(piece)
        self.bytes_out += sent
        return sent

    def drain_buffered(self) -> bool:
        """Consume the rest of the request body if it is already buffered; True when complete.

        A handler that answered without reading the body leaves it behind; only what has already
        arrived is skipped, so the connection stays usable when the body was small or absent.
        """
        self._unread = b""  # already off the wire
        conn = self._conn
        while not self.body_done:
            ev = conn.next_event()
            if isinstance(ev, EndOfMessage):
                self.body_done = True
            elif not isinstance(ev, Data):
                return False
        return True


Handler = Callable[[Exchange], Awaitable[None]]


async def settle_body(exch: Exchange) -> None:
    """Deal with the request body a handler left unread, as Go's net/http does just before a
    response head goes out (server.go, chunkWriter.writeHeader), so that a client still sending
    its body gets the answer instead of a reset.

    A body of known length with 256 KiB or more still to come is not read: the answer closes the
    connection (Go's "tooBig"), which then lingers (`serve_connection`). A smaller or chunked one
    is read and dropped, up to 256 KiB more, each read under the idle timeout, and the connection
    stays open; a body longer than that, or one that breaks or stalls, closes it. A request that
    asked for `100 Continue` and whose body was not read to its end closes it too (the client may
    be holding its body back), and so does one that already closes (Go reads nothing then).
    Called once per request (`exch.settled`); works on anything shaped like an `Exchange`.
    """
    if exch.settled:
        return
    exch.settled = True
    req = exch.request
    if exch.body_done or not req.has_body or exch.close_after or not req.keep_alive:
        return
    if req.expect_continue:
        exch.close_after = True
        return
    unread = exch.body_unread
    if unread is not None and unread >= MAX_POST_HANDLER_READ:
        exch.close_after = True
        return
    left = MAX_POST_HANDLER_READ + 1
    try:
        while left > 0:
            piece = await exch.receive_body()
            if not piece:
                return
            left -= len(piece)
    except (ProtocolError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    exch.close_after = True


async def _lingering_close(stream: FastStream | trio.SocketStream | TlsStream) -> None:
    """Close after an answer that left part of the request body on the wire (Go's
    closeWriteAndWait): send FIN, then read and drop what the client still sends, until it closes
    or RST_AVOIDANCE_DELAY has passed. Closing at once with unread bytes would make the kernel
    send a reset, and the client's kernel may then drop the answer before it is read."""
    try:
        stream.socket.shutdown(socket.SHUT_WR)
    except OSError:
        return
    with trio.move_on_after(RST_AVOIDANCE_DELAY):
        try:
            while await stream.receive_some(RECV_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


class _IdleReaper:
    """One timer for the idle timeout of every fast-stream connection in a trio run.

    A cancel scope with a deadline around each wait for a client's next bytes costs more than
    the rest of a small request's socket work (trio registers and unregisters every deadline).
    Instead a waiting connection stamps `idle_deadline` on its stream, and this task closes the
    streams whose stamp has passed, checking a few times per timeout: a connection idle for
    longer than its timeout is closed within a quarter of the timeout (at most a second) after.
    """

    def __init__(self) -> None:
        self.streams: set[FastStream] = set()
        self.interval = 1.0

    def watch(self, stream: FastStream, timeout: float) -> None:
        self.streams.add(stream)
        self.interval = min(self.interval, max(timeout / 4, 0.005))

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            now = time.monotonic()
            for stream in [s for s in self.streams if 0.0 < s.idle_deadline <= now]:
                if stream.idle_reply:
                    try:
                        stream.sock.send(stream.idle_reply)  # a few bytes into an idle socket's buffer
                    except OSError:
                        pass
                stream.close()  # the waiting receive raises ClosedResourceError: connection over


_REAPER: trio.lowlevel.RunVar[_IdleReaper] = trio.lowlevel.RunVar("weedpy.http1.idle_reaper")


def _idle_reaper() -> _IdleReaper:
    try:
        return _REAPER.get()
    except LookupError:
        reaper = _IdleReaper()
        _REAPER.set(reaper)
        trio.lowlevel.spawn_system_task(reaper.run, name="weedpy.http1 idle reaper")
        return reaper


def _idle_reply(conn: ServerConnection) -> bytes | None:
    """What Go answers when the idle timeout ends a request line half sent: it parses what
    arrived as the line, and refuses one it cannot parse with 400 (a whole line is followed by
    the headers' read, whose timeout closes the connection without an answer)."""
    line = conn.partial_request_line()
    if line is None or go_parses_request_line(line):
        return None
    return go_bad_request(400)


async def serve_connection(
    stream: FastStream | trio.SocketStream | TlsStream, handler: Handler, *, idle_timeout: float, port_kind: str,
    conn: ServerConnection | None = None, first: Request | None = None, first_body: tuple[bytes, bool] | None = None,
    hand_back: Callable[[FastStream, ServerConnection], None] | None = None,
) -> None:
    """Serve requests on one client connection until it closes, idles out or misbehaves.

    `conn`, `first` and `first_body`: a connection another loop served until now
    (weedpy/serve/uv_host.py hands over what its protocols do not serve themselves): its parser,
    with what it has read, the request it took from it last, served first, and what of that
    request's body it took from the parser already (and whether that was the whole body).
    `hand_back`: after a request the handler `served_fast`, at a clean boundary (nothing of the
    next request parsed yet), the connection goes back to that loop: `hand_back(stream, conn)`
    owns the stream from then on and this returns without closing it."""
    if conn is None:
        conn = ServerConnection()
    try:
        peer = stream.socket.getpeername()
        local_port = stream.socket.getsockname()[1]
    except OSError:
        await stream.aclose()
        return
    client_host = peer[0] if isinstance(peer, tuple) else str(peer)
    exchange: Exchange | None = None
    # Bytes the kernel already holds are taken without any timeout machinery; a fast stream that
    # must wait stamps its idle deadline for the run's idle reaper (see _IdleReaper), any other
    # stream waits in a cancel scope.
    fast = type(stream) is FastStream
    reaper = _idle_reaper() if fast else None
    if reaper is not None:
        reaper.watch(stream, idle_timeout)
        stream.write_timeout = idle_timeout  # type: ignore[union-attr]
    parked = False  # this task went through the scheduler since its last request
    detached = False  # handed back: the stream is no longer this loop's to close
    try:
        while True:
            if first is not None:
                ev, first = first, None
            else:
                ev = conn.next_event()
            if ev is NEED_DATA:
                if fast:
                    data = stream.receive_now(RECV_SIZE)
                    if data is None:
                        stream.idle_deadline = time.monotonic() + idle_timeout
                        stream.idle_reply = _idle_reply(conn)
                        try:
                            data = await stream.receive_after_wait(RECV_SIZE)
                        finally:
                            stream.idle_deadline = 0.0
                        parked = True
                else:
                    with trio.move_on_after(idle_timeout) as idle:
                        data = await stream.receive_some(RECV_SIZE)
                    if idle.cancelled_caught:
                        reply = _idle_reply(conn)
                        if reply:
                            with trio.move_on_after(1):
                                await stream.send_all(reply)
                        return
                    parked = True
                conn.receive_data(data)
                continue
            if isinstance(ev, ConnectionClosed):
                return
            if not isinstance(ev, Request):
                raise ProtocolError("body without a request")
            exchange = Exchange(ev, conn, stream, idle_timeout, client_host, local_port, port_kind)
            if first_body is not None:
                exchange.taken_before(*first_body)
                first_body = None
            if not parked:
                # Fast streams skip trio's per-call checkpoints: one per request keeps a busy
                # connection from starving the others (a wait for its bytes already was one, and
                # so was a wait of the previous request's handler: a relay waits for every answer).
                await trio.lowlevel.checkpoint()
            await handler(exchange)
            parked = exchange.yielded
            if exchange.close_after or not ev.keep_alive or not exchange.drain_buffered():
                if ev.has_body and not exchange.body_done:
                    await _lingering_close(stream)
                return
            if exchange.served_fast and hand_back is not None and fast and not conn.pending_events:
                if reaper is not None:
                    reaper.streams.discard(stream)
                reaper = None
                detached = True
                hand_back(stream, conn)
                return
            exchange = None
    except ProtocolError as exc:
        if exchange is None or not exchange.started:
            try:
                await stream.send_all(go_bad_request(exc.status_hint, exc.public))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
        pass
    finally:
        if reaper is not None:
            reaper.streams.discard(stream)
        if not detached:
            with trio.CancelScope(shield=True):
                await stream.aclose()


class UpstreamConn:
    """A keep-alive connection to an upstream HTTP server."""

    __slots__ = ("stream", "addr", "idle_since", "reused")

    def __init__(self, stream: FastStream | TlsStream, addr: tuple[str, int]) -> None:
        self.stream = stream
        self.addr = addr
        self.idle_since = 0.0
        self.reused = False


class UpstreamPool:
    """LIFO idle connections per upstream address, dropped after `idle_ttl` seconds unused.

    With `tls` every connection is HTTPS (the host name is verified as the context says); without
    it they are the raw-socket fast streams of the plaintext path.
    """

    def __init__(
        self, max_idle_per_addr: int = 256, idle_ttl: float = 15.0, connect_timeout: float = 5.0, buffer_size: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._tls = tls
        self._idle: dict[tuple[str, int], collections.deque[UpstreamConn]] = {}
        self._buffer_size = buffer_size
        self._max_idle = max_idle_per_addr
        self._ttl = idle_ttl
        self._connect_timeout = connect_timeout

    def take_idle(self, addr: tuple[str, int]) -> UpstreamConn | None:
        """The most recently used idle connection to `addr` if it is still fresh, without waiting;
        None: `acquire` (which also drops the stale ones)."""
        idle = self._idle.get(addr)
        if idle and time.monotonic() - idle[-1].idle_since < self._ttl:
            conn = idle.pop()
            conn.reused = True
            return conn
        return None

    async def acquire(self, addr: tuple[str, int]) -> UpstreamConn:
        idle = self._idle.get(addr)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self._ttl:
                conn.reused = True
                return conn
            await _close_quietly(conn.stream)
        if self._tls is not None:
            tls_stream = await open_tls_stream(addr[0], addr[1], self._tls, http=True, connect_timeout=self._connect_timeout)
            return UpstreamConn(tls_stream, addr)
        stream = await fast_connect(addr[0], addr[1], self._connect_timeout, self._buffer_size)
        return UpstreamConn(stream, addr)

    def put_back(self, conn: UpstreamConn) -> bool:
        """Keep a reusable connection for the next request, without waiting; False when the pool
        for its address is full (the caller closes it: `release(conn, False)`)."""
        idle = self._idle.get(conn.addr)
        if idle is None:
            idle = self._idle[conn.addr] = collections.deque()
        elif len(idle) >= self._max_idle:
            return False
        conn.idle_since = time.monotonic()
        idle.append(conn)
        return True

    async def release(self, conn: UpstreamConn, reusable: bool) -> None:
        if not (reusable and self.put_back(conn)):
            await _close_quietly(conn.stream)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                await _close_quietly(idle.pop().stream)


async def _close_quietly(stream: trio.abc.AsyncResource) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


async def send_go_response(exch: Exchange, resp: GoResponse, *, sniff: Callable[[bytes], str] | None = None) -> None:
    """Write a native handler's GoResponse to the client with Go's framing (see _gowire), once
    the unread request body is settled as Go settles it (`settle_body`)."""
    await settle_body(exch)
    req = exch.request
    keep = req.keep_alive and not exch.close_after
    http10 = req.http_version == b"1.0"
    exch.started = True
    exch.status = resp.status
    if not keep:
        exch.close_after = True
    if resp.stream is None:
        await exch.send(go_response_bytes(resp, req.method, keep_alive=keep, http10=http10, sniff=sniff))
        return
    wire = serialize_head(resp, method=req.method, keep_alive=keep, http10=http10, sniff=sniff)
    head: bytes | None = wire.head
    async for piece in resp.stream:
        if not wire.send_body or not piece:
            continue
        data = chunk(piece) if wire.chunked else piece
        if head is not None:
            data, head = head + data, None
        await exch.send(data)
    tail = (head or b"") + (LAST_CHUNK if wire.chunked else b"")
    if tail:
        await exch.send(tail)
