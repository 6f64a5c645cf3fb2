"""Volume scrubbing as weed 4.48 does it (Go's volume_checking.go, idx/check.go, needle_read.go).

Two levels, both reporting Go's texts so `ScrubVolume` details read the same:

- index (`check_index`): every `.idx` row is counted; rows that point at overlapping `.dat`
  extents are reported, and a file that is not a whole number of rows is;
- data (`scrub_volume`): the index check, then every row's record is read and parsed the way
  Go's `Needle.ReadData` parses it (size against the index, data-size and metadata bounds, CRC).
  Tombstone rows are read as the zero-size records they are on disk (4.48 reads them too);
  offset-0 tombstones (deletes on a remote-tiered volume) have no record and are only counted.
  4.48 no longer compares the `.dat` size with the records read (the 4.44 source did).

The `.idx` is read from the file on disk (as Go opens it), under the volume's write lock so no
append is torn; records are then read from a duplicate of the `.dat` descriptor, so a
compaction committed meanwhile cannot swap the file under the scan.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._crc import crc32c, crc_matches
from ._errors import StorageError
from ._idx import IdxCodec
from ._types import (
    CHECKSUM_SIZE,
    DATA_SIZE_SIZE,
    NEEDLE_HEADER_SIZE,
    PADDING_SIZE,
    SUPER_BLOCK_SIZE,
    TIMESTAMP_SIZE,
    VERSION1,
    VERSION3,
    actual_size,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["check_index", "pin_for_scrub", "read_bytes_error", "scrub_index", "scrub_records", "scrub_volume", "ScrubResult"]

ScrubResult = tuple[int, list[str]]  # (rows counted, Go-style error texts)

_FLAG_NAME, _FLAG_MIME, _FLAG_LAST_MODIFIED, _FLAG_TTL, _FLAG_PAIRS = 0x02, 0x04, 0x08, 0x10, 0x20
_CORRUPTED = "needle data corrupted"
_MAX_VOLUME_4 = 32 << 30  # Go's MaxPossibleVolumeSize with 4-byte offsets


def _actual_sizes(sizes: np.ndarray, version: int) -> np.ndarray:
    """Go's GetActualSize over an array of int32 sizes (negative ones included, as Go computes)."""
    import numpy as np  # numpy: loaded by the first scrub, not at start-up

    tail = CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0)
    base = NEEDLE_HEADER_SIZE + sizes.astype(np.int64) + tail
    return base + (PADDING_SIZE - base % PADDING_SIZE)


def check_index(buf: bytes, file_size: int, version: int, codec: IdxCodec) -> ScrubResult:
    """Go's idx.CheckIndexFile over a whole `.idx`/`.ecx`: (rows, errors)."""
    import numpy as np  # numpy: loaded by the first scrub, not at start-up

    cols = codec.columns(buf)
    count = len(cols)
    errs: list[str] = []
    if count > 1:
        keys = np.frombuffer(cols.keys, dtype=np.uint64)
        offsets = np.frombuffer(cols.offsets, dtype=np.uint64).astype(np.int64) * PADDING_SIZE
        sizes = np.frombuffer(cols.sizes, dtype=np.int32)
        order = np.lexsort((sizes, offsets))  # by offset, then size (Go's Compare)
        # offset-0 tombstones (remote-tier deletes) occupy no extent: they cannot overlap
        order = order[~((offsets[order] == 0) & (sizes[order] < 0))]
        starts = offsets[order]
        lengths = _actual_sizes(sizes[order], version)
        ends = starts + np.where(lengths != 0, lengths - 1, 0)
        for i in np.nonzero(starts[1:] <= ends[:-1])[0] + 1:
            cur, last = order[i], order[i - 1]
            errs.append(
                f"needle {int(keys[cur])} (#{int(cur) + 1}) at [{int(starts[i])}-{int(ends[i])}] overlaps "
                f"needle {int(keys[last])} at [{int(starts[i - 1])}-{int(ends[i - 1])}]"
            )
    if count * codec.entry_size != file_size:
        errs.append(f"expected an index file of size {file_size}, got {count * codec.entry_size}")
    return count, errs


