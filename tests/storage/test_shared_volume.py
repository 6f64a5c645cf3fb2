"""A volume served by several processes (native/storage/_shared.py, _volume_shared.py), driven
directly: two views of one volume's files in two processes (or one process and a thread), and
the event loop's calls that never wait for a lock."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
import trio

from native.http._common import storage_call
from native.storage import Needle, Store, Volume, VolumeTable, WouldBlock
from native.storage._fileio import OsFileOps
from native.storage._shared import SharedSlot
from weedpy.sharedmem import SharedBlock
from tests.support.waiting import wait_until

VID = 3


def mk(nid: int, data: bytes) -> Needle:
    return Needle(id=nid, cookie=0x1234, data=data)


def _shared_pair(tmp_path: Path) -> tuple[Store, Store, SharedBlock]:
    """A leader's store and a worker's store over the same directory and shared block."""
    block = SharedBlock.create()
    leader = Store.open([str(tmp_path)], max_counts=8)
    leader.share(VolumeTable(block, 0), leader=True)
    leader.allocate_volume(VID)
    worker = Store.open([str(tmp_path)], max_counts=8, load=False)
    worker.share(VolumeTable(SharedBlock.attach(block.fd), 1), leader=False)
    worker.sync_shared()
    return leader, worker, block


def test_each_view_sees_what_the_other_appended(tmp_path: Path) -> None:
    leader, worker, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"from the leader"))
    worker.write_needle(VID, mk(2, b"from the worker"))
    assert worker.read_needle(VID, 1).data == b"from the leader"
    assert leader.read_needle(VID, 2).data == b"from the worker"
    assert worker.delete_needle(VID, 1, 0x1234) > 0
    with pytest.raises(Exception, match="deleted"):
        leader.read_needle(VID, 1)
    # both count the same, as Go's one process would
    assert leader.volume(VID).stats().file_count == worker.volume(VID).stats().file_count == 2
    assert leader.volume(VID).stats().delete_count == worker.volume(VID).stats().delete_count == 1


def test_a_torn_append_is_cut_before_the_next(tmp_path: Path) -> None:
    leader, worker, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"committed"))
    v = worker.volume(VID)
    slot = v.shared
    committed = (slot.dat_end, slot.idx_end)
    # a writer that died mid-append: bytes past the committed ends and its mark left behind
    slot.lock()
    slot.set_writer(999_999)
    os.pwrite(v._dat_fd, b"torn garbage", committed[0])
    slot.unlock()
    leader.write_needle(VID, mk(2, b"next"))
    lv = leader.volume(VID)
    assert lv.read_needle(2).data == b"next" and lv.read_needle(1).data == b"committed"
    assert os.path.getsize(lv.dat_path) == lv.shared.dat_end  # the garbage is gone, not built on
    assert worker.read_needle(VID, 2).data == b"next"


def test_a_compaction_commit_reopens_the_other_view(tmp_path: Path) -> None:
    leader, worker, _ = _shared_pair(tmp_path)
    for i in range(1, 21):
        leader.write_needle(VID, mk(i, bytes([i]) * 500))
    for i in range(1, 21, 2):
        worker.delete_needle(VID, i, 0x1234)
    w = worker.volume(VID)
    before = w._shared_gen
    for _ in leader.compact_volume(VID):
        pass
    leader.commit_compact_volume(VID)
    assert w.shared.generation != before
    assert worker.read_needle(VID, 2).data == bytes([2]) * 500  # reopened on the compacted files
    assert w._shared_gen == w.shared.generation and w.dat_size == leader.volume(VID).dat_size
    worker.write_needle(VID, mk(99, b"after the commit"))  # appended to the new files
    assert leader.read_needle(VID, 99).data == b"after the commit"


def test_marks_and_removal_reach_the_other_view(tmp_path: Path) -> None:
    leader, worker, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"x"))
    leader.mark_volume_readonly(VID)
    with pytest.raises(Exception, match="read only"):
        worker.write_needle(VID, mk(2, b"refused"))
    leader.mark_volume_writable(VID)
    worker.write_needle(VID, mk(2, b"allowed"))
    leader.delete_volume(VID)
    assert worker.find_volume(VID) is None  # gone at once, and closed at the next sync
    worker.sync_shared()
    assert worker.volumes() == []


def _hold_slot_lock(fd: int, index: int, held: multiprocessing.synchronize.Event,
                    release: multiprocessing.synchronize.Event) -> None:
    block = SharedBlock.attach(fd)
    block.lock(index)
    held.set()
    release.wait(30)
    block.unlock(index)


def test_another_process_appending_makes_the_event_loop_write_wait_elsewhere(tmp_path: Path) -> None:
    leader, _, block = _shared_pair(tmp_path)
    v = leader.volume(VID)
    ctx = multiprocessing.get_context("fork")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_slot_lock, args=(block.fd, v.shared.index, held, release))
    other.start()
    try:
        assert held.wait(30)
        with pytest.raises(WouldBlock):
            leader.write_needle(VID, mk(1, b"not now"), blocking=False)

        async def main() -> int:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, lambda: (release.wait(0.3) or True) and release.set())
                result = await storage_call(leader.write_needle, VID, mk(1, b"in a thread"))
            return result.size

        assert trio.run(main) == len(b"in a thread")
    finally:
        release.set()
        other.join(10)
    assert leader.read_needle(VID, 1).data == b"in a thread"


def test_the_event_loop_never_waits_for_a_local_writer_or_a_swap(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, VID)
    v.write_needle(mk(1, b"hello"))
    with v._write_lock:  # another thread holds the volume (an fsync, a commit)
        done = []
        t = threading.Thread(target=lambda: done.append(pytest.raises(WouldBlock, v.write_needle, mk(2, b"x"),
                                                                       blocking=False)))
        t.start()
        t.join()
        assert done
    with v._io:
        v._swapping = True  # a compaction commit swapping the files
    try:
        assert v.read_plain(1, 1 << 20) is None  # the fast path gives way to the full one
        with pytest.raises(WouldBlock):
            v.read_needle(1, blocking=False)
    finally:
        with v._io:
            v._swapping = False
            v._io.notify_all()
    assert v.read_needle(1, blocking=False).data == b"hello"


def test_volumes_load_in_parallel_threads_into_distinct_slots(tmp_path: Path) -> None:
    """The leader loads volumes in several threads: each one gets a slot of its own."""
    seed = Store.open([str(tmp_path)], max_counts=64)
    for vid in range(1, 41):
        seed.allocate_volume(vid)
        seed.write_needle(vid, mk(1, b"v%d" % vid))
    seed.close()
    block = SharedBlock.create()
    leader = Store.open([str(tmp_path)], max_counts=64, load=False)
    leader.share(VolumeTable(block, 0), leader=True)
    leader.discover()
    leader.load_pending(threads=8)
    table = VolumeTable(block, 0).vids()
    assert sorted(table) == list(range(1, 41))
    assert len({slot.index for slot in table.values()}) == 40
    worker = Store.open([str(tmp_path)], max_counts=64, load=False)
    worker.share(VolumeTable(SharedBlock.attach(block.fd), 1), leader=False)
    worker.sync_shared()
    assert [worker.read_needle(vid, 1).data for vid in range(1, 41)] == [b"v%d" % vid for vid in range(1, 41)]


def test_a_read_catching_up_never_rolls_back_an_append_in_flight(tmp_path: Path) -> None:
    """A reader's catch-up (`_follow`, no write lock) while a local append has written its record
    and row but not published them yet must leave the appender's ends alone: taking the slot's
    (older) `.dat` end made the appender publish it, and the next append overwrote the record."""
    leader, worker, _ = _shared_pair(tmp_path)
    v = leader.volume(VID)
    written, go_on = threading.Event(), threading.Event()
    append_idx = v._append_idx

    def paused_append_idx(row: bytes, undo_dat: int | None) -> None:
        append_idx(row, undo_dat)
        written.set()  # record and row written, nothing published yet
        go_on.wait(10)

    v._append_idx = paused_append_idx
    t = threading.Thread(target=leader.write_needle, args=(VID, mk(1, b"first" * 100)))
    t.start()
    try:
        assert written.wait(10)
        v._follow()  # a read of the same volume arrives meanwhile
        with pytest.raises(Exception, match="not found"):
            worker.read_needle(VID, 1)  # not committed yet: no other process sees it
    finally:
        go_on.set()
        t.join(10)
    v._append_idx = append_idx
    worker.write_needle(VID, mk(2, b"second" * 100))  # the next append, from the other process
    leader.write_needle(VID, mk(3, b"third" * 100))
    for store in (leader, worker):
        assert [store.read_needle(VID, i).data for i in (1, 2, 3)] == [b"first" * 100, b"second" * 100, b"third" * 100]
    assert os.path.getsize(v.dat_path) == v.shared.dat_end


def test_a_read_catching_up_never_undoes_a_mark_being_published(tmp_path: Path) -> None:
    """Likewise for the read-only marks: a reader's catch-up between a local mark and its
    publication must not put the slot's old marks back (the old marks would be published)."""
    leader, worker, _ = _shared_pair(tmp_path)
    v = leader.volume(VID)
    marked, go_on = threading.Event(), threading.Event()
    publish = v.publish_flags

    def paused_publish() -> None:
        marked.set()  # the marks set on this view, not published yet
        go_on.wait(10)
        publish()

    v.publish_flags = paused_publish
    t = threading.Thread(target=leader.mark_volume_readonly, args=(VID,))
    t.start()
    try:
        assert marked.wait(10)
        worker.write_needle(VID, mk(1, b"before the mark is out"))  # moves the slot: leader reads catch up
        v._follow()
    finally:
        go_on.set()
        t.join(10)
    v.publish_flags = publish
    assert v.read_only
    with pytest.raises(Exception, match="read only"):
        worker.write_needle(VID, mk(2, b"refused"))


