"""EC index files: `.ecx` (live `.idx` rows sorted by key, written at encode time) and `.ecj`
(8-byte needle ids deleted since, appended at runtime). Blocking file helpers.

As in Go 4.48, `.ecx` is sealed while the volume serves: deletes only append to `.ecj` (and an
in-memory set). `fold_journal` (Go's RebuildEcxFile) writes the journal's tombstones into
`.ecx` and removes `.ecj`; rebuild and decode run it first.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._fileio import pread_cached
from .._idx import IdxCodec
from .._types import TOMBSTONE_SIZE

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "EcxRow",
    "ecx_dtype",
    "write_ecx_from_idx",
    "search_ecx",
    "read_ecj",
    "fold_journal",
    "iter_ecx",
    "has_live_needles",
    "write_idx_from_ecx",
]

EcxRow = tuple[int, int, int]  # (needle id, offset in 8-byte units, size; negative = deleted)


def ecx_dtype(offset_bytes: int) -> np.dtype:
    """One `.idx`/`.ecx` row as a numpy record (big-endian, 16 or 17 bytes, unaligned)."""
    import numpy as np  # numpy: loaded by the first EC index use, not at start-up

    if offset_bytes == 4:
        return np.dtype({"names": ["key", "off", "size"], "formats": [">u8", ">u4", ">i4"],
                         "offsets": [0, 8, 12], "itemsize": 16})
    return np.dtype({"names": ["key", "off", "hi", "size"], "formats": [">u8", ">u4", "u1", ">i4"],
                     "offsets": [0, 8, 12, 13], "itemsize": 17})


def _is_deleted(size: int) -> bool:
    return size < 0


def write_ecx_from_idx(idx_path: str, ecx_path: str, offset_bytes: int) -> int:
    """Go's WriteSortedFileFromIdx: the last state of every needle of `.idx`, live ones only,
    ascending by id. Returns the number of rows written."""
    import numpy as np  # numpy: loaded by the first EC index use, not at start-up

    dt = ecx_dtype(offset_bytes)
    with open(idx_path, "rb") as f:
        raw = f.read()
    n = len(raw) // dt.itemsize
    rows = np.frombuffer(raw, dtype=dt, count=n)
    keys = rows["key"].astype(np.uint64)
    # the last row of each key decides: unique over the reversed keys finds last occurrences
    rev = keys[::-1]
    uniq, first_in_rev = np.unique(rev, return_index=True)
    last = (n - 1 - first_in_rev) if n else first_in_rev
    chosen = rows[last]
    offsets = chosen["off"].astype(np.uint64)
    if offset_bytes == 5:
        offsets |= chosen["hi"].astype(np.uint64) << np.uint64(32)
    live = (offsets != 0) & (chosen["size"] >= 0)
    out = chosen[live]
    tmp = ecx_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out.tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, ecx_path)
    return int(live.sum()) if n else 0


def search_ecx(fd: int, size: int, needle_id: int, codec: IdxCodec, *,
               cached_only: bool = False) -> tuple[int, EcxRow] | None:
    """Binary search of a sorted index by pread: (row position, row), or None. `cached_only` (the
    event loop): every row from the page cache, BlockingIOError where one would come from the disk."""
    es = codec.entry_size
    lo, hi = 0, size // es
    read = pread_cached if cached_only else os.pread
    while lo < hi:
        mid = (lo + hi) // 2
        raw = read(fd, es, mid * es)
        if len(raw) != es:
            raise OSError(f"ecx read at {mid * es}: short read")
        key = int.from_bytes(raw[:8], "big")
        if key == needle_id:
            e = codec.decode(raw)
            return mid, (e.key, e.offset, e.size)
        if key < needle_id:
            lo = mid + 1
        else:
            hi = mid
    return None


def iter_ecx(path: str, codec: IdxCodec):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) % codec.entry_size:
        raise ValueError(f"read ecx {path}: unexpected EOF")
    for e in codec.iter_entries(raw):
        yield e.key, e.offset, e.size


def read_ecj(path: str) -> list[int]:
    """Needle ids of a deletion journal (a torn last id is ignored, as Go's loader does)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    return [int.from_bytes(raw[i:i + 8], "big") for i in range(0, len(raw) - 7, 8)]


def fold_journal(base: str, codec: IdxCodec) -> None:
    """Go's RebuildEcxFile: mark every journalled id deleted in `.ecx`, fsync, remove `.ecj`."""
    ecj = base + ".ecj"
    if not os.path.exists(ecj):
        return
    with open(ecj, "rb") as f:
        raw = f.read()
    if len(raw) % 8:
        raise ValueError("rebuild: read ecj: unexpected EOF")
    fd = os.open(base + ".ecx", os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        tomb = (TOMBSTONE_SIZE & 0xFFFFFFFF).to_bytes(4, "big")
        for i in range(0, len(raw), 8):
            found = search_ecx(fd, size, int.from_bytes(raw[i:i + 8], "big"), codec)
            if found is not None:
                os.pwrite(fd, tomb, found[0] * codec.entry_size + 8 + codec.offsets.width)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.remove(ecj)


def has_live_needles(ecx_path: str, codec: IdxCodec) -> bool:
    return any(not _is_deleted(size) for _, _, size in iter_ecx(ecx_path, codec))


def write_idx_from_ecx(base: str, idx_path: str, codec: IdxCodec) -> None:
    """Go's WriteIdxFileFromEcIndex: `.ecx` as is, then a tombstone row (offset 0) per `.ecj` id;
    written to a temporary file and renamed into place."""
    tmp = idx_path + ".tmp"
    with open(base + ".ecx", "rb") as f:
        body = f.read()
    tail = b"".join(codec.encode(k, 0, TOMBSTONE_SIZE) for k in read_ecj(base + ".ecj"))
    try:
        with open(tmp, "wb") as f:
            f.write(body)
            f.write(tail)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, idx_path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
