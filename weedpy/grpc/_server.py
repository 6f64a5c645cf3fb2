"""Server side: `ServerCall` (one incoming call, raw or message-level) and the trio serving loops.

A `CallHandler` is anything with `async def handle(call: ServerCall) -> None`: the message-level
`Router` (native handlers) and the gateway's relay to Go are two of them. The shell around each
call applies the deadline (grpc-timeout), cancels the handler when the client resets the stream,
and turns a `GrpcError` (or any other exception) into trailers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import h2.errors
import trio

from weedpy.logs import get_logger

from ._events import DataReceived, RequestStarted, StreamReset
from ._framing import DEFAULT_MAX_MESSAGE, MessageReader, message_prefix
from ._metadata import Metadata, decode_metadata, encode_metadata, header_value, parse_timeout, percent_encode
from ._settings import ConnectionSettings
from ._status import GrpcError, ProtocolError, Status, grpc_error_in
from ._transport import H2Transport, StreamHandle

__all__ = ["CallHandler", "ServerCall", "ServerOptions", "serve_connection", "serve_listeners", "peer_of"]

_log = get_logger("weedpy.grpc.server")

RESPONSE_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b":status", b"200"), (b"content-type", b"application/grpc"))


@dataclass(frozen=True, slots=True)
class ServerOptions:
    max_receive_message_length: int | None = DEFAULT_MAX_MESSAGE
    max_send_message_length: int | None = None
    settings: ConnectionSettings = field(default_factory=ConnectionSettings)


class CallHandler(Protocol):
    async def handle(self, call: ServerCall) -> None: ...


class ServerCall:
    """One incoming call. Raw methods relay bytes unchanged; message methods frame and limit them."""

    def __init__(self, handle: StreamHandle, event: RequestStarted, peer: str, options: ServerOptions) -> None:
        self._h = handle
        self.headers = event.headers
        self.peer = peer
        self.options = options
        path = header_value(event.headers, b":path") or b""
        self.method = path.decode("ascii", "replace")
        self.start_time = trio.current_time()
        raw_timeout = header_value(event.headers, b"grpc-timeout")
        self.timeout: float | None = parse_timeout(raw_timeout) if raw_timeout is not None else None
        self.deadline = self.start_time + self.timeout if self.timeout is not None else math.inf
        self._input_done = event.end_stream
        self._reader: MessageReader | None = None
        self._metadata: Metadata | None = None
        self.headers_sent = False
        self.status: Status | None = None  # set once the call's final status has been sent

    @property
    def stream_id(self) -> int:
        return self._h.stream_id

    @property
    def metadata(self) -> Metadata:
        """Request metadata (`-bin` values decoded), reserved and pseudo-headers left out."""
        if self._metadata is None:
            self._metadata = decode_metadata(self.headers)
        return self._metadata

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def input_ended(self) -> bool:
        """The client half-closed (or reset) and everything it sent has been read."""
        return self._input_done and (self._reader is None or not self._reader.buffered)

    @property
    def input_ready(self) -> bool:
        """`receive_data()` would return without waiting."""
        return self._input_done or self._h.ready or (self._reader is not None and self._reader.buffered > 0)

    @property
    def reset_by_peer(self) -> bool:
        return self._h.reset_by_peer is not None

    # -- request side ---------------------------------------------------------------------------

    async def receive_data(self) -> DataReceived | None:
        """The next raw DATA payload, or None at the end of the request; acknowledge it when done.

        After `receive_message`, the first payload is whatever the message reader still held
        (raw relaying can follow inspecting the first message); the messages count as consumed.
        """
        reader = self._reader
        if reader is not None:
            self._reader = None
            rest = reader.take_buffered()
            flow = reader.release_all()
            if rest:
                return DataReceived(self.stream_id, rest, flow)
            self._h.acknowledge(flow)
        return await self._receive_raw()

    def acknowledge(self, n: int) -> None:
        self._h.acknowledge(n)

    async def receive_message(self, *, max_length: int | None = -1) -> bytes | None:
        """The next whole request message, or None at the end; the previous one counts as consumed.
        `max_length` replaces the options' limit for the call's messages when given at the first."""
        reader = self._reader
        if reader is None:
            limit = self.options.max_receive_message_length if max_length == -1 else max_length
            reader = self._reader = MessageReader(limit)
        while True:
            msg = reader.next_message()
            self._h.acknowledge(reader.releasable())
            if msg is not None:
                return msg
            if self._input_done:
                reader.check_complete()
                return None
            ev = await self._receive_raw()
            if ev is not None:
                reader.feed(ev.data, ev.flow_len)

    async def _receive_raw(self) -> DataReceived | None:
        while not self._input_done:
            ev = await self._h.receive()
            if isinstance(ev, DataReceived):
                return ev
            if isinstance(ev, StreamReset):
                self._input_done = True
                raise GrpcError(Status.CANCELLED, "stream reset by client")
            self._input_done = True
        return None

    # -- response side ---------------------------------------------------------------------------

    def send_headers(self, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        """Raw response headers (a trailers-only response with `end_stream`), sent as given."""
        self._h.send_headers(headers, end_stream)
        self.headers_sent = True
        if end_stream:
            self.status = _status_of(headers)

    def send_initial_metadata(self, metadata: Sequence[tuple[str, str | bytes]] = ()) -> None:
        if self.headers_sent:
            raise RuntimeError("initial metadata already sent")
        self.send_headers(RESPONSE_HEADERS + tuple(encode_metadata(metadata)) if metadata else RESPONSE_HEADERS)

    async def send_data(self, data: bytes) -> None:
        """Raw DATA; returns once the client's window has taken all of it."""
        await self._h.send_data(data)

    async def send_message(self, payload: bytes) -> None:
        limit = self.options.max_send_message_length
        if limit is not None and len(payload) > limit:
            raise GrpcError(
                Status.RESOURCE_EXHAUSTED, f"grpc: trying to send message larger than max ({len(payload)} vs. {limit})"
            )
        if not self.headers_sent:
            self.send_initial_metadata()
        await self._h.send_data(message_prefix(len(payload)))  # no copy of a large payload to prefix it
        await self._h.send_data(payload)

    def send_trailers(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        """Raw trailers that end the call (after any data still queued)."""
        self._h.end(headers)
        self.status = _status_of(headers)

    def finish(self, status: Status, message: str = "", metadata: Sequence[tuple[str, str | bytes]] = ()) -> None:
        """End the call with a status: trailers, or a trailers-only response if nothing was sent."""
        trailers = [(b"grpc-status", b"%d" % status)]
        if message:
            trailers.append((b"grpc-message", percent_encode(message)))
        trailers.extend(encode_metadata(metadata))
        if self.headers_sent:
            self.send_trailers(trailers)
        else:
            self.send_headers(RESPONSE_HEADERS + tuple(trailers), end_stream=True)

    def reset(self, error_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        self._h.reset(error_code)
        if self.status is None:
            self.status = Status.CANCELLED


def _status_of(headers: Sequence[tuple[bytes, bytes]]) -> Status:
    raw = header_value(headers, b"grpc-status")
    try:
        return Status(int(raw)) if raw is not None else Status.UNKNOWN
    except ValueError:
        return Status.UNKNOWN


async def _run_call(handle: StreamHandle, event: RequestStarted, handler: CallHandler, peer: str, options: ServerOptions) -> None:
    try:
        call = ServerCall(handle, event, peer, options)
    except ProtocolError as exc:  # e.g. a malformed grpc-timeout
        handle.send_headers(RESPONSE_HEADERS + ((b"grpc-status", b"%d" % exc.status), (b"grpc-message", percent_encode(exc.message))), True)
        handle.release()
        return
    scope = trio.CancelScope(deadline=call.deadline)
    handle.on_reset = lambda _ev: scope.cancel()
    try:
        with scope:
            try:
                await handler.handle(call)
            except* Exception as group:  # a Cancelled alongside (connection gone) propagates after this
                err = grpc_error_in(group)
                if err is None:
                    _log.error("grpc_handler_error", route=call.method, peer=peer, error=repr(group), exc_info=True)
                    err = GrpcError(Status.UNKNOWN, f"unexpected error in handler: {type(group.exceptions[0]).__name__}")
                _finish(call, err.status, err.message, err.trailing_metadata)
        if scope.cancelled_caught:
            _finish(call, Status.DEADLINE_EXCEEDED, "context deadline exceeded")
        else:
            _finish(call, Status.INTERNAL, "handler returned without a status")
    finally:
        handle.on_reset = None
        handle.release(h2.errors.ErrorCodes.NO_ERROR if call.finished else h2.errors.ErrorCodes.CANCEL)


def _finish(call: ServerCall, status: Status, message: str, metadata: Sequence[tuple[str, str | bytes]] = ()) -> None:
    """End the call unless it already ended; a stream or connection already gone is not an error."""
    if call.finished or call.reset_by_peer:
        return
    try:
        call.finish(status, message, metadata)
    except GrpcError:
        pass


async def serve_connection(
    stream: trio.abc.Stream, handler: CallHandler, *, peer: str = "", options: ServerOptions = ServerOptions()
) -> None:
    """Serve gRPC calls on one accepted connection until it closes; open calls are then cancelled."""
    from ._connection import GrpcConnection  # h2's connection machinery loads with the first connection (start-up time)

    async with trio.open_nursery() as calls:

        def on_request(handle: StreamHandle, event: RequestStarted) -> None:
            calls.start_soon(_run_call, handle, event, handler, peer, options)

        transport = H2Transport(stream, GrpcConnection(client_side=False, settings=options.settings), on_request)
        await transport.run()
        calls.cancel_scope.cancel()


def peer_of(stream: trio.abc.Stream) -> str:
    """"ip:port" of a socket stream's remote end ("" for in-memory streams)."""
    sock = getattr(stream, "socket", None)
    if sock is None:
        return ""
    try:
        addr = sock.getpeername()
    except OSError:
        return ""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)


async def serve_listeners(
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
    handler: CallHandler,
    *,
    options: ServerOptions = ServerOptions(),
    task_status: trio.TaskStatus[Sequence[trio.abc.Listener[trio.abc.Stream]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections forever, one `serve_connection` task each."""

    async def one(stream: trio.abc.Stream) -> None:
        _nodelay(stream)
        peer = peer_of(stream)
        try:
            await serve_connection(stream, handler, peer=peer, options=options)
        except* Exception as group:  # one connection's failure must never stop the server
            _log.error("grpc_connection_error", peer=peer, error=repr(group), exc_info=True)

    await trio.serve_listeners(one, list(listeners), task_status=task_status)


def _nodelay(stream: trio.abc.Stream) -> None:
    sock = getattr(stream, "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
        except OSError:
            pass
