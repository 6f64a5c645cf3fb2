"""Byte-range locks that belong to an open file description (Linux OFD locks), not to a process.

Classic POSIX record locks (`fcntl.lockf`) belong to the process, and the kernel's deadlock check
takes a multi-threaded process for one waiter: a thread holding volume 1's lock while another
thread of the same process waits for volume 2's, held by a process that waits for volume 1, gets
EDEADLK although nothing is stuck (the first thread never waits). Writes failed that way under
load with two worker processes. OFD locks are outside that check, and closing some other
descriptor of the file does not drop them as it drops POSIX locks. The kernel still releases
them when the last descriptor of the description closes, so a killed process's locks go with it.

A description inherited across fork/exec is shared, and so would be its locks: each process
locks through one of its own (`own_description`). Threads of one process share it and must
exclude one another themselves, as with POSIX locks.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading

__all__ = ["own_description", "lock_range", "unlock_range", "RangeLock"]

# struct flock on Linux (x86-64, arm64): l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
_FLOCK = struct.Struct("@hhqqi4x")


def own_description(fd: int) -> int:
    """A new open file description of the file `fd` names (close-on-exec), for this process's locks."""
    return os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)


def lock_range(fd: int, start: int, length: int, *, blocking: bool = True) -> bool:
    """Take an exclusive lock on `length` bytes from `start` (0: to the end of the file, however
    it grows). False when `blocking` is off and another description holds it."""
    arg = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK, arg)
    except (BlockingIOError, PermissionError):
        return False
    return True


def unlock_range(fd: int, start: int, length: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, start, length, 0))


class RangeLock:
    """`lock_range`/`unlock_range` of one fixed range, their arguments packed once: a shared
    volume's append takes and releases its slot's lock every time.

    The OFD lock belongs to the description, so two threads of this process would both "hold"
    it and the first release would free it under the other: `mutex` (one per range, shared by
    every RangeLock of that range in this process) excludes them first."""

    __slots__ = ("_fd", "_lock", "_unlock", "_mutex")

    def __init__(self, fd: int, start: int, length: int, mutex: threading.Lock) -> None:
        self._fd = fd
        self._lock = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
        self._unlock = _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, start, length, 0)
        self._mutex = mutex

    def acquire(self, blocking: bool = True) -> bool:
        mutex = self._mutex
        if not mutex.acquire(blocking):
            return False
        try:
            fcntl.fcntl(self._fd, _SETLKW if blocking else _SETLK, self._lock)
        except (BlockingIOError, PermissionError):
            mutex.release()
            return False
        except BaseException:
            mutex.release()
            raise
        return True

    def release(self) -> None:
        try:
            fcntl.fcntl(self._fd, _SETLK, self._unlock)
        finally:
            self._mutex.release()


_SETLK = fcntl.F_OFD_SETLK
_SETLKW = fcntl.F_OFD_SETLKW
