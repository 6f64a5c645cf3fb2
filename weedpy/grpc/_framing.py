"""gRPC length-prefixed messages, with flow-control bookkeeping for bounded memory.

`MessageReader` is sans-IO: DATA payloads go in with their HTTP/2 flow-controlled length, whole
messages come out, and `releasable()` says how many bytes may be acknowledged to the peer. Bytes
are released only once the consumer is done with them: a message when the consumer asks for the
next one, a partial message while the consumer waits for its remainder (otherwise a message larger
than the stream window could never arrive), padding at once.
"""

from __future__ import annotations

import struct

from ._status import GrpcError, ProtocolError, Status

__all__ = ["DEFAULT_MAX_MESSAGE", "MessageReader", "encode_message", "message_prefix"]

DEFAULT_MAX_MESSAGE = 4 << 20  # grpc-go's default receive limit
_PREFIX = struct.Struct(">BI")
_COMPACT_AT = 1 << 20


def encode_message(payload: bytes, compressed: bool = False) -> bytes:
    return _PREFIX.pack(1 if compressed else 0, len(payload)) + payload


def message_prefix(length: int, compressed: bool = False) -> bytes:
    """The 5 bytes before a message of `length` bytes: sent apart, a large payload is not copied."""
    return _PREFIX.pack(1 if compressed else 0, length)


class MessageReader:
    """Reassembles length-prefixed messages from DATA chunks of one stream."""

    __slots__ = ("_max", "_allow_compressed", "_buf", "_pos", "_base", "_fed", "_consumed", "_released", "_padding")

    def __init__(self, max_length: int | None = DEFAULT_MAX_MESSAGE, *, allow_compressed: bool = False) -> None:
        self._max = max_length
        self._allow_compressed = allow_compressed
        self._buf = bytearray()
        self._pos = 0  # start of the unparsed part of _buf
        self._base = 0  # absolute stream offset of _buf[0]
        self._fed = 0  # absolute data bytes fed
        self._consumed = 0  # absolute offset up to which the consumer is done
        self._released = 0  # absolute offset already reported by releasable()
        self._padding = 0  # padding bytes not yet reported

    def feed(self, data: bytes, flow_len: int | None = None) -> None:
        """One DATA payload; `flow_len` includes padding (defaults to len(data))."""
        self._buf += data
        self._fed += len(data)
        if flow_len is not None:
            self._padding += flow_len - len(data)

    def next_message(self) -> bytes | None:
        """The next whole message, or None until more data arrives.

        Calling it declares every message returned before as consumed.
        """
        buf, pos = self._buf, self._pos
        self._consumed = max(self._consumed, self._base + pos)
        avail = len(buf) - pos
        if avail >= 5:
            flag, length = _PREFIX.unpack_from(buf, pos)
            if self._max is not None and length > self._max:
                raise GrpcError(
                    Status.RESOURCE_EXHAUSTED,
                    f"grpc: received message larger than max ({length} vs. {self._max})",
                )
            if flag > 1:
                raise ProtocolError(f"grpc: invalid compressed flag {flag}")
            if flag == 1 and not self._allow_compressed:
                raise ProtocolError("grpc: compressed flag set with identity or empty encoding")
            if avail >= 5 + length:
                payload = bytes(buf[pos + 5 : pos + 5 + length])
                self._advance(pos + 5 + length)
                return payload
        self._consumed = self._fed  # the consumer is waiting: the partial message is in use
        return None

    def _advance(self, pos: int) -> None:
        if pos == len(self._buf):
            self._base += pos
            self._buf.clear()
            self._pos = 0
        elif pos >= _COMPACT_AT:
            del self._buf[:pos]
            self._base += pos
            self._pos = 0
        else:
            self._pos = pos

    def releasable(self) -> int:
        """Bytes (flow-controlled) that may be acknowledged now; each byte is reported once."""
        n = self._consumed - self._released + self._padding
        self._released = self._consumed
        self._padding = 0
        return n

    def release_all(self) -> int:
        """At the end of a call: everything fed and not yet reported, consumed or not."""
        self._consumed = self._fed
        return self.releasable()

    @property
    def buffered(self) -> int:
        """Bytes held that no returned message accounts for."""
        return len(self._buf) - self._pos

    def take_buffered(self) -> bytes:
        """Remove and return the unparsed bytes (to relay them raw after inspecting a message)."""
        rest = bytes(self._buf[self._pos :])
        self._advance(len(self._buf))
        return rest

    def check_complete(self) -> None:
        """At end of stream: a partial message left over is a protocol error."""
        if self.buffered:
            raise ProtocolError("grpc: stream ended in the middle of a message")
