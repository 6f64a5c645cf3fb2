"""Are two data directories the same files, clocks aside? Read-only, after an offline run.

`_stores.py` compares what a reader sees (live needles); this compares the files themselves, so
a difference in what a server wrote (an extra tombstone, an index row, a `.vif` key, a byte of a
shard) is found even when every needle reads the same. Per file of a volume:

- `.dat`, `.cpd`: the records' append times zeroed (each server stamps its own clock), then the
  bytes;
- `.ec00`..`.ec31`: the `.dat` they encode is put back together from the data shards (Reed-
  Solomon fills in missing ones while enough are left), its records' append times are located
  and zeroed in the data shards and, since parity mixes the data shards byte by byte, at the
  same offsets of the parity shards; then the bytes. With too few shards left to rebuild, only
  the lengths;
- `.vif`: as JSON (Go's protojson spaces its output at random), with `encodeTsNs` and
  `expireAtSec` masked;
- `.ecsum`: the bitrot sidecar checksums shard bytes, clocks included: its length only;
- everything else (`.idx`, `.cpx`, `.ecx`, `.ecj`, markers): the bytes.

Not compared: `vol_dir.uuid` (a random id per directory) and the index caches each server
derives from the `.idx` in its own format: Go's sorted index of a read-only volume (`.sdx`,
rebuilt whenever the `.idx` is newer) and weedpy's needle-map file (`.nmx`,
native/storage/_map_file.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from difftool._mask import MASKED_VALUE, VIF_CLOCK_KEYS, record_clock_ranges
from native.storage.ec import DATA_SHARDS, EcLayout, ReedSolomon, TooFewShards

__all__ = ["FilesComparison", "compare_volume_files", "IGNORED_FILES"]

IGNORED_FILES = ("vol_dir.uuid",)
IGNORED_SUFFIXES = (".nmx", ".sdx")
_SHARD = ".ec"


@dataclasses.dataclass(frozen=True, slots=True)
class FilesComparison:
    equal: bool
    files: int
    differences: tuple[str, ...]  # bounded, readable
    notes: tuple[str, ...] = ()  # what was compared less than byte for byte, and why

    def to_json(self) -> dict[str, object]:
        return {"equal": self.equal, "files": self.files, "differences": list(self.differences),
                "notes": list(self.notes)}


def _listing(d: Path) -> dict[str, Path]:
    try:
        entries = sorted(d.iterdir())
    except OSError:
        return {}
    return {p.name: p for p in entries if p.is_file() and p.name not in IGNORED_FILES
            and not p.name.endswith(IGNORED_SUFFIXES)}


def _zero(data: bytes, ranges) -> bytes:
    out = bytearray(data)
    for start, end in ranges:
        out[start:end] = bytes(max(0, min(end, len(out)) - start))
    return bytes(out)


def _vif(raw: bytes) -> object:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw
    def walk(x: object) -> object:
        if isinstance(x, dict):
            return {k: (MASKED_VALUE.decode() if k in VIF_CLOCK_KEYS else walk(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x
    return walk(doc)


def _shard_index(name: str) -> int | None:
    stem, dot, ext = name.rpartition(".")
    if dot and ext.startswith("ec") and ext[2:].isdigit() and len(ext) == 4:
        return int(ext[2:])
    return None


def _ec_masks(files: dict[str, Path], base: str, layout: EcLayout) -> tuple[dict[int, list], str | None]:
    """Per shard id, the byte ranges holding (or computed from) append times; or why not."""
    shards: list = [None] * layout.total_shards
    size = 0
    for sid in range(layout.total_shards):
        p = files.get(f"{base}{_SHARD}{sid:02d}")
        if p is not None:
            data = p.read_bytes()
            size = max(size, len(data))
            shards[sid] = np.frombuffer(data, np.uint8)
    if sum(s is not None for s in shards) < layout.data_shards:
        return {}, f"{base}: fewer than {layout.data_shards} shards left: shard files compared by length"
    if any(s is not None and len(s) != size for s in shards):
        return {}, f"{base}: shard files of different lengths: compared by length"
    missing = [i for i in range(layout.data_shards) if shards[i] is None]
    if missing:
        try:
            got = ReedSolomon(layout.data_shards, layout.parity_shards).reconstruct(shards, missing)
        except TooFewShards:
            return {}, f"{base}: shards do not rebuild: compared by length"
        for i in missing:
            shards[i] = got[i]
    # The records end where the zero padding of the last row starts (the .vif's datFileSize can
    # be an older encode's: a later one keeps an existing .vif's config).
    dat_size = _dat_size(files.get(f"{base}.vif"))
    large_rows = layout.large_rows_for_dat(dat_size) if dat_size else layout.large_rows_for_shard(size)
    dat = bytearray()
    for row in layout.rows(max(dat_size, size * layout.data_shards if not large_rows else 0)):
        for sid in range(layout.data_shards):
            dat += shards[sid][row.shard_offset:row.shard_offset + row.block].tobytes()
    end = len(dat.rstrip(b"\0"))
    del dat[end + (-end) % 8:]
    masks: dict[int, list] = {}
    for start, end in record_clock_ranges(bytes(dat), super_block=True):
        for iv in layout.locate(large_rows, start, end - start):
            for sid in [iv.shard_id] + list(range(layout.data_shards, layout.total_shards)):
                masks.setdefault(sid, []).append((iv.offset, iv.offset + iv.size))
    return masks, None


def _dat_size(vif: Path | None) -> int:
    if vif is None:
        return 0
    try:
        return int(json.loads(vif.read_bytes()).get("datFileSize", 0) or 0)
    except (OSError, ValueError, AttributeError):
        return 0


def compare_volume_files(a: str | os.PathLike[str], b: str | os.PathLike[str], *,
                         names: tuple[str, str] = ("go", "native"), limit: int = 50) -> FilesComparison:
    fa, fb = _listing(Path(a)), _listing(Path(b))
    diffs: list[str] = []
    notes: list[str] = []
    for name in sorted(fa.keys() ^ fb.keys()):
        diffs.append(f"{name} only in {names[0] if name in fa else names[1]}")
    layout = EcLayout()
    ec_masks: dict[str, dict[int, list]] = {}
    for name in sorted(fa.keys() & fb.keys()):
        ra, rb = fa[name].read_bytes(), fb[name].read_bytes()
        if ra == rb:
            continue
        ext = name.rsplit(".", 1)[-1] if "." in name else ""
        sid = _shard_index(name)
        if ext in ("dat", "cpd"):
            ra = _zero(ra, record_clock_ranges(ra, super_block=True))
            rb = _zero(rb, record_clock_ranges(rb, super_block=True))
        elif ext == "vif":
            if _vif(ra) == _vif(rb):
                continue
            diffs.append(f"{name}: {_vif(ra)} != {_vif(rb)}"[:400])
            continue
        elif ext == "ecsum":
            if len(ra) != len(rb):
                diffs.append(f"{name}: {len(ra)} bytes in {names[0]}, {len(rb)} in {names[1]}")
            continue
        elif sid is not None and sid < DATA_SHARDS + layout.parity_shards:
            base = name[:-5]
            if base not in ec_masks:
                ec_masks[base], why = _ec_masks(fa, base, layout)
                if why is not None:
                    notes.append(why)
            if not ec_masks[base]:
                if len(ra) != len(rb):
                    diffs.append(f"{name}: {len(ra)} bytes in {names[0]}, {len(rb)} in {names[1]}")
                continue
            ra = _zero(ra, ec_masks[base].get(sid, ()))
            rb = _zero(rb, ec_masks[base].get(sid, ()))
        if ra != rb:
            n = min(len(ra), len(rb))
            at = next((i for i in range(n) if ra[i] != rb[i]), n)
            diffs.append(f"{name}: {len(ra)} bytes in {names[0]}, {len(rb)} in {names[1]}, first difference at {at}")
    return FilesComparison(not diffs, len(fa.keys() | fb.keys()), tuple(diffs[:limit]), tuple(notes))