def _waiters(fd: int) -> int:
    """Lock requests blocked on the file `fd` names (/proc/locks lists each as `N: -> ...`)."""
    inode = os.fstat(fd).st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line and any(tok.endswith(f":{inode}") for tok in line.split()))


def test_slot_locks_never_fail_with_a_deadlock_nothing_is_in(tmp_path: Path) -> None:
    """Thread 1 of this process holds slot 1 while thread 2 waits for slot 2, held by another
    process that now waits for slot 1. Nothing is stuck (thread 1 lets go without waiting for
    anything), but the kernel's check on process-owned POSIX locks sees the two processes wait
    for each other and fails the other process's request with EDEADLK (writes of a two-worker
    server failed so under load). The locks belong to each process's description instead."""
    block = SharedBlock.create()
    ctx = multiprocessing.get_context("fork")
    has_2, wants_1 = ctx.Event(), ctx.Event()

    def other(fd: int) -> None:
        mine = SharedBlock.attach(fd)
        assert mine.lock(2)
        has_2.set()
        wants_1.wait(60)
        mine.lock(1)  # EDEADLK with process-owned locks
        mine.unlock(1)
        mine.unlock(2)

    proc = ctx.Process(target=other, args=(block.fd,))
    proc.start()
    try:
        assert has_2.wait(60)
        assert block.lock(1)
        got_2 = threading.Event()

        def thread_2() -> None:
            block.lock(2)
            got_2.set()
            block.unlock(2)

        t2 = threading.Thread(target=thread_2, daemon=True)
        t2.start()
        wait_until(lambda: _waiters(block.fd) >= 1, 60, "thread 2 waiting for slot 2", interval=0.01)  # thread 2 waits for slot 2
        wants_1.set()
        wait_until(lambda: _waiters(block.fd) >= 2 or not proc.is_alive(), 60, "the other waiting for slot 1", interval=0.01)  # the other waits for slot 1
        block.unlock(1)
        proc.join(60)
        assert proc.exitcode == 0, "the other process's lock request failed"
        assert got_2.wait(60)
    finally:
        if proc.is_alive():
            proc.kill()



