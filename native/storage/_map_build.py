"""Bulk needle-map building: an `.idx` (rows in file order) turned with numpy into the sorted
columns Go's loader ends up with, and both sets of Go's counters.

Go replays the index row by row into its map. Here the whole index is resolved at once, so a
million rows cost tens of milliseconds whatever their order (overwrites and deletes included):

1. `parse_columns` reads the big-endian rows as numpy columns (key u64, offset in 8-byte units,
   size i32) when `IdxRows.columns` is first asked (a valid map file spares the parse);
2. `resolve`: ids strictly ascending with no deletes are already the answer; otherwise one
   sort by id that keeps each id's rows in file order (`key_order`: ids packed with their row
   numbers and sorted by value) groups them, and the last row of each group, with the last
   put before it, gives the final entry; the counters are sums over masks of neighbouring
   rows.

The semantics are those of `_needle_map` (Go's CompactMap for writable volumes, with a deleted
needle keeping its last put's offset and its size negated, 0 becoming -1; Go's `.sdx` map for
volumes loaded read-only, which is the same entries without the deleted ones). Pure functions
over buffers: no files.
"""

from __future__ import annotations

import numpy as np

from ._idx_rows import IdxRows
from ._map_types import MapCounters, Resolved
from ._types import CHECKSUM_SIZE, NEEDLE_HEADER_SIZE, PADDING_SIZE, TIMESTAMP_SIZE, VERSION3

__all__ = ["IdxRows", "Resolved", "resolve", "record_ends", "key_order", "parse_columns"]

_ROW4 = np.dtype([("k", ">u8"), ("lo", ">u4"), ("s", ">i4")])
_ROW5 = np.dtype([("k", ">u8"), ("lo", ">u4"), ("hi", "u1"), ("s", ">i4")])
_U32_LIMIT = 1 << 32
_I32_MAX = (1 << 31) - 1


