"""A sans-IO reader of `.dat` streams: feed bytes, take out super block and needle records.

```python
r = NeedleReader(read_super_block=True)
r.receive_data(chunk)            # any split, down to one byte at a time
while (ev := r.next_event()) is not NEED_DATA:
    ...                           # SuperBlock | Record | TornRecord | END_OF_VOLUME
r.end_of_data()                   # then next_event() says END_OF_VOLUME or TornRecord
```

A torn tail (the crash case) is reported as a `TornRecord` event rather than an exception:
it is an expected state of a `.dat`, and the caller decides what it means. Bytes that cannot be
a record (negative size, CRC mismatch) raise Corrupted and leave the reader in its error state.
"""

from __future__ import annotations

import dataclasses
import enum

from ._errors import Corrupted
from ._needle import Needle, decode_needle, parse_header
from ._superblock import SuperBlock
from ._types import NEEDLE_HEADER_SIZE, SUPER_BLOCK_SIZE, CURRENT_VERSION, SUPPORTED_VERSIONS, actual_size

__all__ = ["NeedleReader", "Record", "TornRecord", "NEED_DATA", "END_OF_VOLUME"]


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    END_OF_VOLUME = "END_OF_VOLUME"


NEED_DATA = _Sentinel.NEED_DATA
END_OF_VOLUME = _Sentinel.END_OF_VOLUME


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    offset: int  # byte offset of the record in the volume
    size: int  # the header's Size
    length: int  # whole record, padding included
    needle: Needle


@dataclasses.dataclass(frozen=True, slots=True)
class TornRecord:
    offset: int
    available: int  # bytes present
    needed: int | None  # full record length, when the header was complete


class _State(enum.Enum):
    SUPER_BLOCK = 1
    RECORDS = 2
    DONE = 3
    ERROR = 4


class NeedleReader:
    def __init__(
        self,
        version: int = CURRENT_VERSION,
        *,
        offset: int = SUPER_BLOCK_SIZE,
        read_super_block: bool = False,
        verify_crc: bool = True,
        max_record: int = 1 << 32,
    ) -> None:
        """`offset` is the volume position of the first byte fed (0 with `read_super_block`,
        whose version then overrides `version`)."""
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported needle version {version}")
        self.version = version
        self.offset = 0 if read_super_block else offset
        self._buf = bytearray()
        self._eof = False
        self._verify = verify_crc
        self._max_record = max_record
        self._state = _State.SUPER_BLOCK if read_super_block else _State.RECORDS
        self._error: Corrupted | None = None

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            raise RuntimeError("receive_data after end_of_data")
        self._buf += data

    def end_of_data(self) -> None:
        self._eof = True

    def next_event(self) -> SuperBlock | Record | TornRecord | _Sentinel:
        if self._state is _State.ERROR:
            assert self._error is not None
            raise self._error
        try:
            return self._next()
        except Corrupted as exc:
            self._state, self._error = _State.ERROR, exc
            raise

    def _next(self) -> SuperBlock | Record | TornRecord | _Sentinel:
        if self._state is _State.DONE:
            return END_OF_VOLUME
        if self._state is _State.SUPER_BLOCK:
            if len(self._buf) >= SUPER_BLOCK_SIZE:
                extra = SuperBlock.extra_size_of(self._buf)
                if len(self._buf) >= SUPER_BLOCK_SIZE + extra:
                    sb = SuperBlock.decode(bytes(self._buf[: SUPER_BLOCK_SIZE + extra]))
                    if sb.version not in SUPPORTED_VERSIONS:
                        raise Corrupted(f"unsupported volume version {sb.version}")
                    self.version = sb.version
                    del self._buf[: sb.block_size]
                    self.offset = sb.block_size
                    self._state = _State.RECORDS
                    return sb
            return self._end_or_need(None)
        if len(self._buf) < NEEDLE_HEADER_SIZE:
            return self._end_or_need(None)
        h = parse_header(self._buf)
        if h.size < 0:
            raise Corrupted(f"record at {self.offset} has negative size {h.size}")
        length = actual_size(h.size, self.version)
        if length > self._max_record:
            raise Corrupted(f"record at {self.offset} claims {length} bytes")
        if len(self._buf) < length:
            return self._end_or_need(length)
        n = decode_needle(memoryview(self._buf)[:length], self.version, verify_crc=self._verify)
        rec = Record(self.offset, h.size, length, n)
        del self._buf[:length]
        self.offset += length
        return rec

    def _end_or_need(self, needed: int | None) -> TornRecord | _Sentinel:
        if not self._eof:
            return NEED_DATA
        self._state = _State.DONE
        if not self._buf:
            return END_OF_VOLUME
        return TornRecord(self.offset, len(self._buf), needed)
