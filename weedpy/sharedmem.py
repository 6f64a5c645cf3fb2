"""One block of memory shared by the processes of a server (the leader and its workers).

The leader creates it as an anonymous memfd and passes the descriptor to each worker it spawns;
nothing is ever named in /dev/shm, so nothing is left behind when they all exit. The block is an
array of unsigned 64-bit words. A word written through `memoryview.cast("Q")` is one aligned
8-byte store and a word read one aligned load, so a reader never sees half of a value another
process is writing (x86-64 and arm64 both guarantee this for aligned 8-byte accesses).

Regions (word offsets) are handed out by `SharedLayout`: the server-wide flags, the per-process
in-flight byte counters and the volume table each take one. Locks are OFD byte-range locks on
the memfd (`weedpy.filelocks`), one byte per lock, through a description of each process's own:
the kernel drops a dead process's locks. Each lock has a mutex of this process's too, taken first,
so that two of its threads never hold one lock at once (the description would let both in, and
the first release would free it under the other).
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import threading

from weedpy.filelocks import RangeLock, own_description

__all__ = ["SharedBlock", "SharedLayout", "ProcessShare", "LAYOUT", "WORDS_PER_SLOT", "MAX_PROCESSES", "MAX_VOLUMES"]

MAX_PROCESSES = 64  # leader + workers
MAX_VOLUMES = 4096  # volume slots (Go's -max is per directory; a few hundred is a large server)
WORDS_PER_SLOT = 9
_MAGIC = 0x7765656470790002  # "weedpy", layout 2


@dataclasses.dataclass(frozen=True, slots=True)
class SharedLayout:
    """Where each region starts, in words."""

    flags: int = 1  # 7 words of server-wide state after the magic word
    inflight: int = 8  # bytes in flight: MAX_PROCESSES upload words, then MAX_PROCESSES download words
    volumes: int = 8 + 2 * MAX_PROCESSES
    volume_slots: int = MAX_VOLUMES

    @property
    def words(self) -> int:
        return self.volumes + self.volume_slots * WORDS_PER_SLOT

    @property
    def lock_bytes(self) -> int:
        """Lock byte `i` guards volume slot `i`; the locks live past the words (no data overlap)."""
        return self.words * 8


LAYOUT = SharedLayout()


class SharedBlock:
    """The mapped block: `words` to read and write, `lock`/`unlock` a byte-range lock by index."""

    def __init__(self, fd: int, *, owner: bool) -> None:
        self.fd = fd
        self.owner = owner
        self._lock_fd = own_description(fd)  # this process's locks (`fd` is shared with the workers)
        self._lock_base = LAYOUT.lock_bytes  # lock i is the byte at _lock_base + i (every append takes one)
        # lock i's hold among this process's threads (the OFD lock is the description's: a second
        # thread's lock call would succeed at once, and either release would free both holds)
        self._mutexes = [threading.Lock() for _ in range(LAYOUT.volume_slots)]
        size = LAYOUT.lock_bytes + LAYOUT.volume_slots
        self._mmap = mmap.mmap(fd, size)
        self.words = memoryview(self._mmap).cast("Q")
        if owner:
            self.words[0] = _MAGIC
        elif self.words[0] != _MAGIC:
            raise ValueError("the shared block is not weedpy's (or of another layout)")

    @classmethod
    def create(cls) -> SharedBlock:
        """A new zeroed block (the leader's); its fd is inheritable by the workers it spawns."""
        fd = os.memfd_create("weedpy-shared", 0)  # no MFD_CLOEXEC: workers inherit it through pass_fds
        os.ftruncate(fd, LAYOUT.lock_bytes + LAYOUT.volume_slots)
        return cls(fd, owner=True)

    @classmethod
    def attach(cls, fd: int) -> SharedBlock:
        return cls(fd, owner=False)

    def lock(self, index: int, *, blocking: bool = True) -> bool:
        """Take lock `index` for this thread: against other processes (the byte-range lock) and
        this process's other threads (the index's mutex). False when `blocking` is off and
        another process or thread holds it."""
        return self.range_lock(index).acquire(blocking)

    def unlock(self, index: int) -> None:
        self.range_lock(index).release()

    def range_lock(self, index: int) -> RangeLock:
        """Lock `index` as an object with its arguments ready (`lock`/`unlock` without the packing);
        every RangeLock of one index shares the index's mutex."""
        return RangeLock(self._lock_fd, self._lock_base + index, 1, self._mutexes[index])

    def close(self) -> None:
        """Close the descriptor (the leader's: workers already spawned keep theirs). The mapping
        stays until the process exits: views of it live in the volume slots, flags and counters."""
        if self.owner and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessShare:
    """This process's view of the block: which of the server's `count` processes it is (0: leader)."""

    block: SharedBlock
    index: int
    count: int

    def flags(self) -> memoryview:
        """The server-wide flag words (7)."""
        return self.block.words[LAYOUT.flags:LAYOUT.flags + 7]

    def inflight(self, direction: int) -> memoryview:
        """Bytes in flight per process, one word each (`direction` 0: uploads, 1: downloads)."""
        start = LAYOUT.inflight + direction * MAX_PROCESSES
        return self.block.words[start:start + self.count]
