"""Erasure coding for the native engine, byte-compatible with weed 4.48 (klauspost/reedsolomon).

Layers, bottom up:

- `_gf`: GF(2^8) with polynomial 0x11d and klauspost's systematic Vandermonde-derived matrix;
- `_rs`: `ReedSolomon` (numpy table lookups, two inputs and four outputs per gather);
- `_layout`: `EcLayout` (1 GiB large rows, then 1 MiB small rows) and `locate`, sans-IO;
- `_index`: `.ecx` (sorted live rows) and `.ecj` (deletion journal) helpers;
- `_sidecar`: the `.ecsum` bitrot sidecar;
- `_files`: streaming encode, rebuild and decode of whole shard files;
- `_volume`, `_store`: mounted EC volumes and shards per disk location, needle reads and deletes.
"""

from ._gf import coding_matrix
from ._layout import DATA_SHARDS, LARGE_BLOCK, MAX_SHARDS, PARITY_SHARDS, SMALL_BLOCK, EcLayout, Interval, Row, shard_ext
from ._rs import Combiner, ReedSolomon, TooFewShards
from ._store import EcStore

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
]
