"""EC volume scrubbing on one server's shards, as weed 4.48 does it (Go's ec_volume_scrub.go).

- `scrub_ec_index`: the `.ecx` checked like an `.idx` (rows counted, overlaps, torn size);
- `scrub_ec_local`: the index check, then every live `.ecx` needle located among the shards
  this EcVolume holds; held pieces are read, and a needle held whole is parsed and CRC-checked.
  A shard too short or unreadable is reported broken (once). Pieces on other servers are only
  counted (the FULL and READS modes, in `native.ec_scrub`, fetch them);
- `checksum_scrub`: every held shard against the `.ecsum` sidecar, block by block; a mismatch
  is confirmed by rebuilding the shard from the others when at least `data_shards` clean ones
  are held (a stale sidecar is then reported as such, not as a broken shard), and more broken
  shards than parity ones is reported as a suspect sidecar.

Shard sizes are the ones seen at mount (Go caches them too), so a shard truncated afterwards
shows up as short reads. Results: (count, broken shards as EcShardInfo, Go-style texts).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from proto import volume_server_pb2 as vs

from .._crc import crc32c
from .._scrub import check_index, read_bytes_error
from .._types import actual_size
from ._rs import ReedSolomon
from ._sidecar import SIDECAR_EXT, SidecarError, load_sidecar
from ._volume import EcShard, EcVolume

if TYPE_CHECKING:
    import numpy as np

__all__ = ["scrub_ec_index", "scrub_ec_local", "checksum_scrub", "ecx_rows", "go_list", "shard_info", "EcScrubResult"]

EcScrubResult = tuple[int, list[vs.EcShardInfo], list[str]]
_MAX_SIDECAR_BLOCK = 1 << 30


def go_list(values) -> str:
    """A Go slice as `%v` prints it: `[0 3 4]`."""
    return "[" + " ".join(str(v) for v in values) + "]"


def shard_info(shard: EcShard) -> vs.EcShardInfo:
    return vs.EcShardInfo(shard_id=shard.shard_id, size=shard.size, collection=shard.collection, volume_id=shard.vid)


def _read_ecx(ev: EcVolume) -> bytes:
    """The whole `.ecx` as it is on disk now (Go walks the file, not the size seen at mount)."""
    size = os.fstat(ev.ecx_fd).st_size
    return os.pread(ev.ecx_fd, size, 0) if size else b""


def scrub_ec_index(ev: EcVolume) -> tuple[int, list[str]]:
    """Go's EcVolume.ScrubIndex: against the `.ecx` size recorded at mount."""
    if ev.ecx_fd < 0:
        return 0, [f"no ECX file associated with EC volume {ev.vid}"]
    if ev.ecx_size == 0:
        return 0, [f"zero-size ECX file for EC volume {ev.vid}"]
    return check_index(_read_ecx(ev), ev.ecx_size, ev.version, ev.codec)


def ecx_rows(ev: EcVolume):
    """(id, offset in 8-byte units, size) of every whole `.ecx` row, in file order."""
    return ev.codec.iter_entries(_read_ecx(ev))


def _size_mismatch_is_delete_state(problem: str, index_size: int, raw: bytes) -> bool:
    """Go tolerates a header that disagrees with the index only about being deleted."""
    if not problem.startswith("size mismatch"):
        return False
    header_size = int.from_bytes(raw[12:16], "big", signed=True)
    return (index_size < 0) != (header_size == 0)


