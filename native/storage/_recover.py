"""Crash recovery of a writable volume's tail, before it is loaded.

An append writes the record to `.dat`, then its row to `.idx`, and is acknowledged after both
(after both are fsynced when it asks for `fsync`). A process killed in between leaves a record
(whole or cut) that no row names, or a row cut short; a power loss can also keep a row whose
record never reached the disk, or a record whose pieces did not all land. None of that was
acknowledged durably: every write acknowledged with `fsync` is on disk whole with its row, and
so is everything appended before it.

`plan_tail_repair` finds the torn tail: a cut trailing `.idx` row, then, from the last row
backwards, every row whose record is not whole (past the end of `.dat`, or torn: another id or
size in its header or a CRC that does not match, with a piece of the record that a lost sector
left zero), and the `.dat` bytes after the last record the kept rows name. Whole records there
(header, size and CRC good, with data) get their rows back instead of being cut: rows a damaged
`.idx` block lost must not cost the records they named.

Why torn needs the zeros: a record can be written wrong on purpose (WriteNeedleBlob stores the
blob it is given, and Go 4.48 keeps such a record at a volume's end when it loads it: its check
compares the header's size and where the file ends, not the id or the CRC), or rot on disk;
neither is a crash's leftover, and cutting it would lose an acknowledged write (or bring back the
version it overwrote). What a crash leaves instead is sectors that never reached the disk, which
a file system reads back as zeros where the file grew. So a record is cut only when it is past
the end of `.dat` or its check fails with a sector-aligned piece of it (4 bytes or more) all
zero; any other record stays, and Go's load check decides as Go does (a bad CRC fails reads). Cutting them leaves the volume as it was after its last whole append, which Go's load-time
check (`_integrity`) accepts, so the volume loads writable in weedpy and in Go. The walk stops at
the first whole record: a damaged record further back is not a torn append, is kept, and its
reads fail the CRC check rather than serve wrong bytes.

`Volume.load` repairs a writable volume this way. `repair_directory` does it for files no
process has open: proxy mode runs it before it starts (or restarts) its Go backend, which
would otherwise serve a volume with a torn `.dat` tail read-only and not load one with a cut
`.idx` row at all.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

from ._crc import crc32c_update, crc_matches
from ._errors import Corrupted, StorageError
from ._idx import IdxCodec, IdxEntry
from ._needle import decode_needle, parse_header
from ._names import parse_volume_base
from ._superblock import SuperBlock
from ._types import CHECKSUM_SIZE, DATA_SIZE_SIZE, NEEDLE_HEADER_SIZE, PADDING_SIZE, SUPER_BLOCK_SIZE, VERSION1, actual_size
from ._vif import load_volume_info

__all__ = ["TailRepair", "plan_tail_repair", "repair_volume_files", "repair_directory"]

log = logging.getLogger("weedpy.storage")

Pread = Callable[[int, int], bytes]
_WHOLE_READ = 4 << 20  # records up to this size are decoded whole; larger ones CRC-checked in chunks
SECTOR = 512  # what a disk writes atomically: a power loss keeps or loses whole sectors
_MIN_ZERO_PIECE = 4  # shorter zero pieces at a record's edges are as likely to be its own bytes
# A crash leaves one append in flight per volume (kill -9), or what the kernel had not written back
# yet (power loss). A tail larger than this is not taken for a torn append: the volume is left as
# it is (read-only by the load check) for an operator to look at, rather than cut.
MAX_CUT_BYTES = 256 << 20
MAX_DROPPED_ROWS = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class TailRepair:
    idx_size: int  # keep this many `.idx` bytes
    dat_size: int  # keep this many `.dat` bytes
    dropped_rows: int  # whole rows whose record was not whole
    torn_row_bytes: int  # bytes of a cut trailing row
    dat_cut: int  # `.dat` bytes after the last record named
    rows: bytes = b""  # rows rebuilt for whole records past the kept ones, appended after `idx_size`
    rows_rebuilt: int = 0  # how many rows `rows` holds

    @property
    def too_large(self) -> bool:
        """More than a crash leaves: not cut (see MAX_CUT_BYTES)."""
        return self.dat_cut > MAX_CUT_BYTES or self.dropped_rows > MAX_DROPPED_ROWS

    def describe(self) -> str:
        return (f"dropped {self.dropped_rows} index rows without a whole record, {self.torn_row_bytes} bytes of a "
                f"torn index row and {self.dat_cut} .dat bytes no row names"
                + (f"; rebuilt {self.rows_rebuilt} rows of whole records" if self.rows else ""))


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
    rebuilt: list[bytes] = []
    if dat_keep < dat_size:
        dat_keep = _whole_records_after(dat_keep, dat_size, codec, version, pread, rebuilt)
    if keep == rows and not torn and dat_keep == dat_size and not rebuilt:
        return None
    return TailRepair(keep * es, dat_keep, rows - keep, torn, dat_size - dat_keep, b"".join(rebuilt), len(rebuilt))


def _whole_records_after(pos: int, dat_size: int, codec: IdxCodec, version: int, pread: Pread, rows: list[bytes]) -> int:
    """Walk `.dat` from `pos` (past every record a kept row names) and append a row for each
    whole record with data (its header id and size, a matching CRC); stop at the first other
    one (a torn or zero-filled piece, or an empty record: a deletion and an empty write look
    alike there). Returns where the whole records end: what is kept of `.dat`.

    Rows a damaged `.idx` lost then cost no record (a bad block at the index's end used to cut
    every record after it, acknowledged and fsynced ones included), and a crash's in-flight
    append whose record is whole but whose row is not keeps the record, as the rules allow.
    """
    while pos + NEEDLE_HEADER_SIZE <= dat_size:
        h = parse_header(pread(NEEDLE_HEADER_SIZE, pos))
        if h.id == 0 or h.size <= 0:
            break
        e = IdxEntry(h.id, pos // PADDING_SIZE, h.size)
        length = actual_size(h.size, version)
        if pos + length > dat_size or pos % PADDING_SIZE:
            break
        if length <= _WHOLE_READ:
            try:
                if decode_needle(pread(length, pos), version, expected_size=h.size).id != h.id:
                    break
            except Corrupted:
                break
        elif not _large_checks(e, pos, version, pread):
            break
        rows.append(codec.encode(e.key, e.offset, e.size))
        pos += length
    return pos


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
    """False when the record is cut off by the end of `.dat` or torn (module docstring)."""
    size = max(e.size, 0)
    length = actual_size(size, version)
    if at + length > dat_size:
        return False
    if e.size < 0 or size == 0:
        head = pread(NEEDLE_HEADER_SIZE, at)
        if len(head) < NEEDLE_HEADER_SIZE:
            return False
        h = parse_header(head)
        if _damaged_row(e, head):
            return False
        return h.id == e.key or not _zero_piece(head, at)
    if length <= _WHOLE_READ:
        raw = pread(length, at)
        if len(raw) < length:
            return False
        if _damaged_row(e, raw):
            return False
        try:
            if decode_needle(raw, version, expected_size=size).id == e.key:
                return True
        except Corrupted:
            pass
        return not _zero_piece(raw, at)
    return _large_whole(e, at, length, version, pread)


def _damaged_row(e: IdxEntry, head: bytes) -> bool:
    """The record's header names the row's key with another size: no crash writes that (the
    row and the header come from one needle), a damaged `.idx` does. The row is dropped and,
    the record being whole, rebuilt from it (`_whole_records_after`)."""
    h = parse_header(head)
    return h.id == e.key and h.size != max(e.size, 0)


def _large_whole(e: IdxEntry, at: int, length: int, version: int, pread: Pread) -> bool:
    if _damaged_row(e, pread(NEEDLE_HEADER_SIZE, at)):
        return False
    if _large_checks(e, at, version, pread):
        return True
    pos, end = at, at + length
    while pos < end:
        chunk = pread(min(_WHOLE_READ, end - pos), pos)
        if not chunk:
            return False
        if _zero_piece(chunk, pos):
            return False
        pos += len(chunk)
    return True


def _large_checks(e: IdxEntry, at: int, version: int, pread: Pread) -> bool:
    """The header names the row's id and size, and the data's CRC matches (read in chunks)."""
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


def _zero_piece(data: bytes, start: int) -> bool:
    """Whether `data` (the file's bytes from offset `start`) has a piece between sector
    boundaries, of at least _MIN_ZERO_PIECE bytes, that is all zero: a sector a crash lost."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        end = min(len(view), pos + SECTOR - (start + pos) % SECTOR)
        piece = view[pos:end]
        if len(piece) >= _MIN_ZERO_PIECE and not any(piece):
            return True
        pos = end
    return False


def repair_volume_files(dat_path: str, idx_path: str, width: int) -> TailRepair | None:
    """Cut a crash's torn tail off a volume's files that no process has open (fsynced); None
    when they end at a whole append. Reads only the last `.idx` row unless something is torn."""
    dat_fd = os.open(dat_path, os.O_RDWR)
    try:
        idx_fd = os.open(idx_path, os.O_RDWR)
        try:
            return _repair_fds(dat_fd, idx_fd, width)
        finally:
            os.close(idx_fd)
    finally:
        os.close(dat_fd)


def _repair_fds(dat_fd: int, idx_fd: int, width: int) -> TailRepair | None:
    dat_size = os.fstat(dat_fd).st_size
    if dat_size < SUPER_BLOCK_SIZE:
        return None
    head = os.pread(dat_fd, SUPER_BLOCK_SIZE, 0)
    extra = SuperBlock.extra_size_of(head)
    sb = SuperBlock.decode(os.pread(dat_fd, SUPER_BLOCK_SIZE + extra, 0) if extra else head)
    codec = IdxCodec.for_width(width)
    es = codec.entry_size
    idx_size = os.fstat(idx_fd).st_size

    def pread(length: int, offset: int) -> bytes:
        return os.pread(dat_fd, length, offset)

    if idx_size % es == 0:  # the usual state: whole rows, the last one naming the last whole record
        if idx_size == 0 and dat_size == sb.block_size:
            return None
        if idx_size:
            last = codec.decode(os.pread(idx_fd, es, idx_size - es))
            if (last.offset and last.actual_offset + actual_size(max(last.size, 0), sb.version) == dat_size
                    and _whole(last, codec, dat_size, sb.version, pread)):
                return None
    raw = b"".join(_chunks(idx_fd, idx_size))
    plan = plan_tail_repair(raw, codec, dat_size, sb.version, pread, sb.block_size)
    if plan is None or plan.too_large:
        return plan
    if plan.idx_size < idx_size or plan.rows:
        os.ftruncate(idx_fd, plan.idx_size)
        if plan.rows:
            os.pwrite(idx_fd, plan.rows, plan.idx_size)
        os.fsync(idx_fd)
    if plan.dat_size < dat_size:
        os.ftruncate(dat_fd, plan.dat_size)
        os.fsync(dat_fd)
    return plan


def _chunks(fd: int, size: int) -> list[bytes]:
    out, pos = [], 0
    while pos < size:
        chunk = os.pread(fd, min(size - pos, 64 << 20), pos)
        if not chunk:
            break
        out.append(chunk)
        pos += len(chunk)
    return out


def repair_directory(directory: str, idx_directory: str | None = None) -> dict[str, TailRepair]:
    """`repair_volume_files` for every volume of a data directory that a loader would open
    writable: its `.vif` records the offset width and no read-only mark or remote file, and no
    compaction, erasure coding or unfinished creation is in the way. Returns what was cut, by
    base name; a volume that cannot be read is left to the loader (logged)."""
    done: dict[str, TailRepair] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return done
    present = set(names)
    for name in names:
        if not name.endswith(".dat"):
            continue
        base = name[:-4]
        try:
            parse_volume_base(base)
        except ValueError:
            continue
        if any(base + ext in present for ext in (".cpc", ".cpd", ".note", ".ecx")):
            continue
        idx_path = os.path.join(directory, base + ".idx")
        if not os.path.exists(idx_path) and idx_directory:
            idx_path = os.path.join(idx_directory, base + ".idx")
        try:
            info = load_volume_info(os.path.join(directory, base + ".vif"))
            if (info is None or info.bytes_offset not in (4, 5) or info.read_only or info.has_remote_file
                    or not os.path.exists(idx_path)):
                continue
            plan = repair_volume_files(os.path.join(directory, name), idx_path, info.bytes_offset)
        except (OSError, ValueError, StorageError) as exc:
            log.warning("volume %s in %s: crash recovery skipped: %s", base, directory, exc)
            continue
        if plan is not None and plan.too_large:
            log.warning("volume %s in %s: not cutting a tail larger than a crash leaves: %s", base, directory,
                        plan.describe())
        elif plan is not None:
            log.warning("volume %s in %s: recovering from a crash: %s", base, directory, plan.describe())
            done[base] = plan
    return done
