"""Whole-file EC operations (blocking, streaming, bounded memory): encode a `.dat` into shards,
rebuild missing shards, and write a `.dat` back from the data shards (Go's ec_encoder.go and
ec_decoder.go). Memory is `total shards x chunk` plus the codec's scratch, whatever the size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._errors import StorageError
from .._superblock import SuperBlock
from .._types import SUPER_BLOCK_SIZE, actual_size
from .._idx import IdxCodec
from ._index import iter_ecx
from ._layout import EcLayout, shard_ext
from ._rs import ReedSolomon
from ._sidecar import ChecksumBuilder, build_protection

if TYPE_CHECKING:
    import numpy as np

__all__ = ["encode_files", "rebuild_files", "write_dat_file", "find_dat_size", "EcFileError", "CHUNK"]

log = logging.getLogger("weedpy.storage.ec")

CHUNK = 1 << 20  # bytes per shard per step: divides both block sizes


class EcFileError(Exception):
    pass


def _pread_into(fd: int, buf: np.ndarray, offset: int) -> int:
    """Fill `buf` from `offset`; bytes past end of file are zeroed. Returns bytes read."""
    got = 0
    view = memoryview(buf)
    while got < len(buf):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n == 0:
            break
        got += n
    if got < len(buf):
        buf[got:] = 0
    return got


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def encode_files(dat_path: str, shard_base: str, layout: EcLayout, *, chunk: int = CHUNK,
                 progress: Callable[[int], None] | None = None):
    """Write `<shard_base>.ec00..` from the `.dat` (Go's generateEcFiles) and return the bitrot
    protection (an EcBitrotProtection) computed on the way. Output files are truncated first."""
    import numpy as np  # numpy: loaded by the first EC encode or rebuild, not at start-up

    rs = ReedSolomon(layout.data_shards, layout.parity_shards)
    k, total = layout.data_shards, layout.total_shards
    dfd = os.open(dat_path, os.O_RDONLY)
    outs: list[int] = []
    try:
        dat_size = os.fstat(dfd).st_size
        for i in range(total):
            outs.append(os.open(shard_base + shard_ext(i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        builders = [ChecksumBuilder() for _ in range(total)]
        bufs = [np.empty(0, np.uint8)] * total
        for row in layout.rows(dat_size):
            step = min(chunk, row.block)
            if len(bufs[0]) != step:
                bufs = [np.empty(step, np.uint8) for _ in range(total)]
            for pos in range(0, row.block, step):
                for i in range(k):
                    _pread_into(dfd, bufs[i], row.dat_offset + i * row.block + pos)
                rs.encode(bufs[:k], bufs[k:])
                for i in range(total):
                    _write_all(outs[i], bufs[i])
                    builders[i].write(bufs[i])
            if progress is not None:
                progress(min(dat_size, row.dat_offset + row.block * k))
        return build_protection(k, layout.parity_shards, builders, layout.small_block)
    finally:
        os.close(dfd)
        for fd in outs:
            os.close(fd)


def rebuild_files(inputs: dict[int, str], outputs: dict[int, str], layout: EcLayout, *, chunk: int = CHUNK) -> None:
    """Reconstruct shard files `outputs` (id -> path, created) from present `inputs` (id ->
    path), which must all have one size (Go's rebuildEcFiles). Outputs are fsynced."""
    import numpy as np  # numpy: loaded by the first EC encode or rebuild, not at start-up

    if len(inputs) < layout.data_shards:
        raise EcFileError(f"not enough shards: found {len(inputs)}, need {layout.data_shards}")
    rs = ReedSolomon(layout.data_shards, layout.parity_shards)
    in_fds: dict[int, int] = {}
    out_fds: dict[int, int] = {}
    try:
        size = -1
        for sid, path in sorted(inputs.items()):
            fd = in_fds[sid] = os.open(path, os.O_RDONLY)
            s = os.fstat(fd).st_size
            if size < 0:
                size = s
            elif s != size:
                raise EcFileError(f"ec rebuild: input shard {sid} size {s} != {size} (truncated input?)")
        if size <= 0:
            raise EcFileError(f"ec rebuild: no input shard data (expected shard size {size})")
        # read only the first k present shards: those are what the decoder uses
        used = sorted(inputs)[: layout.data_shards]
        for sid, path in outputs.items():
            out_fds[sid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        want = sorted(outputs)
        bufs = {sid: np.empty(chunk, np.uint8) for sid in used}
        for pos in range(0, size, chunk):
            n = min(chunk, size - pos)
            shards: list = [None] * layout.total_shards
            for sid in used:
                b = bufs[sid][:n]
                if _pread_into(in_fds[sid], b, pos) != n:
                    raise EcFileError(f"ec rebuild short read shard {sid} at {pos}")
                shards[sid] = b
            got = rs.reconstruct(shards, want)
            for sid in want:
                _pwrite_all(out_fds[sid], got[sid], pos)
        for fd in out_fds.values():
            os.fsync(fd)
    finally:
        for fd in (*in_fds.values(), *out_fds.values()):
            os.close(fd)


def find_dat_size(shard0_path: str, ecx_path: str, codec: IdxCodec) -> int:
    """Go's FindDatFileSize: the end of the furthest live needle (at least the super block)."""
    with open(shard0_path, "rb") as f:
        head = f.read(SUPER_BLOCK_SIZE)
    try:
        version = SuperBlock.decode(head).version
    except (StorageError, ValueError) as exc:
        raise EcFileError(f"read ec volume {shard0_path} superblock: {exc}") from None
    size = SUPER_BLOCK_SIZE
    for _, offset, nsize in iter_ecx(ecx_path, codec):
        if nsize < 0:
            continue
        size = max(size, offset * 8 + actual_size(nsize, version))
    return size


def write_dat_file(dat_path: str, dat_size: int, encoded_size: int, data_shards: Sequence[str], layout: EcLayout) -> None:
    """Go's WriteDatFile: the first `dat_size` bytes of the volume, de-striped from the data
    shards with the block layout of an `encoded_size`-byte `.dat` (0: inferred from the shard
    size). Written to `<dat>.tmp`, fsynced, renamed."""
    import numpy as np  # numpy: loaded by the first EC encode or rebuild, not at start-up

    k = len(data_shards)
    if k == 0:
        raise EcFileError("no data shard files")
    fds = [os.open(p, os.O_RDONLY) for p in data_shards]
    tmp = dat_path + ".tmp"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    committed = False
    try:
        L, S = layout.large_block, layout.small_block
        if encoded_size <= 0:
            shard_size = os.fstat(fds[0]).st_size
            if shard_size % L == 0 and dat_size > (shard_size // L - 1) * L * k:
                raise EcFileError(f"shard size {shard_size} of {dat_path[:-4]} does not identify the block layout; "
                                  "re-encode to record the dat size in .vif")
            encoded_size = k * shard_size
        if dat_size > encoded_size:
            raise EcFileError(f"dat file size {dat_size} exceeds encoded dat file size {encoded_size}")
        remaining = dat_size
        shard_pos = 0
        buf = np.empty(CHUNK, np.uint8)

        def copy(fd: int, at: int, n: int) -> None:
            done = 0
            while done < n:
                m = min(CHUNK, n - done)
                b = buf[:m]
                if _pread_into(fd, b, at + done) != m:
                    raise EcFileError(f"copy {dat_path[:-4]} block: short shard")
                _write_all(out, b)
                done += m

        while encoded_size >= k * L and remaining > 0:
            for i in range(k):
                if remaining <= 0:
                    break
                n = min(remaining, L)
                copy(fds[i], shard_pos, n)
                remaining -= n
            shard_pos += L
            encoded_size -= k * L
        while remaining > 0:
            for i in range(k):
                if remaining <= 0:
                    break
                n = min(remaining, S)
                copy(fds[i], shard_pos, n)
                remaining -= n
            shard_pos += S
        os.fsync(out)
        os.close(out)
        out = -1
        os.replace(tmp, dat_path)
        committed = True
    finally:
        if out >= 0:
            os.close(out)
        for fd in fds:
            os.close(fd)
        if not committed:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
