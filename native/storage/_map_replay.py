"""How Go's counters for index rows differ between its loader and its runtime.

Go counts a needle map's rows twice over in its life: once as its loader replays the `.idx`
(doLoading), and once as the writes and deletes that appended them happened (Put and Delete at
runtime). The two agree but for rows that follow an empty needle (a put of size 0): the loader
counts the put or tombstone that replaces it as a deletion, the runtime does not (its deleted
size is 0). A view of a volume another process (Go) loaded at one length and has written to
since (mixed mode's follower) loads the whole index and takes those rows back off.
"""

from __future__ import annotations

import numpy as np

from ._idx_rows import IdxRows
from ._map_build import key_order

__all__ = ["load_only_deletions"]


def load_only_deletions(rows: IdxRows, start: int) -> int:
    """Deletions Go's loader counts among `rows[start:]` that Go's runtime did not count when it
    appended them: the rows whose previous row for the same id put an empty needle."""
    keys, offsets, sizes = rows.columns()
    if start >= len(keys):
        return 0
    order, ks = key_order(keys)  # a key's rows stay in file order
    follows = ks[1:] == ks[:-1]
    prev, cur = order[:-1][follows], order[1:][follows]
    after_empty = (offsets[prev] != 0) & (sizes[prev] == 0)
    return int(np.count_nonzero(after_empty & (cur >= start)))
