"""Go's counters for a volume loaded read-only: the reverse walk of the whole `.idx` that Go's
SortedFileNeedleMap runs when it opens (needleMapMetricFromIndexFile), Bloom filter included.

Go walks the index from its last row to its first and asks a Bloom filter (tylertreat's
BoomFilters, sized for the row count at a 0.1% false-positive rate) whether each row's id was
seen already. Every row is a file; a row whose id "was seen" is a deletion, and its bytes are
deleted bytes when it holds data; a first-seen row without data is a deletion too. The filter
answers "seen" now and then for an id that was not (a false positive), and Go then counts that
live needle as deleted: the counters below reproduce those answers exactly, so a read-only
volume reports the file_deleted_count and garbage ratio Go reports for the same `.idx`.

The filter is replayed in bulk with numpy, in chunks of rows (walk order): a row's bits are
"set" when the filter had them before its chunk, or when an earlier bit of the chunk (an
earlier row, or an earlier hash of the same row) set them.
"""

from __future__ import annotations

import math

import numpy as np

from ._idx_rows import IdxRows
from ._map_build import record_ends
from ._map_types import MapCounters

__all__ = ["walk_counters", "walk_seen"]

_FP_RATE = 0.001
_FILL_RATIO = 0.5  # BoomFilters' target fill when sizing a filter
_HASHES = math.ceil(math.log2(1 / _FP_RATE))
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_CHUNK_ROWS = 1 << 12  # small enough that each chunk's sort stays in cache
_INDEX_BITS = 20  # a chunk's element index (below _CHUNK_ROWS * _HASHES) packed under its bit


def walk_counters(rows: IdxRows, version: int) -> MapCounters:
    """Go's map metric of a read-only load of the index `rows`."""
    keys, offsets, sizes = rows.columns()
    n = len(keys)
    if not n:
        return MapCounters(0, 0, 0, 0, 0, 0)
    seen = walk_seen(keys)
    has_data = sizes > 0
    deletions = int(np.count_nonzero(seen | ~has_data))
    deleted_bytes = int(sizes.sum(dtype=np.int64, where=seen & has_data))
    file_bytes = int(sizes.sum(dtype=np.int64, where=has_data))
    return MapCounters(n, file_bytes, deletions, deleted_bytes, int(keys.max()), record_ends(offsets, sizes, version))


def filter_bits(n: int) -> int:
    """BoomFilters' OptimalM for `n` items at Go's rate."""
    return math.ceil(n / ((math.log(_FILL_RATIO) * math.log(1 - _FILL_RATIO)) / abs(math.log(_FP_RATE))))


def _fnv1_64(keys: np.ndarray) -> np.ndarray:
    """FNV-1 (64-bit) of each id's 8 big-endian bytes, as Go's hash/fnv New64."""
    h = np.full(len(keys), _FNV_OFFSET, np.uint64)
    for shift in range(56, -8, -8):
        h *= _FNV_PRIME
        h ^= (keys >> np.uint64(shift)) & np.uint64(0xFF)
    return h


def walk_seen(keys: np.ndarray) -> np.ndarray:
    """For each row (file order), whether Go's filter answered "seen" when its reverse walk
    reached it: true for every id that occurs later in the file, and for the filter's false
    positives."""
    n = len(keys)
    m = filter_bits(n)
    mod = np.uint64(m)
    seen = np.empty(n, bool)
    bitset = np.zeros((m + 7) // 8, np.uint8)
    low_mask = np.uint64((1 << _INDEX_BITS) - 1)
    for hi in range(n, 0, -_CHUNK_ROWS):
        lo = max(0, hi - _CHUNK_ROWS)
        h = _fnv1_64(keys[lo:hi][::-1])
        # hash i of a row is (low32 + high32 * i) mod m, stepped without overflow
        x = (h & np.uint64(0xFFFFFFFF)) % mod
        step = (h >> np.uint64(32)) % mod
        bits = np.empty((len(h), _HASHES), np.uint64)
        bits[:, 0] = x
        for i in range(1, _HASHES):
            x = x + step
            x[x >= mod] -= mod
            bits[:, i] = x
        flat = bits.ravel()
        byte = flat >> np.uint64(3)
        mask = np.left_shift(np.uint8(1), (flat & np.uint64(7)).astype(np.uint8))
        was_set = (bitset[byte] & mask) != 0
        fresh = np.flatnonzero(~was_set)
        if len(fresh):
            # a fresh bit is set for every element after its first one in this chunk
            packed = np.sort((flat[fresh] << np.uint64(_INDEX_BITS)) | np.arange(len(fresh), dtype=np.uint64))
            bit = packed >> np.uint64(_INDEX_BITS)
            again = (packed[1:][bit[1:] == bit[:-1]] & low_mask).astype(np.intp)
            was_set[fresh[again]] = True
            np.bitwise_or.at(bitset, byte[fresh], mask[fresh])
        seen[lo:hi] = was_set.reshape(bits.shape).all(axis=1)[::-1]
    return seen
