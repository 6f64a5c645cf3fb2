"""An fsync write that waits on the disk while a compaction commit swaps the volume's files:
what it synced was the old files, so the new files' writes are not covered by it."""

from __future__ import annotations

import threading
from pathlib import Path

from native.storage import Needle, Volume
from native.storage._fileio import OS_FILES
from native.storage._vacuum import commit_compact, compact

COOKIE = 0xC0FFEE


class SlowSyncFiles:
    """`OS_FILES`, counting fdatasync calls; once armed, the first fdatasync of `fd` syncs and
    then holds its caller until `release` is set (a disk that takes its time)."""

    def __init__(self) -> None:
        self.syncs = 0
        self.fd = -1
        self.entered = threading.Event()
        self.release = threading.Event()

    def fdatasync(self, fd: int) -> None:
        self.syncs += 1
        OS_FILES.fdatasync(fd)
        if fd == self.fd and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)

    def __getattr__(self, name: str):
        return getattr(OS_FILES, name)


def test_an_fsync_overlapping_a_commit_does_not_cover_the_new_files(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    for key in range(1, 41):
        v.write_needle(Needle.create(key, COOKIE, bytes([key]) * 3000))
    for key in range(1, 41):
        if key % 4:
            v.delete_needle(key, COOKIE)
    files = SlowSyncFiles()
    v.files = files
    files.fd = v._dat_fd
    errors: list[BaseException] = []

    def fsync_write() -> None:
        try:
            v.write_needle(Needle.create(100, COOKIE, b"synced before the swap"), fsync=True)
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    t = threading.Thread(target=fsync_write)
    t.start()
    try:
        assert files.entered.wait(30)
        compact(v)  # the fsync is still on its way: the commit swaps the files meanwhile
        assert commit_compact(v)
    finally:
        files.release.set()
        t.join(30)
    assert not errors
    before = files.syncs
    v.write_needle(Needle.create(101, COOKIE, b"acknowledged as synced"), fsync=True)
    assert files.syncs > before, "an fsync write on the new files was acknowledged without an fsync"
    v.close()


def test_an_unchanged_fsync_write_syncs_what_it_points_at(tmp_path: Path) -> None:
    """Rewriting an identical needle appends nothing (204), but with `fsync` its record, written
    earlier without a sync, is synced before the answer, as Go's fsync write syncs its batch."""
    v = Volume.create(tmp_path, 1)
    files = SlowSyncFiles()
    v.files = files
    n = Needle.create(7, COOKIE, b"written without fsync")
    v.write_needle(n)
    assert files.syncs == 0
    assert v.write_needle(Needle.create(7, COOKIE, b"written without fsync"), fsync=True).unchanged
    assert files.syncs == 2  # .dat, then .idx
    assert v.write_needle(Needle.create(7, COOKIE, b"written without fsync"), fsync=True).unchanged
    assert files.syncs == 2  # synced already: nothing more
    v.close()
