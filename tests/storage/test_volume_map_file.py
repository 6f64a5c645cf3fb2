"""A volume's needle map through its map file (`<base>.nmx`): written at load, reused while the
`.idx` still starts with what it resolves, replayed past, removed with the volume, and never
written by a read-only view."""

from __future__ import annotations

import os
from pathlib import Path

from native.storage import Needle, Volume
from native.storage._map_load import MapPolicy
from native.storage._vacuum import commit_compact, compact

EVERY_FILE = MapPolicy(file_min_rows=1)


def mk(nid: int, data: bytes | None = None) -> Needle:
    return Needle.create(nid, 0x1234, data or f"data-{nid}".encode(), name=b"n", mime=b"", last_modified=1_700_000_000)


def filled(tmp_path: Path, n: int = 200) -> tuple[Volume, tuple]:
    v = Volume.create(tmp_path, 1, map_policy=EVERY_FILE)
    for i in range(1, n + 1):
        v.write_needle(mk(i))
    for i in range(1, n + 1, 7):
        v.delete_needle(i, 0x1234)
    for i in range(2, n + 1, 11):
        v.write_needle(mk(i, b"rewritten" * i))
    return v, stats_of(v)


def stats_of(v: Volume, *, loaded: bool = False) -> tuple:
    """Go's counters; with `loaded`, also the highest record end, which only a load computes."""
    s = v.stats()
    return (s.file_count, s.delete_count, s.content_size, s.deleted_bytes, s.max_file_key) + ((v.nm.max_needle_end,) if loaded else ())


def contents(v: Volume) -> dict:
    return {nv.key: (nv.offset, nv.size) for nv in v.nm.items()}


def test_reload_reuses_the_map_file_then_replays_what_was_appended(tmp_path: Path) -> None:
    v, stats = filled(tmp_path)
    want = contents(v)
    v.close()
    nmx = tmp_path / "1.nmx"
    assert not nmx.exists()  # nothing is written until a load resolves the index
    v = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert nmx.exists() and stats_of(v) == stats and contents(v) == want
    assert v.nm.overlay_entries == 0
    written_at = nmx.stat().st_mtime_ns
    v.write_needle(mk(500))
    v.delete_needle(3, 0x1234)
    v.write_needle(mk(4, b"again"))
    stats, want = stats_of(v), contents(v)
    v.close()
    v = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert stats_of(v) == stats and contents(v) == want
    assert v.nm.overlay_entries == 3 and nmx.stat().st_mtime_ns == written_at  # replayed, not rewritten
    assert v.read_needle(4).data == b"again" and v.read_needle(500).data == b"data-500"
    v.close()


def test_map_file_loads_the_same_as_a_load_without_one(tmp_path: Path) -> None:
    v, _ = filled(tmp_path)
    v.close()
    plain = Volume.load(tmp_path, 1, map_policy=MapPolicy(use_files=False))
    assert not (tmp_path / "1.nmx").exists()
    mapped = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert stats_of(plain, loaded=True) == stats_of(mapped, loaded=True) and contents(plain) == contents(mapped)
    again = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert stats_of(plain, loaded=True) == stats_of(again, loaded=True) and contents(plain) == contents(again)
    assert again.nm.max_needle_end == again.dat_size
    for vv in (plain, mapped, again):
        vv.close()


def test_compaction_commit_rebuilds_the_map_file(tmp_path: Path) -> None:
    v, _ = filled(tmp_path)
    v.close()
    v = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    before = (tmp_path / "1.nmx").read_bytes()
    compact(v)
    commit_compact(v)
    after = (tmp_path / "1.nmx").read_bytes()
    assert after != before and stats_of(v)[0] == len([nv for nv in v.nm.items() if nv.size >= 0])
    want = contents(v)
    v.close()
    v = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert contents(v) == want and v.nm.overlay_entries == 0
    v.close()


def test_read_only_volume_and_mark_writable(tmp_path: Path) -> None:
    v, _ = filled(tmp_path)
    v.mark_readonly(persist=True)
    v.close()
    v = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert v.nm.sorted_semantics
    assert v.needle_value(1) is None  # deleted ids are gone from a read-only map (Go's .sdx)
    v.mark_writable()
    assert not v.nm.sorted_semantics and v.needle_value(1).size < 0  # the writable map keeps them, negated
    v.close()


def test_views_never_write_one_and_destroy_removes_it(tmp_path: Path) -> None:
    v, _ = filled(tmp_path)
    v.close()
    view = Volume.load(tmp_path, 1, read_only_view=True, map_policy=EVERY_FILE)
    assert not (tmp_path / "1.nmx").exists()
    view.close()
    v = Volume.load(tmp_path, 1, map_policy=EVERY_FILE)
    assert (tmp_path / "1.nmx").exists()
    v.destroy()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("1.")]


def test_separate_index_directory_keeps_the_map_file_beside_the_idx(tmp_path: Path) -> None:
    data, idx = tmp_path / "data", tmp_path / "idx"
    v = Volume.create(data, 1, idx_directory=idx, map_policy=EVERY_FILE)
    for i in range(1, 20):
        v.write_needle(mk(i))
    v.close()
    v = Volume.load(data, 1, idx_directory=idx, map_policy=EVERY_FILE)
    assert (idx / "1.nmx").exists() and not (data / "1.nmx").exists()
    v.close()
