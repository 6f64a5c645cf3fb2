"""The one layer every change to a volume's files goes through: opening, writing, truncating,
syncing and renaming `.dat`/`.idx` and the compaction files; and the reads of needles.

A `Volume` holds a `FileOps` (`volume.files`, the operating system's by default). Replacing it
is how the crash tests (`tests/reliability`) stop a volume at any step and decide which of the
writes since the last fsync reach the disk, and how the disk-fault tests make a write, an fsync
or a read fail. `pread` serves the reads of needles (whole, plain, streamed and the checks before
a sendfile) and `preadv` with `CACHED_ONLY` the event loop's (from the page cache only); scans of
whole files (loading, recovery, verify, compaction) read the descriptors directly.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import Protocol

__all__ = ["FileOps", "OsFileOps", "OS_FILES", "open_without_atime", "CACHED_ONLY", "NOT_SUPPORTED", "pread_cached"]


class FileOps(Protocol):
    def open(self, path: str, flags: int, mode: int = 0o644) -> int: ...
    def close(self, fd: int) -> None: ...
    def pwrite(self, fd: int, data: bytes, offset: int) -> int: ...
    def pread(self, fd: int, length: int, offset: int) -> bytes: ...
    def preadv(self, fd: int, buffers: Sequence[bytearray], offset: int, flags: int = 0, /) -> int: ...
    def ftruncate(self, fd: int, size: int) -> None: ...
    def fsync(self, fd: int) -> None: ...
    def fdatasync(self, fd: int) -> None: ...
    def replace(self, src: str, dst: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def fsync_dir(self, directory: str) -> None: ...


_NOATIME = getattr(os, "O_NOATIME", 0)


def open_without_atime(path: str, flags: int, mode: int = 0o644) -> int:
    """`os.open` without access-time updates where the owner may (Linux's O_NOATIME, else as
    asked): every volume, EC and index file the event loop reads. On ext4 a read that updates an
    access time joins the journal, and while a sync forces a commit the read waits for it: 60 ms
    while 1 GiB was synced, measured, against 0.05 ms without. On the event loop such a read
    would stall every connection. Neither weedpy nor Go reads access times back."""
    if _NOATIME:
        try:
            return os.open(path, flags | _NOATIME, mode)
        except PermissionError:  # not the file's owner: O_NOATIME is refused (EPERM)
            pass
    return os.open(path, flags, mode)


# `preadv`'s flag for the event loop's reads: only what the page cache holds, never a wait for
# the disk (Linux's RWF_NOWAIT; 0 elsewhere: a plain read). A miss waits for the disk, tens of ms
# behind a large writeback, and on the loop every connection would wait with it. With the flag,
# `preadv` raises BlockingIOError when the first page is not cached and reads short when a later
# one is not (or at the end of the file); a file system without it answers EOPNOTSUPP.
CACHED_ONLY = getattr(os, "RWF_NOWAIT", 0)
NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL)


def pread_cached(fd: int, length: int, offset: int, files: FileOps | None = None) -> bytes:
    """`length` bytes at `offset` from the page cache only, for the event loop (through `files`,
    a volume's FileOps, or the OS's): BlockingIOError where a page is not cached; short only at
    the end of the file, as `pread` (a short count is probed one byte further: the end, or a
    page not cached). A file system without the flag raises OSError with an errno of
    NOT_SUPPORTED: the caller then reads plainly."""
    preadv = (files or OS_FILES).preadv
    buf = bytearray(length)
    got = preadv(fd, (buf,), offset, CACHED_ONLY)
    if 0 < got < length and preadv(fd, (bytearray(1),), offset + got, CACHED_ONLY):
        raise BlockingIOError(f"a page at {offset + got} is not in the page cache")
    del buf[got:]
    return bytes(buf)


class OsFileOps:
    """The operating system's calls, unchanged but for `open`'s access times."""

    open = staticmethod(open_without_atime)
    preadv = staticmethod(os.preadv)
    close = staticmethod(os.close)
    pwrite = staticmethod(os.pwrite)
    pread = staticmethod(os.pread)
    ftruncate = staticmethod(os.ftruncate)
    fsync = staticmethod(os.fsync)
    fdatasync = staticmethod(os.fdatasync)
    replace = staticmethod(os.replace)

    @staticmethod
    def remove(path: str) -> None:
        """Remove a file; one that is already gone is fine."""
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    @staticmethod
    def fsync_dir(directory: str) -> None:
        """Make renames and creations in `directory` durable (a file system that cannot sync a
        directory, EINVAL, is fine)."""
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        finally:
            os.close(fd)


OS_FILES: FileOps = OsFileOps()