def scrub_ec_local(ev: EcVolume) -> EcScrubResult:
    """Go's EcVolume.ScrubLocal."""
    _, errs = scrub_ec_index(ev)
    broken: dict[int, EcShard] = {}
    count = 0
    width = ev.codec.offsets.width
    large_rows = ev.large_rows()

    def flag(shard: EcShard, text: str) -> None:
        broken[shard.shard_id] = shard
        errs.append(text)

    for e in ecx_rows(ev):
        count += 1
        if e.size == -1:
            continue  # tombstones have nothing to check
        want = actual_size(e.size, ev.version)
        intervals = ev.layout.locate(large_rows, e.offset * 8, want)
        read, remote, parts, local_ids = 0, False, [], []
        for i, iv in enumerate(intervals, 1):
            shard = ev.shard(iv.shard_id)
            if shard is None:
                remote = True
                read += iv.size
                continue
            local_ids.append(iv.shard_id)
            if iv.offset + iv.size > shard.size:
                flag(shard, f"local shard {iv.shard_id} for needle {e.key} is too short ({shard.size}), "
                            f"cannot read chunk {i}/{len(intervals)}")
                continue
            try:
                chunk = shard.read_at(iv.size, iv.offset)
            except OSError as exc:
                chunk, why = b"", str(exc)
            else:
                why = "EOF"
            if len(chunk) != iv.size:
                flag(shard, f"failed to read chunk {i}/{len(intervals)} for needle {e.key} from local shard "
                            f"{iv.shard_id} at offset {iv.offset}: {why}")
                continue
            if not remote:
                parts.append(chunk)
            read += len(chunk)
        local_ids.sort()
        if read != want:
            # Go's walk stops at the first needle it cannot account for
            errs.append(f"expected {want} bytes for needle {e.key} on volume {ev.vid}, got {read}")
            break
        if not remote:
            raw = b"".join(parts)
            problem = read_bytes_error(raw, 0, e.size, ev.version, width)
            if problem is not None and not _size_mismatch_is_delete_state(problem, e.size, raw):
                errs.append(f"needle {e.key} on volume {ev.vid}, shards {go_list(local_ids)}: {problem}")
    infos = [shard_info(broken[sid]) for sid in sorted(broken)]
    return count, infos, errs


# checksum scrub ------------------------------------------------------------------------------


def _find_sidecar(ev: EcVolume) -> str | None:
    base = os.path.basename(ev.index_base)
    for directory in dict.fromkeys((ev.directory, os.path.dirname(ev.index_base))):
        path = os.path.join(directory, base + SIDECAR_EXT)
        if os.path.exists(path):
            return path
    return None


