"""Client side: a pool of h2 connections to one address, `ClientCall`, and the `Channel` API.

    async with Channel("127.0.0.1", 18080) as ch:
        resp = await ch.unary_unary(path, req, RespType, timeout=5)
        async with ch.unary_stream(path, req, RespType) as responses:
            async for r in responses: ...

Streams share one connection until the peer's MAX_CONCURRENT_STREAMS is reached (then a second
connection opens); a broken or GOAWAY'd connection is dropped and the next call reconnects.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from google.protobuf.message import DecodeError, Message

from weedpy.logs import get_logger
from weedpy.tls import open_tls_stream

from ._events import DataReceived, InputEnded, ResponseStarted, StreamReset, TrailersReceived
from ._framing import DEFAULT_MAX_MESSAGE, MessageReader, encode_message
from ._metadata import Metadata, decode_metadata, encode_metadata, format_timeout, header_value, percent_decode
from ._settings import ConnectionSettings
from ._status import GrpcError, Status, status_from_http, status_from_reset
from ._transport import H2Transport, StreamHandle

__all__ = ["Channel", "ChannelOptions", "ClientCall", "ConnectionPool", "request_headers"]

_log = get_logger("weedpy.grpc.client")
Connector = Callable[[], Awaitable[trio.abc.Stream]]  # opens a byte stream (tests: in-memory pairs)
_USER_AGENT = b"weedpy-grpc/0.1"


@dataclass(frozen=True, slots=True)
class ChannelOptions:
    max_receive_message_length: int | None = DEFAULT_MAX_MESSAGE
    max_send_message_length: int | None = None
    connect_timeout: float = 5.0
    settings: ConnectionSettings = field(default_factory=ConnectionSettings)
    connector: Connector | None = None  # instead of TCP to (host, port)
    tls: ssl.SSLContext | None = None  # dial with TLS (weedpy.tls: VolumeTls.grpc_client); None: plaintext


class ConnectionPool:
    """HTTP/2 client connections to one address; their tasks run in the given nursery."""

    def __init__(
        self,
        host: str,
        port: int,
        nursery: trio.Nursery,
        *,
        settings: ConnectionSettings = ConnectionSettings(),
        connect_timeout: float = 5.0,
        connector: Connector | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._connector = connector
        self._tls = tls
        self._nursery = nursery
        self._settings = settings
        self._connect_timeout = connect_timeout
        self._transports: list[H2Transport] = []
        self._lock = trio.Lock()
        self._closed = False

    @property
    def scheme(self) -> bytes:
        return b"https" if self._tls is not None else b"http"

    @property
    def authority(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}".encode("ascii")

    async def open_stream(self, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> StreamHandle:
        """A new stream on a usable connection, connecting first if none is; UNAVAILABLE on failure."""
        t = self._usable()
        if t is None:
            async with self._lock:
                t = self._usable() or await self._connect()
        return t.open_stream(headers, end_stream)

    def _usable(self) -> H2Transport | None:
        for t in self._transports:
            if t.usable:
                return t
        return None

    async def _connect(self) -> H2Transport:
        if self._closed:
            raise GrpcError(Status.UNAVAILABLE, "connection pool closed")
        try:
            with trio.fail_after(self._connect_timeout):
                if self._connector is not None:
                    stream = await self._connector()
                elif self._tls is not None:
                    stream = await open_tls_stream(self.host, self.port, self._tls, connect_timeout=self._connect_timeout)
                else:
                    stream = await trio.open_tcp_stream(self.host, self.port)
        except (OSError, trio.TooSlowError) as exc:
            raise GrpcError(Status.UNAVAILABLE, f"connection to {self.host}:{self.port} failed: {exc!r}") from exc
        from ._connection import GrpcConnection  # h2's connection machinery loads with the first connection (start-up time)

        t = H2Transport(stream, GrpcConnection(client_side=True, settings=self._settings))
        self._transports.append(t)
        self._nursery.start_soon(self._run, t)
        with trio.move_on_after(self._connect_timeout):
            await t.wait_ready()  # like grpc-go: no streams before the server's SETTINGS
        if t.closed is not None or not t.core.peer_settings_received:
            reason = t.closed.reason if t.closed is not None else "no SETTINGS from server"
            t.close()
            raise GrpcError(Status.UNAVAILABLE, f"connection to {self.host}:{self.port} failed: {reason}")
        return t

    async def _run(self, t: H2Transport) -> None:
        try:
            await t.run()
        except* Exception as group:  # a connection's failure must never take the pool's nursery down
            _log.error("grpc_client_connection_error", address=f"{self.host}:{self.port}", error=repr(group), exc_info=True)
        finally:
            self._transports.remove(t)

    def close(self) -> None:
        """GOAWAY every connection; calls still open on them fail with UNAVAILABLE."""
        self._closed = True
        for t in list(self._transports):
            t.close()


def request_headers(
    path: str | bytes,
    authority: bytes,
    *,
    timeout: float | None = None,
    metadata: Sequence[tuple[str, str | bytes]] = (),
    scheme: bytes = b"http",
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b":method", b"POST"),
        (b":scheme", scheme),
        (b":path", path.encode("ascii") if isinstance(path, str) else path),
        (b":authority", authority),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"user-agent", _USER_AGENT),
    ]
    if timeout is not None:
        headers.append((b"grpc-timeout", format_timeout(timeout)))
    headers.extend(encode_metadata(metadata))
    return headers


class ClientCall:
    """One outgoing call at message level. A non-OK final status raises `GrpcError` from receive."""

    def __init__(self, handle: StreamHandle, options: ChannelOptions, response_type: type[Message] | None) -> None:
        self._h = handle
        self._options = options
        self._type = response_type
        self._reader = MessageReader(options.max_receive_message_length)
        self.initial_metadata: Metadata | None = None
        self.trailing_metadata: Metadata = ()
        self.status: Status | None = None
        self.details = ""
        self._ended = False

    async def send_message(self, message: Message | bytes, *, end: bool = False) -> None:
        """Send one request message; `end=True` half-closes with it (one frame for unary requests)."""
        payload = message if isinstance(message, bytes) else message.SerializeToString()
        limit = self._options.max_send_message_length
        if limit is not None and len(payload) > limit:
            raise GrpcError(
                Status.RESOURCE_EXHAUSTED, f"grpc: trying to send message larger than max ({len(payload)} vs. {limit})"
            )
        try:
            await self._h.send_data(encode_message(payload), end)
        except GrpcError:
            await self._raise_final_status()
            raise

    def done_writing(self) -> None:
        """Half-close: no more request messages."""
        try:
            self._h.end()
        except GrpcError:
            pass  # the server already ended the call; its status arrives through receive

    async def receive_message(self) -> Any:
        """The next response (decoded if a response type was given), None after an OK status."""
        reader = self._reader
        while True:
            msg = reader.next_message()
            self._h.acknowledge(reader.releasable())
            if msg is not None:
                return self._decode(msg)
            if self._ended:
                reader.check_complete()
                self._check_status()
                return None
            self._on_event(await self._h.receive())

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (msg := await self.receive_message()) is not None:
            yield msg

    async def receive_unary(self) -> Any:
        """Exactly one response, then the final status."""
        msg = await self.receive_message()
        if msg is None:
            raise GrpcError(Status.INTERNAL, "grpc: server ended the call with OK but no response message")
        if await self.receive_message() is not None:
            raise GrpcError(Status.INTERNAL, "grpc: too many response messages for a unary call")
        return msg

    def _decode(self, payload: bytes) -> Any:
        if self._type is None:
            return payload
        msg = self._type()
        try:
            msg.ParseFromString(payload)
        except DecodeError as exc:
            raise GrpcError(Status.INTERNAL, f"grpc: failed to unmarshal the received message: {exc}") from exc
        return msg

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, DataReceived):
            if self.initial_metadata is None:
                raise GrpcError(Status.INTERNAL, "grpc: DATA before response headers")
            self._reader.feed(ev.data, ev.flow_len)
        elif isinstance(ev, ResponseStarted):
            if ev.end_stream:
                self._finish(ev.headers)
            else:
                self._check_headers(ev.headers)
                self.initial_metadata = decode_metadata(ev.headers)
        elif isinstance(ev, TrailersReceived):
            self._finish(ev.headers)
        elif isinstance(ev, InputEnded):
            if not self._ended:
                self._ended = True
                self.status, self.details = Status.INTERNAL, "server closed the stream without sending trailers"
        elif isinstance(ev, StreamReset):
            self._ended = True
            self.status = status_from_reset(ev.error_code)
            self.details = f"stream terminated by RST_STREAM with error code: {ev.error_code}"
            raise GrpcError(self.status, self.details)

    def _check_headers(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        http_status = header_value(headers, b":status")
        if http_status != b"200":
            code = int(http_status or b"0") if (http_status or b"").isdigit() else 0
            raise GrpcError(status_from_http(code), f"unexpected HTTP status code received from server: {code}")
        ctype = header_value(headers, b"content-type") or b""
        if not ctype.startswith(b"application/grpc"):
            raise GrpcError(Status.INTERNAL, f"transport: received unexpected content-type {ctype!r}")

    def _finish(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        self._ended = True
        raw = header_value(headers, b"grpc-status")
        if raw is None:
            http_status = header_value(headers, b":status")
            if http_status is not None and http_status != b"200" and http_status.isdigit():
                self.status = status_from_http(int(http_status))
                self.details = f"unexpected HTTP status code received from server: {int(http_status)}"
            else:
                self.status, self.details = Status.INTERNAL, "server closed the stream without grpc-status"
        else:
            try:
                self.status = Status(int(raw))
            except ValueError:
                self.status = Status.UNKNOWN
            self.details = percent_decode(header_value(headers, b"grpc-message") or b"")
        self.trailing_metadata = decode_metadata(headers)

    def _check_status(self) -> None:
        if self.status is not None and self.status != Status.OK:
            raise GrpcError(self.status, self.details, self.trailing_metadata)

    async def _raise_final_status(self) -> None:
        """After a failed send: if the server already ended the call, raise its status instead."""
        while not self._ended and (ev := self._h.receive_nowait()) is not None:
            try:
                self._on_event(ev)
            except GrpcError:
                return
        if self._ended:
            self._check_status()


class Channel:
    """gRPC client for one server address; use as `async with Channel(host, port) as ch:`."""

    def __init__(self, host: str, port: int, *, options: ChannelOptions = ChannelOptions()) -> None:
        self.host, self.port = host, port
        self.options = options
        self._stack: contextlib.AsyncExitStack | None = None
        self._pool: ConnectionPool | None = None

    async def __aenter__(self) -> Channel:
        stack = contextlib.AsyncExitStack()
        nursery = await stack.enter_async_context(trio.open_nursery())
        self._pool = ConnectionPool(
            self.host,
            self.port,
            nursery,
            settings=self.options.settings,
            connect_timeout=self.options.connect_timeout,
            connector=self.options.connector,
            tls=self.options.tls,
        )
        stack.callback(self._pool.close)
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        return await stack.__aexit__(*exc_info)

    @contextlib.asynccontextmanager
    async def open_call(
        self,
        path: str,
        response_type: type[Message] | None = None,
        *,
        metadata: Sequence[tuple[str, str | bytes]] = (),
        timeout: float | None = None,
    ) -> AsyncIterator[ClientCall]:
        """A call of any kind; leaving the block resets the stream if it is still open."""
        if self._pool is None:
            raise RuntimeError("use `async with Channel(...)`")
        deadline = trio.current_time() + timeout if timeout is not None else math.inf
        headers = request_headers(path, self._pool.authority, timeout=timeout, metadata=metadata, scheme=self._pool.scheme)
        with trio.move_on_at(deadline) as scope:
            handle = await self._pool.open_stream(headers)
            try:
                yield ClientCall(handle, self.options, response_type)
            finally:
                handle.release()
        if scope.cancelled_caught:
            raise GrpcError(Status.DEADLINE_EXCEEDED, "context deadline exceeded")

    async def unary_unary(self, path: str, request: Message | bytes, response_type: type[Message] | None = None, **kw: Any) -> Any:
        async with self.open_call(path, response_type, **kw) as call:
            await call.send_message(request, end=True)
            return await call.receive_unary()

    async def stream_unary(
        self,
        path: str,
        requests: Iterable[Message | bytes] | AsyncIterable[Message | bytes],
        response_type: type[Message] | None = None,
        **kw: Any,
    ) -> Any:
        async with self.open_call(path, response_type, **kw) as call:
            if isinstance(requests, AsyncIterable):
                async for req in requests:
                    await call.send_message(req)
            else:
                for req in requests:
                    await call.send_message(req)
            call.done_writing()
            return await call.receive_unary()

    @contextlib.asynccontextmanager
    async def unary_stream(
        self, path: str, request: Message | bytes, response_type: type[Message] | None = None, **kw: Any
    ) -> AsyncIterator[ClientCall]:
        """`async with ch.unary_stream(...) as responses: async for r in responses: ...`"""
        async with self.open_call(path, response_type, **kw) as call:
            await call.send_message(request, end=True)
            yield call

    @contextlib.asynccontextmanager
    async def stream_stream(self, path: str, response_type: type[Message] | None = None, **kw: Any) -> AsyncIterator[ClientCall]:
        """Bidi: `send_message`, `done_writing`, `receive_message` / `async for` on the yielded call."""
        async with self.open_call(path, response_type, **kw) as call:
            yield call
