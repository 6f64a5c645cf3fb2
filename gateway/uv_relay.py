"""Proxy mode's HTTP relay on uvloop: plain requests relayed from event-loop callbacks, no task each.

trio's HTTP path (weedpy.http1.serve_connection, gateway.http_proxy.GoHttpTarget) parks a task
in trio's scheduler for every wait, about 1.7 task switches and one-shot epoll registrations per
relayed request: over a quarter of the gateway's Python time (docs/performance.md). Here a
client connection and a backend connection are asyncio protocols on uvloop (libuv, compiled):
bytes arrive in `data_received`, the same sans-IO parts decide (the request parser of
weedpy.http1, `canonical_head`, the response head check of gateway.http_proxy, the front's route,
log line and metrics: `HttpFront.direct_route` / `direct_done`), and bytes leave through the
transports. Nothing waits, so nothing is scheduled.

What it serves: requests whose route is `go` (no split, no dual-run, allowed by the whitelist),
with no body or a Content-Length body, without `Expect: 100-continue`, on a connection without
TLS. Any other request (chunked, 100-continue, the route API, another target, a refusal of the
front's own, a backend that is down or refuses connections) is handed over with its connection:
the socket, the parser with what it has read, and the request itself go to trio's path
(`RelayHost.hand_over`), which serves that connection from then on with every rule it has. A
connection is handed over only between requests and with its answers written out, so the two
paths never share one.

Responses: a plain Content-Length answer is passed through as Go wrote it (only `Connection`
added when the client closes), anything else goes through the response parser and is re-framed
as the trio relay does. Flow control both ways: a full transport pauses reading on the other
side, and a request body is not read while its backend connection opens (one socket read at
most waits in the parser). Timeouts: a connection waiting for its client longer than the idle
timeout is closed (with Go's 400 when a request line was half sent), checked a few times per
timeout; none for Go's answer (as against Go directly); a backend that closed a reused
keep-alive connection before answering a request without a body gets it once more on a fresh one.

Failures: every callback catches what it raises (`_Client.crashed`): a bug ends that request
with Go's 500 (or a closed connection once an answer started) and frees its backend connection,
logged and counted once, instead of reaching the loop's exception handler with the client left
waiting.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.http_proxy import LENGTH_HEADER, backend_request_head, client_response_head, frame_quick_head, quick_head
from gateway.relay_fault import FAULT_HEADER, RelayTestFault
from weedpy.http1 import (
    LAST_CHUNK,
    NEED_DATA,
    ClientConnection,
    Data,
    EndOfMessage,
    InformationalResponse,
    ProtocolError,
    Request,
    Response,
    canonical_head,
    chunk,
    go_bad_request,
    response_head,
)
from weedpy.logs import get_logger
from weedpy.serve.uv_host import UvConnection, UvHost

__all__ = ["RelayHost", "UvRelay"]

log = get_logger("gateway.uv_relay")

_perf = time.perf_counter
_mono = time.monotonic
_HEAD, _BODY, _PARSED = 0, 1, 2  # where a response is: its head, a counted body, the parser
_CONNECT_TIMEOUT = 5.0  # as trio's pool
_API_PREFIX = b"/weedpy"  # the route API and other admin APIs of weedpy's own: trio's path
_API_LEN = len(_API_PREFIX)  # a slice compares it: bytes.startswith costs several times more


class RelayHost(UvHost):
    """What the relay asks of the server it runs in, besides what a `UvHost` does (its
    connections, the idle timer, the hand-over to trio's path)."""

    def route(self, port_kind: str, req: Request, client_host: str) -> tuple[tuple[str, int], Any] | None:
        """The backend address for a request this relay may serve and a token for `done`;
        None: trio's path serves it (the connection is handed over)."""
        raise NotImplementedError

    # The request is over: its log line and metrics (token, method, status, seconds, client host).
    # An attribute, not a method: a host sets its front's `HttpFront.direct_done` here, which the
    # relay then calls with no call of the host's between (one Python call per request).
    done: Callable[[Any, bytes, int, float, str], None]

    def error(self, reason: str) -> None:
        """A request could not be relayed (weedpy_relay_errors_total's reason)."""
        raise NotImplementedError


class _Upstream(asyncio.Protocol):
    """A keep-alive connection to the backend; `client` is the connection it answers now."""

    __slots__ = ("pool", "addr", "t", "client", "idle_since", "reused", "paused", "full")

    def __init__(self, pool: _Pool, addr: tuple[str, int]) -> None:
        self.pool = pool
        self.addr = addr
        self.t: asyncio.Transport | None = None
        self.client: _Client | None = None
        self.idle_since = 0.0
        self.reused = False
        self.paused = False  # reading paused while the client is slow to read the answer
        self.full = False  # writing paused: the backend is slow to read the request body

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        try:
            client.response_data(data)
        except Exception as exc:
            client.crashed(exc)

    def eof_received(self) -> bool:
        return False  # close: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.t = None
        self.pool.forget(self)
        client = self.client
        if client is not None:
            self.client = None
            try:
                client.upstream_lost(self)
            except Exception as error:
                client.crashed(error)

    def pause_writing(self) -> None:  # the backend is slow to read a request body
        self.full = True
        client = self.client
        if client is not None and client.t is not None:
            try:
                client.t.pause_reading()
            except Exception as exc:
                client.crashed(exc)

    def resume_writing(self) -> None:
        self.full = False
        client = self.client
        if client is not None and client.t is not None and client.body_left:
            try:
                client.last_rx = _mono()  # the client's silence counts from when it may send again
                client.t.resume_reading()
            except Exception as exc:
                client.crashed(exc)

    def close(self) -> None:
        self.client = None
        if self.t is not None:
            self.t.close()


class _Pool:
    """LIFO idle backend connections per address, dropped after `ttl` seconds unused."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ttl: float, max_idle: int = 256) -> None:
        self.loop = loop
        self.ttl = ttl
        self.max_idle = max_idle
        self.idle: dict[tuple[str, int], deque[_Upstream]] = {}

    def take(self, addr: tuple[str, int]) -> _Upstream | None:
        idle = self.idle.get(addr)
        if not idle:
            return None
        now = _mono()
        while idle:
            up = idle.pop()
            if now - up.idle_since < self.ttl:
                up.reused = True
                return up
            up.close()
        return None

    def put_back(self, up: _Upstream, now: float) -> None:
        """`now`: the caller's monotonic clock reading (one read per request)."""
        idle = self.idle.get(up.addr)
        if idle is None:
            idle = self.idle[up.addr] = deque()
        if len(idle) >= self.max_idle:
            up.close()
            return
        up.idle_since = now
        idle.append(up)

    def forget(self, up: _Upstream) -> None:
        idle = self.idle.get(up.addr)
        if idle is not None and up in idle:
            idle.remove(up)

    def close(self) -> None:
        for idle in self.idle.values():
            while idle:
                idle.pop().close()


class _Client(UvConnection):
    """One client connection: requests in, each relayed over a pooled backend connection."""

    __slots__ = ("relay", "req", "token", "t0", "up", "head", "body_left", "resp", "rbuf", "remaining", "parser",
                 "chunk_out", "keep", "status", "close_after", "retried", "checked_headers")

    def __init__(self, relay: UvRelay, kind: str) -> None:
        super().__init__(relay.host, kind)
        self.relay = relay
        self.req: Request | None = None  # the request being relayed
        self.token: Any = None
        self.t0 = 0.0
        self.up: _Upstream | None = None
        self.head = b""
        self.body_left = False  # request body bytes still to come from the client
        self.resp = _HEAD
        self.rbuf = b""
        self.remaining = 0
        self.parser: ClientConnection | None = None
        self.chunk_out = False
        self.keep = False
        self.status = 0
        self.close_after = False
        self.retried = False
        # The headers of the last request whose head went to the backend as received, alone in
        # its read: a head the reader repeated with them (same header lines) goes as received too.
        self.checked_headers: tuple[tuple[bytes, bytes], ...] | None = None

    # -- the client's side ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last_rx = _mono()
        if self.lingering:
            return
        try:
            self.conn.receive_data(data)
            if self.req is None:  # `next_request`, one call less
                req = self.take_request()
                if req is not None:
                    self.start(req)
            elif self.body_left:
                if self.up is not None:
                    self.pump_body()
                elif self.t is not None:  # no backend connection yet: the rest waits in the kernel
                    self.t.pause_reading()
            elif self.t is not None:  # the next request while this one's answer is pending: read it after
                self.t.pause_reading()
        except Exception as exc:
            self.crashed(exc)

    def eof_received(self) -> bool:
        if self.lingering:
            self.shut()
            return False
        try:
            self.conn.receive_data(b"")
            if self.req is None:
                self.next_request()
            elif self.body_left and self.up is not None:
                self.pump_body()
        except Exception as exc:
            self.crashed(exc)
        return True  # keep writing: the answer still goes out

    def ended(self) -> None:
        if self.req is not None:  # the client went away mid-request: the backend's side is unusable
            try:
                self.finish_request()
            except Exception as error:
                self.crashed(error)
        if self.up is not None:
            self.up.close()
            self.up = None

    def pause_writing(self) -> None:  # the client is slow to read an answer
        self.wpaused = True
        up = self.up
        if up is not None and up.t is not None:
            up.paused = True
            try:
                up.t.pause_reading()
            except Exception as exc:
                self.crashed(exc)

    def resume_writing(self) -> None:
        self.wpaused = False
        try:
            up = self.up
            if up is not None and up.t is not None and up.paused:
                up.paused = False
                up.t.resume_reading()
            t = self.t
            if self.req is None and not self.gone and not self.lingering and t is not None and not t.is_closing():
                self.next_request()
        except Exception as exc:
            self.crashed(exc)

    def next_request(self) -> None:
        """At a request boundary: start the next request once it is here (`take_request`)."""
        req = self.take_request()
        if req is not None:
            self.start(req)

    def start(self, req: Request) -> None:
        relay = self.relay
        if (req.chunked or req.expect_continue or (req.target[:_API_LEN] == _API_PREFIX and self.kind == "admin")):
            self.hand_over(req)
            return
        routed = relay.host.route(self.kind, req, self.client_host)
        if routed is None:
            self.hand_over(req)
            return
        addr, self.token = routed
        self.t0 = _perf()
        self.req = req
        wire = req.wire
        if wire is not None and req.headers is self.checked_headers:
            self.head = wire
        else:
            head = canonical_head(req)
            if head is None:
                head = backend_request_head(req)
            elif head is wire and req.headers:  # (no headers: the one empty tuple every such request has)
                self.checked_headers = req.headers
            self.head = head
        self.body_left = True  # until the parser's end of the message is taken (at once without a body)
        self.resp = _HEAD
        self.rbuf = b""
        self.status = 0
        self.started = self.close_after = self.retried = False
        up = relay.pool.take(addr)
        if up is None:
            self.connect(addr)
        else:
            self.attach(up)

    def connect(self, addr: tuple[str, int]) -> None:
        task = self.relay.loop.create_task(self.relay.open_upstream(addr))
        task.add_done_callback(self.connected)

    def connected(self, task: asyncio.Task[Any]) -> None:
        up: _Upstream | None = None
        try:
            if task.cancelled() or task.exception() is not None:
                if not self.gone and self.req is not None:
                    req, self.req = self.req, None  # nothing sent: trio's path answers (its 503)
                    self.hand_over(req)
                return
            up = task.result()[1]
            if self.gone or self.req is None:
                up.close()
                return
            self.attach(up)
        except Exception as exc:
            if up is not None and up is not self.up:  # not adopted: nobody else would close it
                up.close()
            self.crashed(exc)

    def attach(self, up: _Upstream) -> None:
        """Send the request over `up`: the head and the body that has arrived, in one write; then
        read the rest of the body (reading waits while there is no backend connection to take it)."""
        self.up = up
        up.client = self
        assert up.t is not None
        pieces = [self.head]
        if self.body_left and not self.take_body(pieces):
            return
        up.t.write(b"".join(pieces) if len(pieces) > 1 else pieces[0])
        t = self.t
        if self.body_left and not up.full and t is not None:  # a full write paused reading: it stays so
            self.last_rx = _mono()  # the client's silence counts from when it may send again
            t.resume_reading()

    def pump_body(self) -> None:
        pieces: list[bytes] = []
        if self.take_body(pieces) and pieces and self.up is not None and self.up.t is not None:
            self.up.t.write(b"".join(pieces) if len(pieces) > 1 else pieces[0])

    def take_body(self, pieces: list[bytes]) -> bool:
        """Append the body bytes the parser has; False when the body broke (the request is over)."""
        conn = self.conn
        try:
            while True:
                ev = conn.next_event()
                if ev is NEED_DATA:
                    return True
                if type(ev) is Data:
                    pieces.append(ev.data)
                elif type(ev) is EndOfMessage:
                    self.body_left = False
                    return True
                else:
                    raise ProtocolError("unexpected event in request body")
        except ProtocolError as exc:
            self.fail(exc, upstream=False)
            return False

    # -- the backend's side --------------------------------------------------------------------
    def response_data(self, data: bytes) -> None:
        t = self.t
        if t is None:
            return
        if self.resp == _BODY:
            remaining = self.remaining
            if len(data) < remaining:
                self.remaining = remaining - len(data)
                t.write(data)
                return
            t.write(data[:remaining] if len(data) > remaining else data)
            self.response_done(len(data) == remaining)
            return
        if self.resp == _PARSED:
            self.parsed(data)
            return
        if self.rbuf:
            buf, self.rbuf = self.rbuf + data, b""
        else:
            buf = data
        end = buf.find(b"\r\n\r\n") + 4
        if end < 4:
            if len(buf) > 65536:
                self.resp = _PARSED
                self.parsed(buf)
            else:
                self.rbuf = buf
            return
        quick = quick_head(buf, end)
        if quick is None:
            self.resp = _PARSED
            self.parsed(buf)
            return
        status, length = quick
        req = self.req
        assert req is not None
        self.started = True
        self.status = status
        if not req.keep_alive or req.http_version != b"1.1" or status >= 400:
            self.framed(t, req, buf, end, status, length)
            return
        if req.method == b"HEAD" or status in (204, 304):
            length = 0
        # Go's head goes on as it is: the answer is `buf` up to its body's end, in one write
        total = end + length
        have = len(buf)
        if have >= total:
            t.write(buf if have == total else buf[:total])
            self.response_done(have == total)
            return
        t.write(buf)
        self.remaining = total - have
        self.resp = _BODY

    def framed(self, t: asyncio.Transport, req: Request, buf: bytes, end: int, status: int, length: int) -> None:
        """A `quick_head` answer whose head changes on its way (`frame_quick_head`: the client
        closes, or speaks HTTP/1.0) or whose error body may name the backend (`unalias`)."""
        if not req.keep_alive:
            self.close_after = True
        head, length = frame_quick_head(req, buf[:end], status, length, not req.keep_alive)
        rest = buf[end:]
        if len(rest) >= length:
            body = rest[:length] if len(rest) > length else rest
            if status >= 400 and self.relay.front_address is not None:
                head, body = self.unalias(head, body)
            t.write(head + body)
            self.response_done(len(rest) == length)
            return
        t.write(head + rest)
        self.remaining = length - len(rest)
        self.resp = _BODY

    def unalias(self, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        """An error body naming the backend's private address names the front instead."""
        up = self.up
        front = self.relay.front_address
        if up is None or front is None:
            return head, body
        private = b"%s:%d" % (up.addr[0].encode(), up.addr[1])
        if private not in body:
            return head, body
        body = body.replace(private, front)
        return LENGTH_HEADER.sub(b"\\g<1>%d\r\n" % len(body), head, count=1), body

    def parsed(self, data: bytes) -> None:
        """The general response path: 1xx, chunked, Connection headers, bodies until close."""
        req = self.req
        assert req is not None
        parser = self.parser
        if parser is None:
            parser = self.parser = ClientConnection(head_only=req.method == b"HEAD")
            self.keep = True
        parser.receive_data(data)
        out: list[bytes] = []
        try:
            while True:
                ev = parser.next_event()
                if ev is NEED_DATA:
                    break
                kind = type(ev)
                if kind is Data:
                    out.append(chunk(ev.data) if self.chunk_out else ev.data)
                elif kind is Response:
                    close = not req.keep_alive or not ev.keep_alive or self.close_after
                    if close:
                        self.close_after = True
                    http10 = req.http_version == b"1.0" and req.keep_alive and not close
                    head, self.chunk_out = client_response_head(ev, close, http10)
                    out.append(head)
                    self.started = True
                    self.status = ev.status
                    self.keep = ev.keep_alive
                elif kind is InformationalResponse:
                    if ev.status != 100:  # a 100 answers an Expect, which this path never relays
                        out.append(response_head(ev.status, ev.reason, ev.headers))
                elif kind is EndOfMessage:
                    if self.chunk_out:
                        out.append(LAST_CHUNK)
                    if out and self.t is not None:
                        self.t.write(b"".join(out))
                    self.response_done(self.keep)
                    return
                else:
                    raise ProtocolError("backend closed the connection before the response ended", 502)
        except ProtocolError as exc:
            if out and self.t is not None:
                self.t.write(b"".join(out))
            self.fail(exc, upstream=True)
            return
        if out and self.t is not None:
            self.t.write(b"".join(out))

    def upstream_lost(self, up: _Upstream) -> None:
        """The backend closed `up` while this request was on it."""
        self.up = None
        if self.resp == _PARSED:
            self.parsed(b"")
            return
        if self.resp == _HEAD and not self.rbuf and up.reused and not self.retried and not (self.req and self.req.has_body):
            self.retried = True  # a kept-alive connection Go had closed: once more, on a fresh one
            assert self.req is not None
            up2 = self.relay.pool.take(up.addr)
            if up2 is None:
                self.connect(up.addr)
            else:
                self.attach(up2)
            return
        if self.resp == _HEAD:
            self.fail(ProtocolError("backend closed the connection before the response head ended", 502), upstream=True)
        else:
            self.fail(ProtocolError("backend closed the connection in the middle of a response", 502), upstream=True)

    # -- ends ------------------------------------------------------------------------------
    def response_done(self, reusable: bool) -> None:
        now = _mono()
        up = self.up
        self.up = None
        self.parser = None
        self.chunk_out = False
        if self.body_left:  # Go answered before the whole body came: neither side is reusable
            reusable = False
            self.close_after = True
        if up is not None:
            up.client = None
            if reusable and up.t is not None:
                if up.paused:
                    up.paused = False
                    up.t.resume_reading()
                self.relay.pool.put_back(up, now)
            else:
                up.close()
        req = self.req
        assert req is not None
        self.req = None  # `finish_request`, one call less
        self.relay.host.done(self.token, req.method, self.status, _perf() - self.t0, self.client_host)
        self.started = False  # the next request's answer has not started (a 400 or 500 may still be written)
        self.last_rx = now  # the idle timeout counts from here
        if self.close_after or not req.keep_alive:
            if self.body_left:
                self.linger()
            else:
                self.shut()
            return
        req = self.take_request()  # `next_request`, one call less
        if req is not None:
            self.start(req)

    def finish_request(self) -> None:
        req = self.req
        if req is None:
            return
        self.req = None
        self.relay.host.done(self.token, req.method, self.status, _perf() - self.t0, self.client_host)

    def fail(self, exc: ProtocolError, upstream: bool) -> None:
        """The request cannot go on: Go's error answer if none started, then the connection closes."""
        if upstream and exc.status_hint == 502:
            self.relay.host.error("backend_closed")
        if self.up is not None:
            self.up.close()
            self.up = None
        self.finish_request()
        self.refuse(exc)

    def crashed(self, exc: Exception) -> None:
        """A callback raised (a bug of the relay's): the request ends with Go's 500 if no answer
        to it has started, else the connection just closes; the backend connection is closed
        (its state is unknown), the error counted and logged once. Other connections go on."""
        up, self.up = self.up, None
        if up is not None:
            up.client = None
            up.close()
        req, self.req = self.req, None
        self.body_left = False
        started = self.started
        self.started = True  # nothing more is written on this connection
        if req is not None:
            try:
                self.relay.host.done(self.token, req.method, self.status if started else 500, _perf() - self.t0,
                                     self.client_host)
            except Exception:
                pass  # the report below names the first error; this one would follow from it
        self.report(exc, req)
        t = self.t
        if t is None or self.gone:
            return
        try:
            if not started and not t.is_closing():
                t.write(go_bad_request(500))
            t.close()
        except Exception:
            t.abort()

    def report(self, exc: Exception, req: Request | None) -> None:
        self.relay.report(exc, self, req)

    def waiting_for_client(self) -> bool:
        """Not while reading is paused because the backend is slow to take the body, nor while the
        backend connection opens (bounded by _CONNECT_TIMEOUT), nor while an answer is awaited:
        neither Go nor trio's path counts those against the client."""
        if self.up is not None and self.up.full:
            return False
        return self.req is None or (self.up is not None and self.body_left)

    def timed_out(self) -> bytes | None:
        if self.req is None:
            return super().timed_out()
        if self.up is not None:
            self.up.close()
            self.up = None
        self.finish_request()
        return None


class UvRelay:
    """The relay of one server process: its backend pool; its host keeps the connections."""

    def __init__(self, host: RelayHost, loop: asyncio.AbstractEventLoop, *, pool_ttl: float,
                 front_address: str | None = None, buffer_size: int = 0, faults: frozenset[str] = frozenset()) -> None:
        self.host = host
        self.faults = faults  # armed test-only faults (gateway/relay_fault.py); empty but in tests
        self.loop = loop
        self.buffer_size = buffer_size  # caps the backend connections' socket buffers (0: the kernel's)
        self.pool = _Pool(loop, pool_ttl)
        # Go names itself (its private ip:port) in some error bodies; clients must see the front.
        self.front_address = front_address.encode() if front_address else None

    async def open_upstream(self, addr: tuple[str, int]) -> tuple[asyncio.BaseTransport, _Upstream]:
        """A new backend connection, its buffers capped before it connects (as trio's pool does)."""
        sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.buffer_size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer_size)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.buffer_size)
            await asyncio.wait_for(self.loop.sock_connect(sock, addr), _CONNECT_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return await self.loop.create_connection(lambda: _Upstream(self.pool, addr), sock=sock)  # type: ignore[return-value]

    def protocol(self, port_kind: str) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for one port (`admin` or `public`)."""
        if self.faults:
            return lambda: _FaultyClient(self, port_kind)
        return lambda: _Client(self, port_kind)

    def report(self, exc: Exception, client: _Client, req: Request | None = None) -> None:
        """One event and one count for what a callback raised (a bug: the relay must not raise)."""
        try:
            self.host.error("internal")
        except Exception:
            pass
        log.error("relay callback failed", error=repr(exc), port_kind=client.kind, client=client.client_host,
                  method=None if req is None else req.method.decode("latin-1"),
                  path=None if req is None else req.target.decode("latin-1"), exc_info=exc)

    def close(self) -> None:
        """Close the idle backend connections (the server stops)."""
        self.pool.close()


class _FaultyClient(_Client):
    """A client connection whose armed callbacks (gateway/relay_fault.py) raise for the requests
    that name them; the plain `_Client` serves whenever no fault is armed."""

    __slots__ = ("fault",)

    def start(self, req: Request) -> None:
        named = req.header(FAULT_HEADER)
        self.fault = named.decode("latin-1") if named is not None else None
        self.raise_at("start")
        super().start(req)

    def raise_at(self, callback: str) -> None:
        if self.fault == callback and callback in self.relay.faults:
            raise RelayTestFault(f"test-only fault in {callback}")

    def attach(self, up: _Upstream) -> None:
        if self.fault == "attach":  # as attach begins: the connection taken, nothing sent on it
            self.up = up
            up.client = self
            self.raise_at("attach")
        super().attach(up)

    def response_data(self, data: bytes) -> None:
        self.raise_at("response_data")
        super().response_data(data)

    def parsed(self, data: bytes) -> None:
        self.raise_at("parsed")
        super().parsed(data)
