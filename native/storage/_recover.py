"""Crash recovery of a writable volume's tail, before it is loaded.

An append writes the record to `.dat`, then its row to `.idx`, and is acknowledged after both
(after both are fsynced when it asks for `fsync`). A process killed in between leaves a record
(whole or cut) that no row names, or a row cut short; a power loss can also keep a row whose
record never reached the disk, or a record whose pieces did not all land. None of that was
acknowledged durably: every write acknowledged with `fsync` is on disk whole with its row, and
so is everything appended before it.

`plan_tail_repair` finds the torn tail: a cut trailing `.idx` row, then, from the last row
backwards, every row whose record is not whole (past the end of `.dat`, another id or size in
its header, a CRC that does not match), and the `.dat` bytes after the last record the kept rows
name. Cutting them leaves the volume as it was after its last whole append, which Go's load-time
check (`_integrity`) accepts, so the volume loads writable in weedpy and in Go. The walk stops at
the first whole record: a damaged record further back is not a torn append, is kept, and its
reads fail the CRC check rather than serve wrong bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ._crc import crc32c_update, crc_matches
from ._errors import Corrupted
from ._idx import IdxCodec, IdxEntry
from ._needle import decode_needle, parse_header
from ._types import CHECKSUM_SIZE, DATA_SIZE_SIZE, NEEDLE_HEADER_SIZE, VERSION1, actual_size

__all__ = ["TailRepair", "plan_tail_repair"]

Pread = Callable[[int, int], bytes]
_WHOLE_READ = 4 << 20  # records up to this size are decoded whole; larger ones CRC-checked in chunks


@dataclasses.dataclass(frozen=True, slots=True)
class TailRepair:
    idx_size: int  # keep this many `.idx` bytes
    dat_size: int  # keep this many `.dat` bytes
    dropped_rows: int  # whole rows whose record was not whole
    torn_row_bytes: int  # bytes of a cut trailing row
    dat_cut: int  # `.dat` bytes after the last record named

    def describe(self) -> str:
        return (f"dropped {self.dropped_rows} index rows without a whole record, {self.torn_row_bytes} bytes of a "
                f"torn index row and {self.dat_cut} .dat bytes no row names")


def plan_tail_repair(raw_idx: bytes, codec: IdxCodec, dat_size: int, version: int, pread: Pread,
                     data_start: int) -> TailRepair | None:
    """What to cut off a volume's files so they end at the last whole append (None: nothing).
    `data_start` is where records begin in `.dat` (the super block's end)."""
    es = codec.entry_size
    rows = len(raw_idx) // es
    torn = len(raw_idx) - rows * es
    keep = rows
    while keep > 0 and not _whole(codec.decode(raw_idx[(keep - 1) * es:keep * es]), codec, dat_size, version, pread):
        keep -= 1
    end = _records_end(raw_idx[:keep * es], codec, version, data_start, dat_size)
    dat_keep = end if end < dat_size else dat_size
    if keep == rows and not torn and dat_keep == dat_size:
        return None
    return TailRepair(keep * es, dat_keep, rows - keep, torn, dat_size - dat_keep)


def _records_end(raw_idx: bytes, codec: IdxCodec, version: int, data_start: int, dat_size: int) -> int:
    """Where the physically last record the rows name ends."""
    if not raw_idx:
        return data_start
    last = codec.decode(raw_idx[-codec.entry_size:])
    if last.offset and last.actual_offset + actual_size(max(last.size, 0), version) == dat_size:
        return dat_size  # the usual append-ordered index: its last row names the last record
    top = codec.columns(raw_idx).top_offset_entry()  # a key-sorted index (compaction, weed fix)
    if top is None:
        return data_start
    return max(data_start, top.actual_offset + actual_size(max(top.size, 0), version))


def _whole(e: IdxEntry, codec: IdxCodec, dat_size: int, version: int, pread: Pread) -> bool:
    if e.offset == 0:
        return e.size < 0  # a deletion with no record (remote tier); a live row at 0 is torn (zeros)
    offsets = [e.actual_offset]
    if codec.offsets.width == 4 and dat_size > e.actual_offset + codec.offsets.max_volume_size:
        offsets.append(e.actual_offset + codec.offsets.max_volume_size)  # 4-byte offsets wrap at 32 GiB
    return any(_record_whole(e, at, dat_size, version, pread) for at in offsets)


def _record_whole(e: IdxEntry, at: int, dat_size: int, version: int, pread: Pread) -> bool:
    size = max(e.size, 0)
    length = actual_size(size, version)
    if at + length > dat_size:
        return False
    if e.size < 0 or size == 0:
        head = pread(NEEDLE_HEADER_SIZE, at)
        if len(head) < NEEDLE_HEADER_SIZE:
            return False
        h = parse_header(head)
        return h.id == e.key and h.size == size
    if length <= _WHOLE_READ:
        raw = pread(length, at)
        try:
            return len(raw) == length and decode_needle(raw, version, expected_size=size).id == e.key
        except Corrupted:
            return False
    return _large_whole(e, at, version, pread)


def _large_whole(e: IdxEntry, at: int, version: int, pread: Pread) -> bool:
    head = pread(NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE, at)
    if len(head) < NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE:
        return False
    h = parse_header(head)
    if h.id != e.key or h.size != e.size:
        return False
    if version == VERSION1:
        pos, data_size = at + NEEDLE_HEADER_SIZE, e.size
    else:
        pos, data_size = at + NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE, int.from_bytes(head[16:20], "big")
        if DATA_SIZE_SIZE + data_size > e.size:
            return False
    crc, end = 0, pos + data_size
    while pos < end:
        chunk = pread(min(_WHOLE_READ, end - pos), pos)
        if not chunk:
            return False
        crc = crc32c_update(crc, chunk)
        pos += len(chunk)
    stored = pread(CHECKSUM_SIZE, at + NEEDLE_HEADER_SIZE + e.size)
    return len(stored) == CHECKSUM_SIZE and (data_size == 0 or crc_matches(int.from_bytes(stored, "big"), crc))
