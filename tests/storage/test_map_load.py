"""The bulk-loaded needle map (raw `.idx` bytes, map files, catch-up) against a reference built
needle by needle: Go's two map kinds replayed row by row (`model_load`)."""

from __future__ import annotations


import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native.storage import IdxCodec, actual_size
from native.storage._map_build import IdxRows
from native.storage._map_file import open_map_file, record_walk, write_map_file
from native.storage._map_load import MapPolicy, load_needle_map
from native.storage._map_build import key_order, resolve
from native.storage._map_walk import walk_counters
from native.storage._needle_map import NeedleMap
from tests.storage.test_needle_map import model_load

EVERY_FILE = MapPolicy(file_min_rows=0, replay_max_rows=1 << 30)


def idx_bytes(rows: list[tuple[int, int, int]], width: int) -> bytes:
    codec = IdxCodec.for_width(width)
    return b"".join(codec.encode(k, o, s) for k, o, s in rows)


def rows_strategy(width: int) -> st.SearchStrategy[list[tuple[int, int, int]]]:
    key = st.integers(1, 60) | st.integers(1, 2**64 - 1)
    offset = st.integers(0, 4) | st.integers(1, (1 << (8 * width)) - 1)
    size = st.sampled_from([-1, 0, 1, 9, 300]) | st.integers(-(2**31), 2**31 - 1)
    row = st.tuples(key, offset, size)
    # ascending puts first (the usual shape), then anything: overwrites, deletes, stragglers
    ascending = st.lists(st.integers(1, 10**6), max_size=60, unique=True).map(
        lambda ks: [(k, i + 1, 10 + i % 7) for i, k in enumerate(sorted(ks))]
    )
    return st.tuples(ascending, st.lists(row, max_size=60)).map(lambda t: t[0] + t[1])


def check_against_model(m: NeedleMap, rows: list[tuple[int, int, int]], sorted_semantics: bool, version: int = 3) -> None:
    want, counts = model_load(rows, sorted_semantics)
    assert {v.key: (v.offset, v.size) for v in m.items()} == want
    assert len(m) == len(want)
    c = m.counters()
    assert (c.file_count, c.file_bytes, c.deletion_count, c.deletion_bytes) == counts
    assert c.max_file_key == max((r[0] for r in rows), default=0)
    ends = [o * 8 + actual_size(s, version) for _, o, s in rows if o and s > 0]
    assert c.max_needle_end == max(ends, default=0)
    for k, (o, s) in want.items():
        assert m.locate(k) == (o, s)
    for k, _, _ in rows:
        if k not in want:
            assert m.get(k) is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([4, 5]), st.booleans(), st.integers(0, 16), st.sampled_from([2, 3]))
def test_raw_index_loads_like_go(data: st.DataObject, width: int, sorted_semantics: bool, torn: int, version: int) -> None:
    """Random `.idx` bytes (4- and 5-byte offsets, a torn tail) resolved in bulk, and loaded as a
    small index is (a writable one replayed row by row, without numpy)."""
    rows = data.draw(rows_strategy(width))
    buf = idx_bytes(rows, width) + bytes(range(1, torn % (12 + width) + 1))
    parsed = IdxRows(buf, width)
    assert len(parsed) == len(rows) and parsed.trailing == torn % (12 + width)
    walk = walk_counters(parsed, version) if sorted_semantics else None
    bulk = NeedleMap.from_resolved(resolve(parsed, version), sorted_semantics=sorted_semantics, counters=walk)
    check_against_model(bulk, rows, sorted_semantics, version)
    small = NeedleMap.from_rows(IdxRows(buf, width), version, sorted_semantics=sorted_semantics)
    check_against_model(small, rows, sorted_semantics, version)
    assert small.overlay_entries == (0 if sorted_semantics else len(small))  # the path taken


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([4, 5]), st.booleans())
def test_map_file_then_catch_up_equals_whole_load(data: st.DataObject, width: int, sorted_semantics: bool) -> None:
    """A map file written for a prefix of the index, then the rest replayed, ends where loading
    the whole index ends (writable maps replay the tail; read-only maps are rebuilt)."""
    rows = data.draw(rows_strategy(width))
    cut = data.draw(st.integers(0, len(rows)))
    with tempfile.TemporaryDirectory() as d:
        check_prefix_then_whole(os.path.join(d, "1.nmx"), rows, cut, width, sorted_semantics)