def read_bytes_error(raw: bytes, offset: int, size: int, version: int, offset_width: int = 5) -> str | None:
    """Why Go's `Needle.ReadBytes(raw, offset, size, version)` fails, in Go's words, or None.

    `raw` holds at least `actual_size(size)` bytes. A header size that differs from `size` is
    the bare "size mismatch" Go returns for 4-byte offsets below 32 GiB (its caller retries
    32 GiB further), the detailed text otherwise.
    """
    header_size = int.from_bytes(raw[12:16], "big", signed=True)
    if header_size != size:
        if offset_width == 4 and offset < _MAX_VOLUME_4:
            return "size mismatch"
        nid = int.from_bytes(raw[4:12], "big")
        return f"size mismatch: entry not found: offset {offset} found id {nid:x} size {header_size}, expected size {size}"
    # a view, not a copy: a scrub runs beside the serving thread, and every copy of a large
    # record is time the GIL stays taken (only the data is copied, for the CRC)
    body = memoryview(raw)[NEEDLE_HEADER_SIZE:NEEDLE_HEADER_SIZE + max(size, 0)]
    if version == VERSION1:
        data = body
    else:
        data, problem = _parse_v2_body(body)
        if problem is not None:
            return problem
    tail = raw[NEEDLE_HEADER_SIZE + max(size, 0):NEEDLE_HEADER_SIZE + max(size, 0) + CHECKSUM_SIZE]
    if data:
        stored = int.from_bytes(tail[0:CHECKSUM_SIZE], "big")
        computed = crc32c(data)
        if not crc_matches(stored, computed):
            nid = int.from_bytes(raw[4:12], "big")
            return (f"invalid CRC for needle {nid:x} (got {computed:08x}, want {stored:08x}), "
                    f"data on disk corrupted: {_CORRUPTED}")
    return None


def _parse_v2_body(body: memoryview) -> tuple[memoryview | bytes, str | None]:
    """(data, error) of a v2/v3 body, with Go's numbered out-of-range errors."""
    n = len(body)
    if n == 0:
        return b"", None
    data_size = int.from_bytes(body[0:DATA_SIZE_SIZE], "big")
    i = DATA_SIZE_SIZE
    if data_size + i > n:
        return b"", f"index out of range 1: {_CORRUPTED}"
    data = body[i:i + data_size]
    i += data_size
    if i >= n:
        return data, None
    flags = body[i]
    i += 1
    for flag, number in ((_FLAG_NAME, 2), (_FLAG_MIME, 3)):
        if i < n and flags & flag:
            length = body[i]
            i += 1
            if length + i > n:
                return data, f"index out of range {number}: {_CORRUPTED}"
            i += length
    for flag, width, number in ((_FLAG_LAST_MODIFIED, 5, 4), (_FLAG_TTL, 2, 5)):
        if i < n and flags & flag:
            if width + i > n:
                return data, f"index out of range {number}: {_CORRUPTED}"
            i += width
    if i < n and flags & _FLAG_PAIRS:
        if 2 + i > n:
            return data, f"index out of range 6: {_CORRUPTED}"
        length = int.from_bytes(body[i:i + 2], "big")
        i += 2
        if length + i > n:
            return data, f"index out of range 7: {_CORRUPTED}"
    return data, None


def _read_idx_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _open_index(v) -> tuple[bytes, str | None]:
    """Go's Volume.openIndex: the `.idx` bytes, or why it cannot be scrubbed. The write lock
    held, and the view caught up before it was taken: a catch-up that finds the volume
    reopened waits for that lock (the scan's own)."""
    try:
        buf = _read_idx_file(v.idx_path)
    except OSError as exc:
        return b"", f"failed to open IDX file {v.idx_path} for volume {v.id}: {exc}"
    if not buf and v._dat_size > SUPER_BLOCK_SIZE:
        # pre-allocated volumes without data may have an empty index; any other may not
        return b"", f"zero-size IDX file for volume {v.id} with store size {v._dat_size}"
    return buf, None


def _catch_up(v) -> str | None:
    """`v._follow()`, before the write lock (see `_open_index`): None, or why it failed (the
    volume removed meanwhile, a reopen that failed), which a scan reports as its problem as it
    did when the catch-up ran inside `pinned_dat`, not as an exception out of the rpc."""
    try:
        v._follow()
    except StorageError as exc:
        return str(exc)
    return None


