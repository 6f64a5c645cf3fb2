"""Trio shell around `GrpcConnection`: one reader loop, one writer task, one handle per stream.

No protocol logic lives here. The reader feeds bytes to the core and routes events to
`StreamHandle`s; the writer flushes `data_to_send()` whenever something is kicked, so a slow
socket never blocks the reader (which must keep reading WINDOW_UPDATEs to make progress).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import h2.errors
import trio

from ._events import (
    ConnectionClosed,
    DataReceived,
    Event,
    OutputDrained,
    RequestStarted,
    StreamEvent,
    StreamReset,
)
from ._status import GrpcError, Status

if TYPE_CHECKING:
    from ._connection import GrpcConnection

__all__ = ["H2Transport", "StreamHandle"]

_READ_SIZE = 1 << 16
_CLOSE_FLUSH_S = 2.0
# DATA framed for the socket and not yet written, per connection, before senders wait: a peer
# that opens its windows wide and stops reading holds this much of our memory, not a whole file.
OUTPUT_LIMIT = 1 << 20


class StreamHandle:
    """One stream as a task sees it: inbound events in order, sends that respect the peer's window."""

    __slots__ = ("stream_id", "_t", "_inbox", "_lot", "_send_lot", "_unacked", "reset_by_peer", "on_reset", "_released")

    def __init__(self, transport: H2Transport, stream_id: int) -> None:
        self.stream_id = stream_id
        self._t = transport
        self._inbox: collections.deque[StreamEvent] = collections.deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._send_lot = trio.lowlevel.ParkingLot()
        self._unacked = 0
        self.reset_by_peer: StreamReset | None = None
        self.on_reset: Callable[[StreamReset], None] | None = None
        self._released = False

    # -- fed by the transport -------------------------------------------------------------

    def _deliver(self, ev: StreamEvent) -> None:
        if isinstance(ev, DataReceived):
            self._unacked += ev.flow_len
        elif isinstance(ev, StreamReset):
            self.reset_by_peer = ev
            self._send_lot.unpark_all()
            if self.on_reset is not None:
                self.on_reset(ev)
        self._inbox.append(ev)
        self._lot.unpark_all()

    def _wake(self) -> None:
        self._lot.unpark_all()
        self._send_lot.unpark_all()

    # -- used by the call's task ------------------------------------------------------------

    async def receive(self) -> StreamEvent:
        """The next event for this stream; GrpcError(UNAVAILABLE) once the connection is gone."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._inbox:
            self._raise_if_lost()
            await self._lot.park()
        ev = self._inbox.popleft()
        await trio.lowlevel.cancel_shielded_checkpoint()  # yield without losing `ev` to a cancellation
        return ev

    @property
    def ready(self) -> bool:
        """An event is waiting: `receive()` will not block."""
        return bool(self._inbox)

    def receive_nowait(self) -> StreamEvent | None:
        """The next event if one is already here."""
        return self._inbox.popleft() if self._inbox else None

    def acknowledge(self, n: int) -> None:
        """Return `n` consumed flow-controlled bytes to the peer."""
        if n > 0:
            self._unacked -= n
            self._t.core.acknowledge(self.stream_id, n)
            self._t.kick()

    def send_headers(self, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        self._t.core.send_headers(self.stream_id, headers, end_stream)
        self._t.kick()

    async def send_data(self, data: bytes, end_stream: bool = False) -> None:
        """Hand `data` to HTTP/2; returns once the peer's windows have let all of it through."""
        core = self._t.core
        self._raise_if_lost()
        core.send_data(self.stream_id, data, end_stream)
        self._t.kick()
        while core.pending(self.stream_id):
            if self.reset_by_peer is not None:
                raise GrpcError(Status.CANCELLED, "stream reset by peer")
            self._raise_if_lost()
            await self._send_lot.park()
        await trio.lowlevel.checkpoint()

    def end(self, trailers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Half-close our side (with trailers on the server), after any data still queued."""
        self._t.core.end_stream(self.stream_id, trailers)
        self._t.kick()

    def reset(self, error_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        self._t.core.reset_stream(self.stream_id, error_code)
        self._t.kick()

    def release(self, reset_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        """Done with the stream: give back unconsumed bytes; reset it if our side is still open."""
        if self._released:
            return
        self._released = True
        t = self._t
        t.forget(self.stream_id)
        if t.closed is None:
            if self._unacked > 0:
                t.core.acknowledge(self.stream_id, self._unacked)
            if not t.core.ending(self.stream_id) and not t.core.is_closed(self.stream_id):
                t.core.reset_stream(self.stream_id, reset_code)
            t.kick()
        self._unacked = 0
        self._inbox.clear()

    def _raise_if_lost(self) -> None:
        closed = self._t.closed
        if closed is not None:
            raise GrpcError(Status.UNAVAILABLE, f"connection closed: {closed.reason or closed.error_code}")


class H2Transport:
    """Runs one `GrpcConnection` over a trio stream. Server side: `on_request` gets each new call."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        core: GrpcConnection,
        on_request: Callable[[StreamHandle, RequestStarted], None] | None = None,
    ) -> None:
        self.core = core
        self._stream = stream
        self._on_request = on_request
        self._handles: dict[int, StreamHandle] = {}
        self._wake = trio.Event()
        self.closed: ConnectionClosed | None = None
        self._cancel = trio.CancelScope()
        self._ready = trio.Event()
        core.limit_output(OUTPUT_LIMIT)
        core.initiate()
        self.kick()

    @property
    def usable(self) -> bool:
        """Can take a new stream now (client side)."""
        return self.closed is None and self.core.can_open_stream()

    @property
    def active_streams(self) -> int:
        return len(self._handles)

    async def wait_ready(self) -> None:
        """Until the peer's SETTINGS arrived (its stream limit is known) or the connection ended."""
        await self._ready.wait()

    def kick(self) -> None:
        self._wake.set()

    def close(self, error_code: int = 0) -> None:
        """GOAWAY, then stop: open streams fail with UNAVAILABLE."""
        self.core.close(error_code)
        self.kick()
        self._lose("connection closed locally")
        self._cancel.cancel()

    def forget(self, stream_id: int) -> None:
        self._handles.pop(stream_id, None)

    def open_stream(self, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> StreamHandle:
        """Client side: start a stream with `headers`."""
        if self.closed is not None:
            raise GrpcError(Status.UNAVAILABLE, "connection not usable")
        stream_id = self.core.open_stream(headers, end_stream)
        handle = self._handles[stream_id] = StreamHandle(self, stream_id)
        self.kick()
        return handle

    async def run(self) -> None:
        """Serve the connection until EOF, a fatal error or cancellation; then fail open streams."""
        reason = "connection closed by peer"
        try:
            async with trio.open_nursery() as nursery:
                if self._cancel.cancel_called:  # closed before it ran
                    nursery.cancel_scope.cancel()
                self._cancel = nursery.cancel_scope
                nursery.start_soon(self._writer)
                reason = await self._reader()
                nursery.cancel_scope.cancel()
        finally:
            self._lose(reason)
            with trio.move_on_after(_CLOSE_FLUSH_S) as scope:
                scope.shield = True
                await self._flush_and_close()

    async def _reader(self) -> str:
        while True:
            try:
                data = await self._stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                return f"connection broken: {exc!r}"
            if not data:
                return "connection closed by peer"
            for ev in self.core.receive_data(data):
                self._dispatch(ev)
            self.kick()
            if self.core.peer_settings_received:
                self._ready.set()
            if self.closed is not None:
                return self.closed.reason

    def _dispatch(self, ev: Event) -> None:
        if isinstance(ev, OutputDrained):
            handle = self._handles.get(ev.stream_id)
            if handle is not None:
                handle._send_lot.unpark_all()
        elif isinstance(ev, ConnectionClosed):
            self._on_goaway(ev)
        else:
            handle = self._handles.get(ev.stream_id)
            if handle is not None:
                handle._deliver(ev)
            elif isinstance(ev, RequestStarted) and self._on_request is not None:
                handle = self._handles[ev.stream_id] = StreamHandle(self, ev.stream_id)
                self._on_request(handle, ev)
            elif isinstance(ev, DataReceived):
                self.core.acknowledge(ev.stream_id, ev.flow_len)  # nobody wants it: free the window

    def _on_goaway(self, ev: ConnectionClosed) -> None:
        # h2 cannot drain after a GOAWAY (python-hyper/h2#1181: it closes the connection state at
        # once), so every GOAWAY ends the connection here; open streams fail with UNAVAILABLE.
        self.closed = ev

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            data = self.core.data_to_send()
            if data:
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._lose(f"send failed: {exc!r}")
                    self._cancel.cancel()
                    return
                for ev in self.core.output_written(len(data)):  # room again: frame what waited
                    self._dispatch(ev)
                self.kick()  # ... and write it (a pass that finds nothing just waits again)

    def _lose(self, reason: str) -> None:
        self._ready.set()
        if self.closed is None:
            self.closed = ConnectionClosed(h2.errors.ErrorCodes.NO_ERROR, 0, reason)
        for handle in list(self._handles.values()):
            handle._wake()

    async def _flush_and_close(self) -> None:
        try:
            data = self.core.data_to_send()
            if data:
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await trio.aclose_forcefully(self._stream)