def check_prefix_then_whole(path: str, rows: list[tuple[int, int, int]], cut: int, width: int, sorted_semantics: bool) -> None:
    prefix = IdxRows(idx_bytes(rows[:cut], width), width)
    first = load_needle_map(prefix, 3, sorted_semantics=sorted_semantics, map_path=path, may_write=True, policy=EVERY_FILE)
    check_against_model(first, rows[:cut], sorted_semantics)
    assert os.path.exists(path) == (cut > 0)  # an empty index needs no file
    whole = IdxRows(idx_bytes(rows, width), width)
    m = load_needle_map(whole, 3, sorted_semantics=sorted_semantics, map_path=path, may_write=True, policy=EVERY_FILE)
    check_against_model(m, rows, sorted_semantics)
    if not sorted_semantics and cut:
        assert m.base_entries == len(first) and m.overlay_entries <= len(rows) - cut  # the tail was replayed


@settings(max_examples=150)
@given(st.data(), st.sampled_from([4, 5]))
def test_catch_up_row_by_row_equals_whole_load(data: st.DataObject, width: int) -> None:
    """Rows applied in any number of catch-ups, as another process appends them."""
    rows = data.draw(rows_strategy(width))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    m = NeedleMap()
    prev = 0
    for c in cuts + [len(rows)]:
        m.catch_up(IdxRows(idx_bytes(rows[prev:c], width), width), 3)
        prev = c
    check_against_model(m, rows, False)


def test_runtime_writes_on_a_mapped_base(tmp_path: Path) -> None:
    """put/delete on a base read from a map file: overlay first, counters as at runtime."""
    rows = [(k, k, 100) for k in range(1, 1001)] + [(5, 2000, 7), (6, 2001, -1)]
    buf = idx_bytes(rows, 5)
    m = load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=str(tmp_path / "1.nmx"), may_write=True, policy=EVERY_FILE)
    assert m.overlay_entries == 0 and m.base_entries == 1000
    assert m.get(6).size == -100 and m.get(5).offset == 2000
    before = m.counters()
    assert m.put(2000, 3000, 50) is None
    assert m.put(7, 3001, 60).size == 100
    assert m.delete(8) == 100 and m.get(8).size == -100 and m.get(8).offset == 8
    assert m.delete(6) == 0 and m.delete(99999) == 0
    c = m.counters()
    assert (c.file_count, c.file_bytes) == (before.file_count + 2, before.file_bytes + 110)
    assert (c.deletion_count, c.deletion_bytes) == (before.deletion_count + 2, before.deletion_bytes + 200)
    assert c.max_file_key == 2000 and len(m) == 1001
    keys = [v.key for v in m.items()]
    assert keys == sorted(keys) and len(keys) == 1001


def test_read_only_map_hides_deleted_base_entries(tmp_path: Path) -> None:
    rows = [(1, 1, 10), (2, 2, 20), (2, 3, -1), (3, 4, 0)]
    m = load_needle_map(IdxRows(idx_bytes(rows, 4), 4), 3, sorted_semantics=True, map_path=str(tmp_path / "1.nmx"), may_write=True, policy=EVERY_FILE)
    assert m.get(2) is None and len(m) == 2 and [v.key for v in m.items()] == [1, 3]
    before = m.counters()
    # Go's read-only map counts nothing for a runtime delete
    assert m.delete(1) == 10 and m.get(1).size == -1
    assert m.counters() == before
    assert m.put(2, 9, 5) is None and m.get(2).size == 5 and len(m) == 3


def test_a_read_only_load_keeps_the_walk_in_the_map_file(tmp_path: Path) -> None:
    """A read-only load of a volume whose map file a writable load wrote runs Go's walk once and
    records it; the next read-only load takes it from the file (no numpy needed). A record made
    against another file's header is ignored."""
    rows = ROWS + [(7, 3000, 40), (8, 3001, -1), (400, 3002, 0)]
    buf = idx_bytes(rows, 5)
    path = str(tmp_path / "7.nmx")
    load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=path, may_write=True, policy=EVERY_FILE)
    first = open_map_file(path, buf, 17, 3)
    assert first is not None and first.walk is None
    for _ in range(2):
        m = load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=True, map_path=path, may_write=True, policy=EVERY_FILE)
        check_against_model(m, rows, True)
        assert open_map_file(path, buf, 17, 3).walk == walk_counters(IdxRows(buf, 5), 3) == m.counters()
    other, other_buf = written(tmp_path, ROWS)  # another file (another prefix)
    record_walk(other, first, walk_counters(IdxRows(buf, 5), 3))
    assert open_map_file(other, other_buf, 17, 3).walk is None