def parse_columns(buf: bytes, width: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first `count` big-endian rows of `buf` as native columns (`IdxRows.columns`): one
    strided byte-swapping copy per field; offsets as u32 while every one fits."""
    rec = np.frombuffer(buf, _ROW5 if width == 5 else _ROW4, count)
    keys = np.empty(count, np.uint64)
    keys[...] = rec["k"]  # assignment byte-swaps faster than astype
    high = rec["hi"] if width == 5 else None
    if high is not None and high.any():
        offsets = np.empty(count, np.uint64)
        offsets[...] = rec["lo"]
        offsets |= high.astype(np.uint64) << np.uint64(32)
    else:
        offsets = np.empty(count, np.uint32)
        offsets[...] = rec["lo"]
    sizes = np.empty(count, np.int32)
    sizes[...] = rec["s"]
    return keys, offsets, sizes


def record_ends(offsets: np.ndarray, sizes: np.ndarray, version: int) -> int:
    """Go's MaximumNeedleEnd: max(offset + record length) over rows holding data.

    Only rows starting within one record length (the longest) of the last start can end last,
    so the lengths are computed for those few rows, not for every row."""
    has_data = (offsets != 0) & (sizes > 0)
    if not has_data.any():
        return 0
    extra = NEEDLE_HEADER_SIZE + CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0)
    top = int(offsets.max(where=has_data, initial=0))
    reach = int(sizes.max(where=has_data, initial=0)) + extra + PADDING_SIZE  # the longest record
    low = max(0, top - -(-reach // PADDING_SIZE))
    near = has_data & (offsets >= offsets.dtype.type(low))
    o = offsets[near].astype(np.int64)
    t = sizes[near].astype(np.int64) + extra
    return int((o * PADDING_SIZE + t + (PADDING_SIZE - t % PADDING_SIZE)).max())


def key_order(keys: np.ndarray, max_key: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(order, keys[order]): the permutation a stable argsort of `keys` gives (a key's rows
    stay in file order), and the sorted keys.

    When the keys' span and the row numbers fit in 64 bits together (ids as a master assigns
    them), each key minus the smallest is packed above its row number and the packed values
    are sorted in place: a direct sort of plain integers, without the indirect comparisons of
    an argsort nor its index array beside the data (the index is the packed value's low
    bits). The merge sort finds the long ascending runs an index has (ids are assigned in
    ascending order; overwrites and deletes come after): a fifth of an argsort's time on a
    churned index. Otherwise (ids spread over 64 bits, as a snowflake sequencer's are) a
    stable argsort."""
    n = len(keys)
    if not n:
        return np.empty(0, np.int64), keys[:0].copy()
    bits = max(1, (n - 1).bit_length())
    low = int(keys.min())
    high = int(keys.max()) if max_key is None else max_key
    if (high - low) >> (64 - bits):
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    packed = np.subtract(keys, np.uint64(low))
    packed <<= np.uint64(bits)
    step = 1 << 20  # the row numbers added a piece at a time: no n-row temporary
    for at in range(0, n, step):
        packed[at:at + step] |= np.arange(at, min(n, at + step), dtype=np.uint64)
    packed.sort(kind="stable")  # unique values: any sort is stable; this one uses the runs
    ks = packed >> np.uint64(bits)
    ks += np.uint64(low)
    packed &= np.uint64((1 << bits) - 1)
    return packed.view(np.int64), ks


def resolve(rows: IdxRows, version: int) -> Resolved:
    """Replay every whole row of `rows` at once (see the module docstring)."""
    keys, offsets, sizes = rows.columns()
    n = len(keys)
    if not n:
        empty = MapCounters(0, 0, 0, 0, 0, 0)
        return Resolved(np.empty(0, np.uint64), np.empty(0, np.uint32), np.empty(0, np.int32), empty, empty, 0)
    is_put = (offsets != 0) & (sizes >= 0)
    max_key = int(keys.max())
    max_end = record_ends(offsets, sizes, version)
    positive = sizes > 0
    positive_bytes = int(sizes.sum(dtype=np.int64, where=positive))
    if is_put.all() and (n == 1 or bool((keys[1:] > keys[:-1]).all())):
        # every id put once, ascending: the rows are the map
        total = int(sizes.sum(dtype=np.int64))
        non_positive = n - int(np.count_nonzero(positive))
        return Resolved(
            keys, _narrow(offsets), sizes,
            MapCounters(n, total, 0, 0, max_key, max_end),
            MapCounters(n, positive_bytes, non_positive, 0, max_key, max_end),
            0,
        )
    order, ks = key_order(keys, max_key)
    ps = is_put[order]
    ss = sizes[order]
    same_next = np.empty(n, bool)
    np.equal(ks[:-1], ks[1:], out=same_next[:-1])
    same_next[-1] = False
    is_last = ~same_next

    # writable (doLoading): every put counts; a put or delete that follows a put deletes its bytes
    n_put = int(np.count_nonzero(ps))
    file_bytes = int(ss.sum(dtype=np.int64, where=ps))
    followed_put = ps & same_next
    deletion_bytes = int(ss.sum(dtype=np.int64, where=followed_put))
    put_after_put = int(np.count_nonzero(followed_put[:-1] & ps[1:]))
    memory = MapCounters(n_put, file_bytes, (n - n_put) + put_after_put, deletion_bytes, max_key, max_end)

    # read-only (the .sdx reverse walk): every row is a file; a key's earlier rows and a last
    # row without data are deletions; earlier rows with data are deleted bytes
    pos_sorted = ss > 0
    n_keys = int(np.count_nonzero(is_last))
    live_last = int(np.count_nonzero(pos_sorted & is_last))
    sorted_deleted_bytes = int(ss.sum(dtype=np.int64, where=pos_sorted & same_next))
    sorted_ = MapCounters(n, positive_bytes, (n - n_keys) + (n_keys - live_last), sorted_deleted_bytes, max_key, max_end)

    # final entries: each key's last row, or for a last row that deletes, the last put before
    # it in the key's rows (the running maximum of put positions, when it falls after the
    # previous key's last row), its size negated; a key never put has no entry
    lasts = np.flatnonzero(is_last)
    ended_by_delete = ~ps[lasts]
    if ended_by_delete.any():
        last_put = np.arange(n, dtype=np.int32 if n <= _I32_MAX else np.int64)
        last_put[~ps] = -1
        np.maximum.accumulate(last_put, out=last_put)
        at = np.flatnonzero(ended_by_delete)
        put_before = last_put[lasts[at]]
        del last_put
        group_start = lasts[at - 1] + 1  # (at 0 the index wraps: corrected below)
        if len(at) and at[0] == 0:
            group_start[0] = 0
        found = put_before >= group_start
        lasts[at] = put_before
        if not found.all():
            keep = np.ones(len(lasts), bool)
            keep[at[~found]] = False
            lasts = lasts[keep]
            ended_by_delete = ended_by_delete[keep]
    final_keys = ks[lasts]
    del ks
    final_offsets = _narrow(offsets[order[lasts]])
    final_sizes = ss[lasts]
    deleted = int(np.count_nonzero(ended_by_delete))
    if deleted:
        d = final_sizes[ended_by_delete]
        final_sizes[ended_by_delete] = np.where(d == 0, -1, -d)
    return Resolved(final_keys, final_offsets, final_sizes, memory, sorted_, deleted)


def _narrow(offsets: np.ndarray) -> np.ndarray:
    """Offsets as uint32 when they all fit (volumes under 32 GiB): 4 bytes per entry saved."""
    if offsets.dtype == np.uint32:
        return offsets
    if not len(offsets) or int(offsets.max()) < _U32_LIMIT:
        return offsets.astype(np.uint32)
    return offsets