def test_a_slot_lock_excludes_another_description_until_released() -> None:
    """The slot's lock (its fcntl arguments packed once) is the block's byte-range lock: another
    process's description cannot take it until it is released, and a kernel release of the holder's
    description frees it."""
    block = SharedBlock.create()
    other = SharedBlock.attach(block.fd)  # its own open file description, as a worker process has
    mine, theirs = SharedSlot(block, 3), SharedSlot(other, 3)
    assert mine.lock(blocking=False)
    assert not theirs.lock(blocking=False)
    assert not other.lock(3, blocking=False)  # the same byte as the block's own lock call
    assert SharedSlot(other, 4).lock(blocking=False)  # another slot's lock is another byte
    mine.unlock()
    assert theirs.lock(blocking=False)
    assert not mine.lock(blocking=False)
    os.close(other._lock_fd)  # the holder's description goes (as when its process dies): the lock with it
    assert mine.lock(blocking=False)


def test_a_view_of_replaced_files_never_cuts_the_files_its_readers_still_read(tmp_path: Path) -> None:
    """A writer mark left in the slot (here by a writer that died mid-append, having written
    nothing past the ends) tells the next append to cut the files back to the committed ends. A
    process whose view still holds the files a compaction commit replaced must not cut those (its
    reads in flight finish on them, and the ends are the new files'): it reopens first."""
    leader, worker, _ = _shared_pair(tmp_path)
    for i in range(1, 21):
        leader.write_needle(VID, mk(i, bytes([i]) * 2000))
    for i in range(1, 16):
        leader.delete_needle(VID, i, 0x1234)
    assert worker.read_needle(VID, 20).data == bytes([20]) * 2000  # the worker's view: the old files
    w = worker.volume(VID)
    old_dat = os.dup(w._dat_fd)  # what a read in flight in the worker holds
    try:
        old_size = os.fstat(old_dat).st_size
        for _ in leader.compact_volume(VID):
            pass
        leader.commit_compact_volume(VID)
        assert leader.volume(VID).dat_size < old_size
        slot = leader.volume(VID).shared
        slot.lock()
        slot.set_writer(999_999)
        slot.unlock()
        assert worker.delete_needle(VID, 16, 0x1234) > 0
        assert os.fstat(old_dat).st_size == old_size, "the replaced files were cut under the worker's readers"
    finally:
        os.close(old_dat)
    for store in (leader, worker):
        assert store.read_needle(VID, 20).data == bytes([20]) * 2000
    assert os.path.getsize(leader.volume(VID).dat_path) == leader.volume(VID).shared.dat_end


def test_a_refused_append_leaves_no_writer_mark(tmp_path: Path) -> None:
    """A write or delete refused before it writes anything (read-only, another cookie, over the
    size limit) takes its writer mark off: the next append has nothing to cut; a refusal in one
    view and the other view's next append both work."""
    from native.storage import CookieMismatch, ReadOnly, VolumeFull

    leader, worker, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"one"))
    lv, wv = leader.volume(VID), worker.volume(VID)
    with pytest.raises(CookieMismatch):
        worker.write_needle(VID, Needle(id=1, cookie=0x9999, data=b"other cookie"))
    assert lv.shared.writer == 0
    with pytest.raises(CookieMismatch):
        worker.delete_needle(VID, 1, 0x9999)
    assert lv.shared.writer == 0
    wv.size_limit = wv.dat_size + 8
    with pytest.raises(VolumeFull):
        worker.write_needle(VID, mk(2, b"x" * 100))
    assert lv.shared.writer == 0
    wv.size_limit = None
    wv.disk_space_low = lambda: True
    with pytest.raises(ReadOnly):
        worker.write_needle(VID, mk(3, b"low disk"))
    assert lv.shared.writer == 0
    wv.disk_space_low = lambda: False
    leader.write_needle(VID, mk(4, b"four"))
    worker.write_needle(VID, mk(5, b"five"))
    for store in (leader, worker):
        assert [store.read_needle(VID, k).data for k in (1, 4, 5)] == [b"one", b"four", b"five"]
    assert os.path.getsize(lv.dat_path) == lv.shared.dat_end


