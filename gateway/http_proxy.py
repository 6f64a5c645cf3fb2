"""The `go` HTTP target: relay one exchange to the Go backend over a pooled keep-alive connection.

Bodies stream both ways in pieces of at most one socket read (a 1 GiB upload or download never
sits in memory); status, reason and headers pass unchanged except hop-by-hop ones. The request
body is sent by a second task while the response is read, so `Expect: 100-continue` and early
answers (401, 429, ...) work as they do against Go directly.
"""

from __future__ import annotations

import trio

from gateway.backend import BackendView
from gateway.responses import json_error
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
    chunk,
    end_to_end_headers,
    request_head,
    response_head,
)

__all__ = ["GoHttpTarget", "BackendUnavailable"]


class BackendUnavailable(Exception):
    """The Go backend is down or refused the connection before anything was sent."""


class _StaleConnection(Exception):
    """A reused keep-alive connection closed before answering; safe to retry once."""


def _backend_request_head(req: Request) -> bytes:
    headers = end_to_end_headers(req.headers)
    if req.chunked:
        headers.append((b"Transfer-Encoding", b"chunked"))
    return request_head(req.method, req.target, headers)


def _client_response_head(resp: Response, close: bool, http10_keep_alive: bool) -> tuple[bytes, bool]:
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


class GoHttpTarget:
    """Relays exchanges to the backend's admin or public listener."""

    def __init__(self, backend: BackendView, pool: UpstreamPool) -> None:
        self._backend = backend
        self._pool = pool

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
            await exch.send(json_error(503, str(exc)))
            exch.status = 503
            return
        req = exch.request
        head = _backend_request_head(req)
        for attempt in (0, 1):
            try:
                conn = await self._pool.acquire(addr)
            except (OSError, trio.TooSlowError):
                await exch.send(json_error(503, "volume server backend is not reachable"))
                exch.status = 503
                return
            reusable = False
            try:
                reusable = await self._relay(exch, conn, head)
                return
            except _StaleConnection:
                if attempt == 1 or not conn.reused:
                    raise ProtocolError("backend closed the connection", 502) from None
            finally:
                await self._pool.release(conn, reusable)

    async def _relay(self, exch: Exchange, conn: UpstreamConn, head: bytes) -> bool:
        """Run one request/response over `conn`; True if the connection can be reused."""
        req = exch.request
        if not req.has_body:
            try:
                await conn.stream.send_all(head)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _StaleConnection from None
            return await self._read_response(exch, conn, retryable=True)
        upload_done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_body, exch, conn, head, upload_done)
            reusable = await self._read_response(exch, conn, retryable=False)
            if not upload_done.is_set():
                # The backend answered without reading the whole body: neither side is reusable.
                nursery.cancel_scope.cancel()
                exch.close_after = True
                return False
        return reusable

    async def _send_body(self, exch: Exchange, conn: UpstreamConn, head: bytes, done: trio.Event) -> None:
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
        done.set()

    async def _read_response(self, exch: Exchange, conn: UpstreamConn, retryable: bool) -> bool:
        req = exch.request
        parser = ClientConnection(head_only=req.method == b"HEAD")
        out: list[bytes] = []
        chunk_out = False
        got_any = False
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
                if not data and not got_any and retryable:
                    raise _StaleConnection
                got_any = True
                parser.receive_data(data)
                continue
            if isinstance(ev, Data):
                out.append(chunk(ev.data) if chunk_out else ev.data)
            elif isinstance(ev, Response):
                close = not req.keep_alive or not ev.keep_alive or exch.close_after
                if close:
                    exch.close_after = True
                http10 = req.http_version == b"1.0" and req.keep_alive and not close
                head, chunk_out = _client_response_head(ev, close, http10)
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
