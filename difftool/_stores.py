"""Do two data directories hold the same needles? Read-only, through the storage engine's codecs.

Dual-run keeps one data directory per side and sends every write to both; this is how we check
that it worked (at start, before serving, and after a session in tests). A volume's live needles
are found as Go finds them (the `.idx` rows, last row wins, tombstones delete), and each live
record is decoded from `.dat` (CRC checked). Compared per needle: cookie, data CRC and size,
flags, name, mime, pairs and TTL. Offsets, append times and last-modified stamps are not compared:
the two sides append at their own pace. Nothing is written (no `.vif` is created, unlike loading).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from native.storage import (
    DEFAULT_OFFSET_BYTES,
    SUPER_BLOCK_SIZE,
    Corrupted,
    IdxCodec,
    NeedleMap,
    SuperBlock,
    actual_size,
    decode_needle,
    load_volume_info,
    parse_volume_base,
)

__all__ = ["NeedleFacts", "VolumeInventory", "inventory", "compare_stores", "StoreComparison"]


@dataclasses.dataclass(frozen=True, slots=True)
class NeedleFacts:
    cookie: int
    checksum: int
    data_size: int
    flags: int
    name: bytes
    mime: bytes
    pairs: bytes
    ttl: str


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeInventory:
    name: str  # "<collection>_<vid>" or "<vid>"
    needles: dict[int, NeedleFacts]
    problems: tuple[str, ...] = ()


def _volume(directory: Path, base: str) -> VolumeInventory:
    problems: list[str] = []
    try:
        info = load_volume_info(str(directory / f"{base}.vif"))
    except (OSError, ValueError):
        info = None
    width = (info.bytes_offset if info is not None and info.bytes_offset else 0) or DEFAULT_OFFSET_BYTES
    codec = IdxCodec.for_width(width)
    needles: dict[int, NeedleFacts] = {}
    try:
        fd = os.open(directory / f"{base}.dat", os.O_RDONLY)
    except OSError as exc:
        return VolumeInventory(base, {}, (f"cannot open .dat: {exc.strerror}",))
    try:
        head = os.pread(fd, SUPER_BLOCK_SIZE, 0)
        try:
            sb = SuperBlock.decode(os.pread(fd, SUPER_BLOCK_SIZE + SuperBlock.extra_size_of(head), 0))
        except Corrupted as exc:
            return VolumeInventory(base, {}, (f"super block: {exc}",))
        try:
            raw_idx = (directory / f"{base}.idx").read_bytes()
        except OSError:
            raw_idx = b""
        cols = codec.columns(raw_idx)
        for v in NeedleMap.from_columns(cols, sb.version).items():
            if v.size < 0:
                continue
            length = actual_size(v.size, sb.version)
            try:
                n = decode_needle(os.pread(fd, length, v.actual_offset), sb.version, expected_size=v.size)
            except Corrupted as exc:
                problems.append(f"needle {v.key:x}: {exc}")
                continue
            needles[v.key] = NeedleFacts(n.cookie, n.checksum or 0, len(n.data), n.flags, n.name, n.mime,
                                         n.pairs, str(n.ttl))
    finally:
        os.close(fd)
    return VolumeInventory(base, needles, tuple(problems))


def inventory(directory: str | os.PathLike[str]) -> dict[str, VolumeInventory]:
    """Every volume in a data directory, by base name, with its live needles."""
    d = Path(directory)
    out: dict[str, VolumeInventory] = {}
    for p in sorted(d.glob("*.dat")):
        base = p.name[:-4]
        try:
            parse_volume_base(base)
        except ValueError:
            continue
        out[base] = _volume(d, base)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class StoreComparison:
    equal: bool
    volumes: int
    needles: int
    differences: tuple[str, ...]  # bounded, readable

    def to_json(self) -> dict[str, object]:
        return {"equal": self.equal, "volumes": self.volumes, "needles": self.needles,
                "differences": list(self.differences)}


def compare_stores(a: str | os.PathLike[str], b: str | os.PathLike[str], *, names: tuple[str, str] = ("go", "native"),
                   limit: int = 50) -> StoreComparison:
    ia, ib = inventory(a), inventory(b)
    diffs: list[str] = []
    for base in sorted(ia.keys() ^ ib.keys()):
        diffs.append(f"volume {base} only in {names[0] if base in ia else names[1]}")
    needles = 0
    for base in sorted(ia.keys() & ib.keys()):
        va, vb = ia[base], ib[base]
        if va.problems != vb.problems:  # the same unreadable records on both sides are no difference
            for side, v in ((names[0], va), (names[1], vb)):
                diffs += [f"volume {base} in {side}: {p}" for p in v.problems]
        needles += len(va.needles)
        for key in sorted(va.needles.keys() ^ vb.needles.keys()):
            diffs.append(f"volume {base} needle {key:x} live only in {names[0] if key in va.needles else names[1]}")
        for key in sorted(va.needles.keys() & vb.needles.keys()):
            fa, fb = va.needles[key], vb.needles[key]
            if fa != fb:
                what = [f.name for f in dataclasses.fields(NeedleFacts) if getattr(fa, f.name) != getattr(fb, f.name)]
                diffs.append(f"volume {base} needle {key:x} differs in {', '.join(what)}")
    return StoreComparison(not diffs, len(ia.keys() | ib.keys()), needles, tuple(diffs[:limit]))
