"""Go's counters for a volume loaded read-only: the reverse index walk and its Bloom filter.

The golden answers come from tylertreat/BoomFilters itself (the filter Go's walk uses: a Go
program over the same ids printed which rows it answered "seen"), and from Go 4.48's
VolumeStatus for the last case; the property test checks the bulk replay against a row-by-row
model of the same filter (tests/storage/test_needle_map.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from native.storage import IdxCodec, Needle, Volume
from native.storage._map_build import IdxRows
from native.storage._map_load import MapPolicy, load_needle_map
from native.storage._map_walk import filter_bits, walk_counters, walk_seen
from tests.storage.test_needle_map import GoBloomFilter


def test_filter_size_is_boomfilters_optimal_m() -> None:
    # boom.OptimalM(n, 0.001) as Go computes it
    assert [filter_bits(n) for n in (1, 5, 1000, 4096, 1_000_000, 3_000_000)] == [
        15, 72, 14378, 58891, 14377588, 43132763,
    ]


def test_seen_answers_are_boomfilters_answers() -> None:
    ascending = walk_seen(np.arange(1, 100_001, dtype=np.uint64))
    assert int(ascending.sum()) == 137  # every id once: each "seen" is a false positive
    assert np.flatnonzero(ascending)[:12].tolist() == [1551, 1552, 1553, 1554, 1556, 1557, 1558, 1663, 1664, 1665, 1666, 1667]
    spread = walk_seen(np.arange(1, 300_001, dtype=np.uint64) * np.uint64(2654435761))
    assert int(spread.sum()) == 42
    assert np.flatnonzero(spread)[:12].tolist() == [141, 451, 3242, 3285, 3529, 4406, 4553, 5232, 7001, 7307, 7411, 7818]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300) | st.integers(0, 2**64 - 1), max_size=9000))
def test_bulk_replay_matches_the_row_by_row_filter(keys: list[int]) -> None:
    bloom = GoBloomFilter(len(keys)) if keys else None
    want = [bloom.test_and_add(k) for k in reversed(keys)][::-1] if bloom else []
    assert walk_seen(np.array(keys, np.uint64)).tolist() == want


def test_a_false_positive_counts_a_live_needle_as_deleted(tmp_path: Path) -> None:
    """Go 4.48, ids 0x10 0x11 0x12 0x14, 0x14 deleted, then loaded read-only: VolumeStatus says 3
    deletions and the garbage is 65 of 180 bytes (0x10's 10 bytes are the filter's mistake)."""
    codec = IdxCodec.for_width(4)
    rows = [(0x10, 1, 10), (0x11, 3, 105), (0x12, 20, 10), (0x14, 23, 55), (0x14, 31, -1)]
    raw = b"".join(codec.encode(*r) for r in rows)
    c = walk_counters(IdxRows(raw, 4), 3)
    assert (c.file_count, c.file_bytes, c.deletion_count, c.deletion_bytes) == (5, 180, 3, 65)
    # whichever way the map is built: in memory, or through a map file
    for policy in (MapPolicy(), MapPolicy(file_min_rows=1)):
        m = load_needle_map(IdxRows(raw, 4), 3, sorted_semantics=True, map_path=str(tmp_path / "1.nmx"), may_write=True,
                            policy=policy)
        assert m.counters() == c
        assert m.get(0x10) is not None and m.get(0x14) is None


def test_marking_read_only_with_deletes_swaps_in_the_writable_map(tmp_path: Path) -> None:
    """Go's MarkVolumeReadonly(canDelete) on a volume loaded read-only reopens its index for
    write with the writable map: the counters become a writable load's, and deletes count."""
    v = Volume.create(tmp_path, 1)
    for nid, data in ((0x10, b"hello"), (0x11, b"x" * 100), (0x12, b"hello"), (0x13, b"")):
        v.write_needle(Needle.create(nid, 7, data))
    v.mark_readonly(can_delete=True, persist=True)
    v.close()
    v = Volume.load(tmp_path, 1)
    assert v.nm.sorted_semantics and v.nm.counters().deletion_count == 1  # the empty needle, walked
    before = v.nm.counters()
    assert v.delete_needle(0x12, 7) > 0
    assert v.nm.counters() == before  # the read-only map counts no delete
    v.mark_readonly(can_delete=True)
    assert not v.nm.sorted_semantics
    c = v.nm.counters()
    assert (c.file_count, c.deletion_count) == (4, 1)  # a writable load: the tombstone is the deletion
    assert v.delete_needle(0x11, 7) > 0
    assert v.nm.counters().deletion_count == 2
    v.close()
