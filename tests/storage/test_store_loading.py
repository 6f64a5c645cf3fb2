"""Loading a store's volumes after it is open: discovery first (cheap, raises what Go exits on),
then the volumes in worker threads; a change to a volume still waiting loads it at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from native.storage import Needle, OffsetWidthMismatch, Store, VolumeExists, VolumeInfo, save_volume_info
from tests.storage.test_store import FakeDisk


def n(nid: int, data: bytes = b"x") -> Needle:
    return Needle.create(nid, 0x55, data, name="f", mime="m/t", last_modified=1)


def populated(tmp_path: Path, vids: range = range(1, 9)) -> list[Path]:
    dirs = [tmp_path / "a", tmp_path / "b"]
    s = Store.open(dirs, max_counts=20, statfs=FakeDisk())
    for vid in vids:
        s.allocate_volume(vid, collection="c" if vid % 3 == 0 else "")
        for k in range(1, vid * 5):
            s.write_needle(vid, n(k, bytes([vid]) * k))
        s.delete_needle(vid, 1, None)
    s.close()
    return dirs


def stats(s: Store) -> list:
    return [(st.id, st.collection, st.file_count, st.delete_count, st.content_size, st.deleted_bytes) for st in s.volume_stats()]


def test_discover_then_load_pending_ends_where_a_blocking_open_does(tmp_path: Path) -> None:
    dirs = populated(tmp_path)
    whole = Store.open(dirs, max_counts=20, statfs=FakeDisk())
    want = stats(whole)
    whole.close()
    s = Store.open(dirs, max_counts=20, statfs=FakeDisk(), load=False)
    assert s.volumes() == [] and not s.loading
    assert s.discover() == list(range(1, 9))
    assert s.loading and s.volumes() == [] and s.find_volume(3) is None  # not served before it is loaded
    seen: list[int] = []
    s.load_pending(threads=3, on_loaded=lambda v: seen.append(v.id))
    assert sorted(seen) == list(range(1, 9)) and not s.loading
    assert stats(s) == want
    assert s.read_needle(5, 4).data == bytes([5]) * 4
    s.close()


def test_a_change_to_a_volume_still_waiting_loads_it_first(tmp_path: Path) -> None:
    dirs = populated(tmp_path)
    s = Store.open(dirs, max_counts=20, statfs=FakeDisk(), load=False)
    s.discover()
    with pytest.raises(VolumeExists):
        s.allocate_volume(2)  # its files are there: it is loaded, not created over
    assert s.find_volume(2) is not None and 2 not in sum((loc.pending_ids() for loc in s.locations), [])
    assert s.mount_volume(4).id == 4
    s.delete_volume(5)
    s.mark_volume_readonly(6)
    assert s.volume(6).read_only
    assert s.delete_collection("c") == [3, 6]
    s.load_pending()
    assert [v.id for v in s.volumes()] == [1, 2, 4, 7, 8]  # nothing deleted comes back
    assert not any(p.name.startswith(("5.", "c_3.", "c_6.")) for d in dirs for p in d.iterdir())
    s.close()


def test_every_thread_asking_for_a_volume_gets_the_one_loaded(tmp_path: Path) -> None:
    dirs = populated(tmp_path, range(1, 3))
    s = Store.open(dirs, max_counts=20, statfs=FakeDisk(), load=False)
    s.discover()
    got: list[object] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        got.append(s.mount_volume(2))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(v is got[0] for v in got)
    s.load_pending()
    assert s.volume(2) is got[0]
    s.close()


def test_offset_width_mismatch_is_raised_by_discovery(tmp_path: Path) -> None:
    dirs = populated(tmp_path, range(1, 3))
    holder = next(d for d in dirs if (d / "2.dat").exists())
    save_volume_info(str(holder / "2.vif"), VolumeInfo(version=3, bytes_offset=4))
    s = Store.open(dirs, max_counts=20, statfs=FakeDisk(), load=False)
    with pytest.raises(OffsetWidthMismatch):
        s.discover()
    assert s.volumes() == []
    s.close()


_MEASURE = """
import sys
from native.storage import Store
def anon():
    return int(open("/proc/self/status").read().split("RssAnon:")[1].split()[0]) << 10