def _manifest_problem(prot: vs.EcBitrotProtection, data_shards: int, parity_shards: int) -> str | None:
    """Go's ValidateBitrotManifest."""
    if prot.algorithm != vs.CHECKSUM_CRC32C:
        return f"unsupported checksum algorithm {prot.algorithm}"
    bs = prot.block_size
    if bs <= 0 or bs % (1 << 20) or bs & (bs - 1) or bs > _MAX_SIDECAR_BLOCK:
        return f"invalid block_size {bs}"
    total = data_shards + parity_shards
    if len(prot.shards) != total:
        return f"incomplete manifest: {len(prot.shards)} shard entries, expected {total}"
    seen = set()
    for s in prot.shards:
        if s.shard_id >= total:
            return f"shard id {s.shard_id} out of range [0,{total})"
        if s.shard_id in seen:
            return f"duplicate shard id {s.shard_id}"
        seen.add(s.shard_id)
        if s.covered_size <= 0:
            return f"shard {s.shard_id} has non-positive covered_size {s.covered_size}"
        if len(s.block_crc32c) != -(-s.covered_size // bs) * 4:
            return f"shard {s.shard_id} crc count mismatch"
    return None


def _load_protection(ev: EcVolume) -> tuple[vs.EcBitrotProtection | None, bool]:
    """(protection, invalid): None/False when the volume is simply unprotected."""
    path = _find_sidecar(ev)
    if path is None:
        return None, False
    try:
        prot = load_sidecar(path)
    except (SidecarError, OSError):
        return None, True
    lay = ev.layout
    if prot.generation != 0 or not prot.HasField("ec_shard_config") or \
            prot.ec_shard_config.data_shards != lay.data_shards or \
            prot.ec_shard_config.parity_shards != lay.parity_shards:
        return None, False
    if _manifest_problem(prot, lay.data_shards, lay.parity_shards) is not None:
        return None, True
    return prot, False


def checksum_scrub(ev: EcVolume) -> EcScrubResult:
    """Go's EcVolume.ChecksumScrub: (blocks scanned, broken shards, errors)."""
    import numpy as np  # numpy: loaded by the first EC scrub, not at start-up

    prot, invalid = _load_protection(ev)
    if invalid:
        return 0, [], [f"ec volume {ev.vid}: bitrot sidecar is malformed/unverifiable (sidecar integrity)"]
    if prot is None:
        return 0, [], []
    block = prot.block_size
    entries = {s.shard_id: s for s in prot.shards}
    shards = ev.shard_list()
    errs: list[str] = []
    broken: list[EcShard] = []
    blocks = 0
    for shard in shards:
        entry = entries.get(shard.shard_id)
        if entry is None:
            errs.append(f"ec volume {ev.vid}: no checksum entry for local shard {shard.shard_id}")
            continue
        if shard.size != entry.covered_size:
            errs.append(f"ec volume {ev.vid} shard {shard.shard_id}: size {shard.size} != covered_size "
                        f"{entry.covered_size} (truncated or extended)")
            broken.append(shard)
            continue
        want = np.frombuffer(entry.block_crc32c, dtype="<u4")
        offset, bad = 0, False
        for i, expected in enumerate(want):
            length = min(block, entry.covered_size - offset)
            try:
                data = shard.read_at(length, offset)
            except OSError as exc:
                data, why = b"", str(exc)
            else:
                why = "EOF"
            if len(data) != length:
                errs.append(f"ec volume {ev.vid} shard {shard.shard_id}: read block {i} at {offset}: {why} "
                            f"(got {len(data)}/{length})")
                bad = True
                break
            if crc32c(data) != int(expected):
                errs.append(f"ec volume {ev.vid} shard {shard.shard_id}: checksum mismatch at block {i} (offset {offset})")
                bad = True
            offset += len(data)
            blocks += 1
        if bad:
            broken.append(shard)
    lay = ev.layout
    if len(broken) > lay.parity_shards:
        return blocks, [], [f"ec volume {ev.vid}: {len(broken)}/{len(shards)} local shards mismatch (> parity "
                             f"{lay.parity_shards}): suspect stale sidecar, not flagging shard corruption"]
    if broken and len(shards) - len(broken) >= lay.data_shards:
        broken = _arbitrate(ev, shards, broken, block, errs)
    return blocks, [shard_info(s) for s in sorted(broken, key=lambda s: s.shard_id)], errs


def _arbitrate(ev: EcVolume, shards: list[EcShard], broken: list[EcShard], block: int, errs: list[str]) -> list[EcShard]:
    """Keep only the flagged shards that Reed-Solomon, rebuilt from the clean ones, disagrees with."""
    bad_ids = {s.shard_id for s in broken}
    clean = [s for s in shards if s.shard_id not in bad_ids][:ev.layout.data_shards]  # all the decoder uses
    confirmed = []
    for s in broken:
        try:
            corrupt = _rs_disagrees(ev, s, clean, block)
        except _ArbitrationError as exc:
            errs.append(f"ec volume {ev.vid} shard {s.shard_id}: RS arbitration failed: {exc}")
            confirmed.append(s)
            continue
        if corrupt:
            confirmed.append(s)
        else:
            errs.append(f"ec volume {ev.vid} shard {s.shard_id}: sidecar mismatch but Reed-Solomon confirms the "
                        f"bytes are correct: stale sidecar, not flagging shard")
    return confirmed


class _ArbitrationError(Exception):
    pass


def _rs_disagrees(ev: EcVolume, target: EcShard, clean: list[EcShard], block: int) -> bool:
    import numpy as np  # numpy: loaded by the first EC scrub, not at start-up

    lay = ev.layout
    rs = ReedSolomon(lay.data_shards, lay.parity_shards)
    offset = 0
    while offset < target.size:
        n = min(block, target.size - offset)
        inputs: list = [None] * lay.total_shards
        for s in clean:
            data = s.read_at(n, offset)
            if len(data) != n:
                raise _ArbitrationError(f"read clean shard {s.shard_id} at {offset}: EOF (got {len(data)}/{n})")
            inputs[s.shard_id] = np.frombuffer(data, np.uint8)
        rebuilt = rs.reconstruct(inputs, [target.shard_id])[target.shard_id].tobytes()
        disk = target.read_at(n, offset)
        if len(disk) != n:
            raise _ArbitrationError(f"read target shard {target.shard_id} at {offset}: EOF")
        if rebuilt != disk:
            return True
        offset += n
    return False