def written(tmp_path: Path, rows: list[tuple[int, int, int]], width: int = 5, version: int = 3) -> tuple[str, bytes]:
    buf = idx_bytes(rows, width)
    path = str(tmp_path / "7.nmx")
    r = resolve(IdxRows(buf, width), version)
    assert write_map_file(path, r, idx_buf=buf, idx_bytes=len(buf), entry_size=12 + width, version=version) is not None
    return path, buf


ROWS = [(k, k * 3, 40) for k in range(1, 300)] + [(10, 2000, -1)]


def test_map_file_is_refused_when_the_index_no_longer_starts_with_what_it_covers(tmp_path: Path) -> None:
    path, buf = written(tmp_path, ROWS)
    assert open_map_file(path, buf, 17, 3) is not None
    assert open_map_file(path, buf + idx_bytes([(5000, 9000, 1)], 5), 17, 3).idx_bytes == len(buf)  # appended: still good
    changed = bytearray(buf)
    changed[100] ^= 1
    assert open_map_file(path, bytes(changed), 17, 3) is None  # rewritten
    assert open_map_file(path, buf[:-17], 17, 3) is None  # shorter (a compaction)
    assert open_map_file(path, buf, 16, 3) is None  # other offset width
    assert open_map_file(path, buf, 17, 2) is None  # other super block version


@pytest.mark.parametrize("damage", ["flip-column-byte", "truncate", "header"])
def test_damaged_map_file_is_refused_and_rebuilt(tmp_path: Path, damage: str) -> None:
    path, buf = written(tmp_path, ROWS)
    raw = bytearray(Path(path).read_bytes())
    if damage == "flip-column-byte":
        raw[300] ^= 0x40
    elif damage == "truncate":
        raw = raw[:-4]
    else:
        raw[0] ^= 1
    Path(path).write_bytes(bytes(raw))
    assert open_map_file(path, buf, 17, 3) is None
    m = load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=path, may_write=True, policy=EVERY_FILE)
    check_against_model(m, ROWS, False)
    assert open_map_file(path, buf, 17, 3) is not None  # written again


def test_views_never_write_and_small_indexes_keep_no_file(tmp_path: Path) -> None:
    buf = idx_bytes(ROWS, 5)
    path = str(tmp_path / "7.nmx")
    load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=path, may_write=False, policy=EVERY_FILE)
    assert not os.path.exists(path)
    written(tmp_path, ROWS)
    m = load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=path, may_write=False, policy=EVERY_FILE)
    assert m.base_entries == 299  # a view reads an existing file
    small = MapPolicy(file_min_rows=len(ROWS) + 1)
    load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=path, may_write=True, policy=small)
    assert not os.path.exists(path)  # a stale file of a volume that became small goes


def test_long_tail_is_resolved_again_and_the_file_rewritten(tmp_path: Path) -> None:
    path, buf = written(tmp_path, ROWS)
    more = [(k, 5000 + k, 8) for k in range(1000, 1100)]
    whole = buf + idx_bytes(more, 5)
    policy = MapPolicy(file_min_rows=0, replay_max_rows=10)
    m = load_needle_map(IdxRows(whole, 5), 3, sorted_semantics=False, map_path=path, may_write=True, policy=policy)
    check_against_model(m, ROWS + more, False)
    assert m.overlay_entries == 0 and open_map_file(path, whole, 17, 3).idx_bytes == len(whole)


def test_wide_offsets_round_trip_through_the_file(tmp_path: Path) -> None:
    """Offsets past 32 GiB (5-byte `.idx`) keep 8 bytes per offset in the file."""
    rows = [(1, 5, 10), (2, (1 << 36) + 3, 20), (3, (1 << 40) - 1, 30)]
    path, buf = written(tmp_path, rows)
    mf = open_map_file(path, buf, 17, 3)
    assert mf.resolved.offsets.itemsize == 8
    m = load_needle_map(IdxRows(buf, 5), 3, sorted_semantics=False, map_path=path, may_write=True, policy=EVERY_FILE)
    check_against_model(m, rows, False)


@settings(max_examples=300)
@given(st.lists(st.integers(0, 70), max_size=120), st.integers(0, 2**64 - 1), st.lists(st.integers(0, 2**64 - 1), max_size=3))
def test_key_order_is_a_stable_argsort(small: list[int], base: int, spread: list[int]) -> None:
    """Both ways of ordering rows by key (ids packed with row numbers when their span allows,
    a stable argsort when ids spread over 64 bits) give a stable argsort's permutation."""
    keys = np.array([min(base + k, 2**64 - 1) for k in small] + spread, dtype=np.uint64)
    order, ks = key_order(keys)
    want = np.argsort(keys, kind="stable")
    assert order.tolist() == want.tolist()
    assert ks.tolist() == keys[want].tolist()
