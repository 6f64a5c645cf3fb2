"""Events a `GrpcConnection` reports: per-stream, in wire order, headers as raw `(bytes, bytes)`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConnectionClosed",
    "DataReceived",
    "Event",
    "InputEnded",
    "OutputDrained",
    "RequestStarted",
    "ResponseStarted",
    "StreamEvent",
    "StreamReset",
    "TrailersReceived",
]

RawHeaders = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class RequestStarted:
    """Server side: a new call (headers already checked to be a gRPC request)."""

    stream_id: int
    headers: RawHeaders
    end_stream: bool


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """Client side: response headers; `end_stream` means a trailers-only response."""

    stream_id: int
    headers: RawHeaders
    end_stream: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    """A DATA payload; acknowledge `flow_len` (payload plus padding) once it has been consumed."""

    stream_id: int
    data: bytes
    flow_len: int


@dataclass(frozen=True, slots=True)
class InputEnded:
    """The peer half-closed the stream (END_STREAM on DATA or request headers)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class TrailersReceived:
    """Client side: the trailers that end a response."""

    stream_id: int
    headers: RawHeaders


@dataclass(frozen=True, slots=True)
class StreamReset:
    """RST_STREAM from the peer (`remote`) or a stream we reset after a stream error."""

    stream_id: int
    error_code: int
    remote: bool = True


@dataclass(frozen=True, slots=True)
class OutputDrained:
    """Everything queued for the stream has been framed (the peer's window let it through)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """GOAWAY received, or the connection failed; streams above `last_stream_id` were never handled."""

    error_code: int
    last_stream_id: int
    reason: str = ""


StreamEvent = RequestStarted | ResponseStarted | DataReceived | InputEnded | TrailersReceived | StreamReset
Event = StreamEvent | OutputDrained | ConnectionClosed