def test_a_torn_tail_of_replaced_files_is_cut_by_a_view_of_the_old_ones(tmp_path: Path) -> None:
    """A writer died mid-append after a compaction commit: a process that still has the old
    files open cuts the new ones (not its own) before it reopens and appends."""
    leader, worker, _ = _shared_pair(tmp_path)
    for i in range(1, 11):
        leader.write_needle(VID, mk(i, bytes([i]) * 1000))
    for i in range(1, 6):
        leader.delete_needle(VID, i, 0x1234)
    assert worker.read_needle(VID, 10).data == bytes([10]) * 1000
    for _ in leader.compact_volume(VID):
        pass
    leader.commit_compact_volume(VID)
    lv = leader.volume(VID)
    slot = lv.shared
    slot.lock()
    slot.set_writer(999_999)
    os.pwrite(lv._dat_fd, b"torn garbage" * 400, slot.dat_end)  # longer than the next record
    slot.unlock()
    worker.write_needle(VID, mk(11, b"after the commit"))
    for store in (leader, worker):
        assert store.read_needle(VID, 11).data == b"after the commit"
        assert store.read_needle(VID, 10).data == bytes([10]) * 1000
    assert os.path.getsize(lv.dat_path) == slot.dat_end


def test_the_event_loop_leaves_a_burst_of_rows_to_catch_up_with_to_a_thread(tmp_path: Path) -> None:
    """A write on the event loop catches up with the other processes' rows inline only when
    they are few (as a read does): after a burst while this process was idle, a thread does it."""
    from native.storage._volume_shared import INLINE_CATCH_UP_BYTES

    leader, worker, _ = _shared_pair(tmp_path)
    v = leader.volume(VID)
    n = INLINE_CATCH_UP_BYTES // v.codec.entry_size + 10
    for i in range(1, n + 1):
        leader.write_needle(VID, mk(i, b"x"))
    with pytest.raises(WouldBlock):
        worker.write_needle(VID, mk(n + 1, b"on the event loop"), blocking=False)
    with pytest.raises(WouldBlock):
        worker.volume(VID).read_needle(1, blocking=False)  # as a read does
    assert worker.write_needle(VID, mk(n + 1, b"in a thread")).size == len(b"in a thread")
    assert worker.write_needle(VID, mk(n + 2, b"then inline"), blocking=False).size == len(b"then inline")
    assert leader.read_needle(VID, n + 2).data == b"then inline" and worker.read_needle(VID, n).data == b"x"


def test_a_view_loaded_while_the_owner_appends_is_not_marked_read_only(tmp_path: Path) -> None:
    """A worker opens its view of a volume while the leader appends: the rows its `.idx` read
    finds point past the `.dat` size it took before. The size is taken again after the `.idx`
    (appends write `.dat` first), so the view loads clean instead of reporting "index references
    bytes up to ..." and marking itself read-only."""
    owner = Volume.create(tmp_path, VID)
    owner.write_needle(mk(1, b"before the view"))

    class AppendBeforeTheIndexIsRead(OsFileOps):
        @staticmethod
        def open(path: str, flags: int, mode: int = 0o644) -> int:
            if path.endswith(".idx"):
                owner.write_needle(mk(2, b"x" * 4096))  # lands after the view took the .dat size
            return os.open(path, flags, mode)

    view = Volume.load(tmp_path, VID, read_only_view=True, repair=False, files=AppendBeforeTheIndexIsRead())
    try:
        assert view.integrity_error is None
        assert not view.no_write_or_delete
        assert view.read_needle(2).data == b"x" * 4096
    finally:
        view.close()
        owner.close()


def test_reads_in_the_committing_process_between_the_swap_and_the_publish(tmp_path: Path) -> None:
    """A compaction commit swaps in the compacted files (`_adopt`) before it publishes their ends
    and a new generation to the slot. A read in the committing process in between must not take
    the slot's old, longer ends for rows of the new `.idx` to catch up with (it read past the new
    file's end and failed the request), nor move the `.dat` end back to the old file's."""
    leader, worker, _ = _shared_pair(tmp_path)
    for i in range(1, 41):
        leader.write_needle(VID, mk(i, bytes([i]) * 500))
    for i in range(1, 41, 2):
        worker.delete_needle(VID, i, 0x1234)
    v = leader.volume(VID)
    v._follow()
    old_idx_end = v.shared.idx_end
    for _ in leader.compact_volume(VID):
        pass
    adopted, go_on = threading.Event(), threading.Event()
    adopt = v._adopt

    def adopt_then_pause(new) -> None:
        adopt(new)
        adopted.set()
        assert go_on.wait(10)

    v._adopt = adopt_then_pause
    failed: list[BaseException] = []

    def commit() -> None:
        try:
            leader.commit_compact_volume(VID)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failed.append(exc)

    t = threading.Thread(target=commit)
    t.start()
    try:
        assert adopted.wait(10)
        assert v.shared.idx_end == old_idx_end and v.idx_size < old_idx_end  # the window
        dat_size = v.dat_size
        nv = v.needle_value(2, blocking=False)
        assert nv is not None and nv.size > 0
        assert v.needle_value(3, blocking=False) is None or v.needle_value(3, blocking=False).size <= 0
        assert v.read_needle(4).data == bytes([4]) * 500
        assert v.dat_size == dat_size and v.idx_size < old_idx_end  # nothing taken from the old ends
    finally:
        go_on.set()
        t.join(10)
    assert not failed
    assert v.shared.idx_end == v.idx_size and v._shared_gen == v.shared.generation
    for store in (leader, worker):
        assert store.read_needle(VID, 6).data == bytes([6]) * 500
        with pytest.raises(Exception, match="not found|deleted"):
            store.read_needle(VID, 7)


class _PauseInRowWalk:
    """A view's codec whose next `iter_rows` runs `hook` first: a catch-up stopped after its
    pread of the rows, before it applies them and moves its `.idx` end on (the GIL can switch
    there; a long burst's row walk is where a catch-up spends its time)."""

    def __init__(self, codec, hook) -> None:
        self._codec, self._hook = codec, hook

    def __getattr__(self, name: str):
        return getattr(self._codec, name)

    def iter_rows(self, buf):
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return self._codec.iter_rows(buf)


