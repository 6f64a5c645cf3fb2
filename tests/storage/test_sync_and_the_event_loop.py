"""A volume whose files are being synced, as the event loop's calls (`blocking=False`) meet it:
appends and deletes would wait while the kernel writes the files back, so they are refused
(WouldBlock: the caller appends in a worker thread); reads go on, and never wait for the sync,
because the files are opened without access-time updates (a read that updated the access time
would join the file system's journal and wait for the commit the sync forces)."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

import pytest

from native.storage import Needle, Volume, VolumeTable, WouldBlock
from weedpy.sharedmem import SharedBlock
from tests.storage.test_fsync_across_commit import COOKIE, SlowSyncFiles
from tests.storage.test_shared_volume import VID, _shared_pair, mk


def _sync_held(v: Volume) -> tuple[SlowSyncFiles, threading.Thread]:
    """A sync of `v`'s appends running in a thread, held in its fdatasync until `files.release`."""
    files = SlowSyncFiles()
    v.files = files
    files.fd = v._dat_fd
    syncer = threading.Thread(target=v.sync_appended)
    syncer.start()
    assert files.entered.wait(30)
    return files, syncer


def test_the_event_loop_does_not_append_to_a_volume_being_synced(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(Needle.create(1, COOKIE, b"one"))
    files, syncer = _sync_held(v)
    try:
        with pytest.raises(WouldBlock):
            v.write_needle(Needle.create(2, COOKIE, b"two"), blocking=False)
        with pytest.raises(WouldBlock):
            v.delete_needle(1, COOKIE, blocking=False)
        assert v.read_needle(1, COOKIE, blocking=False).data == b"one"  # reads go on
        v.write_needle(Needle.create(3, COOKIE, b"three"))  # a worker thread's append waits its turn
    finally:
        files.release.set()
        syncer.join(30)
    v.write_needle(Needle.create(4, COOKIE, b"four"), blocking=False)  # the sync is over
    assert v.delete_needle(1, COOKIE, blocking=False) > 0
    assert [v.read_needle(k, COOKIE).data for k in (3, 4)] == [b"three", b"four"]
    v.close()


@pytest.mark.skipif(not hasattr(os, "O_NOATIME"), reason="O_NOATIME is Linux's")
def test_a_volume_is_read_without_updating_access_times(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(Needle.create(1, COOKIE, b"one"))
    for fd in (v._dat_fd, v._idx_fd):
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NOATIME
    dat = v.file_name(".dat")
    old = 10**18  # an access time before the last change: a relatime mount would update it on read
    os.utime(dat, ns=(old, os.stat(dat).st_mtime_ns + 10**9))
    assert v.read_needle(1, COOKIE).data == b"one"
    assert os.stat(dat).st_atime_ns == old
    v.close()
    again = Volume.load(tmp_path, 1)  # opened again, from the files
    assert fcntl.fcntl(again._dat_fd, fcntl.F_GETFL) & os.O_NOATIME
    assert again.read_needle(1, COOKIE).data == b"one"
    assert os.stat(dat).st_atime_ns == old
    again.close()


def test_no_process_appends_from_its_event_loop_while_another_syncs_the_volume(tmp_path: Path) -> None:
    """Two processes' views of one volume (the leader's, index 0, and a worker's, index 1): while
    the leader syncs the files, the worker's event loop refuses to append (WouldBlock: its thread
    appends), as the leader's own loop does; reads go on; once the sync is over, both append."""
    leader, worker, block = _shared_pair(tmp_path)
    lv, wv = leader.volume(VID), worker.volume(VID)
    lv.write_needle(mk(1, b"one"))
    files, syncer = _sync_held(lv)
    try:
        with pytest.raises(WouldBlock, match="another process"):
            wv.write_needle(mk(2, b"two"), blocking=False)
        with pytest.raises(WouldBlock):
            wv.delete_needle(1, 0x1234, blocking=False)
        assert wv.read_needle(1, 0x1234, blocking=False).data == b"one"
        wv.write_needle(mk(3, b"three"))  # a worker thread's append
    finally:
        files.release.set()
        syncer.join(30)
    wv.write_needle(mk(4, b"four"), blocking=False)
    lv.write_needle(mk(5, b"five"), blocking=False)
    assert [lv.read_needle(k).data for k in (3, 4)] == [b"three", b"four"]


def test_a_sync_mark_left_by_a_killed_process_is_cleared_by_the_one_restarted_in_its_place(tmp_path: Path) -> None:
    leader, worker, block = _shared_pair(tmp_path)
    lv, wv = leader.volume(VID), worker.volume(VID)
    wv.shared.mark_sync(True)  # worker 1 killed in the middle of a sync
    with pytest.raises(WouldBlock):
        lv.write_needle(mk(1, b"one"), blocking=False)
    VolumeTable(SharedBlock.attach(block.fd), 1).forget_syncs()  # its replacement starts
    lv.write_needle(mk(1, b"one"), blocking=False)
    assert wv.read_needle(1).data == b"one"


def _evict(v: Volume) -> None:
    """Drop the volume's clean `.dat` pages from the page cache (a read of them that must not wait
    also starts the kernel's readahead of them: evict again before the next such read)."""
    os.posix_fadvise(v._dat_fd, 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="RWF_NOWAIT is Linux's")
def test_the_event_loop_reads_only_what_the_page_cache_holds(tmp_path: Path) -> None:
    """A record that is not in the page cache would be read from the disk (tens of ms behind a
    large writeback) with every connection of the loop waiting: the loop's reads take only
    cached pages, and a miss goes to the full path (None) or a worker thread (WouldBlock)."""
    v = Volume.create(tmp_path, 1)
    body = bytes(range(256)) * 20
    v.write_needle(Needle.create(1, COOKIE, body))
    v.sync_appended()
    _evict(v)
    with pytest.raises(WouldBlock, match="page cache"):
        v.read_needle(1, COOKIE, blocking=False)
    assert v.read_needle(1, COOKIE).data == body  # a worker thread's read: from the disk
    _evict(v)  # (the pages are not under I/O now: the read above waited for them)
    assert v.read_plain(1, 1 << 20) is None
    assert v.read_needle(1, COOKIE).data == body
    assert v.read_plain(1, 1 << 20)[1] == body  # cached now
    assert v.read_needle(1, COOKIE, blocking=False).data == body
    v.close()


def _cache_only_the_first_page(v: Volume, offset: int) -> None:
    """The record at `offset`: its first page in the page cache, the pages after it not."""
    _evict(v)
    os.pread(v._dat_fd, 1, offset)  # (the kernel's readahead brings in more)
    page = offset - offset % 4096 + 4096
    os.posix_fadvise(v._dat_fd, page, 0, os.POSIX_FADV_DONTNEED)


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="RWF_NOWAIT is Linux's")
def test_a_record_partly_in_the_page_cache_is_never_taken_for_one_cut_by_the_end_of_the_file(tmp_path: Path) -> None:
    """A short count from the page cache is the end of the file only where the file ends, not
    where the volume's size says it does: a view that has applied another process's rows
    before its `.dat` size (`_apply_committed`, or any view whose size lags its map) must not
    turn a record that is partly cached into one cut short (Corrupted, an HTTP 500)."""
    v = Volume.create(tmp_path, 1)
    body = os.urandom(5 * 4096)
    v.write_needle(Needle.create(1, COOKIE, body))
    v.sync_appended()
    offset = v.needle_value(1).offset * 8
    v._dat_size = offset + 100  # a size behind the map's rows (as the view has it for a moment)
    _cache_only_the_first_page(v, offset)
    try:
        assert v.read_needle(1, COOKIE, blocking=False).data == body  # (a page read back meanwhile)
    except WouldBlock:
        pass
    assert v.read_needle(1, COOKIE).data == body
    v.close()


class _NoWaitingReads:
    """The volume's file operations; a read that may wait for the disk (`pread`, `preadv` without
    the page-cache-only flag) fails while `loop` is set (the event loop's calls read only from the
    page cache)."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.loop = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        assert not self.loop, f"a read on the event loop that may wait for the disk ({length} bytes at {offset})"
        return self._real.pread(fd, length, offset)  # type: ignore[attr-defined]

    def preadv(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        assert flags or not self.loop, f"a read on the event loop that may wait for the disk (at {offset})"
        return self._real.preadv(fd, buffers, offset, flags)  # type: ignore[attr-defined]


def _on_the_loop(files: _NoWaitingReads, call):
    files.loop = True
    try:
        return call()
    except WouldBlock:
        return WouldBlock
    finally:
        files.loop = False


def test_the_event_loop_reads_of_a_needle_never_wait_for_the_disk(tmp_path: Path) -> None:
    """Every read the loop's calls make of `.dat` comes from the page cache (or WouldBlock):
    the empty needle's record check, a stream's header and metadata, and the second location
    a 4-byte offset may point at (past 32 GiB)."""
    v = Volume.create(tmp_path, 1, offset_bytes=4)
    v.write_needle(Needle.create(1, COOKIE, b""))  # an empty needle: the index's size 0
    v.write_needle(Needle.create(2, COOKIE, os.urandom(3000), name="big.bin"))
    assert v.needle_value(1).size == 0
    files = v.files = _NoWaitingReads(v.files)
    for call in (lambda: v.read_needle(1, COOKIE, blocking=False),
                 lambda: v.open_needle_stream(2, COOKIE, blocking=False).close()):
        got = _on_the_loop(files, call)
        assert got is WouldBlock or got is None or got.id == 1
    # a record that a 4-byte offset reaches only 32 GiB on (Go's wrap-around): the first location
    # does not decode, the second does (a sparse file: no disk space)
    nv = v.needle_value(2)
    at = nv.offset * 8
    record = os.pread(v._dat_fd, 4096, at)
    alt = at + v.codec.offsets.max_volume_size
    os.pwrite(v._dat_fd, record, alt)
    os.pwrite(v._dat_fd, b"\xff" * 4, at + 12)  # the size in the first location's header
    v._dat_size = os.fstat(v._dat_fd).st_size
    got = _on_the_loop(files, lambda: v.read_needle(2, COOKIE, blocking=False))
    assert got is WouldBlock or got.name == b"big.bin"
    assert v.read_needle(2, COOKIE).name == b"big.bin"
    v.close()


def test_an_overwrite_from_the_event_loop_goes_to_a_worker_thread(tmp_path: Path) -> None:
    """An overwrite reads the stored record first (its cookie, and whether it is unchanged), which
    may come from the disk: the loop's call refuses before it writes a byte (WouldBlock, the
    shared slot's writer mark off again), and a worker thread's call stores it."""
    leader, worker, _ = _shared_pair(tmp_path)
    wv = worker.volume(VID)
    wv.write_needle(mk(1, b"first"), blocking=False)  # a new id: on the loop
    ends = (wv._dat_size, wv._idx_size)
    with pytest.raises(WouldBlock, match="overwritten"):
        wv.write_needle(mk(1, b"second"), blocking=False)
    assert (wv._dat_size, wv._idx_size) == ends and wv.shared.writer == 0
    wv.write_needle(mk(1, b"second"))
    assert leader.read_needle(VID, 1).data == b"second"


class _NoCachedOnlyFlag:
    """The volume's file operations on a file system that turns the page-cache-only flag down."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.refused = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def preadv(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        if flags:
            self.refused += 1
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        return self._real.preadv(fd, buffers, offset)  # type: ignore[attr-defined]


def test_a_file_system_without_the_page_cache_flag_is_read_as_before(tmp_path: Path) -> None:
    """Where the flag is refused (EOPNOTSUPP), the loop's reads are plain reads, as before it:
    the first refusal is remembered, no read fails for it."""
    v = Volume.create(tmp_path, 1)
    v.write_needle(Needle.create(1, COOKIE, b"one"))
    files = v.files = _NoCachedOnlyFlag(v.files)
    assert v.read_needle(1, COOKIE, blocking=False).data == b"one"
    assert v.read_plain(1, 1 << 20)[1] == b"one"
    assert v.read_needle(1, COOKIE, blocking=False).data == b"one"
    assert files.refused == 1
    v.close()
