"""The compact needle map against a direct model of Go's two map kinds and their counters."""

from __future__ import annotations

import math
import random
import tracemalloc
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from native.storage import IdxCodec, IdxColumns, NeedleMap, actual_size
from native.storage._map_build import IdxRows


class GoBloomFilter:
    """tylertreat/BoomFilters' classic filter as Go's index walk uses it, one row at a time."""

    def __init__(self, n: int, fp_rate: float = 0.001) -> None:
        self.m = math.ceil(n / ((math.log(0.5) * math.log(0.5)) / abs(math.log(fp_rate))))
        self.k = math.ceil(math.log2(1 / fp_rate))
        self.bits = bytearray(self.m)

    def test_and_add(self, key: int) -> bool:
        h = 0xCBF29CE484222325  # FNV-1, 64-bit, over the id's big-endian bytes
        for b in key.to_bytes(8, "big"):
            h = (h * 0x100000001B3) & (2**64 - 1)
            h ^= b
        member = True
        for i in range(self.k):
            at = ((h & 0xFFFFFFFF) + (h >> 32) * i) % self.m
            member = member and bool(self.bits[at])
            self.bits[at] = 1
        return member


def model_load(rows: list[tuple[int, int, int]], sorted_semantics: bool) -> tuple[dict, tuple[int, int, int, int]]:
    """Go's doLoading (CompactMap) or readNeedleMap + newNeedleMapMetricFromIndexFile (.sdx,
    whose reverse walk asks a Bloom filter whether an id was seen, false positives included)."""
    if not sorted_semantics:
        m: dict[int, tuple[int, int]] = {}
        fc = fb = dc = db = 0
        for k, o, s in rows:
            if o != 0 and s >= 0:
                fc += 1
                fb += s
                old = m.get(k)
                if old is not None and old[1] >= 0:
                    dc += 1
                    db += old[1]
                m[k] = (o, s)
            else:
                old = m.get(k)
                dc += 1
                if old is not None and old[1] >= 0:
                    db += old[1]
                    m[k] = (old[0], -1 if old[1] == 0 else -old[1])
        return m, (fc, fb, dc, db)
    m = {}
    for k, o, s in rows:
        if o != 0 and s >= 0:
            m[k] = (o, s)
        else:
            m.pop(k, None)
    fc = fb = dc = db = 0
    seen = GoBloomFilter(len(rows))
    for k, _, s in reversed(rows):
        fc += 1
        if s > 0:
            fb += s
        if not seen.test_and_add(k):
            if s <= 0:
                dc += 1
        else:
            dc += 1
            if s > 0:
                db += s
    return m, (fc, fb, dc, db)


def columns(rows: list[tuple[int, int, int]]) -> IdxColumns:
    return IdxColumns(array("Q", [r[0] for r in rows]), array("Q", [r[1] for r in rows]), array("i", [r[2] for r in rows]), 0)


row = st.tuples(
    st.integers(1, 40) | st.integers(1, 2**64 - 1),
    st.integers(0, 3) | st.integers(1, 10**9),
    st.sampled_from([-1, 0, 1, 7, 100, 5000]) | st.integers(0, 2**31 - 1),
)


@settings(max_examples=400)
@given(st.lists(row, max_size=80), st.booleans(), st.booleans())
def test_load_matches_go(rows: list[tuple[int, int, int]], sort_rows: bool, sorted_semantics: bool) -> None:
    if sort_rows:
        rows = sorted(rows, key=lambda r: r[0])
    m = NeedleMap.from_columns(columns(rows), 3, sorted_semantics=sorted_semantics)
    want, counts = model_load(rows, sorted_semantics)
    assert {v.key: (v.offset, v.size) for v in m.items()} == want
    c = m.counters()
    assert (c.file_count, c.file_bytes, c.deletion_count, c.deletion_bytes) == counts
    assert c.max_file_key == max((r[0] for r in rows), default=0)
    ends = [o * 8 + actual_size(s, 3) for _, o, s in rows if o and s > 0]
    assert c.max_needle_end == max(ends, default=0)
    for k in want:
        assert m.get(k) is not None and (m.get(k).offset, m.get(k).size) == want[k]


def test_load_paths_on_larger_indexes() -> None:
    """Ascending puts with sparse or dense deletes, overwrites, shuffles (the three load paths)."""
    rnd = random.Random(7)
    for deletes, overwrites, shuffle in [(0, 0, False), (0.02, 0, False), (0.3, 0, False), (0.1, 0.05, False), (0.05, 0.05, True)]:
        keys = list(range(1, 20000, 3))
        if shuffle:
            rnd.shuffle(keys)
        rows = [(k, i + 1, rnd.choice([0, 10, 300])) for i, k in enumerate(keys)]
        for k in rnd.sample(keys, int(len(keys) * overwrites)):
            rows.append((k, len(rows) + 1, 77))
        for k in rnd.sample(keys, int(len(keys) * deletes)) + [999999]:
            rows.append((k, len(rows) + 1, -1))
        for sem in (False, True):
            m = NeedleMap.from_columns(columns(rows), 3, sorted_semantics=sem)
            want, counts = model_load(rows, sem)
            assert {v.key: (v.offset, v.size) for v in m.items()} == want
            c = m.counters()
            assert (c.file_count, c.file_bytes, c.deletion_count, c.deletion_bytes) == counts