def _until(predicate, seconds: float) -> bool:
    """Poll without failing: False when `predicate` is still false after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_reopen_in_a_worker_waits_for_a_catch_up_in_flight(tmp_path: Path) -> None:
    """A worker's read catching up with the old files' rows (the follow lock held) while another
    thread of the worker reopens the volume on the compacted files (`_sync_locked` -> `_adopt`):
    the catch-up must not finish on the reopened view. It used to set the adopted view's `.idx`
    end to the old file's, longer one: the rows the other processes append next below that end
    were never applied (needles written after the commit not found, deleted ones still served),
    and the `.dat` end to the old file's."""
    leader, worker, _ = _shared_pair(tmp_path)
    w = worker.volume(VID)
    for i in range(1, 41):
        leader.write_needle(VID, mk(i, bytes([i]) * 500))
    for i in range(1, 41, 2):
        leader.delete_needle(VID, i, 0x1234)
    for _ in leader.compact_volume(VID):
        pass
    gen = w._shared_gen
    other: list[threading.Thread] = []
    failed: list[BaseException] = []

    def reopen_elsewhere() -> None:
        try:
            w._follow()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failed.append(exc)

    def commit_and_reopen() -> None:
        leader.commit_compact_volume(VID)  # the compacted files, a new generation
        t = threading.Thread(target=reopen_elsewhere)  # another read of the worker: it reopens
        t.start()
        other.append(t)
        _until(lambda: w._shared_gen != gen, 1)  # (never, once the reopen waits for this catch-up)

    w.codec = _PauseInRowWalk(w.codec, commit_and_reopen)
    w._follow()  # the old files' 60 rows, read before the commit
    other[0].join(10)
    assert not failed
    assert w._shared_gen == w.shared.generation
    assert w.idx_size == w.shared.idx_end and w.dat_size == w.shared.dat_end == os.path.getsize(w.dat_path)
    leader.write_needle(VID, mk(100, b"after the commit"))
    leader.delete_needle(VID, 2, 0x1234)
    assert worker.read_needle(VID, 100).data == b"after the commit"
    with pytest.raises(Exception, match="deleted|not found"):
        worker.read_needle(VID, 2)
    assert worker.read_needle(VID, 4).data == bytes([4]) * 500


class _PauseBeforeAcquire:
    """A follow lock whose next `acquire` runs `hook` first (a read waiting for another thread's
    catch-up to finish)."""

    def __init__(self, lock: threading.Lock, hook) -> None:
        self._lock, self._hook = lock, hook

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_catch_up_never_takes_the_ends_of_files_that_replaced_its_own(tmp_path: Path) -> None:
    """A worker's read checks the generation, then (after waiting for the follow lock) takes the
    committed ends. When the leader's compaction commit publishes in between, those are the
    compacted files' ends: applying them to the old files' view applied the first rows of the
    old `.idx` only (a needle written long before not found, a deleted one served), or read past
    the old `.idx`'s end (StorageError)."""
    leader, worker, _ = _shared_pair(tmp_path)
    w = worker.volume(VID)
    for i in range(1, 41):
        leader.write_needle(VID, mk(i, bytes([i]) * 500))
    for i in range(1, 41, 2):
        leader.delete_needle(VID, i, 0x1234)
    for _ in leader.compact_volume(VID):
        pass
    w._follow_lock = _PauseBeforeAcquire(w._follow_lock, lambda: leader.commit_compact_volume(VID))
    assert worker.read_needle(VID, 40).data == bytes([40]) * 500
    with pytest.raises(Exception, match="deleted|not found"):
        worker.read_needle(VID, 1)
    assert w._shared_gen == w.shared.generation and w.idx_size == w.shared.idx_end


class _LockedHook:
    """A write lock whose next `locked()` from this thread runs `hook` after reading the answer
    (a read catching up found the write lock free, then lost the GIL before taking the marks)."""

    def __init__(self, lock: threading.Lock, hook) -> None:
        self._lock, self._hook, self._thread = lock, hook, threading.get_ident()

    def locked(self) -> bool:
        answer = self._lock.locked()
        if threading.get_ident() == self._thread:
            hook, self._hook = self._hook, None
            if hook is not None:
                hook()
        return answer

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _mark_readonly_during_the_next_catch_up(v) -> list[threading.Thread]:
    """VolumeMarkReadonly started in a thread by `v`'s next read catching up, just after that read
    found the write lock free (the list gets the thread); its publish waits for the follow lock,
    so the mark is set while the read still holds it."""
    marking: list[threading.Thread] = []
    in_publish = threading.Event()
    publish = v.publish_flags

    def publish_after_the_catch_up() -> None:
        in_publish.set()  # the mark is set; the read catching up still holds the follow lock
        with v._follow_lock:
            pass
        publish()

    def mark_meanwhile() -> None:
        v.publish_flags = publish_after_the_catch_up
        t = threading.Thread(target=v.mark_readonly)
        t.start()
        marking.append(t)
        in_publish.wait(1)  # (never, once the mark waits for the catch-up)

    v._write_lock = _LockedHook(v._write_lock, mark_meanwhile)
    return marking


