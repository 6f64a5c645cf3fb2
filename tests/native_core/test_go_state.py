"""Mixed mode's view of what Go holds in memory (native/go_state.py) and the follower views built
from it: a native Store stands in for Go as the owner (its answers are Go 4.48's, checked by the
differ), the follower is told the calls the owner answered, and its counters and marks must be
the owner's."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.message import Message

from native.follower import FollowerLocation, FollowerStore
from native.go_state import GoStateBook, GoVolumeState, VolumeFiles
from native.storage import Needle, Store, VolumeInfo
from native.storage._map_build import IdxRows
from native.storage._map_replay import load_only_deletions
from native.storage._idx import IdxCodec
from proto import volume_server_pb2 as vs

P = "/volume_server_pb.VolumeServer/"


def told(follower: FollowerStore, method: str, request: Message, response: Message | None = None) -> None:
    follower.go_answered(P + method, request.SerializeToString(), None if response is None else response.SerializeToString())


def counters(store, vid: int) -> tuple[int, int, int, int, bool]:
    v = store.find_volume(vid)
    c = v.nm.counters()
    return c.file_count, c.deletion_count, c.deletion_bytes, c.file_bytes, v.read_only


def test_rows_after_an_empty_needle_count_as_at_runtime() -> None:
    codec = IdxCodec.for_width(4)
    rows = [(1, 1, 0), (1, 2, 10), (2, 3, 0), (2, 4, -1), (3, 5, 7), (3, 6, 8), (4, 7, 0), (4, 8, 0)]
    raw = IdxRows(b"".join(codec.encode(*r) for r in rows), 4)
    assert load_only_deletions(raw, 0) == 3  # 1's overwrite, 2's delete, 4's second empty put
    assert load_only_deletions(raw, 2) == 2
    assert load_only_deletions(raw, 8) == 0


def test_follower_counts_as_the_owner_did(tmp_path: Path) -> None:
    """Empty needles overwritten and deleted at runtime: Go's runtime counts no deletion for
    them, a load of the same index would; the view is the runtime's."""
    owner = Store.open([str(tmp_path)], max_counts=5)
    follower = FollowerStore([FollowerLocation(str(tmp_path), max_volume_count=5)])
    try:
        owner.allocate_volume(3)
        told(follower, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=3))
        owner.write_needle(3, Needle.create(1, 0x11, b""))
        owner.write_needle(3, Needle.create(1, 0x11, b"one"))  # over an empty needle
        owner.write_needle(3, Needle.create(2, 0x22, b""))
        owner.delete_needle(3, 2)  # an empty needle deleted
        owner.write_needle(3, Needle.create(3, 0x33, b"three"))
        owner.delete_needle(3, 3)
        assert counters(follower, 3) == counters(owner, 3)
        assert counters(owner, 3)[1] == 1
    finally:
        follower.close()
        owner.close()


def test_follower_keeps_the_marks_and_map_go_holds(tmp_path: Path) -> None:
    owner = Store.open([str(tmp_path)], max_counts=5)
    follower = FollowerStore([FollowerLocation(str(tmp_path), max_volume_count=5)])
    try:
        owner.allocate_volume(4)
        told(follower, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=4))
        for nid, data in ((0x10, b"hello"), (0x11, b"x" * 100), (0x12, b"hello"), (0x14, b"y" * 50)):
            owner.write_needle(4, Needle.create(nid, 7, data))
        owner.delete_needle(4, 0x14)
        # a runtime mark (not in the .vif): only the call tells the view
        owner.mark_volume_readonly(4, can_delete=True)
        told(follower, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=4, can_delete=True))
        assert counters(follower, 4) == counters(owner, 4)
        assert follower.find_volume(4).read_only
        # compacted and committed read-only: Go reloads its read-only map (the walk's counters,
        # its deletes count nothing)
        list(owner.compact_volume(4))
        owner.commit_compact_volume(4)
        told(follower, "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=4))
        owner.delete_needle(4, 0x11)
        assert follower.find_volume(4).nm.sorted_semantics
        assert counters(follower, 4) == counters(owner, 4)
        # marked read-only with deletes allowed again: the writable map is back
        owner.mark_volume_readonly(4, can_delete=True)
        told(follower, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=4, can_delete=True))
        owner.delete_needle(4, 0x12)
        assert not follower.find_volume(4).nm.sorted_semantics
        assert counters(follower, 4) == counters(owner, 4)
        owner.mark_volume_writable(4)
        told(follower, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=4))
        assert counters(follower, 4) == counters(owner, 4)
        assert not follower.find_volume(4).read_only
        owner.unmount_volume(4)
        told(follower, "VolumeUnmount", vs.VolumeUnmountRequest(volume_id=4))
        assert follower.find_volume(4) is None  # its files stay, Go serves it no more
        owner.mount_volume(4)
        told(follower, "VolumeMount", vs.VolumeMountRequest(volume_id=4))
        assert counters(follower, 4) == counters(owner, 4)
    finally:
        follower.close()
        owner.close()


def test_book_follows_loads_marks_and_commits() -> None:
    files = {5: VolumeFiles(32, VolumeInfo(version=3), 0)}
    book = GoStateBook(lambda vid: files.get(vid))
    book.remember_startup([5])
    assert book.state(5) == GoVolumeState(32, False, False, False, VolumeInfo(version=3))

    def observe(method: str, req: Message, resp: Message | None = None) -> list[int]:
        return book.observe(P + method, req.SerializeToString(), None if resp is None else resp.SerializeToString())

    assert observe("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=5, persist=True)) == [5]
    s = book.state(5)
    assert (s.no_write_or_delete, s.sorted_map, s.info.read_only) == (True, False, True)  # the map stays
    files[5] = VolumeFiles(64, VolumeInfo(version=3, read_only=True), 1)
    observe("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=5))
    s = book.state(5)
    assert (s.loaded_idx_bytes, s.sorted_map, s.extra_files) == (64, True, 0)  # reloaded read-only
    files[5] = VolumeFiles(80, VolumeInfo(version=3, read_only=True), 1)
    observe("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=5, can_delete=True))
    s = book.state(5)
    assert (s.loaded_idx_bytes, s.sorted_map, s.no_write_can_delete) == (80, False, True)  # reopenIdxForWrite
    # a configure that failed after unmounting leaves the volume unmounted
    observe("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=5, replication="000"),
            vs.VolumeConfigureResponse(error="volume configure mount 5: boom"))
    assert book.unmounted(5) and book.state(5) is None
    # one refused before unmounting changes nothing
    files[6] = VolumeFiles(0, None, 0)
    observe("AllocateVolume", vs.AllocateVolumeRequest(volume_id=6))
    before = book.state(6)
    assert observe("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=6, replication="x"),
                   vs.VolumeConfigureResponse(error="replication x: bad")) == []
    assert book.state(6) == before
