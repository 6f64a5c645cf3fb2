"""Sans-IO gRPC-over-HTTP/2 connection, one class for both the server and the client side.

Bytes in (`receive_data`) give typed events (`_events.py`); calls queue frames that
`data_to_send()` drains. On top of h2 it adds what gRPC needs and h2 leaves to the caller:

* request screening (server): non-POST requests are reset, non-gRPC content types get 415;
* per-stream send queues that respect the peer's flow-control windows: `send_data` never blocks,
  it frames what the windows allow and queues the rest, resuming on WINDOW_UPDATE/SETTINGS and
  reporting `OutputDrained` when a queue empties; an end of stream (trailers) queued behind data
  goes out after it;
* explicit acknowledgement: received DATA is never acknowledged until `acknowledge()` is called
  (end-to-end backpressure; memory stays bounded by the windows we advertise);
* a bound on output not yet written (`limit_output`): a peer may open its windows to 2 GiB and
  then not read; DATA beyond the bound stays queued, and `pending` with it, until the shell
  reports the bytes written (`output_written`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ._events import (
    ConnectionClosed,
    DataReceived,
    Event,
    InputEnded,
    OutputDrained,
    RequestStarted,
    ResponseStarted,
    StreamReset,
    TrailersReceived,
)
from ._metadata import header_value, percent_encode
from ._settings import ConnectionSettings
from ._status import GrpcError, Status

__all__ = ["ConnectionSettings", "GrpcConnection"]

_MAX_STREAM_ID = 2**31 - 1


@dataclass(slots=True)
class _Outbound:
    chunks: collections.deque[bytes] = field(default_factory=collections.deque)
    offset: int = 0  # bytes of chunks[0] already framed
    size: int = 0
    end: tuple[tuple[bytes, bytes], ...] | None = None  # trailers (or () for a bare END_STREAM)


class GrpcConnection:
    """One HTTP/2 connection carrying gRPC calls; no I/O."""

    def __init__(self, *, client_side: bool, settings: ConnectionSettings = ConnectionSettings()) -> None:
        config = h2.config.H2Configuration(
            client_side=client_side,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=settings.validate_inbound_headers,
        )
        self.client_side = client_side
        self.settings = settings
        self._h2 = h2.connection.H2Connection(config)
        self._h2.local_settings = h2.settings.Settings(
            client=client_side,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.stream_window,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self._out: dict[int, _Outbound] = {}
        self._closed: ConnectionClosed | None = None
        self.peer_settings_received = False
        self._output_limit: int | None = None  # DATA framed and not yet written, at most (None: no bound)
        self._unwritten = 0

    # -- connection -------------------------------------------------------------------------

    def initiate(self) -> None:
        """Queue the preface and our SETTINGS; open the connection window to its configured size."""
        self._h2.initiate_connection()
        extra = self.settings.connection_window - 65535
        if extra > 0:
            self._h2.increment_flow_control_window(extra)

    def data_to_send(self) -> bytes:
        return self._h2.data_to_send()

    def limit_output(self, limit: int) -> None:
        """Frame no more DATA while `limit` bytes of it wait to be written; the caller then
        reports every write with `output_written`."""
        self._output_limit = limit

    def output_written(self, n: int) -> list[Event]:
        """`n` bytes of `data_to_send()` reached the socket: frame what waited for room (the
        `OutputDrained` of the queues that emptied)."""
        self._unwritten = max(0, self._unwritten - n)
        out: list[Event] = []
        if self._output_limit is not None and self._out:
            self._pump_all(out)
        return out

    @property
    def closed(self) -> ConnectionClosed | None:
        """Why the connection ended (GOAWAY or a protocol error), or None while usable."""
        return self._closed

    def close(self, error_code: int = 0) -> None:
        """Queue a GOAWAY; the connection takes no new streams afterwards."""
        if self._closed is None:
            self._closed = ConnectionClosed(error_code, self._h2.highest_inbound_stream_id, "closed locally")
        try:
            self._h2.close_connection(error_code)
        except h2.exceptions.ProtocolError:
            pass

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed received bytes; returns the events they complete, in order."""
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued a GOAWAY; the caller flushes it and closes.
            code = getattr(exc, "error_code", h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._closed = ConnectionClosed(int(code), self._h2.highest_inbound_stream_id, str(exc))
            return [self._closed]
        out: list[Event] = []
        for ev in h2_events:
            self._translate(ev, out)
        return out

    def _translate(self, ev: h2.events.Event, out: list[Event]) -> None:
        if isinstance(ev, h2.events.DataReceived):
            if ev.flow_controlled_length:  # an empty END_STREAM frame carries nothing to deliver or acknowledge
                out.append(DataReceived(ev.stream_id, ev.data, ev.flow_controlled_length))
        elif isinstance(ev, h2.events.RequestReceived):
            headers = tuple(ev.headers)
            if self._screen_request(ev.stream_id, headers):
                out.append(RequestStarted(ev.stream_id, headers, ev.stream_ended is not None))
        elif isinstance(ev, h2.events.ResponseReceived):
            out.append(ResponseStarted(ev.stream_id, tuple(ev.headers), ev.stream_ended is not None))
        elif isinstance(ev, h2.events.TrailersReceived):
            out.append(TrailersReceived(ev.stream_id, tuple(ev.headers)))
        elif isinstance(ev, h2.events.StreamEnded):
            out.append(InputEnded(ev.stream_id))
        elif isinstance(ev, h2.events.StreamReset):
            self._out.pop(ev.stream_id, None)
            out.append(StreamReset(ev.stream_id, int(ev.error_code), bool(ev.remote_reset)))
        elif isinstance(ev, h2.events.WindowUpdated):
            if ev.stream_id:
                self._pump(ev.stream_id, out)
            else:
                self._pump_all(out)
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.peer_settings_received = True
            if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in ev.changed_settings:
                self._pump_all(out)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self._closed = ConnectionClosed(int(ev.error_code), ev.last_stream_id or 0, "GOAWAY received")
            out.append(self._closed)
        # Pings, settings acks, priority and informational responses need nothing from us.

    def _screen_request(self, stream_id: int, headers: tuple[tuple[bytes, bytes], ...]) -> bool:
        """Accept a gRPC request, or answer it here as grpc-go does and report nothing. The
        answer is skipped when the peer already closed the stream (its RST_STREAM came in the
        same bytes: h2 has applied it by the time the request is screened)."""
        if header_value(headers, b":method") != b"POST":
            try:
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            except h2.exceptions.StreamClosedError:
                pass
            return False
        ctype = header_value(headers, b"content-type") or b""
        if not (ctype == b"application/grpc" or ctype.startswith((b"application/grpc+", b"application/grpc;"))):
            msg = percent_encode(f"invalid gRPC request content-type {ctype.decode('latin-1')!r}")
            try:
                self._h2.send_headers(
                    stream_id,
                    [
                        (b":status", b"415"),
                        (b"content-type", b"application/grpc"),
                        (b"grpc-status", b"%d" % Status.INTERNAL),
                        (b"grpc-message", msg),
                    ],
                    end_stream=True,
                )
            except h2.exceptions.StreamClosedError:
                pass
            return False
        return True

    # -- streams ----------------------------------------------------------------------------

    def can_open_stream(self) -> bool:
        h = self._h2
        return (
            self._closed is None
            and h.open_outbound_streams < h.remote_settings.max_concurrent_streams
            and h.highest_outbound_stream_id + 2 <= _MAX_STREAM_ID
        )

    def open_stream(self, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> int:
        """Client side: start a call; raises GrpcError(UNAVAILABLE) when the connection cannot take it."""
        if self._closed is not None:
            raise GrpcError(Status.UNAVAILABLE, "connection closed")
        try:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(stream_id, list(headers), end_stream=end_stream)
        except (h2.exceptions.ProtocolError, h2.exceptions.NoAvailableStreamIDError) as exc:
            raise GrpcError(Status.UNAVAILABLE, f"connection cannot open a stream: {exc}") from exc
        return stream_id

    def send_headers(self, stream_id: int, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        """Response headers (server), or a trailers-only response with `end_stream`."""
        try:
            self._h2.send_headers(stream_id, list(headers), end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise _closed_error(exc) from exc

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Frame what the windows allow now, queue the rest (see `pending`); END_STREAM on the last frame."""
        if not data:
            if end_stream:
                self.end_stream(stream_id)
            return
        if self._closed is not None:
            raise GrpcError(Status.UNAVAILABLE, f"connection closed: {self._closed.reason}")
        q = self._out.get(stream_id)
        if q is None:
            self._check_open(stream_id)
            q = self._out[stream_id] = _Outbound()
        elif q.end is not None:
            raise GrpcError(Status.INTERNAL, "data after end of stream")
        q.chunks.append(bytes(data))
        q.size += len(data)
        if end_stream:
            q.end = ()
        self._pump(stream_id, None)

    def end_stream(self, stream_id: int, trailers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Half-close: trailers if given, else an empty END_STREAM DATA frame; after any queued data."""
        q = self._out.get(stream_id)
        if q is not None:
            if q.end is None:
                q.end = tuple(trailers)
            return
        self._check_open(stream_id)
        self._send_end(stream_id, tuple(trailers))

    def reset_stream(self, stream_id: int, error_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        """Abort a stream; queued output is dropped. A no-op on a stream already closed."""
        self._out.pop(stream_id, None)
        try:
            self._h2.reset_stream(stream_id, error_code)
        except h2.exceptions.ProtocolError:
            pass  # already closed, or the whole connection is

    def acknowledge(self, stream_id: int, n: int) -> None:
        """Give `n` flow-controlled bytes back to the peer (stream and connection windows)."""
        if n > 0 and self._closed is None:
            try:
                self._h2.acknowledge_received_data(n, stream_id)
            except h2.exceptions.ProtocolError:
                pass

    def pending(self, stream_id: int) -> int:
        """Bytes queued for the stream that the peer's window has not let through yet."""
        q = self._out.get(stream_id)
        return 0 if q is None else q.size

    def is_closed(self, stream_id: int) -> bool:
        """True once the stream is fully closed (both directions ended, or reset)."""
        stream = self._h2.streams.get(stream_id)
        return stream is None or stream.closed

    def ending(self, stream_id: int) -> bool:
        """True while an end of stream waits behind queued data."""
        q = self._out.get(stream_id)
        return q is not None and q.end is not None

    # -- internals --------------------------------------------------------------------------

    def _check_open(self, stream_id: int) -> None:
        if self._closed is not None:
            raise GrpcError(Status.UNAVAILABLE, f"connection closed: {self._closed.reason}")
        stream = self._h2.streams.get(stream_id)
        if stream is None or stream.closed:
            raise GrpcError(Status.CANCELLED, "stream closed")

    def _send_end(self, stream_id: int, trailers: tuple[tuple[bytes, bytes], ...]) -> None:
        try:
            if trailers:
                self._h2.send_headers(stream_id, list(trailers), end_stream=True)
            else:
                self._h2.end_stream(stream_id)
        except h2.exceptions.ProtocolError as exc:
            raise _closed_error(exc) from exc

    def _pump_all(self, out: list[Event] | None) -> None:
        for stream_id in list(self._out):
            self._pump(stream_id, out)

    def _pump(self, stream_id: int, out: list[Event] | None) -> None:
        """Frame queued data as far as the windows allow; report a drained queue into `out`."""
        q = self._out.get(stream_id)
        if q is None:
            return
        h = self._h2
        try:
            window = h.local_flow_control_window(stream_id)
            if self._output_limit is not None:
                window = min(window, self._output_limit - self._unwritten)
            frame = h.max_outbound_frame_size
            while q.chunks and window > 0:
                chunk = q.chunks[0]
                n = min(len(chunk) - q.offset, window, frame)
                piece = chunk if q.offset == 0 and n == len(chunk) else chunk[q.offset : q.offset + n]
                last = q.end == () and n == q.size  # a bare end rides on the final frame
                h.send_data(stream_id, piece, end_stream=last)
                self._unwritten += n
                if last:
                    del self._out[stream_id]
                window -= n
                q.size -= n
                q.offset += n
                if q.offset == len(chunk):
                    q.chunks.popleft()
                    q.offset = 0
            if q.chunks:
                return
            if self._out.pop(stream_id, None) is not None and q.end is not None:
                self._send_end(stream_id, q.end)
        except (h2.exceptions.ProtocolError, GrpcError):
            self._out.pop(stream_id, None)
        if out is not None:
            out.append(OutputDrained(stream_id))


def _closed_error(exc: h2.exceptions.ProtocolError) -> GrpcError:
    """A send on a closed stream is a cancelled call; on a closed connection, an unavailable one."""
    if isinstance(exc, h2.exceptions.StreamClosedError):
        return GrpcError(Status.CANCELLED, "stream closed")
    return GrpcError(Status.UNAVAILABLE, f"connection closed: {exc}")