def test_a_read_catching_up_never_undoes_a_read_only_mark_being_set(tmp_path: Path) -> None:
    """A read of the leader catching up (another process appended) takes the slot's marks when
    the write lock is free. When VolumeMarkReadonly takes the lock and sets the mark between that
    check and the read's assignment, the read put the slot's old marks back before the mark was
    published: the rpc answered ok and the volume stayed writable in every process."""
    leader, worker, _ = _shared_pair(tmp_path)
    v = leader.volume(VID)
    worker.write_needle(VID, mk(1, b"from the worker"))  # the leader's next read catches up
    marking = _mark_readonly_during_the_next_catch_up(v)
    assert leader.read_needle(VID, 1).data == b"from the worker"
    marking[0].join(10)
    assert v.no_write_or_delete
    with pytest.raises(Exception, match="read only"):
        worker.write_needle(VID, mk(2, b"refused"))


def _shared_pair_with_idx_dir(tmp_path: Path, *, write: bool) -> tuple[Store, Store, Path, Path]:
    """A leader and a worker over a volume whose `.idx` an EC decode left next to its `.dat`
    (a separate index directory configured)."""
    data, idx = tmp_path / "data", tmp_path / "idx"
    block = SharedBlock.create()
    leader = Store.open([str(data)], max_counts=8, idx_directory=str(idx))
    leader.share(VolumeTable(block, 0), leader=True)
    leader.allocate_volume(VID)
    if write:
        leader.write_needle(VID, mk(1, b"before the move"))
    leader.unmount_volume(VID)
    os.replace(idx / f"{VID}.idx", data / f"{VID}.idx")
    leader.mount_volume(VID)
    worker = Store.open([str(data)], max_counts=8, idx_directory=str(idx), load=False)
    worker.share(VolumeTable(SharedBlock.attach(block.fd), 1), leader=False)
    worker.sync_shared()
    assert worker.volume(VID).idx_directory == str(data)
    return leader, worker, data, idx


def test_a_worker_reads_through_an_index_consolidation(tmp_path: Path) -> None:
    """VolumeConsolidateIndex moves the `.idx` to the index directory and bumps the generation.
    A worker's read before its next sync reopens the volume in place, and must find the `.idx`
    where it is now: it looked where its own view had found it and failed ('idx file ... does not
    exist', a 500) until the sync replaced the volume."""
    from native.storage import consolidate_volume_index

    leader, worker, data, idx = _shared_pair_with_idx_dir(tmp_path, write=True)
    consolidate_volume_index(leader, VID)
    assert (idx / f"{VID}.idx").exists() and not (data / f"{VID}.idx").exists()
    assert worker.read_needle(VID, 1).data == b"before the move"
    leader.write_needle(VID, mk(2, b"after the move"))
    assert worker.read_needle(VID, 2).data == b"after the move"


def test_a_worker_never_creates_an_index_where_a_consolidation_moved_it_from(tmp_path: Path) -> None:
    """The same for an empty volume: the worker's reopen created an empty `.idx` next to the
    `.dat` again (a worker must change no file), which the next mount prefers to the real one in
    the index directory: that one is stale from then on, and the rows written since are rebuilt
    from the `.dat` by the tail repair."""
    from native.storage import consolidate_volume_index

    leader, worker, data, idx = _shared_pair_with_idx_dir(tmp_path, write=False)
    consolidate_volume_index(leader, VID)
    worker.volume(VID).idx_size  # a read of the worker: the reopen
    leader.write_needle(VID, mk(1, b"indexed in the index directory"))
    assert not (data / f"{VID}.idx").exists()
    leader.unmount_volume(VID)
    assert leader.mount_volume(VID).read_needle(1).data == b"indexed in the index directory"


class _RowsHook:
    """A volume's `.idx` codec whose next `iter_rows` (a read catching up, after its `pread` of
    the rows, the follow lock held) runs `hook` first."""

    def __init__(self, codec, hook) -> None:
        self._codec, self._hook = codec, hook

    def iter_rows(self, raw):
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return self._codec.iter_rows(raw)

    def __getattr__(self, name: str):
        return getattr(self._codec, name)


