"""The counters Go reports for a volume loaded with its sorted (`.sdx`) needle map, exactly.

Go counts such a volume by walking `.idx` backwards through a Bloom filter (tylertreat/
BoomFilters at the version SeaweedFS pins: 1-bit buckets, m = ceil(n / (ln(1/2)^2 / |ln p|)),
k = ceil(log2(1/p)), p = 0.001, FNV-1 64 of the big-endian key split into two 32-bit halves,
bit i = (low + high * i) mod m). A row whose key the filter already holds counts as a
deletion, so a false positive counts a deletion that is not there (Go reports 1 deleted file
for a fresh tiered volume of keys 1..5). Tiered volumes report Go's numbers so that Go's
VolumeCopy, which compares the copy's counts with the source's, accepts a copy from weedpy.

Vectorised: a row is a member when every bit it tests was set by a row walked earlier, which
numpy answers with one minimum-scatter over the bit indexes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np

__all__ = ["go_sorted_counters"]

_FP = 0.001
_K = math.ceil(math.log2(1 / _FP))
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211


def _optimal_m(n: int) -> int:
    return math.ceil(n / ((math.log(0.5) * math.log(1 - 0.5)) / abs(math.log(_FP))))


def _fnv1_64(keys: np.ndarray) -> np.ndarray:
    import numpy as np  # numpy: loaded by the first tiered volume load, not at start-up

    h = np.full(keys.shape, np.uint64(_FNV_OFFSET), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for shift in range(56, -8, -8):  # the key's 8 bytes, big-endian
            h = h * np.uint64(_FNV_PRIME)
            h ^= (keys >> np.uint64(shift)) & np.uint64(0xFF)
    return h


def go_sorted_counters(keys, sizes) -> tuple[int, int, int, int]:
    """(file count, file bytes, deletion count, deletion bytes) of `.idx` rows, as Go's
    needleMapMetricFromIndexFile counts them."""
    import numpy as np  # numpy: loaded by the first tiered volume load, not at start-up

    n = len(keys)
    if n == 0:
        return 0, 0, 0, 0
    k = np.frombuffer(keys, dtype=np.uint64)[::-1]  # the walk goes from the last row back
    s = np.frombuffer(sizes, dtype=np.int32)[::-1].astype(np.int64)
    m = _optimal_m(n)
    h = _fnv1_64(k)
    low, high = h & np.uint64(0xFFFFFFFF), h >> np.uint64(32)
    bits = (low[:, None] + high[:, None] * np.arange(_K, dtype=np.uint64)[None, :]) % np.uint64(m)
    order = np.arange(n, dtype=np.int64)
    first = np.full(m, n, dtype=np.int64)
    np.minimum.at(first, bits.ravel().astype(np.int64), np.repeat(order, _K))
    # a member: every bit it tests was set by a row walked before it (a bit this row sets first
    # fails its own test, whatever the row's later hashes do)
    member = np.all(first[bits.astype(np.int64)] < order[:, None], axis=1)
    valid = s > 0
    file_bytes = int(s[valid].sum())
    deletions = int(np.count_nonzero(member | ~valid))
    deletion_bytes = int(s[member & valid].sum())
    return n, file_bytes, deletions, deletion_bytes

