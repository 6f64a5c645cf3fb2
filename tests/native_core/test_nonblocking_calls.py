"""The storage calls the event loop makes with `blocking=False` (native/offload.py): each one
answers at once when nothing holds what it needs, and raises WouldBlock instead of waiting when
a worker thread or another process does (so `storage_call` moves it to a thread)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import trio

from native.follower import FollowerLocation, FollowerStore
from native.offload import storage_call
from native.storage import Needle, Store, Volume, VolumeTable, WouldBlock
from native.storage._volume_shared import INLINE_CATCH_UP_BYTES
from native.storage.ec import EcLayout, EcStore, encode_files
from native.storage.ec._index import write_ecx_from_idx
from native.storage.ec._volume import EcVolume
from proto import volume_server_pb2 as vs
from weedpy.sharedmem import SharedBlock

VID = 5


def mk(nid: int, data: bytes) -> Needle:
    return Needle.create(nid, 0x77, data)


class _Swapping:
    """A compaction commit at its swap: new reads wait at the gate."""

    def __init__(self, v: Volume) -> None:
        self.v = v

    def __enter__(self) -> None:
        with self.v._io:
            self.v._swapping = True

    def __exit__(self, *exc: object) -> None:
        with self.v._io:
            self.v._swapping = False
            self.v._io.notify_all()


def test_streams_and_pinned_files_give_way_to_a_swap(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, VID)
    v.write_needle(mk(1, b"y" * 5000))
    with _Swapping(v):
        with pytest.raises(WouldBlock):
            v.open_needle_stream(1, blocking=False)
        with pytest.raises(WouldBlock):
            v.pinned_dat(blocking=False)
        assert v.needle_value(1, blocking=False) is not None  # the map needs no gate
    with v.open_needle_stream(1, blocking=False) as s:
        assert s.read() == b"y" * 5000
    fd, size = v.pinned_dat(blocking=False)
    os.close(fd)
    assert size == v.dat_size
    assert v._readers == 0  # every gate entered was left
    v.close()


def test_a_worker_view_reopens_in_a_thread_not_on_the_event_loop(tmp_path: Path) -> None:
    block = SharedBlock.create()
    leader = Store.open([str(tmp_path)], max_counts=8)
    leader.share(VolumeTable(block, 0), leader=True)
    leader.allocate_volume(VID)
    for i in range(1, 11):
        leader.write_needle(VID, mk(i, bytes([i]) * 3000))
    for i in range(1, 11, 2):
        leader.delete_needle(VID, i)
    worker = Store.open([str(tmp_path)], max_counts=8, load=False)
    worker.share(VolumeTable(SharedBlock.attach(block.fd), 1), leader=False)
    worker.sync_shared()
    w = worker.volume(VID)
    for _ in leader.compact_volume(VID):
        pass
    leader.commit_compact_volume(VID)  # the files replaced: the worker's view must reopen
    for call in (lambda: w.needle_value(2, blocking=False), lambda: w.open_needle_stream(2, blocking=False),
                 lambda: w.pinned_dat(blocking=False), lambda: w.read_needle(2, blocking=False)):
        with pytest.raises(WouldBlock):
            call()

    async def main() -> bytes:
        stream = await storage_call(w.open_needle_stream, 2)  # reopened in a worker thread
        with stream:
            return stream.read()

    assert trio.run(main) == bytes([2]) * 3000
    assert w._shared_gen == w.shared.generation
    assert w.needle_value(2, blocking=False) is not None  # current again: no WouldBlock
    worker.close()
    leader.close()


def test_a_burst_of_other_processes_appends_is_caught_up_in_a_thread(tmp_path: Path) -> None:
    block = SharedBlock.create()
    leader = Store.open([str(tmp_path)], max_counts=8)
    leader.share(VolumeTable(block, 0), leader=True)
    leader.allocate_volume(VID)
    worker = Store.open([str(tmp_path)], max_counts=8, load=False)
    worker.share(VolumeTable(SharedBlock.attach(block.fd), 1), leader=False)
    worker.sync_shared()
    w = worker.volume(VID)
    leader.write_needle(VID, mk(1, b"a few rows"))
    assert w.needle_value(1, blocking=False) is not None  # a few rows: applied right there
    rows = INLINE_CATCH_UP_BYTES // w.codec.entry_size + 10
    for i in range(2, rows + 2):
        leader.write_needle(VID, mk(i, b"z"))
    with pytest.raises(WouldBlock):
        w.needle_value(rows, blocking=False)
    assert trio.run(storage_call, w.needle_value, rows) is not None
    worker.close()
    leader.close()


def test_a_store_lookup_takes_no_lock(tmp_path: Path) -> None:
    store = Store.open([str(tmp_path)], max_counts=8)
    store.allocate_volume(VID)
    loc = store.locations[0]
    found: list[object] = []
    with loc._lock:  # another thread mounting, unmounting or deleting a volume of this disk
        t = threading.Thread(target=lambda: found.append(store.find_volume(VID, blocking=False)))
        t.start()
        t.join(10)
    assert found and found[0] is store.volume(VID)
    store.close()


def _ec_volume(tmp_path: Path) -> tuple[EcStore, EcVolume]:
    store = Store.open([str(tmp_path)], max_counts=8)
    v = store.allocate_volume(VID)
    for i in range(1, 6):
        store.write_needle(VID, mk(i, bytes([i]) * 700))
    base, width = v.dat_path[:-4], store.offset_bytes
    write_ecx_from_idx(v.idx_path, base + ".ecx", width)
    encode_files(v.dat_path, base, EcLayout())
    store.close()
    os.remove(base + ".dat")
    os.remove(base + ".idx")
    ec = EcStore(Store.open([str(tmp_path)], max_counts=8, load=False).locations, offset_bytes=width)
    ec.load()
    ev = ec.find_volume(VID)
    assert ev is not None
    return ec, ev


def test_an_ec_lookup_never_waits_for_a_journal_fsync(tmp_path: Path) -> None:
    ec, ev = _ec_volume(tmp_path)
    assert ev.find_needle(3, blocking=False)[1] > 0
    # another process journals a delete while a delete here holds the volume's lock (its fsync)
    os.pwrite(ev.ecj_fd, (3).to_bytes(8, "big"), ev.ecj_size)
    held, release = threading.Event(), threading.Event()

    def delete_in_progress() -> None:
        with ev._lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=delete_in_progress)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(WouldBlock):
            ev.find_needle(3, blocking=False)
        with pytest.raises(WouldBlock):
            ev.locate(3, blocking=False)
        with ec._lock:  # the store's lookups take no lock either (a mount or unmount holds it)
            assert ec.has(VID) and ec.find_shard(VID, 0) is not None and ec.volumes_of(VID)[0][1] is ev
        assert ev.shard_size > 0  # no lock: the heartbeat and EC locates read it
    finally:
        release.set()
        t.join(10)
    assert ev.find_needle(3, blocking=False)[1] == -1  # the journalled delete, once the lock is free
    ec.close()


def test_a_stale_follower_view_is_reloaded_in_a_thread(tmp_path: Path) -> None:
    owner = Store.open([str(tmp_path)], max_counts=5)
    follower = FollowerStore([FollowerLocation(str(tmp_path), max_volume_count=5)])
    try:
        owner.allocate_volume(VID)
        owner.write_needle(VID, mk(1, b"one"))
        assert follower.find_volume(VID) is not None  # loaded (blocking: a thread's call)
        assert follower.find_volume(VID, blocking=False) is not None  # current: answered at once
        owner.write_needle(VID, mk(2, b"two"))  # Go appends: the view must be loaded again
        with pytest.raises(WouldBlock):
            follower.find_volume(VID, blocking=False)

        async def main() -> bytes:
            v = await storage_call(follower.find_volume, VID)
            return v.read_needle(2).data

        assert trio.run(main) == b"two"
        assert follower.find_volume(VID, blocking=False) is not None

        # a call Go answered that changes the volume is followed in a thread; until then lookups
        # of that volume wait (in threads), so none serves the volume as it was before the call
        req = vs.VolumeMarkReadonlyRequest(volume_id=VID, persist=False).SerializeToString()
        method = "/volume_server_pb.VolumeServer/VolumeMarkReadonly"
        settling = follower.go_answering(method, req)
        with pytest.raises(WouldBlock):
            follower.find_volume(VID, blocking=False)
        seen: list[bool] = []
        t = threading.Thread(target=lambda: seen.append(follower.find_volume(VID).read_only))
        t.start()
        follower.go_answered(method, req, vs.VolumeMarkReadonlyResponse().SerializeToString(), settling=settling)
        t.join(10)
        assert seen == [True]  # the waiting lookup saw the volume as Go holds it after the call
        assert not follower.go_state.settling(VID)
    finally:
        follower.close()
        owner.close()