def test_a_mark_that_reopens_the_index_for_writing_waits_for_a_catch_up_reading_it(tmp_path: Path) -> None:
    """VolumeMarkReadonly with deletes allowed reopens a read-only `.idx` descriptor for writing.
    It closed the old descriptor while a read of the same process could be reading rows from it
    to catch up (EBADF, or rows of whatever file took the number next)."""
    leader, worker, _ = _shared_pair(tmp_path)
    v = leader.volume(VID)
    ro = os.open(v.idx_path, os.O_RDONLY)
    os.dup2(ro, v._idx_fd)  # the same descriptor number, now read-only (as a read-only load's)
    os.close(ro)
    worker.write_needle(VID, mk(1, b"from the worker"))  # the leader's next read catches up
    fd_in_catch_up: list[int] = []
    marked = threading.Event()

    def mark_during_the_catch_up() -> None:
        fd_in_catch_up.append(v._idx_fd)
        t = threading.Thread(target=lambda: (v.mark_readonly(can_delete=True), marked.set()))
        t.start()
        assert not marked.wait(0.5)  # it waits for this catch-up
        assert v._idx_fd == fd_in_catch_up[0] and os.fstat(fd_in_catch_up[0])

    codec = v.codec
    v.codec = _RowsHook(codec, mark_during_the_catch_up)
    try:
        assert leader.read_needle(VID, 1).data == b"from the worker"
    finally:
        v.codec = codec
    assert marked.wait(10)
    assert v.no_write_can_delete and not v.no_write_or_delete
    assert os.get_inheritable(v._idx_fd) is False and fcntl.fcntl(v._idx_fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    assert worker.delete_needle(VID, 1, 0x1234) > 0  # deletes still allowed everywhere
    with pytest.raises(Exception, match="deleted|not found"):
        leader.read_needle(VID, 1)


def test_a_scrub_never_waits_for_its_own_write_lock_when_the_volume_goes(tmp_path: Path) -> None:
    """A scrub holds the volume's write lock while it reads the `.idx` and pins the `.dat`
    (`pinned_dat`, which catches up with the other processes first). When the leader removes the
    volume meanwhile (VolumeUnmount, VolumeDelete: the slot freed before the volume is closed),
    the catch-up found the slot changed and waited for the write lock to reopen: the scrub's own.
    The scrub and the unmount (its close waits for that lock) hung for good."""
    import native.storage._scrub as scrub_module

    leader, _, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"scrubbed"))
    v = leader.volume(VID)
    open_index = scrub_module._open_index
    unmounting: list[threading.Thread] = []

    def open_index_then_unmount(vol):
        out = open_index(vol)  # the write lock held
        t = threading.Thread(target=leader.unmount_volume, args=(VID,), daemon=True)
        t.start()
        unmounting.append(t)
        _until(lambda: v.shared.vid != VID, 5)  # the slot freed; the close waits for the lock
        return out

    outcome: list[object] = []

    def scrub() -> None:
        try:
            outcome.append(scrub_module.scrub_volume(v))
        except Exception as exc:  # noqa: BLE001 - a refusal is fine, a hang is not
            outcome.append(exc)

    scrub_module._open_index = open_index_then_unmount
    try:
        t = threading.Thread(target=scrub, daemon=True)
        t.start()
        t.join(10)
    finally:
        scrub_module._open_index = open_index
    assert not t.is_alive(), "the scrub waits for the write lock it holds"
    unmounting[0].join(10)
    assert not unmounting[0].is_alive() and v.closed


def test_a_read_catching_up_never_undoes_a_tiered_volumes_read_only_mark(tmp_path: Path) -> None:
    """As `test_a_read_catching_up_never_undoes_a_read_only_mark_being_set`, for a volume whose
    `.dat` is in remote storage (TieredVolume has its own mark_readonly / mark_writable): the mark
    was set outside the follow lock, and a read catching up put the slot's old marks back."""
    from native.storage.tier import TieredVolume
    from native.storage.tier._move import swap_to_remote
    from native.storage.tier._volume import RemoteFile

    leader, worker, _ = _shared_pair(tmp_path)
    for i in (1, 2, 3):
        leader.write_needle(VID, mk(i, b"x" * 100))
    local = leader.volume(VID)
    swap_to_remote(leader, local, RemoteFile("s3", "default", "key", file_size=local.dat_size))
    v = leader.volume(VID)
    assert isinstance(v, TieredVolume)
    worker.sync_shared()
    assert worker.delete_needle(VID, 1, None) > 0  # (no cookie: no remote read) the leader catches up next
    marking = _mark_readonly_during_the_next_catch_up(v)
    assert v.needle_value(1).size < 0
    marking[0].join(10)
    assert v.no_write_or_delete
    with pytest.raises(Exception, match="read only"):
        worker.delete_needle(VID, 2, None)


def test_a_view_from_before_an_index_consolidation_cuts_the_torn_tail_of_the_moved_index(tmp_path: Path) -> None:
    """A process on the new generation died mid-append after VolumeConsolidateIndex moved the
    `.idx` (its record and row written, nothing published). The next append comes from a process
    whose view is from before the move: it cuts the torn tail by path before it reopens, and looked
    for the `.idx` where its view had found it (gone): the torn row stayed, the reopen loaded it,
    and the append published it with its own. A needle never acknowledged then read as the
    record appended at its offset, in every process."""
    from native.storage import consolidate_volume_index

    leader, worker, data, idx = _shared_pair_with_idx_dir(tmp_path, write=True)
    consolidate_volume_index(leader, VID)
    lv = leader.volume(VID)
    slot = lv.shared
    slot.lock()
    slot.set_writer(999_999)
    dat_end, idx_end = slot.dat_end, slot.idx_end
    os.pwrite(lv._dat_fd, b"torn".ljust(64, b"\0"), dat_end)
    os.pwrite(lv._idx_fd, lv.codec.encode(77, dat_end // 8, 10), idx_end)  # the size of the next record
    slot.unlock()
    worker.write_needle(VID, mk(2, b"y" * 5))  # the worker's view: before the move
    assert os.path.getsize(idx / f"{VID}.idx") == slot.idx_end
    assert os.path.getsize(lv.dat_path) == slot.dat_end
    for store in (leader, worker):
        assert store.read_needle(VID, 2).data == b"y" * 5
        with pytest.raises(Exception, match="not found"):
            store.read_needle(VID, 77)


@pytest.mark.parametrize("scan", ["scrub_volume", "scrub_index", "pin_for_scrub"])
def test_a_scan_never_waits_for_its_own_write_lock_when_the_files_are_replaced(tmp_path: Path, scan: str) -> None:
    """The same wait as above with the volume still in its slot but its generation moved on (a
    tier move re-assigning the slot while a scan held the old view's write lock): a catch-up
    under the write lock found it must reopen, and waited for that lock. Scans now catch up
    before they take it."""
    import native.storage._scrub as scrub_module

    leader, _, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"scanned"))
    v = leader.volume(VID)
    held, go_on = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with v._write_lock:
            held.set()
            assert go_on.wait(10)
            v.shared.lock()  # the files replaced meanwhile: a new generation, the same volume
            try:
                v.shared.bump_generation()
            finally:
                v.shared.unlock()

    holder = threading.Thread(target=hold_the_write_lock, daemon=True)
    holder.start()
    assert held.wait(10)
    outcome: list[object] = []

    def run_scan() -> None:
        try:
            outcome.append(getattr(scrub_module, scan)(v))
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    t = threading.Thread(target=run_scan, daemon=True)
    t.start()
    _until(lambda: v._write_lock.locked() and t.is_alive(), 5)  # the scan waits for the lock
    go_on.set()
    holder.join(10)
    t.join(10)
    assert not t.is_alive(), "the scan waits for the write lock it holds"
    got = outcome[0]
    if scan == "pin_for_scrub":
        assert isinstance(got, tuple)
        for fd in (got[0], got[2]):
            os.close(fd)
    else:
        assert got == (1, []) or got[1] == [], got