s = Store.open([sys.argv[1]], max_counts=0, load=False)
s.discover()
import numpy, native.storage._map_build, native.storage._map_load, native.storage._volume, native.storage.tier._volume  # noqa: F401, E401 - the code (numpy, the volume code) is loaded before the baseline
before = anon()
s.load_pending(threads=4)
print(anon() - before, s.volume(1).nm.base_entries)
"""


def write_put_only_volume(d: Path, n: int) -> None:
    """`n` 16-byte needles with ascending ids, written in bulk (numpy) in the layout the volume
    writer produces."""
    import numpy as np  # only this test builds volumes in bulk

    from native.storage import SuperBlock, encode_needle

    template = np.frombuffer(encode_needle(Needle.create(1, 7, b"0123456789abcdef", name=b"", mime=b"", last_modified=1), 3), np.uint8)
    size = int.from_bytes(template[12:16].tobytes(), "big")
    keys = np.arange(1, n + 1, dtype=np.uint64)
    recs = np.empty((n, len(template)), np.uint8)
    recs[:] = template
    recs[:, 4:12] = keys.astype(">u8").view(np.uint8).reshape(-1, 8)
    (d / "1.dat").write_bytes(SuperBlock().encode() + recs.tobytes())
    rows = np.empty(n, np.dtype([("k", ">u8"), ("lo", ">u4"), ("hi", "u1"), ("s", ">i4")]))
    rows["k"], rows["lo"], rows["hi"], rows["s"] = keys, (8 + np.arange(n) * len(template)) // 8, 0, size
    (d / "1.idx").write_bytes(rows.tobytes())
    save_volume_info(str(d / "1.vif"), VolumeInfo(version=3, bytes_offset=5))


@pytest.mark.slow
def test_loading_leaves_the_map_in_its_file_not_in_the_heap(tmp_path: Path) -> None:
    """After loading in worker threads, the process's anonymous memory has grown by a few bytes
    per needle at most: the map is in its mapped file (16 bytes per needle), and the bulk
    build's temporaries went back to the system (glibc keeps them otherwise: ~13 bytes per
    needle)."""
    import subprocess
    import sys

    n = 1_000_000
    write_put_only_volume(tmp_path, n)
    for _ in range(2):  # the first load builds and writes the map file, the second maps it
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(tmp_path)], capture_output=True, text=True, check=True)
        grown, entries = map(int, out.stdout.split())
        assert entries == n
        assert grown / n < 3, f"{grown / n:.1f} anonymous bytes per needle"
    assert (tmp_path / "1.nmx").stat().st_size <= 256 + 16 * n


def test_a_width_found_only_while_loading_is_raised_after_the_others_load(tmp_path: Path) -> None:
    """A volume without a `.vif` whose `.idx` only fits the other offset width cannot be found by
    discovery; loading raises OffsetWidthMismatch once every other volume is loaded."""
    from native.storage import Volume

    four = Volume.create(tmp_path, 1, offset_bytes=4)
    four.write_needle(n(1))
    four.close()
    five = Volume.create(tmp_path, 2, offset_bytes=5)
    for k in range(1, 4):
        five.write_needle(n(k))
    five.close()
    (tmp_path / "2.vif").unlink()
    s = Store.open([tmp_path], max_counts=10, offset_bytes=4, statfs=FakeDisk(), load=False)
    assert s.discover() == [1, 2]
    seen: list[int] = []
    with pytest.raises(OffsetWidthMismatch):
        s.load_pending(on_loaded=lambda v: seen.append(v.id))
    assert seen == [1] and [v.id for v in s.volumes()] == [1] and not s.loading
    s.close()
