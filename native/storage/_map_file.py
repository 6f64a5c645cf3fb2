"""The map file: a volume's resolved needle map saved beside its `.idx` (`<base>.nmx`), which
every process serving the volume maps read-only, so the bulk of the map lives once, in the page
cache, however many processes read it.

Layout (little-endian), 256-byte header then three columns:

    magic "WPYNMAP\\0", format u32, flags u32 (1: offsets are u64), .idx entry size u32,
    super block version u32, .idx bytes covered u64, CRC-32C of those bytes u32,
    CRC-32 of the columns u32, entries u64, deleted entries u64,
    writable-map counters 6 x u64, read-only-map counters 6 x u64
    keys u64[n] | offsets u32[n] or u64[n] | sizes i32[n]

The file says which prefix of the `.idx` it resolves and carries that prefix's checksum: it is
used only while the `.idx` still starts with exactly those bytes (the `.idx` only grows by
appends; a compaction, a copy or a rewrite changes the prefix and the file is rebuilt). The
columns' own checksum catches a file torn by a crash, so it is written without fsync: written
under a temporary name, then renamed over the old one (readers keep the inode they mapped).
Go ignores the file; weedpy removes it with the volume.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct
import sys
import threading
import zlib

import numpy as np

from ._crc import crc32c
from ._map_build import Resolved
from ._map_types import MapCounters
from ._names import MAP_FILE_EXT

__all__ = ["MAP_FILE_EXT", "MapFile", "open_map_file", "write_map_file"]

_MAGIC = b"WPYNMAP\x00"
_FORMAT = 1
_WIDE_OFFSETS = 1
_HEADER = struct.Struct("<8s4IQ2I2Q6Q6Q")
_HEADER_SIZE = 256
_LITTLE = sys.byteorder == "little"


@dataclasses.dataclass(frozen=True, slots=True)
class MapFile:
    """A mapped map file: the resolved map (columns over the mapping) and the `.idx` bytes it
    covers. `mapping` must outlive every array taken from `resolved`."""

    resolved: Resolved
    idx_bytes: int
    mapping: mmap.mmap


def _columns_crc(*cols: memoryview | np.ndarray) -> int:
    crc = 0
    for c in cols:
        crc = zlib.crc32(c, crc)
    return crc


def _idx_crc(idx_buf: bytes, covered: int) -> int:
    return crc32c(idx_buf if covered == len(idx_buf) else idx_buf[:covered])


def write_map_file(path: str, r: Resolved, *, idx_buf: bytes, idx_bytes: int, entry_size: int, version: int) -> MapFile | None:
    """Save `r` (resolved from the first `idx_bytes` of `idx_buf`) and map it; None when the
    file cannot be written (a read-only directory, a full disk) or on a big-endian host."""
    if not _LITTLE:
        return None
    wide = r.offsets.dtype == np.uint64
    keys, offsets, sizes = (np.ascontiguousarray(c) for c in (r.keys, r.offsets, r.sizes))
    header = _HEADER.pack(
        _MAGIC, _FORMAT, _WIDE_OFFSETS if wide else 0, entry_size, version,
        idx_bytes, _idx_crc(idx_buf, idx_bytes), _columns_crc(keys, offsets, sizes), len(keys), r.deleted,
        *dataclasses.astuple(r.memory), *dataclasses.astuple(r.sorted),
    ).ljust(_HEADER_SIZE, b"\0")
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
            mapped.mapping.close()
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
        fields = _HEADER.unpack(os.pread(fd, _HEADER.size, 0))
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
    keys = np.frombuffer(mapping, np.uint64, n, at)
    at += 8 * n
    offsets = np.frombuffer(mapping, np.uint64 if owidth == 8 else np.uint32, n, at)
    at += owidth * n
    sizes = np.frombuffer(mapping, np.int32, n, at)
    return MapFile(Resolved(keys, offsets, sizes, memory, sorted_, deleted), idx_bytes, mapping)