@pytest.mark.parametrize("scan", ["scrub_volume", "scrub_index", "pin_for_scrub"])
def test_a_scan_of_a_volume_removed_meanwhile_reports_it(tmp_path: Path, scan: str) -> None:
    """The catch-up a scan now runs before its write lock finds the slot freed (an unmount or
    delete racing the scrub): the scan reports it, as it did when the catch-up ran inside
    `pinned_dat` (StorageError: "unmounted meanwhile"), rather than raise out of the rpc."""
    import native.storage._scrub as scrub_module

    leader, worker, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"scanned"))
    w = worker.volume(VID)
    leader.locations[0].table.free(VID)  # the leader removed it; the worker's view still open
    got = getattr(scrub_module, scan)(w)
    if scan == "pin_for_scrub":
        assert got == f"volume {VID} was removed"
    elif scan == "scrub_volume":
        assert got == (0, [f"volume {VID} was removed"])
    else:  # reads the `.idx` by its name, as before
        assert got == (1, [])


def test_a_compaction_start_never_waits_for_its_own_write_lock_when_the_files_are_replaced(tmp_path: Path) -> None:
    """`begin_compaction` read `v.idx_size` (a catch-up) under the write lock: the files replaced
    while it waited for that lock, the catch-up waited to reopen for the lock it held."""
    from native.storage._vacuum import begin_compaction

    leader, _, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"compacted"))
    v = leader.volume(VID)
    held, go_on = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with v._write_lock:
            held.set()
            assert go_on.wait(10)
            v.shared.lock()
            try:
                v.shared.bump_generation()
            finally:
                v.shared.unlock()

    holder = threading.Thread(target=hold_the_write_lock, daemon=True)
    holder.start()
    assert held.wait(10)
    outcome: list[object] = []

    def start() -> None:
        try:
            begin_compaction(v)
            outcome.append(v.compact_idx_offset)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    t = threading.Thread(target=start, daemon=True)
    t.start()
    _until(lambda: v._write_lock.locked() and t.is_alive(), 5)
    go_on.set()
    holder.join(10)
    t.join(10)
    assert not t.is_alive(), "the compaction's start waits for the write lock it holds"
    assert outcome == [v.codec.entry_size], outcome


def test_rows_committed_between_a_compactions_catch_up_and_its_lock_are_replayed_by_the_commit(tmp_path: Path) -> None:
    """`begin_compaction` takes the view's `.idx` end as it is under the write lock (no second
    catch-up): a row another process commits after the catch-up is not in the compacted copy,
    and the commit's makeupDiff replays it."""
    from native.storage import compact, commit_compact
    import native.storage._vacuum as vacuum

    leader, worker, _ = _shared_pair(tmp_path)
    for i in range(1, 6):
        leader.write_needle(VID, mk(i, bytes([i]) * 300))
    leader.delete_needle(VID, 2, 0x1234)
    v = leader.volume(VID)
    es = v.codec.entry_size
    real_begin = vacuum.begin_compaction

    def begin_with_an_append_in_between(vol) -> None:
        follow = vol._follow

        def follow_then_the_worker_appends(*a, **k):
            follow(*a, **k)
            worker.write_needle(VID, mk(77, b"between the catch-up and the lock"))
            worker.delete_needle(VID, 3, 0x1234)

        vol._follow = follow_then_the_worker_appends
        try:
            real_begin(vol)
        finally:
            del vol._follow

    vacuum.begin_compaction = begin_with_an_append_in_between
    try:
        assert compact(v).ran
    finally:
        vacuum.begin_compaction = real_begin
    assert v.compact_idx_offset == 6 * es  # the worker's two rows are past it
    assert commit_compact(v)
    for s in (leader, worker):
        assert s.read_needle(VID, 77).data == b"between the catch-up and the lock"
        assert s.read_needle(VID, 1).data == bytes([1]) * 300
        for gone in (2, 3):
            with pytest.raises(Exception, match="deleted|not found"):
                s.read_needle(VID, gone)


def test_a_closed_view_does_not_reopen_the_replaced_files(tmp_path: Path) -> None:
    """A read in flight on a view closed meanwhile (a tier move's old object, a view the worker
    forgot) that catches up with a new generation: the reopen adopted the new files into the
    closed view, and no close ever closed them (two descriptors leaked per such read)."""
    leader, worker, _ = _shared_pair(tmp_path)
    leader.write_needle(VID, mk(1, b"x"))
    w = worker.volume(VID)
    w.close()
    s = w.shared
    s.lock()
    try:
        s.bump_generation()
    finally:
        s.unlock()
    with pytest.raises(Exception, match="closed"):
        w._follow()
    assert w._dat_fd == w._idx_fd == -1
