"""The store: several directories, volume limits, disk types, collections, free space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from native.storage import (
    DiskStatus,
    MinFreeSpace,
    Needle,
    NoFreeLocation,
    OffsetWidthMismatch,
    ReadOnly,
    Store,
    Volume,
    VolumeExists,
    VolumeNotFound,
    parse_min_free_spaces,
)


class FakeDisk:
    def __init__(self, free: int = 50 << 30, total: int = 100 << 30) -> None:
        self.free, self.total = free, total

    def __call__(self, d: str) -> DiskStatus:
        used = self.total - self.free
        return DiskStatus(d, self.total, used, self.free, self.free / self.total * 100, used / self.total * 100)


def n(nid: int, data: bytes = b"x") -> Needle:
    return Needle.create(nid, 0x55, data, name="f", mime="m/t", last_modified=1)


def test_allocate_spreads_by_disk_type_and_count(tmp_path: Path) -> None:
    s = Store.open([tmp_path / "a", tmp_path / "b", tmp_path / "c"], max_counts=[2, 2, 1], disk_types=["", "", "ssd"], statfs=FakeDisk())
    s.allocate_volume(1)
    s.allocate_volume(2)
    dirs = {s.location_of(1)[1].directory, s.location_of(2)[1].directory}
    assert dirs == {str(tmp_path / "a"), str(tmp_path / "b")}  # fewest volumes first
    s.allocate_volume(3, disk_type="SSD")
    assert s.location_of(3)[0] == 2
    with pytest.raises(NoFreeLocation):
        s.allocate_volume(4, disk_type="ssd")
    with pytest.raises(VolumeExists):
        s.allocate_volume(1)
    s.allocate_volume(4)
    s.allocate_volume(5)
    with pytest.raises(NoFreeLocation):
        s.allocate_volume(6)
    assert [v.id for v in s.volumes()] == [1, 2, 3, 4, 5]
    assert (tmp_path / "a" / "vol_dir.uuid").exists()
    s.close()


def test_needle_operations_and_restart(tmp_path: Path) -> None:
    s = Store.open([tmp_path / "a", tmp_path / "b"], statfs=FakeDisk())
    s.allocate_volume(7, collection="pics", replication="001", ttl="")
    s.allocate_volume(8)
    s.write_needle(7, n(1, b"hello"))
    s.write_needle(8, n(1, b"other"))
    assert s.read_needle(7, 1, 0x55).data == b"hello"
    assert s.delete_needle(8, 1, 0x55) > 0
    with pytest.raises(VolumeNotFound):
        s.read_needle(9, 1)
    with pytest.raises(VolumeNotFound):
        s.write_needle(9, n(1))
    s.close()
    s = Store.open([tmp_path / "a", tmp_path / "b"], statfs=FakeDisk())
    assert s.volume(7).collection == "pics" and str(s.volume(7).replica_placement) == "001"
    assert s.read_needle(7, 1).data == b"hello"
    assert s.read_needle(8, 1, read_deleted=True).data == b"other"
    assert s.max_file_key() == 1
    s.close()


def test_mount_unmount_delete_collection(tmp_path: Path) -> None:
    s = Store.open([tmp_path], statfs=FakeDisk())
    for vid, coll in [(1, "a"), (2, "a"), (3, "b")]:
        s.allocate_volume(vid, collection=coll)
        s.write_needle(vid, n(1))
    assert s.unmount_volume(1) is True and s.unmount_volume(1) is False
    assert s.find_volume(1) is None and (tmp_path / "a_1.dat").exists()
    assert s.mount_volume(1).read_needle(1).data == b"x"
    with pytest.raises(VolumeNotFound):
        s.mount_volume(42)
    assert s.delete_collection("a") == [1, 2]
    assert not (tmp_path / "a_1.dat").exists() and not (tmp_path / "a_2.vif").exists()
    with pytest.raises(Exception, match="not empty"):
        s.delete_volume(3, only_empty=True)
    s.delete_volume(3)
    assert not list(tmp_path.glob("b_3.*"))
    with pytest.raises(VolumeNotFound):
        s.delete_volume(3)
    s.close()


def test_readonly_marks_and_configure(tmp_path: Path) -> None:
    s = Store.open([tmp_path], statfs=FakeDisk())
    s.allocate_volume(1)
    s.write_needle(1, n(1))
    s.mark_volume_readonly(1, persist=True)
    with pytest.raises(ReadOnly):
        s.write_needle(1, n(2))
    with pytest.raises(ReadOnly):
        s.delete_needle(1, 1, 0x55)
    s.unmount_volume(1)
    s.configure_volume(1, "010")  # unmounted: only the .vif changes
    v = s.mount_volume(1)
    assert v.read_only and str(v.replica_placement) == "010"
    s.mark_volume_writable(1)
    s.write_needle(1, n(2))
    assert json.loads((tmp_path / "1.vif").read_text())["readOnly"] is False
    s.close()


def test_low_free_space_makes_volumes_read_only(tmp_path: Path) -> None:
    disk = FakeDisk(free=50 << 30)
    s = Store.open([tmp_path], min_free_spaces=MinFreeSpace.parse("10GiB"), statfs=disk)
    s.allocate_volume(1)
    s.write_needle(1, n(1))
    disk.free = 5 << 30
    s.check_disk_space()
    assert s.volume(1).read_only and s.volume(1).read_only_reasons().disk_space_low
    with pytest.raises(ReadOnly):
        s.write_needle(1, n(2))
    assert s.delete_needle(1, 1, 0x55) > 0  # deletes still land, as in Go
    with pytest.raises(NoFreeLocation):
        s.allocate_volume(2)
    disk.free = 20 << 30
    s.check_disk_space()
    s.write_needle(1, n(3))
    s.close()


def test_min_free_space_parsing() -> None:
    assert MinFreeSpace.parse("1").percent == 1.0
    assert MinFreeSpace.parse("10GiB").bytes == 10 << 30
    assert MinFreeSpace.parse("1.5G").bytes == 1_500_000_000
    assert MinFreeSpace.parse("100").percent == 100
    for bad in ("101", "-1", "10XB"):
        with pytest.raises(ValueError):
            MinFreeSpace.parse(bad)
    with pytest.raises(ValueError):
        MinFreeSpace.parse("100B")  # an absolute size must exceed 100 bytes
    assert [m.percent for m in parse_min_free_spaces("", "5", 3)] == [5.0, 5.0, 5.0]
    assert [m.bytes for m in parse_min_free_spaces("1GiB,2GiB", "5", 2)] == [1 << 30, 2 << 30]
    m = MinFreeSpace.parse("10")
    assert m.is_low(1, 9.9) and not m.is_low(1, 10.0)
    assert m.available(free_bytes=50, total_bytes=100) == 40


def test_width_mismatch_is_refused(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1, offset_bytes=4)
    v.write_needle(n(1))
    v.close()
    with pytest.raises(OffsetWidthMismatch, match="-offsetBytes=4"):
        Store.open([tmp_path], offset_bytes=5, statfs=FakeDisk())
    s = Store.open([tmp_path], offset_bytes=4, statfs=FakeDisk())
    assert s.read_needle(1, 1).data == b"x"
    s.close()


def test_startup_cleanup(tmp_path: Path) -> None:
    s = Store.open([tmp_path], statfs=FakeDisk())
    for vid in (1, 2, 3):
        s.allocate_volume(vid)
        s.write_needle(vid, n(1, b"v%d" % vid))
    s.close()
    (tmp_path / "1.note").write_text("copy interrupted")  # an incomplete volume: removed
    (tmp_path / "2.cpd").write_bytes(b"stale")  # compaction without commit marker: rolled back
    shutil_copy = (tmp_path / "3.dat").read_bytes()
    (tmp_path / "3.cpd").write_bytes(shutil_copy)
    (tmp_path / "3.cpx").write_bytes((tmp_path / "3.idx").read_bytes())
    (tmp_path / "3.cpc").write_bytes(b"")  # committed: rolled forward
    (tmp_path / "9.vif").write_text("{}")  # a lone .vif: skipped, untouched
    s = Store.open([tmp_path], statfs=FakeDisk())
    assert [v.id for v in s.volumes()] == [2, 3]
    assert not list(tmp_path.glob("1.*")) and not (tmp_path / "2.cpd").exists()
    assert not (tmp_path / "3.cpc").exists() and not (tmp_path / "3.cpd").exists()
    assert s.read_needle(3, 1).data == b"v3" and (tmp_path / "9.vif").exists()
    s.close()


def test_remote_tier_volumes_load_tiered_and_ec_volumes_are_refused_explicitly(tmp_path: Path) -> None:
    s = Store.open([tmp_path], statfs=FakeDisk())
    s.allocate_volume(1)
    s.allocate_volume(2)
    s.close()
    (tmp_path / "1.vif").write_text(json.dumps({"files": [{"backendType": "s3", "key": "k"}], "version": 3}))
    (tmp_path / "2.ecx").write_bytes(b"")
    s = Store.open([tmp_path], statfs=FakeDisk())
    assert [(v.id, v.is_remote, v.read_only) for v in s.volumes()] == [(1, True, True)]  # see tests/native_remote
    errors = s.locations[0].load_errors
    assert "erasure" in errors["2"]
    s.close()


@pytest.mark.parametrize("writable_after", [True, False])
def test_an_append_waiting_on_a_volume_replaced_meanwhile_is_answered_by_the_replacement(
        tmp_path: Path, writable_after: bool) -> None:
    """A tier move replaces the store's volume object while holding the old one's write lock
    (marked read-only, closed after). An append that waited for that lock got the old object's
    refusal (read only, or closed: a 500); Go's volume is one object whose files change under
    it, so the answer is the one the volume as it is now gives."""
    import threading
    import time

    store = Store.open([str(tmp_path)], max_counts=4)
    store.allocate_volume(1)
    store.write_needle(1, n(1, b"before"))
    old = store.find_volume(1)
    loc = store.locations[0]
    held, done = threading.Event(), threading.Event()
    outcome: list[object] = []

    def append() -> None:
        try:
            outcome.append(store.write_needle(1, n(2, b"waited")))
        except Exception as exc:  # noqa: BLE001 - the answer under test
            outcome.append(exc)
        done.set()

    with old._write_lock:
        t = threading.Thread(target=append)
        t.start()
        time.sleep(0.2)  # the append waits for the lock
        new = Volume.load(str(tmp_path), 1, read_only_marks=(False, not writable_after))
        old.no_write_or_delete = True  # as the move marks it: nothing lands in the old object
        loc.attach(new)
    old.close()
    assert done.wait(10)
    t.join(10)
    if writable_after:
        assert not isinstance(outcome[0], Exception), outcome[0]
        assert store.read_needle(1, 2).data == b"waited"
    else:  # read-only with deletes allowed (a move back to local disk): the new object's refusal
        assert isinstance(outcome[0], ReadOnly), outcome[0]
    assert store.read_needle(1, 1).data == b"before"
    new.close()


def _append_then_replace(tmp_path: Path, ttl: str, fail_sync: bool):
    """An fsync upload whose append landed on the old object and whose sync then met a
    replacement of it (an unmount and mount; a worker's reload, a tier move are the same):
    the old object's sync raises after the record is in the files the new object serves."""
    import errno
    import os
    import threading

    store = Store.open([str(tmp_path)], max_counts=4)
    store.allocate_volume(1, ttl=ttl)
    old = store.find_volume(1)
    outcome: list[object] = []

    def replace() -> None:
        store.unmount_volume(1)
        store.mount_volume(1)

    if fail_sync:  # the sync fails on the disk while the volume is replaced meanwhile
        real = old.files

        class Failing:
            def __getattr__(self, name: str):
                return getattr(real, name)

            def fdatasync(self, fd: int) -> None:
                replace()
                raise OSError(errno.EIO, os.strerror(errno.EIO))

        old.files = Failing()
        try:
            outcome.append(store.write_needle(1, n(2, b"synced?"), fsync=True))
        except Exception as exc:  # noqa: BLE001 - the answer under test
            outcome.append(exc)
    else:  # the sync waits (another writer's group commit) while the volume is replaced
        def append() -> None:
            try:
                outcome.append(store.write_needle(1, n(2, b"once"), fsync=True))
            except Exception as exc:  # noqa: BLE001
                outcome.append(exc)

        with old._sync_lock:
            t = threading.Thread(target=append)
            t.start()
            for _ in range(500):
                if old.nm.get(2) is not None:
                    break
                threading.Event().wait(0.01)
            assert old.nm.get(2) is not None  # appended: the record is in the files
            replace()
        t.join(10)
    new = store.find_volume(1)
    assert new is not old
    records = [r for r in new.iter_records() if r.header.id == 2]
    return store, outcome[0], records


@pytest.mark.parametrize("ttl", ["", "1d"])
def test_an_fsync_append_whose_sync_met_a_replacement_is_not_answered_as_a_second_write(
        tmp_path: Path, ttl: str) -> None:
    """The retry in Store.write_needle assumes the first attempt wrote nothing; here it wrote
    the record, and the retry on the replacement finds it: a first upload answered as
    unchanged (204 instead of Go's 201), or on a TTL volume appended a second time."""
    store, outcome, records = _append_then_replace(tmp_path, ttl, fail_sync=False)
    try:
        if not isinstance(outcome, Exception):
            assert outcome.unchanged is False, "a first upload answered as an unchanged rewrite"
        assert records is not None and len(records) == 1, f"needle stored {len(records)} times"
    finally:
        store.close()


def test_an_append_whose_fsync_failed_is_not_acknowledged_by_the_retry(tmp_path: Path) -> None:
    """A failed fsync is never retried (_sync_dat: the lost pages may look clean); the store's
    retry on a replacement must not turn it into a success either."""
    store, outcome, _ = _append_then_replace(tmp_path, "", fail_sync=True)
    try:
        assert isinstance(outcome, Exception), f"a write whose fsync failed acknowledged: {outcome}"
    finally:
        store.close()
