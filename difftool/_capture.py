"""Capture clients: send a recorded request to one server and record its answer as bytes.

Thin trio shells over the project's sans-IO cores: HTTP through `UpstreamPool` connections and
the `ClientConnection` reader (status, reason, header list and de-chunked body exactly as sent);
gRPC through a `ConnectionPool` stream (response headers, each message, trailers, trailers-only
or not, RST_STREAM code). Used by `weedpy diff run`, fixture replay, and the gateway's dual-run
targets (whose in-process sides are reached through in-memory connections).
"""

from __future__ import annotations

import time

import trio

from difftool._records import GrpcRequest, GrpcResponse, HttpRequest, HttpResponse, Outcome
from weedpy.grpc import (
    ConnectionPool,
    DataReceived,
    GrpcError,
    InputEnded,
    MessageReader,
    ResponseStarted,
    StreamReset,
    TrailersReceived,
    encode_message,
)
from weedpy.grpc import ProtocolError as GrpcProtocolError
from weedpy.http1 import (
    LAST_CHUNK,
    NEED_DATA,
    RECV_SIZE,
    ClientConnection,
    Data,
    EndOfMessage,
    ProtocolError,
    Response,
    UpstreamPool,
    chunk,
    read_whole_response,
    request_head,
)

__all__ = ["CAPTURE_LIMIT", "http_request_bytes", "capture_http", "grpc_request_headers", "capture_grpc",
           "read_http_response"]

CAPTURE_LIMIT = 8 << 20  # bytes of a body (or of all gRPC messages) kept per response


def http_request_bytes(req: HttpRequest) -> bytes:
    """The request on the wire: its own headers, its framing (chunked or Content-Length) kept."""
    chunked = any(k.lower() == b"transfer-encoding" and b"chunked" in v.lower() for k, v in req.headers)
    headers = [(k, v) for k, v in req.headers if k.lower() not in (b"content-length", b"transfer-encoding")]
    had_length = any(k.lower() == b"content-length" for k, _ in req.headers)
    if chunked:
        headers.append((b"Transfer-Encoding", b"chunked"))
        return request_head(req.method, req.target, headers) + (chunk(req.body) if req.body else b"") + LAST_CHUNK
    if req.body or had_length:
        headers.append((b"Content-Length", b"%d" % len(req.body)))
    return request_head(req.method, req.target, headers) + req.body


def read_http_response(raw: bytes, head_only: bool, limit: int = CAPTURE_LIMIT) -> HttpResponse | None:
    """Parse a whole captured response (e.g. the bytes a served client got); None if incomplete."""
    whole = read_whole_response(raw, head_only)
    if whole is None:
        return None
    head, body = whole
    truncated = len(body) > limit
    return HttpResponse(head.status, head.reason, head.headers, body[:limit], truncated)


async def capture_http(
    pool: UpstreamPool, addr: tuple[str, int], req: HttpRequest, *, timeout: float = 30.0,
    limit: int = CAPTURE_LIMIT, own_addrs: tuple[bytes, ...] = (), version: str = "",
) -> Outcome:
    t0 = time.perf_counter()
    try:
        with trio.fail_after(timeout):
            resp = await _http_once(pool, addr, req, limit)
    except trio.TooSlowError:
        return Outcome(None, f"no complete response in {timeout:g}s", (time.perf_counter() - t0) * 1000, own_addrs, version)
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}", (time.perf_counter() - t0) * 1000, own_addrs, version)
    return Outcome(resp, "", (time.perf_counter() - t0) * 1000, own_addrs, version)


async def _http_once(pool: UpstreamPool, addr: tuple[str, int], req: HttpRequest, limit: int) -> HttpResponse:
    wire = http_request_bytes(req)
    for attempt in (0, 1):
        conn = await pool.acquire(addr)
        reusable = False
        try:
            try:
                await conn.stream.send_all(wire)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                if attempt == 0 and conn.reused:
                    continue
                raise
            parser = ClientConnection(head_only=req.method == b"HEAD")
            head: Response | None = None
            body = bytearray()
            truncated = False
            while True:
                ev = parser.next_event()
                if ev is NEED_DATA:
                    try:
                        data = await conn.stream.receive_some(RECV_SIZE)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        data = b""
                    if not data and head is None and not body and attempt == 0 and conn.reused:
                        break  # a stale keep-alive connection: retry once on a new one
                    parser.receive_data(data)
                    continue
                if isinstance(ev, Response):
                    head = ev
                elif isinstance(ev, Data):
                    room = limit - len(body)
                    if len(ev.data) > room:
                        truncated = True
                    body += ev.data[:max(room, 0)]
                elif isinstance(ev, EndOfMessage):
                    assert head is not None
                    reusable = head.keep_alive
                    return HttpResponse(head.status, head.reason, head.headers, bytes(body), truncated)
            continue
        finally:
            await pool.release(conn, reusable)
    raise ProtocolError("server closed the connection before answering", 502)


