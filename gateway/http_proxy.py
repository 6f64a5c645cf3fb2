"""The `go` HTTP target: relay one exchange to the Go backend over a pooled keep-alive connection.

Bodies stream both ways in pieces of at most one socket read (a 1 GiB upload or download never
sits in memory); status, reason and headers pass unchanged except hop-by-hop ones. The request
body is sent by a second task while the response is read, so `Expect: 100-continue` and early
answers (401, 429, ...) work as they do against Go directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import trio

from gateway.backend import BackendView
from weedpy.serve.replies import json_error
from weedpy.http1 import (
    CONTINUE_100,
    LAST_CHUNK,
    NEED_DATA,
    RECV_SIZE,
    ClientConnection,
    Data,
    EndOfMessage,
    Exchange,
    InformationalResponse,
    ProtocolError,
    Request,
    Response,
    UpstreamConn,
    UpstreamPool,
    canonical_head,
    chunk,
    end_to_end_headers,
    request_head,
    response_head,
    settle_body,
)

__all__ = ["GoHttpTarget", "BackendUnavailable", "LENGTH_HEADER", "backend_request_head", "client_response_head",
           "quick_head"]

_BODY_TASK_GRACE = 5.0  # a bound only: the body task has at most its end-of-body to take


class BackendUnavailable(Exception):
    """The Go backend is down or refused the connection before anything was sent."""


class _StaleConnection(Exception):
    """A reused keep-alive connection closed before answering; safe to retry once."""


def backend_request_head(req: Request, tag: tuple[bytes, bytes] | None = None) -> bytes:
    """The head Go gets: the client's end-to-end headers, then the body framing we parsed, written
    by us. The framing never comes from the client's own headers: a client that names
    Content-Length in Connection would otherwise have it dropped as hop-by-hop while its body
    still went through, and Go would read that body as the next request. `tag`: one header of
    ours (lower-case name) added last, any of the client's by that name dropped. A head that
    already has this form and takes no tag (`canonical_head`: HTTP/1.1, nothing hop-by-hop, plain
    CRLF lines) goes as received instead."""
    drop = (b"content-length", tag[0]) if tag is not None else (b"content-length",)
    headers = [(n, v) for n, v in end_to_end_headers(req.headers) if n.lower() not in drop]
    if req.http_version != b"1.1" and not any(n.lower() == b"host" for n, _ in headers):
        # an HTTP/1.0 request may have none; the relay speaks 1.1, where Go refuses a request
        # without one, and an empty Host is what Go makes of its absence (r.Host == "")
        headers.insert(0, (b"Host", b""))
    if req.chunked:
        headers.append((b"Transfer-Encoding", b"chunked"))
    elif req.content_length is not None:
        headers.append((b"Content-Length", b"%d" % req.content_length))
    if tag is not None:
        headers.append(tag)
    return request_head(req.method, req.target, headers)


def client_response_head(resp: Response, close: bool, http10_keep_alive: bool) -> tuple[bytes, bool]:
    """The head for the client and whether its body must be chunked by us."""
    chunk_out = resp.chunked or resp.until_close
    out: list[tuple[bytes, bytes]] = []
    named: set[bytes] = set()
    for name, value in resp.headers:
        if name.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    for name, value in resp.headers:
        lname = name.lower()
        if lname == b"transfer-encoding":
            if resp.chunked:
                out.append((name, b"chunked"))
            continue
        if lname in (b"connection", b"keep-alive", b"proxy-connection", b"upgrade", b"trailer", b"te") or lname in named:
            continue
        out.append((name, value))
    if resp.until_close:
        out.append((b"Transfer-Encoding", b"chunked"))
    if close:
        out.append((b"Connection", b"close"))
    elif http10_keep_alive:
        out.append((b"Connection", b"keep-alive"))
    return response_head(resp.status, resp.reason, out), chunk_out


# the status lines a plain final answer may begin with, by their bytes: a slice and a dict lookup
# cost a fraction of a regex match
_STATUS_LINES = {b"HTTP/1.1 %d " % status: status for status in range(200, 600)}
# One scan for what decides: every framing header at a line's start, as the length a plain
# Content-Length gives (its group), or b"" for one the shortcut leaves to the parser (hop-by-hop,
# or a Content-Length it cannot read). It scans a lower-cased copy of the head: re.IGNORECASE
# costs the scan twice the instructions per byte, far more than `bytes.lower()` (ASCII only, as
# IGNORECASE is on bytes). The engine tries the pattern at every line, so the alternatives begin
# with their first letters and the group is entered only in a Content-Length line: a fifth
# fewer instructions than one group per alternative.
_FRAMING = re.compile(rb"\r\n(?:c(?:ontent-length:(?: *([0-9]{1,18}) *(?=\r\n))?|onnection:)|"
                      rb"transfer-encoding:|keep-alive:)")
LENGTH_HEADER = re.compile(rb"(\r\n[Cc]ontent-[Ll]ength: *)[0-9]+ *\r\n")


def quick_head(head: bytes, end: int | None = None) -> tuple[int, int] | None:
    """(status, Content-Length) for a plain final response from Go, else None (use the parser).
    `end`: where the head ends in `head` (its blank line included), when more follows it.

    Anything unusual (1xx, chunked, a Connection or Transfer-Encoding header, no length) goes to
    the full parser; the backend is our own Go process, but nothing is assumed beyond this.
    """
    status = _STATUS_LINES.get(head[:13])
    if status is None:
        return None
    found = _FRAMING.findall((head[13:end] if end is not None else head[13:]).lower())
    if not found:
        return (status, 0) if status in (204, 304) else None
    if len(found) != 1 or not found[0]:
        return None
    return status, int(found[0])



def frame_quick_head(req: Request, head: bytes, status: int, length: int, close: bool) -> tuple[bytes, int]:
    """A `quick_head` answer as the client gets it, and the body length to relay: none for HEAD,
    204 and 304; `Connection: close` when the connection ends after it, `Connection: keep-alive`
    for an HTTP/1.0 client that keeps it (what Go's head, with no Connection header, leaves out).
    Both relays (trio's `GoHttpTarget`, the uvloop worker relay) frame with this."""
    if req.method == b"HEAD" or status in (204, 304):
        length = 0
    if close:
        head = head[:-2] + b"Connection: close\r\n\r\n"
    elif req.http_version == b"1.0":
        head = head[:-2] + b"Connection: keep-alive\r\n\r\n"
    return head, length

class GoHttpTarget:
    """Relays exchanges to the backend's admin or public listener.

    `tag(exch)`: a header added to each relayed request (mixed mode's workers name the request's
    route to their leader this way, weedpy/serve/hop.py); computed before the first await."""

    def __init__(self, backend: BackendView, pool: UpstreamPool, front_address: str | None = None,
                 on_error: Callable[[str], None] = lambda _reason: None,
                 tag: Callable[[Exchange], tuple[bytes, bytes]] | None = None) -> None:
        self._backend = backend
        self._pool = pool
        self._tag = tag
        self._on_error = on_error  # a request that could not be relayed, by reason (weedpy_relay_errors_total)
        # Go names itself (its private ip:port) in some error bodies; clients must see the front.
        self._front_address = front_address.encode() if front_address else None

    def _address(self, port_kind: str) -> tuple[str, int]:
        ep = self._backend.current()
        if ep is None:
            raise BackendUnavailable("volume server backend is not running")
        if port_kind == "public" and ep.public is not None:
            return ep.public
        return ep.http

    async def handle(self, exch: Exchange) -> None:
        try:
            addr = self._address(exch.port_kind)
        except BackendUnavailable as exc:
            self._on_error("backend_unavailable")
            await self._refuse(exch, str(exc))
            return
        req = exch.request
        head = (canonical_head(req) if self._tag is None else None) or backend_request_head(
            req, None if self._tag is None else self._tag(exch))
        pool = self._pool
        for attempt in (0, 1):
            conn = pool.take_idle(addr)
            if conn is None:
                try:
                    conn = await pool.acquire(addr)
                except (OSError, trio.TooSlowError):
                    self._on_error("connect_failed")
                    await self._refuse(exch, "volume server backend is not reachable")
                    return
            reusable = False
            try:
                reusable = await self._relay(exch, conn, head)
                return
            except _StaleConnection:
                if attempt == 1 or not conn.reused:
                    self._on_error("backend_closed")
                    raise ProtocolError("backend closed the connection", 502) from None
            except ProtocolError as exc:
                if exc.status_hint == 502:  # the backend's side broke (a client's error is its own)
                    self._on_error("backend_closed")
                raise
            finally:
                if not (reusable and pool.put_back(conn)):
                    await pool.release(conn, False)

    @staticmethod
    async def _refuse(exch: Exchange, message: str) -> None:
        """A 503 of the gateway's own, after the unread body is settled as Go would."""
        await settle_body(exch)
        await exch.send(json_error(503, message, close=exch.close_after))
        exch.started = True
        exch.status = 503

    async def _relay(self, exch: Exchange, conn: UpstreamConn, head: bytes) -> bool:
        """Run one request/response over `conn`; True if the connection can be reused."""
        req = exch.request
        if not req.has_body:
            try:
                await conn.stream.send_all(head)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _StaleConnection from None
            return await self._read_response(exch, conn, retryable=True)
        body = None if req.chunked or req.expect_continue else exch.buffered_body()
        if body is not None:
            # The whole body is here (a small upload): head and body in one send, and no
            # second task; sending it first changes nothing a server could see.
            try:
                await conn.stream.send_all(head + body)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                body = None  # as when the body task finds the backend gone: the reader decides
            reusable = await self._read_response(exch, conn, retryable=False)
            if body is None:
                exch.close_after = True
                return False
            return reusable
        upload_done = trio.Event()
        body_error: list[ProtocolError] = []
        reusable = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_body, exch, conn, head, upload_done, body_error, nursery.cancel_scope)
            reusable = await self._read_response(exch, conn, retryable=False)
            if not upload_done.is_set() and reusable and not exch.close_after:
                # Go keeps a connection open only once it has read the whole body (it reads up to
                # 256 KiB of one its handler left before answering), so the body task has sent
                # it all and is about to finish: wait for it rather than close under the client.
                with trio.move_on_after(_BODY_TASK_GRACE):
                    await upload_done.wait()
            if not upload_done.is_set():
                # The backend answered without reading the whole body: neither side is reusable;
                # the client's connection closes after a linger (weedpy.http1.serve_connection).
                nursery.cancel_scope.cancel()
                exch.close_after = True
                return False
        if body_error:
            # The client's body does not frame (a bad chunk): the backend holds a partial request,
            # so its connection goes, and the client gets Go's 400 unless a response has started.
            exch.close_after = True
            raise body_error[0]
        return reusable

    async def _send_body(
        self, exch: Exchange, conn: UpstreamConn, head: bytes, done: trio.Event, errors: list[ProtocolError],
        scope: trio.CancelScope,
    ) -> None:
        chunked = exch.request.chunked
        stream = conn.stream
        try:
            await stream.send_all(head)
            while True:
                data = await exch.receive_body()
                if not data:
                    break
                await stream.send_all(chunk(data) if chunked else data)
            if chunked:
                await stream.send_all(LAST_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The backend stopped reading (it may have answered already); the reader decides.
            return
        except ProtocolError as exc:
            # Raised here it would reach the connection as an exception group and the client would
            # get no answer at all; the relay re-raises it once the response reader is stopped.
            errors.append(exc)
            scope.cancel()
            return
        done.set()

    async def _read_response(self, exch: Exchange, conn: UpstreamConn, retryable: bool) -> bool:
        """Relay the response; the common Content-Length case skips per-header parsing."""
        req = exch.request
        stream = conn.stream
        buf = b""
        first = True
        while True:
            try:
                if first:  # Go cannot have answered in the instant since the request went out
                    first = False
                    data = await stream.receive_after_wait(RECV_SIZE)
                    exch.yielded = True
                else:
                    data = await stream.receive_some(RECV_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                if not buf and retryable:
                    raise _StaleConnection
                raise ProtocolError("backend closed the connection before the response head ended", 502)
            buf += data
            end = buf.find(b"\r\n\r\n")
            if end >= 0 or len(buf) > 65536:
                break
        quick = quick_head(buf[: end + 4]) if end >= 0 else None
        if quick is None:
            return await self._read_response_parsed(exch, conn, buf)
        status, length = quick
        close = not req.keep_alive or exch.close_after
        if close:
            exch.close_after = True
        head, length = frame_quick_head(req, buf[: end + 4], status, length, close)
        rest = buf[end + 4:]
        exch.started = True
        exch.status = status
        if len(rest) >= length:
            body = rest[:length]
            if status >= 400 and self._front_address is not None:
                head, body = self._unalias(conn, head, body)
            await exch.send(head + body)
            return len(rest) == length
        await exch.send(head + rest)
        remaining = length - len(rest)
        while remaining > 0:
            try:
                data = await stream.receive_some(min(RECV_SIZE, remaining))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                raise ProtocolError("backend closed the connection in the middle of a response", 502)
            remaining -= len(data)
            await exch.send(data)
        return True

    def _unalias(self, conn: UpstreamConn, head: bytes, body: bytes) -> tuple[bytes, bytes]:
        """An error body naming the backend's private address names the front instead."""
        private = b"%s:%d" % (conn.addr[0].encode(), conn.addr[1])
        if private not in body or self._front_address is None:
            return head, body
        body = body.replace(private, self._front_address)
        head = LENGTH_HEADER.sub(b"\\g<1>%d\r\n" % len(body), head, count=1)
        return head, body

    async def _read_response_parsed(self, exch: Exchange, conn: UpstreamConn, initial: bytes) -> bool:
        """The general path: 1xx, chunked, Connection headers, bodies until close."""
        req = exch.request
        parser = ClientConnection(head_only=req.method == b"HEAD")
        parser.receive_data(initial)
        out: list[bytes] = []
        chunk_out = False
        keep = True
        stream = conn.stream
        while True:
            ev = parser.next_event()
            if ev is NEED_DATA:
                if out:
                    await exch.send(b"".join(out))
                    out.clear()
                try:
                    data = await stream.receive_some(RECV_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                parser.receive_data(data)
                continue
            if isinstance(ev, Data):
                out.append(chunk(ev.data) if chunk_out else ev.data)
            elif isinstance(ev, Response):
                close = not req.keep_alive or not ev.keep_alive or exch.close_after
                if close:
                    exch.close_after = True
                http10 = req.http_version == b"1.0" and req.keep_alive and not close
                head, chunk_out = client_response_head(ev, close, http10)
                out.append(head)
                exch.started = True
                exch.status = ev.status
                keep = ev.keep_alive
            elif isinstance(ev, InformationalResponse):
                if ev.status == 100:
                    if req.expect_continue:
                        out.append(CONTINUE_100)
                else:
                    out.append(response_head(ev.status, ev.reason, ev.headers))
            elif isinstance(ev, EndOfMessage):
                if chunk_out:
                    out.append(LAST_CHUNK)
                if out:
                    await exch.send(b"".join(out))
                return keep
