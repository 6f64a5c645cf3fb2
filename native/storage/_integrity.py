"""Load-time integrity check of a volume's tail, as Go's CheckVolumeDataIntegrity does it.

A crash can leave a torn record at the end of `.dat` (the data write was cut short, or landed
but its `.idx` row did not) or a torn row at the end of `.idx`. Go checks only the record at the
highest offset: it must be where `.idx` says, with the id `.idx` names, and `.dat` must end
exactly there. Any failure makes the volume read-only (but still readable), never silently
extended over garbage. The check also recovers the last AppendAtNs so new writes stay
monotonic.

Pure logic over a `pread(length, offset) -> bytes` callable, so tests drive it from bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from ._errors import Corrupted
from ._idx import IdxCodec, IdxEntry
from ._needle import decode_needle, parse_header
from ._types import (
    CHECKSUM_SIZE,
    NEEDLE_HEADER_SIZE,
    PADDING_SIZE,
    TIMESTAMP_SIZE,
    VERSION3,
    actual_size,
)

__all__ = ["IntegrityResult", "check_volume_tail"]

Pread = Callable[[int, int], bytes]


class IndexRows(Protocol):
    """What the check reads of an index: `IdxColumns` or `IdxRows`."""

    trailing: int

    def __len__(self) -> int: ...
    def entry(self, i: int) -> IdxEntry: ...
    def top_offset_entry(self) -> IdxEntry | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class IntegrityResult:
    last_append_at_ns: int
    error: str | None  # None when the tail is sound

    @property
    def ok(self) -> bool:
        return self.error is None


def _disk_end(e: IdxEntry, version: int) -> int:
    """Where the record an entry points at ends (tombstones are written with Size 0)."""
    return e.actual_offset + actual_size(0 if e.size < 0 else e.size, version)


def _tail_entry(cols: IndexRows, dat_size: int, version: int) -> IdxEntry | None:
    """The entry whose record is physically last in `.dat` (highest offset)."""
    last = cols.entry(len(cols) - 1)
    if last.offset != 0 and _disk_end(last, version) == dat_size:
        return last  # the usual append-ordered index
    return cols.top_offset_entry()


def check_volume_tail(
    cols: IndexRows,
    codec: IdxCodec,
    dat_size: int,
    version: int,
    pread: Pread,
) -> IntegrityResult:
    if cols.trailing:
        size = len(cols) * codec.entry_size + cols.trailing
        return IntegrityResult(0, f"index file's size is {size} bytes, maybe corrupted")
    if not len(cols):
        return IntegrityResult(0, None)
    e = _tail_entry(cols, dat_size, version)
    if e is None:
        return IntegrityResult(0, None)
    offset = e.actual_offset
    if e.size < 0:
        return _check_tombstone(e, offset, dat_size, version, pread)
    return _check_needle(e, offset, dat_size, version, pread, codec)


def _check_tombstone(e: IdxEntry, offset: int, dat_size: int, version: int, pread: Pread) -> IntegrityResult:
    length = actual_size(0, version)
    raw = pread(length, offset)
    if len(raw) < length:
        return IntegrityResult(0, f"tombstone of {e.key:x} at {offset} is cut short by the end of .dat")
    h = parse_header(raw)
    ts = int.from_bytes(raw[NEEDLE_HEADER_SIZE + CHECKSUM_SIZE:NEEDLE_HEADER_SIZE + CHECKSUM_SIZE + TIMESTAMP_SIZE], "big") if version == VERSION3 else 0
    if h.size != 0:
        return IntegrityResult(ts, f"tombstone of {e.key:x} at {offset}: record size {h.size}, expected 0")
    if h.id != e.key:
        return IntegrityResult(ts, f"index key {e.key:x} does not match needle id {h.id:x} at {offset}")
    if dat_size > offset + length:
        return IntegrityResult(ts, f".dat has {dat_size} bytes, expected {offset + length}")
    return IntegrityResult(ts, None)


def _check_needle(e: IdxEntry, offset: int, dat_size: int, version: int, pread: Pread, codec: IdxCodec) -> IntegrityResult:
    head = pread(NEEDLE_HEADER_SIZE, offset)
    if len(head) < NEEDLE_HEADER_SIZE:
        return IntegrityResult(0, f"needle {e.key:x} at {offset} lies past the end of .dat ({dat_size})")
    h = parse_header(head)
    if h.size != e.size:
        alt = offset + codec.offsets.max_volume_size
        if codec.offsets.width == 4 and dat_size > alt:
            # 4-byte offsets wrap at 32 GiB; Go retries one wrap further
            return _check_needle(IdxEntry(e.key, alt // PADDING_SIZE, e.size), alt, dat_size, version, pread, codec)
        return IntegrityResult(0, f"needle {e.key:x} at {offset}: record size {h.size}, index says {e.size}")
    ts = 0
    end = offset + actual_size(e.size, version)
    if version == VERSION3:
        raw_ts = pread(TIMESTAMP_SIZE, offset + NEEDLE_HEADER_SIZE + e.size + CHECKSUM_SIZE)
        if len(raw_ts) < TIMESTAMP_SIZE:
            return IntegrityResult(0, f"needle {e.key:x} at {offset} is cut short by the end of .dat")
        ts = int.from_bytes(raw_ts, "big")
        if dat_size == end:
            return IntegrityResult(ts, None)
        if dat_size > end:
            return IntegrityResult(ts, f".dat has {dat_size} bytes, expected {end}")
    # v1/v2 (and a short v3 file): read the whole record, which also checks the CRC
    raw = pread(actual_size(e.size, version), offset)
    try:
        n = decode_needle(raw, version, expected_size=e.size)
    except Corrupted as exc:
        return IntegrityResult(ts, f"read data [{offset},{end}): {exc}")
    if n.id != e.key:
        return IntegrityResult(ts, f"index key {e.key:x} does not match needle id {n.id:x}")
    return IntegrityResult(n.append_at_ns, None)
