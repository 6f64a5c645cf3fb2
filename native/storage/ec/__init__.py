"""Erasure coding for the native engine, byte-compatible with weed 4.48 (klauspost/reedsolomon).

Layers, bottom up:

- `_gf`: GF(2^8) with polynomial 0x11d and klauspost's systematic Vandermonde-derived matrix;
- `_rs`: `ReedSolomon` (numpy table lookups, two inputs and four outputs per gather);
- `_shards`: shard counts and file names (what the store needs at start-up);
- `_layout`: `EcLayout` (1 GiB large rows, then 1 MiB small rows) and `locate`, sans-IO;
- `_index`: `.ecx` (sorted live rows) and `.ecj` (deletion journal) helpers;
- `_sidecar`: the `.ecsum` bitrot sidecar;
- `_files`: streaming encode, rebuild and decode of whole shard files;
- `_volume`, `_store`: mounted EC volumes and shards per disk location, needle reads and deletes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exports import lazy_exports

# Each module and the names it exports, loaded with the first use of one of them (`_exports`).
_MODULES: dict[str, tuple[str, ...]] = {
    "._files": ("EcFileError", "encode_files", "find_dat_size", "rebuild_files", "write_dat_file"),
    "._gf": ("coding_matrix",),
    "._index": ("fold_journal", "has_live_needles", "write_ecx_from_idx", "write_idx_from_ecx"),
    "._layout": ("EcLayout", "Interval", "Row"),
    "._rs": ("Combiner", "ReedSolomon", "TooFewShards"),
    "._scrub": ("checksum_scrub", "ecx_rows", "go_list", "scrub_ec_index", "scrub_ec_local"),
    "._shards": ("DATA_SHARDS", "LARGE_BLOCK", "MAX_SHARDS", "PARITY_SHARDS", "SMALL_BLOCK", "shard_ext"),
    "._sidecar": ("SIDECAR_EXT", "ChecksumBuilder", "build_protection", "remove_sidecars", "save_sidecar"),
    "._store": ("SHARD_FILE", "EcMountError", "EcStore"),
    "._volume": ("EcVolume", "layout_from_info"),
}
__getattr__, __dir__ = lazy_exports(__name__, _MODULES, globals())

if TYPE_CHECKING:  # what type checkers and editors see
    from ._files import EcFileError, encode_files, find_dat_size, rebuild_files, write_dat_file
    from ._gf import coding_matrix
    from ._index import fold_journal, has_live_needles, write_ecx_from_idx, write_idx_from_ecx
    from ._layout import EcLayout, Interval, Row
    from ._rs import Combiner, ReedSolomon, TooFewShards
    from ._scrub import checksum_scrub, ecx_rows, go_list, scrub_ec_index, scrub_ec_local
    from ._shards import DATA_SHARDS, LARGE_BLOCK, MAX_SHARDS, PARITY_SHARDS, SMALL_BLOCK, shard_ext
    from ._sidecar import SIDECAR_EXT, ChecksumBuilder, build_protection, remove_sidecars, save_sidecar
    from ._store import SHARD_FILE, EcMountError, EcStore
    from ._volume import EcVolume, layout_from_info

__all__ = [
    "coding_matrix",
    "ReedSolomon",
    "Combiner",
    "TooFewShards",
    "EcLayout",
    "Interval",
    "Row",
    "shard_ext",
    "DATA_SHARDS",
    "PARITY_SHARDS",
    "LARGE_BLOCK",
    "SMALL_BLOCK",
    "MAX_SHARDS",
    "EcStore",
    "EcMountError",
    "SHARD_FILE",
    "EcVolume",
    "layout_from_info",
    # whole shard files
    "encode_files",
    "rebuild_files",
    "write_dat_file",
    "find_dat_size",
    "EcFileError",
    # .ecx / .ecj
    "write_ecx_from_idx",
    "write_idx_from_ecx",
    "fold_journal",
    "has_live_needles",
    # .ecsum sidecar
    "SIDECAR_EXT",
    "ChecksumBuilder",
    "build_protection",
    "save_sidecar",
    "remove_sidecars",
    # scrubs
    "scrub_ec_index",
    "scrub_ec_local",
    "checksum_scrub",
    "ecx_rows",
    "go_list",
]
