"""Spreading new HTTP connections over the processes of one server (the leader and its workers).

Every process accepts on the same inherited listening sockets; the kernel wakes each of them for
a new connection and the first to run takes it, so a burst of connections (a client opening its
keep-alive pool) used to land on whichever process happened to be awake, and the other cores
served nothing. Each process now counts its open HTTP connections in its own word of a small
shared block (an anonymous memfd the leader creates and its workers inherit). Before accepting,
a process holding more connections than the least loaded one lets that one take the connection:
it waits a moment (`weedpy.http1.SPREAD_DEFER`, 2 ms) and accepts only what is still queued then. A process that is not
accepting (not serving yet, stopped listening, exited) has the word `IDLE`, above any count, so
nobody waits for it; a live process that is merely busy costs a new connection at most that moment.
"""

from __future__ import annotations

import mmap
import os

__all__ = ["ConnectionCounts", "IDLE"]

IDLE = (1 << 64) - 1


class ConnectionCounts:
    """One word per process: its open connections while it accepts, else `IDLE`. A process
    writes only its own word (`index`); the leader also marks a worker that exited."""

    def __init__(self, fd: int, processes: int, index: int, *, owner: bool, defers: bool = False) -> None:
        self.fd = fd
        self.index = index
        self._owner = owner
        self.defers = defers  # this process leaves every new connection to another that accepts
        self._map = mmap.mmap(fd, processes * 8)
        self.words = memoryview(self._map).cast("Q")
        self._open = 0
        self._accepting = False

    @classmethod
    def create(cls, processes: int, *, defers: bool = False) -> ConnectionCounts:
        """The leader's block (process 0), every word `IDLE`; workers inherit `fd`. `defers`: the
        leader leaves new connections to any worker that accepts (it takes them while none does)."""
        fd = os.memfd_create("weedpy-connections", 0)  # no MFD_CLOEXEC: passed to workers (pass_fds)
        os.ftruncate(fd, processes * 8)
        counts = cls(fd, processes, 0, owner=True, defers=defers)
        for i in range(processes):
            counts.words[i] = IDLE
        return counts

    @classmethod
    def attach(cls, fd: int, processes: int, index: int) -> ConnectionCounts:
        return cls(fd, processes, index, owner=False)

    def accepting(self, on: bool) -> None:
        """This process starts (or stops) accepting: its count is seen (or `IDLE`)."""
        self._accepting = on
        self.words[self.index] = self._open if on else IDLE

    def gone(self, index: int) -> None:
        """The leader: process `index` exited (it accepts nothing until it says so again)."""
        self.words[index] = IDLE

    def opened(self) -> None:
        self._open += 1
        if self._accepting:
            self.words[self.index] = self._open

    def closed(self) -> None:
        self._open -= 1
        if self._accepting:
            self.words[self.index] = self._open

    def should_wait(self) -> bool:
        """Another accepting process holds fewer connections: let it take the next one."""
        if self.defers:
            return any(w != IDLE for i, w in enumerate(self.words) if i != self.index)
        return min(self.words) < self._open

    def close(self) -> None:
        """The leader closes its descriptor (workers keep theirs); the mapping stays."""
        if self._owner and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