def grpc_request_headers(req: GrpcRequest, authority: bytes) -> list[tuple[bytes, bytes]]:
    """Pseudo-headers for `authority`, then the recorded request headers (content-type, te, metadata)."""
    out = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", req.method.encode("ascii")), (b":authority", authority)]
    names = {k for k, _ in req.metadata}
    if b"content-type" not in names:
        out.append((b"content-type", b"application/grpc"))
    if b"te" not in names:
        out.append((b"te", b"trailers"))
    out += [(k, v) for k, v in req.metadata if not k.startswith(b":")]
    return out


async def capture_grpc(
    pool: ConnectionPool, req: GrpcRequest, *, timeout: float = 30.0, limit: int = CAPTURE_LIMIT,
    own_addrs: tuple[bytes, ...] = (), version: str = "",
) -> Outcome:
    t0 = time.perf_counter()
    try:
        with trio.fail_after(timeout):
            resp = await _grpc_once(pool, req, limit)
    except trio.TooSlowError:
        return Outcome(None, f"no complete response in {timeout:g}s", (time.perf_counter() - t0) * 1000, own_addrs, version)
    except GrpcError as exc:  # the connection failed: no response at all
        return Outcome(None, f"transport: {exc}", (time.perf_counter() - t0) * 1000, own_addrs, version)
    return Outcome(resp, "", (time.perf_counter() - t0) * 1000, own_addrs, version)


async def _grpc_once(pool: ConnectionPool, req: GrpcRequest, limit: int) -> GrpcResponse:
    handle = await pool.open_stream(grpc_request_headers(req, pool.authority), end_stream=not req.messages)
    headers: tuple[tuple[bytes, bytes], ...] = ()
    messages: list[bytes] = []
    kept = 0
    truncated = False
    reader = MessageReader(None)

    async def send_all() -> None:
        try:
            for i, m in enumerate(req.messages):
                await handle.send_data(encode_message(m), end_stream=i == len(req.messages) - 1)
        except GrpcError:
            pass  # the server ended the call early; its answer says how

    lost: GrpcError | None = None  # raised out of the nursery, not wrapped in an exception group
    try:
        async with trio.open_nursery() as nursery:
            if req.messages:
                nursery.start_soon(send_all)
            while True:
                try:
                    ev = await handle.receive()
                except GrpcError as exc:
                    lost = exc
                    nursery.cancel_scope.cancel()
                    break
                if isinstance(ev, ResponseStarted):
                    if ev.end_stream:
                        nursery.cancel_scope.cancel()
                        return GrpcResponse(ev.headers, (), ev.headers, True)
                    headers = ev.headers
                elif isinstance(ev, DataReceived):
                    reader.feed(ev.data, ev.flow_len)
                    try:
                        while (m := reader.next_message()) is not None:
                            if kept + len(m) > limit:
                                truncated = True
                            else:
                                messages.append(m)
                                kept += len(m)
                    except GrpcProtocolError:
                        truncated = True
                    handle.acknowledge(reader.releasable())
                elif isinstance(ev, TrailersReceived):
                    nursery.cancel_scope.cancel()
                    return GrpcResponse(headers, tuple(messages), ev.headers, False, None, truncated)
                elif isinstance(ev, StreamReset):
                    nursery.cancel_scope.cancel()
                    return GrpcResponse(headers, tuple(messages), (), False, ev.error_code, truncated)
                elif isinstance(ev, InputEnded):
                    nursery.cancel_scope.cancel()
                    return GrpcResponse(headers, tuple(messages), (), False, None, truncated)
    finally:
        handle.release()
    if lost is not None:
        raise lost
    raise AssertionError("unreachable")  # pragma: no cover
