"""`weedpy verify DIR...`: check every volume's `.dat` against its `.idx`, read-only.

For each volume: the super block; that `.idx` is whole rows; that every row points at a record
with the right id and size, whose data matches its CRC (tombstones: a Size-0 record with the
right id); that no two records overlap; that walking `.dat` header to header ends exactly at
its end; and Go's load-time tail rule. Prints one summary line per volume (plus the first
problems found) and exits 1 if any volume is corrupt, 2 on usage errors or when there is no volume.

Nothing is written: unlike loading a volume, verifying never creates a `.vif` or an index.
Each DIR's `.weedpy-native` sub-folder (the volumes native owns in mixed mode) is checked too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from ._crc import crc32c_update, crc_matches
from ._errors import Corrupted
from ._idx import IdxCodec
from ._integrity import check_volume_tail
from ._names import parse_volume_base, volume_from_file_name
from ._needle import decode_needle, parse_header
from ._needle_map import NeedleMap
from ._superblock import SuperBlock
from ._types import (
    CHECKSUM_SIZE,
    DATA_SIZE_SIZE,
    DEFAULT_OFFSET_BYTES,
    NEEDLE_HEADER_SIZE,
    PADDING_SIZE,
    SUPER_BLOCK_SIZE,
    SUPPORTED_VERSIONS,
    VERSION1,
    actual_size,
)
from ._vif import load_volume_info
from .ownership import NATIVE_FOLDER

__all__ = ["main", "VolumeReport", "verify_volume"]

_WHOLE_READ = 1 << 20  # records up to this size are read and decoded in one go
_CHUNK = 4 << 20
_MAX_ERRORS = 20


@dataclasses.dataclass
class VolumeReport:
    name: str
    offset_bytes: int = 0
    version: int = 0
    rows: int = 0
    puts: int = 0
    tombstones: int = 0
    live: int = 0
    records: int = 0
    file_count: int = 0
    delete_count: int = 0
    deleted_bytes: int = 0
    content_size: int = 0
    dat_size: int = 0
    idx_size: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, msg: str) -> None:
        self.errors.append(msg)

    def summary(self) -> str:
        state = "ok" if self.ok else f"CORRUPT ({len(self.errors)} problem{'s' if len(self.errors) != 1 else ''})"
        return (
            f"{self.name}: {state} version={self.version} offsets={self.offset_bytes}B "
            f"rows={self.rows} puts={self.puts} tombstones={self.tombstones} live={self.live} "
            f"records={self.records} files={self.file_count} deleted={self.delete_count} "
            f"deleted_bytes={self.deleted_bytes} content={self.content_size} "
            f"dat={self.dat_size} idx={self.idx_size}"
        )


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    return os.pread(fd, length, offset)


def verify_volume(directory: str, base: str, *, idx_directory: str | None = None, offset_bytes: int | None = None) -> VolumeReport:
    rep = VolumeReport(name=os.path.join(directory, base))
    idx_dir = idx_directory or directory
    dat_path = os.path.join(directory, base + ".dat")
    idx_path = os.path.join(directory, base + ".idx")
    if not os.path.exists(idx_path):
        idx_path = os.path.join(idx_dir, base + ".idx")
    try:
        info = load_volume_info(os.path.join(directory, base + ".vif"))
    except ValueError as exc:
        rep.error(f".vif does not parse: {exc}")
        info = None
    width = (info.bytes_offset if info and info.bytes_offset else 0) or offset_bytes or DEFAULT_OFFSET_BYTES
    if info and info.bytes_offset and offset_bytes and info.bytes_offset != offset_bytes:
        rep.error(f".vif records {info.bytes_offset}-byte offsets, but {offset_bytes} were requested")
        return rep
    rep.offset_bytes = width
    codec = IdxCodec.for_width(width)
    if info and info.has_remote_file:
        rep.error("volume is tiered to remote storage; its .dat is not local")
        return rep
    try:
        dat_fd = os.open(dat_path, os.O_RDONLY)
    except OSError as exc:
        rep.error(f"cannot open .dat: {exc}")
        return rep
    try:
        rep.dat_size = os.fstat(dat_fd).st_size
        if rep.dat_size < SUPER_BLOCK_SIZE:
            rep.error(f".dat has {rep.dat_size} bytes, less than a super block")
            return rep
        head = os.pread(dat_fd, SUPER_BLOCK_SIZE, 0)
        extra = SuperBlock.extra_size_of(head)
        try:
            sb = SuperBlock.decode(os.pread(dat_fd, SUPER_BLOCK_SIZE + extra, 0))
        except Corrupted as exc:
            rep.error(f"super block: {exc}")
            return rep
        rep.version = sb.version
        if sb.version not in SUPPORTED_VERSIONS:
            rep.error(f"unsupported version {sb.version}")
            return rep
        try:
            raw_idx = open(idx_path, "rb").read()
        except OSError as exc:
            if rep.dat_size > SUPER_BLOCK_SIZE:
                rep.error(f"cannot read .idx: {exc}")
            return rep
        rep.idx_size = len(raw_idx)
        cols = codec.columns(raw_idx)
        rep.rows = len(cols)
        if cols.trailing:
            rep.error(f".idx ends with a torn row: {cols.trailing} bytes after {len(cols)} whole {codec.entry_size}-byte rows")
        _check_rows(rep, cols, codec, sb.version, dat_fd)
        _check_overlaps(rep, cols, sb.version)
        _walk_dat(rep, sb, dat_fd)
        tail = check_volume_tail(cols, codec, rep.dat_size, sb.version, lambda n, o: _pread_all(dat_fd, n, o))
        if not tail.ok and not cols.trailing:
            rep.error(f"load-time tail check: {tail.error}")
        m = NeedleMap.from_columns(cols, sb.version)
        c = m.counters()
        rep.file_count, rep.delete_count = c.file_count, c.deletion_count
        rep.deleted_bytes, rep.content_size = c.deletion_bytes, c.file_bytes
        rep.live = sum(1 for v in m.items() if v.size >= 0)
    finally:
        os.close(dat_fd)
    return rep


def _check_rows(rep: VolumeReport, cols, codec: IdxCodec, version: int, fd: int) -> None:
    for i in range(len(cols)):
        if len(rep.errors) >= _MAX_ERRORS:
            rep.error("... (more problems not listed)")
            return
        e = cols.entry(i)
        where = f".idx row {i} (needle {e.key:x})"
        if e.offset == 0:
            if e.size >= 0:
                rep.error(f"{where}: live entry with offset 0")
            else:
                rep.tombstones += 1
            continue
        off = e.actual_offset
        if e.size < 0:
            rep.tombstones += 1
            if e.size != -1:
                rep.error(f"{where}: delete row with size {e.size}, expected -1")
            raw = os.pread(fd, actual_size(0, version), off)
            if len(raw) < actual_size(0, version):
                rep.error(f"{where}: tombstone at {off} runs past the end of .dat")
                continue
            h = parse_header(raw)
            if h.id != e.key or h.size != 0:
                rep.error(f"{where}: tombstone at {off} holds needle {h.id:x} size {h.size}")
            continue
        rep.puts += 1
        length = actual_size(e.size, version)
        if off + length > rep.dat_size:
            rep.error(f"{where}: record at {off} of {length} bytes runs past the end of .dat ({rep.dat_size})")
            continue
        if length <= _WHOLE_READ:
            try:
                n = decode_needle(os.pread(fd, length, off), version, expected_size=e.size)
            except Corrupted as exc:
                rep.error(f"{where}: {exc}")
                continue
            if n.id != e.key:
                rep.error(f"{where}: record at {off} holds needle {n.id:x}")
        else:
            _check_large(rep, where, e.key, e.size, off, version, fd)


def _check_large(rep: VolumeReport, where: str, key: int, size: int, off: int, version: int, fd: int) -> None:
    head = os.pread(fd, NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE, off)
    h = parse_header(head)
    if h.id != key or h.size != size:
        rep.error(f"{where}: record at {off} holds needle {h.id:x} size {h.size}, index says size {size}")
        return
    if version == VERSION1:
        data_off, data_size = off + NEEDLE_HEADER_SIZE, size
    else:
        data_off = off + NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE
        data_size = int.from_bytes(head[16:20], "big")
        if DATA_SIZE_SIZE + data_size > size:
            rep.error(f"{where}: data size {data_size} overruns the record")
            return
    crc, pos, end = 0, data_off, data_off + data_size
    while pos < end:
        chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
        if not chunk:
            rep.error(f"{where}: data cut short at {pos}")
            return
        crc = crc32c_update(crc, chunk)
        pos += len(chunk)
    stored = int.from_bytes(os.pread(fd, CHECKSUM_SIZE, off + NEEDLE_HEADER_SIZE + size), "big")
    if data_size and not crc_matches(stored, crc):
        rep.error(f"{where}: CRC {crc:08x} of the data differs from stored {stored:08x}")


def _check_overlaps(rep: VolumeReport, cols, version: int) -> None:
    spans = sorted(
        (cols.offsets[i] * PADDING_SIZE, actual_size(max(cols.sizes[i], 0), version), cols.keys[i])
        for i in range(len(cols))
        if cols.offsets[i] != 0
    )
    prev_end, prev_key = 0, 0
    for start, length, key in spans:
        if start < SUPER_BLOCK_SIZE:
            rep.error(f"needle {key:x} at {start} overlaps the super block")
        elif start < prev_end:
            rep.error(f"needle {key:x} at {start} overlaps needle {prev_key:x} ending at {prev_end}")
        if start + length > prev_end:
            prev_end, prev_key = start + length, key
        if len(rep.errors) >= _MAX_ERRORS:
            return


def _walk_dat(rep: VolumeReport, sb: SuperBlock, fd: int) -> None:
    pos = sb.block_size
    while pos < rep.dat_size:
        head = os.pread(fd, NEEDLE_HEADER_SIZE, pos)
        if len(head) < NEEDLE_HEADER_SIZE:
            rep.error(f".dat ends with {rep.dat_size - pos} stray bytes at {pos} (a torn record header)")
            return
        h = parse_header(head)
        length = actual_size(max(h.size, 0), sb.version)
        if h.size < 0 or pos + length > rep.dat_size:
            rep.error(f".dat record at {pos} (needle {h.id:x}, size {h.size}) does not fit: torn or garbage tail")
            return
        rep.records += 1
        pos += length


def _volume_bases(directory: str) -> list[str]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    bases: dict[str, None] = {}
    for name in names:
        if volume_from_file_name(name) is not None and os.path.exists(os.path.join(directory, name[:-4] + ".dat")):
            bases.setdefault(name[:-4], None)
    return sorted(bases, key=lambda b: (parse_volume_base(b)[1], b))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="weedpy verify", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="volume data directories")
    parser.add_argument("-offsetBytes", "--offsetBytes", type=int, choices=(4, 5), default=None,
                        help="offset width for volumes whose .vif does not record it (default 5)")
    parser.add_argument("-dir.idx", "--dir.idx", dest="idx_dir", default=None, help="separate index directory")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    bad = 0
    total = 0
    for d in args.dirs:
        if not os.path.isdir(d):
            print(f"weedpy verify: {d}: {'not a directory' if os.path.exists(d) else 'no such directory'}", file=sys.stderr)
            return 2
        # mixed mode keeps the volumes native owns in a sub-folder (native/storage/ownership.py)
        for folder, idx_dir in ((d, args.idx_dir),
                                (os.path.join(d, NATIVE_FOLDER), args.idx_dir and os.path.join(args.idx_dir, NATIVE_FOLDER))):
            for base in _volume_bases(folder):
                rep = verify_volume(folder, base, idx_directory=idx_dir, offset_bytes=args.offsetBytes)
                total += 1
                print(rep.summary(), file=out)
                for msg in rep.errors:
                    print(f"  - {msg}", file=out)
                bad += not rep.ok
    if not total:
        print(f"weedpy verify: no volumes (.dat files) in {', '.join(args.dirs)}", file=sys.stderr)
        return 2
    print(f"{total} volume{'s' if total != 1 else ''} checked, {bad} corrupt", file=out)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
