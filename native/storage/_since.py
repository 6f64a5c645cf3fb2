"""What a volume appended after a point in time: the reads behind incremental copy and tailing.

- `locate_since(v, since_ns)`: Go's BinarySearchByAppendAtNs over the `.idx` rows (in append
  order), reading each probed row's AppendAtNs from `.dat`: the byte offset of the first record
  appended after `since_ns`, or None when there is none ("is last"). Rows with offset 0 are
  stepped over as Go does. v1/v2 records carry no timestamp (0), so they never qualify.
- `scan_records(fd, version, start, end)`: the records from `start`, header bytes and the rest
  (body, checksum, timestamp, padding) as Go's ScanVolumeFileFrom hands them to its visitors.
- `last_append_at_ns(idx_path, dat_path, version, codec)`: the timestamp of the record the last
  `.idx` row points at (Go's findLastAppendAtNsFromCopiedFiles, run after a VolumeCopy).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from ._errors import Corrupted, StorageError
from ._idx import IdxCodec
from ._go_body import read_body
from ._needle import parse_header
from ._types import CHECKSUM_SIZE, NEEDLE_HEADER_SIZE, PADDING_SIZE, VERSION3, body_length

__all__ = ["locate_since", "scan_records", "ScannedRecord", "last_append_at_ns", "append_at_ns_at"]


def append_at_ns_at(pread, version: int, offset: int) -> int:
    """AppendAtNs of the record at byte `offset` (0 before v3). `pread(length, offset)`."""
    if version != VERSION3:
        return 0
    head = pread(NEEDLE_HEADER_SIZE, offset)
    if len(head) < NEEDLE_HEADER_SIZE:
        raise Corrupted(f"no needle header at offset {offset}")
    size = max(parse_header(head).size, 0)
    at = offset + NEEDLE_HEADER_SIZE + size + CHECKSUM_SIZE
    raw = pread(8, at)
    if len(raw) < 8:
        raise Corrupted(f"needle at offset {offset} is cut short before its timestamp")
    return int.from_bytes(raw, "big")


def _read_append_at_ns(pread, version: int, offset: int, name: str) -> int:
    """Go's Volume.readAppendAtNs: the whole record is read and parsed (a body that does not
    parse fails the search, in Go's words), then its AppendAtNs (0 before v3)."""
    head = pread(NEEDLE_HEADER_SIZE, offset)
    if len(head) < NEEDLE_HEADER_SIZE:
        raise StorageError(f"ReadNeedleHeader {name} [{offset},{offset + NEEDLE_HEADER_SIZE}): EOF")
    h = parse_header(head)
    length = body_length(h.size, version)
    if length <= 0:
        return 0
    body = pread(length, offset + NEEDLE_HEADER_SIZE)
    if len(body) < length:
        raise StorageError(f"ReadNeedleBody offset {offset}, bodyLength {length}: EOF")
    got = read_body(h.id, h.size, body, version)
    if got.error is not None:
        raise StorageError(f"ReadNeedleBody offset {offset}, bodyLength {length}: {got.error}")
    return got.append_at_ns


def locate_since(v, since_ns: int) -> int | None:
    """Byte offset of the first record appended after `since_ns`, None if none was."""
    codec: IdxCodec = v.codec
    es = codec.entry_size
    size = v.idx_size
    if size % es:
        raise StorageError(f"unexpected file {v.idx_path} size: {size}")
    count = size // es
    idx_fd = v._idx_fd

    def row_offset(i: int) -> int:
        raw = os.pread(idx_fd, es, i * es)
        if len(raw) < es:
            raise StorageError(f"read entry {i}: EOF")
        return codec.decode(raw).offset

    def ts(offset_units: int) -> int:
        return _read_append_at_ns(v._pread, v.version, offset_units * PADDING_SIZE, v.dat_path)

    lo, hi = 0, count
    while lo < hi:
        m = (lo + hi) // 2
        off = row_offset(m)
        if off == 0:
            left, left_ts = m, 0
            left_off = 0
            while left_off == 0:
                left -= 1
                if left < 0:
                    break
                left_off = row_offset(left)
            if left_off:
                left_ts = ts(left_off)
            right, right_off, right_ts = m, 0, 0
            while right_off == 0:
                right += 1
                if right >= count:
                    break
                right_off = row_offset(right)
            if right_off:
                right_ts = ts(right_off)
            if right_ts <= since_ns:
                lo = right
                if lo == count:
                    return None
                continue
            if since_ns < left_ts:
                hi = left + 1
                continue
            return right_off * PADDING_SIZE
        try:
            m_ts = ts(off)
        except StorageError as exc:
            raise StorageError(f"read entry {m} offset {off * PADDING_SIZE}: {exc}") from None
        if m_ts <= since_ns:
            lo = m + 1
        else:
            hi = m
    if lo == count:
        return None
    return row_offset(lo) * PADDING_SIZE


@dataclasses.dataclass(frozen=True, slots=True)
class ScannedRecord:
    offset: int
    header: bytes  # the 16 header bytes
    body: bytes  # everything after the header up to the next record
    id: int
    cookie: int
    size: int


def scan_records(fd: int, version: int, start: int, end: int) -> Iterator[ScannedRecord]:
    """Records in `[start, end)` of a `.dat` opened as `fd`; stops at `end` or a torn record."""
    pos = start
    while pos + NEEDLE_HEADER_SIZE <= end:
        header = os.pread(fd, NEEDLE_HEADER_SIZE, pos)
        if len(header) < NEEDLE_HEADER_SIZE:
            return
        h = parse_header(header)
        rest = body_length(h.size, version)
        if h.size < 0 or pos + NEEDLE_HEADER_SIZE + rest > end:
            return
        body = os.pread(fd, rest, pos + NEEDLE_HEADER_SIZE)
        if len(body) < rest:
            return
        yield ScannedRecord(pos, header, body, h.id, h.cookie, h.size)
        pos += NEEDLE_HEADER_SIZE + rest


def last_append_at_ns(idx_path: str, dat_path: str, version: int, codec: IdxCodec) -> int:
    """AppendAtNs of the record the last `.idx` row points at (0 for v1/v2 or an empty index)."""
    if version < VERSION3:
        return 0
    es = codec.entry_size
    size = os.path.getsize(idx_path)
    if size == 0:
        return 0
    if size % es:
        raise StorageError(f"unexpected idx file {idx_path} size: {size}")
    with open(idx_path, "rb") as f:
        f.seek(size - es)
        entry = codec.decode(f.read(es))
    if entry.offset == 0:
        return 0
    fd = os.open(dat_path, os.O_RDONLY)
    try:
        return append_at_ns_at(lambda n, off: os.pread(fd, n, off), version, entry.offset * PADDING_SIZE)
    finally:
        os.close(fd)
