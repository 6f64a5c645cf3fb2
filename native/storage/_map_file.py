"""The map file: a volume's resolved needle map saved beside its `.idx` (`<base>.nmx`), which
every process serving the volume maps read-only, so the bulk of the map lives once, in the page
cache, however many processes read it.

Layout (little-endian), 256-byte header then three columns:

    magic "WPYNMAP\\0", format u32, flags u32 (1: offsets are u64), .idx entry size u32,
    super block version u32, .idx bytes covered u64, CRC-32C of those bytes u32,
    CRC-32 of the columns u32, entries u64, deleted entries u64,
    writable-map counters 6 x u64, read-only-map counters 6 x u64,
    [Go's read-only walk counters 6 x u64, CRC-32 of the header up to here u32]
    keys u64[n] | offsets u32[n] or u64[n] | sizes i32[n]

The file says which prefix of the `.idx` it resolves and carries that prefix's checksum: it is
used only while the `.idx` still starts with exactly those bytes (the `.idx` only grows by
appends; a compaction, a copy or a rewrite changes the prefix and the file is rebuilt). The
columns' own checksum catches a file torn by a crash, so it is written without fsync: written
under a temporary name, then renamed over the old one (readers keep the inode they mapped).
Go ignores the file; weedpy removes it with the volume.

Reading needs no numpy: the columns are memoryviews over the mapping, which is all a map's base
bisects (a restart whose map files are current never loads numpy). A volume loaded read-only
takes its counters from Go's reverse walk of the index (`_map_walk`, a bulk replay with
numpy), so the walk's result for the prefix the file covers is kept in the header too: written
with the file, or added to a file written by a writable load (`record_walk`, 52 bytes in place,
under their own checksum: a torn or stale record is ignored and the walk run again).
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct
import sys
import threading
import zlib

from ._crc import crc32c
from ._map_types import MapCounters, Resolved
from ._names import MAP_FILE_EXT

__all__ = ["MAP_FILE_EXT", "MapFile", "open_map_file", "write_map_file"]

_MAGIC = b"WPYNMAP\x00"
_FORMAT = 1
_WIDE_OFFSETS = 1
_HEADER = struct.Struct("<8s4IQ2I2Q6Q6Q")
_WALK = struct.Struct("<6QI")  # after _HEADER: walk counters, CRC-32 of the header so far
_HEADER_SIZE = 256
_LITTLE = sys.byteorder == "little"


@dataclasses.dataclass(frozen=True, slots=True)
class MapFile:
    """A mapped map file: the resolved map (memoryview columns over the mapping) and the `.idx`
    bytes it covers. `mapping` must outlive every view taken from `resolved`."""

    resolved: Resolved
    idx_bytes: int
    mapping: mmap.mmap
    head: bytes  # the header's fixed part, which a walk record is checked against
    walk: MapCounters | None = None  # Go's read-only walk of the covered prefix, when recorded

    def close(self) -> None:
        """Release the column views and unmap (only for a file nothing else uses yet)."""
        for c in (self.resolved.keys, self.resolved.offsets, self.resolved.sizes):
            c.release()
        self.mapping.close()


def _columns_crc(*cols) -> int:
    crc = 0
    for c in cols:
        crc = zlib.crc32(c, crc)
    return crc


def _idx_crc(idx_buf: bytes, covered: int) -> int:
    return crc32c(idx_buf if covered == len(idx_buf) else idx_buf[:covered])


def _walk_record(head: bytes, walk: MapCounters) -> bytes:
    counters = dataclasses.astuple(walk)
    return _WALK.pack(*counters, zlib.crc32(struct.pack("<6Q", *counters), zlib.crc32(head)))


def write_map_file(
    path: str, r: Resolved, *, idx_buf: bytes, idx_bytes: int, entry_size: int, version: int,
    walk: MapCounters | None = None,
) -> MapFile | None:
    """Save `r` (resolved from the first `idx_bytes` of `idx_buf`; `walk`: Go's read-only walk
    of them, if known) and map it; None when the file cannot be written (a read-only directory,
    a full disk) or on a big-endian host."""
    if not _LITTLE:
        return None
    import numpy as np  # numpy: `r` comes from a bulk resolve, which has loaded it

    wide = r.offsets.itemsize == 8
    keys, offsets, sizes = (np.ascontiguousarray(c) for c in (r.keys, r.offsets, r.sizes))
    header = _HEADER.pack(
        _MAGIC, _FORMAT, _WIDE_OFFSETS if wide else 0, entry_size, version,
        idx_bytes, _idx_crc(idx_buf, idx_bytes), _columns_crc(keys, offsets, sizes), len(keys), r.deleted,
        *dataclasses.astuple(r.memory), *dataclasses.astuple(r.sorted),
    )
    if walk is not None:
        header += _walk_record(header, walk)
    header = header.ljust(_HEADER_SIZE, b"\0")
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    mapped = None
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            for c in (keys, offsets, sizes):
                f.write(memoryview(c).cast("B"))
        # mapped before the rename, so these are the bytes just written (the checksum was just
        # computed from them: no second pass over the columns)
        mapped = _map(tmp, None, entry_size, version, verify=False)
        if mapped is None:
            raise OSError(f"cannot map {tmp}")
        os.replace(tmp, path)
    except OSError:
        if mapped is not None:
            mapped.close()
        try:
            os.remove(tmp)
        except OSError:
            pass
        return None
    return mapped


def open_map_file(path: str, idx_buf: bytes, entry_size: int, version: int) -> MapFile | None:
    """The map file at `path` if it is sound and resolves a prefix of `idx_buf` (the whole
    `.idx`) at this entry size and super block version; None otherwise."""
    if not _LITTLE:
        return None
    return _map(path, idx_buf, entry_size, version)


def record_walk(path: str, mf: MapFile, walk: MapCounters) -> None:
    """Keep `walk` (Go's read-only walk of the prefix `mf` covers) in the file's header, so the
    next read-only load needs no walk. Best effort: if the file was replaced since `mf` was
    read, the record does not match the new header and is ignored."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return
    try:
        os.pwrite(fd, _walk_record(mf.head, walk), _HEADER.size)
    except OSError:
        pass
    finally:
        os.close(fd)


def _map(path: str, idx_buf: bytes | None, entry_size: int, version: int, *, verify: bool = True) -> MapFile | None:
    """The file mapped, if its header fits; `idx_buf`: the `.idx` whose prefix it must resolve;
    `verify`: check the columns' checksum (off only for the file this process just wrote)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < _HEADER_SIZE:
            return None
        raw = os.pread(fd, _HEADER.size + _WALK.size, 0)
        head = raw[:_HEADER.size]
        fields = _HEADER.unpack(head)
        magic, fmt, flags, es, ver, idx_bytes, idx_crc, body_crc, n, deleted = fields[:10]
        memory, sorted_ = MapCounters(*fields[10:16]), MapCounters(*fields[16:22])
        owidth = 8 if flags & _WIDE_OFFSETS else 4
        if (magic, fmt, es, ver) != (_MAGIC, _FORMAT, entry_size, version) or size != _HEADER_SIZE + n * (12 + owidth):
            return None
        if idx_buf is not None and (
            idx_bytes > len(idx_buf) or idx_bytes % entry_size or _idx_crc(idx_buf, idx_bytes) != idx_crc
        ):
            return None
        mapping = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    except (OSError, ValueError, struct.error):
        return None
    finally:
        os.close(fd)
    if verify:
        with memoryview(mapping) as whole, whole[_HEADER_SIZE:] as columns:
            sound = zlib.crc32(columns) == body_crc
    else:
        sound = True
    if not sound:
        mapping.close()
        return None
    at = _HEADER_SIZE
    with memoryview(mapping) as whole:
        keys = whole[at:at + 8 * n].cast("Q")
        at += 8 * n
        offsets = whole[at:at + owidth * n].cast("Q" if owidth == 8 else "I")
        at += owidth * n
        sizes = whole[at:at + 4 * n].cast("i")
    walk: MapCounters | None = MapCounters(*_WALK.unpack(raw[_HEADER.size:])[:6])
    if _walk_record(head, walk) != raw[_HEADER.size:]:  # none recorded (zeros), torn, or another header's
        walk = None
    return MapFile(Resolved(keys, offsets, sizes, memory, sorted_, deleted), idx_bytes, mapping, head, walk)
