"""The EC files a disk location holds for one volume, as the EC rpcs look for and remove them
(Go's checkEcVolumeStatus and removeStaleEcArtifacts)."""

from __future__ import annotations

import os

from native.storage import load_volume_info, remove_file
from native.storage.ec import MAX_SHARDS, SHARD_FILE, remove_sidecars, shard_ext

__all__ = ["ec_file_status", "remove_stale_ec_files", "encode_generation"]


def ec_file_status(base: str, loc) -> tuple[bool, bool, int]:
    """Go's checkEcVolumeStatus: (.ecx/.ecj present, .idx present, shard files) in the location."""
    has_ecx = has_idx = False
    count = 0
    for d in dict.fromkeys((loc.directory, loc.idx_directory)):
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            if n in (base + ".ecx", base + ".ecj"):
                has_ecx = True
            elif n == base + ".idx":
                has_idx = True
            elif (m := SHARD_FILE.match(n)) and m.group(1) == base and int(m.group(2)) < MAX_SHARDS:
                count += 1
    return has_ecx, has_idx, count


def remove_stale_ec_files(data_base: str, idx_base: str) -> None:
    """Go's removeStaleEcArtifacts: shards, index, journal, sidecars; the `.vif` only where no
    `.idx` makes it a live normal volume's."""
    for i in range(MAX_SHARDS):
        remove_file(data_base + shard_ext(i))
    for b in dict.fromkeys((idx_base, data_base)):
        remove_file(b + ".ecx")
        remove_file(b + ".ecj")
        remove_sidecars(b)
    if not os.path.exists(idx_base + ".idx"):
        remove_file(idx_base + ".vif")
        if data_base != idx_base and not os.path.exists(data_base + ".idx"):
            remove_file(data_base + ".vif")


def encode_generation(data_base: str, idx_base: str) -> tuple[int, bool]:
    """(the encode time recorded in the `.vif`, whether a `.vif` was found); an unreadable one
    counts as found with time 0."""
    for b in dict.fromkeys((data_base, idx_base)):
        try:
            info = load_volume_info(b + ".vif")
        except ValueError:
            return 0, True
        if info is not None:
            cfg = info.ec_shard_config or {}
            try:
                return int(cfg.get("encodeTsNs", cfg.get("encode_ts_ns", 0)) or 0), True
            except (TypeError, ValueError):
                return 0, True
    return 0, False