def scrub_index(v) -> ScrubResult:
    """Go's Volume.ScrubIndex."""
    _catch_up(v)  # failed: the `.idx` is still read by its name, as before the catch-up was here
    with v._write_lock:
        buf, problem = _open_index(v)
    if problem is not None:
        return 0, [problem]
    return check_index(buf, len(buf), v.version, v.codec)


def scrub_volume(v) -> ScrubResult:
    """Go's Volume.Scrub (FULL, LOCAL and READS modes for a plain volume)."""
    problem = _catch_up(v)
    if problem is not None:
        return 0, [problem]
    with v._write_lock:
        buf, problem = _open_index(v)
        if problem is None:
            try:
                pread, release = _pinned_reader(v)
            except StorageError as exc:  # unmounted meanwhile
                problem = str(exc)
    if problem is not None:
        return 0, [problem]
    try:
        return scrub_records(buf, pread, v.id, v.version, v.codec)
    finally:
        release()


def pin_for_scrub(v) -> tuple[int, int, int] | str:
    """What a scrub in another process reads, taken as `scrub_volume` takes it (under the
    write lock): (`.idx` fd, its size now, a duplicate `.dat` fd), or why it cannot be
    scrubbed. The caller closes both fds. Not for remote-tiered volumes."""
    problem = _catch_up(v)
    if problem is not None:
        return problem
    with v._write_lock:
        try:
            idx_fd = os.open(v.idx_path, os.O_RDONLY)
        except OSError as exc:
            return f"failed to open IDX file {v.idx_path} for volume {v.id}: {exc}"
        try:
            size = os.fstat(idx_fd).st_size
            if not size and v._dat_size > SUPER_BLOCK_SIZE:
                raise StorageError(f"zero-size IDX file for volume {v.id} with store size {v._dat_size}")
            dat_fd, _ = v._pin_dat()
        except (OSError, StorageError) as exc:  # OSError: fstat; StorageError: unmounted meanwhile
            os.close(idx_fd)
            return str(exc)
    return idx_fd, size, dat_fd


def scrub_records(buf: bytes, pread: Callable[[int, int], bytes], volume_id: int, version: int,
                  codec: IdxCodec) -> ScrubResult:
    """The index check, then every row's record read through `pread` and checked. Needs no
    `Volume`: a scrub process runs it too (native/maintenance_child.py)."""
    _, errs = check_index(buf, len(buf), version, codec)
    return _scrub_records(volume_id, version, codec, buf, pread, errs), errs


def _pinned_reader(v) -> tuple[Callable[[int, int], bytes], Callable[[], None]]:
    """A pread over the `.dat` as it is now, and its release. Remote-tiered volumes read
    through their own backend (they are never compacted)."""
    if getattr(v, "is_remote", False):
        return v.read_at, lambda: None
    fd, _ = v._pin_dat()
    return (lambda length, offset: os.pread(fd, length, offset)), (lambda: os.close(fd))


def _scrub_records(volume_id: int, version: int, codec: IdxCodec, buf: bytes, pread: Callable[[int, int], bytes],
                   errs: list[str]) -> int:
    width = codec.offsets.width
    count = 0
    for e in codec.iter_entries(buf):
        count += 1
        if e.offset == 0 and e.size < 0:
            continue  # a remote-tier delete: no record in .dat
        size = max(e.size, 0)  # a tombstone row's record carries Size 0
        at = e.actual_offset
        problem = _read_record_error(pread, at, size, version, width)
        if problem == "size mismatch":  # 4-byte offsets: Go retries 32 GiB further
            problem = _read_record_error(pread, at + _MAX_VOLUME_4, size, version, width)
        if problem is not None:
            errs.append(f"failed to read needle {e.key} on volume {volume_id}: {problem}")
    return count


def _read_record_error(pread: Callable[[int, int], bytes], offset: int, size: int, version: int, width: int) -> str | None:
    length = actual_size(size, version)
    try:
        raw = pread(length, offset)
    except (OSError, StorageError) as exc:  # a remote backend's failure is already worded
        return str(exc)
    if len(raw) < length:
        return "EOF"  # Go's ReaderAt reports any short read as io.EOF
    return read_bytes_error(raw, offset, size, version, width)
