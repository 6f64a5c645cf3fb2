"""A small HTTP/1.1 client on the shared UpstreamPool, for requests the volume server makes itself:
proxied reads, chunk reads of manifests, replication fan-out.

`open_request` yields a response whose body is consumed as an async iterator, so large proxied
bodies stream; a pooled keep-alive connection that turns out stale is retried once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio

from weedpy.http1 import (
    NEED_DATA,
    RECV_SIZE,
    ClientConnection,
    Data,
    EndOfMessage,
    InformationalResponse,
    ProtocolError,
    Response,
    UpstreamConn,
    UpstreamPool,
    request_head,
)

__all__ = ["UpstreamError", "UpstreamResponse", "open_request", "fetch", "split_host_port"]


class UpstreamError(Exception):
    """The request could not be made or the peer broke the exchange (Go's transport error)."""


def split_host_port(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    if not host:
        return hostport, 80
    return host.strip("[]"), int(port)


class UpstreamResponse:
    __slots__ = ("status", "headers", "_conn", "_parser", "_stream", "_done", "_pending")

    def __init__(self, resp: Response, conn: UpstreamConn, parser: ClientConnection, pending: list[bytes]) -> None:
        self.status = resp.status
        self.headers = resp.headers
        self._conn = conn
        self._parser = parser
        self._done = False
        self._pending = pending

    def header(self, lower: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == lower:
                return v
        return None

    async def body(self) -> AsyncIterator[bytes]:
        for piece in self._pending:
            yield piece
        self._pending = []
        parser = self._parser
        while not self._done:
            ev = parser.next_event()
            if ev is NEED_DATA:
                try:
                    data = await self._conn.stream.receive_some(RECV_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise UpstreamError(f"read response body: {exc}") from None
                parser.receive_data(data)
                continue
            if isinstance(ev, Data):
                yield ev.data
            elif isinstance(ev, EndOfMessage):
                self._done = True

    async def read_all(self, limit: int | None = None) -> bytes:
        out = bytearray()
        async for piece in self.body():
            out += piece
            if limit is not None and len(out) > limit:
                raise UpstreamError("response body too large")
        return bytes(out)


async def _start(pool: UpstreamPool, addr: tuple[str, int], head: bytes, body: bytes, head_only: bool,
                 ) -> tuple[UpstreamConn, UpstreamResponse]:
    for attempt in (0, 1):
        try:
            conn = await pool.acquire(addr)
        except (OSError, trio.TooSlowError) as exc:
            raise UpstreamError(f"dial tcp {addr[0]}:{addr[1]}: {exc}") from None
        parser = ClientConnection(head_only=head_only)
        try:
            await conn.stream.send_all(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                await conn.stream.send_all(body)
            pending: list[bytes] = []
            while True:
                ev = parser.next_event()
                if ev is NEED_DATA:
                    data = await conn.stream.receive_some(RECV_SIZE)
                    if not data and conn.reused and attempt == 0:
                        raise _Stale
                    parser.receive_data(data)
                    continue
                if isinstance(ev, InformationalResponse):
                    continue
                if isinstance(ev, Response):
                    return conn, UpstreamResponse(ev, conn, parser, pending)
                raise UpstreamError("unexpected response event")
        except _Stale:
            await pool.release(conn, False)
            continue
        except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError) as exc:
            await pool.release(conn, False)
            if conn.reused and attempt == 0:
                continue
            raise UpstreamError(f"{exc}") from None
        except BaseException:
            await pool.release(conn, False)
            raise
    raise UpstreamError("connection reset")


class _Stale(Exception):
    pass


@contextlib.asynccontextmanager
async def open_request(
    pool: UpstreamPool, hostport: str, method: str, target: str,
    headers: list[tuple[str, str]], body: bytes = b"",
) -> AsyncIterator[UpstreamResponse]:
    """Send a request and yield the response (body not yet read); the connection is pooled again
    only if the body was read to the end."""
    addr = split_host_port(hostport)
    hs = [(b"Host", hostport.encode())]
    for k, v in headers:
        hs.append((k.encode("latin-1"), v.encode("latin-1")))
    if body or method in ("POST", "PUT"):
        hs.append((b"Content-Length", b"%d" % len(body)))
    head = request_head(method.encode(), target.encode("latin-1"), hs)
    conn, resp = await _start(pool, addr, head, body, method == "HEAD")
    try:
        yield resp
    finally:
        reusable = resp._done and resp._parser.done is not False
        await pool.release(conn, reusable and resp._done)


async def fetch(
    pool: UpstreamPool, hostport: str, method: str, target: str,
    headers: list[tuple[str, str]], body: bytes = b"", limit: int | None = None,
) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
    """One whole request/response: (status, headers, body)."""
    async with open_request(pool, hostport, method, target, headers, body) as resp:
        data = await resp.read_all(limit)
        return resp.status, resp.headers, data