def test_runtime_put_and_delete_count_like_go() -> None:
    m = NeedleMap()
    assert m.put(5, 1, 100) is None
    assert m.put(5, 2, 50).size == 100  # overwrite: the old size counts as deleted
    assert m.delete(5) == 50
    assert m.delete(5) == 0  # already deleted
    assert m.delete(6) == 0  # absent
    m.put(7, 3, 0)
    assert m.delete(7) == 0 and m.get(7).size == -1  # an empty needle becomes a tombstone
    assert m.get(5).offset == 2 and m.get(5).size == -50  # offset kept for read_deleted
    c = m.counters()
    assert (c.file_count, c.file_bytes, c.deletion_count, c.deletion_bytes, c.max_file_key) == (3, 150, 2, 150, 7)


def test_random_inserts_split_blocks_and_stay_sorted() -> None:
    m = NeedleMap()
    rnd = random.Random(3)
    keys = rnd.sample(range(1, 10**9), 30000)
    for i, k in enumerate(keys):
        m.put(k, i + 1, 8)
    assert len(m) == len(keys)
    assert [v.key for v in m.items()] == sorted(keys)
    for k in keys[:500]:
        assert m.get(k) is not None
    assert m.get(0) is None and m.get(10**9 + 1) is None


def test_sorted_semantics_delete_leaves_the_counters() -> None:
    """Go's read-only map (SortedFileNeedleMap.Delete): a runtime delete marks the entry and
    appends its tombstone, and counts nothing (deleted count and garbage ratio stay)."""
    m = NeedleMap.from_columns(columns([(1, 1, 10), (2, 2, 20)]), 3, sorted_semantics=True)
    before = m.counters()
    assert m.delete(1) == 10
    assert m.get(1).size == -1
    assert m.counters() == before
    m.catch_up(IdxRows(IdxCodec.for_width(4).tombstone(2, 0), 4), 3)
    assert m.get(2).size == -1 and m.counters() == before  # another process's delete, the same


def test_at_most_24_bytes_per_entry() -> None:
    n = 200_000
    cols = columns([(i * 5 + 1, i + 1, 100) for i in range(n)])
    tracemalloc.start()
    m = NeedleMap.from_columns(cols, 3)
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert used / n <= 24, used / n
    assert m.nbytes() / n <= 24


@settings(max_examples=200)
@given(st.lists(row, max_size=60), st.booleans(), st.lists(st.tuples(row, st.booleans()), max_size=40))
def test_put_absent_is_put_of_a_key_get_finds_absent(rows: list[tuple[int, int, int]], sorted_semantics: bool,
                                                      writes: list[tuple[tuple[int, int, int], bool]]) -> None:
    """The appender's put_absent leaves the map as put does whenever get found the key absent."""
    a = NeedleMap.from_columns(columns(rows), 3, sorted_semantics=sorted_semantics)
    b = NeedleMap.from_columns(columns(rows), 3, sorted_semantics=sorted_semantics)
    for (key, offset, size), delete in writes:
        if delete:
            assert a.delete(key) == b.delete(key)
        elif a.get(key) is None:
            assert b.get(key) is None
            a.put(key, offset, size)
            b.put_absent(key, offset, size)
        else:
            a.put(key, offset, size)
            b.put(key, offset, size)
    assert list(a.items()) == list(b.items()) and len(a) == len(b)
    assert a.counters() == b.counters()


@settings(max_examples=200)
@given(st.lists(row, max_size=60), st.booleans(),
       st.lists(st.tuples(st.integers(1, 60), st.integers(1, 10**6), st.integers(-1, 5000)), max_size=60))
def test_runtime_put_over_a_loaded_base(rows: list[tuple[int, int, int]], sorted_semantics: bool,
                                        writes: list[tuple[int, int, int]]) -> None:
    """put returns what get found and counts as Go's Put, whether the key is above the base's
    largest (the overlay alone answers) or not."""
    m = NeedleMap.from_columns(columns(rows), 3, sorted_semantics=sorted_semantics)
    for key, offset, size in writes:
        before, c, n = m.get(key), m.counters(), len(m)
        assert m.put(key, offset, size) == before
        after = m.counters()
        dead = before.size if before is not None and before.size > 0 else 0
        assert (after.file_count, after.file_bytes) == (c.file_count + 1, c.file_bytes + size)
        assert (after.deletion_count, after.deletion_bytes) == (c.deletion_count + (dead > 0), c.deletion_bytes + dead)
        assert after.max_file_key == max(c.max_file_key, key)
        assert len(m) == n + (before is None)
        got = m.get(key)
        assert got is not None and (got.key, got.offset, got.size) == (key, offset, size)
