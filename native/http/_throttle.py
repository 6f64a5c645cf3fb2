"""In-flight byte limits for uploads and downloads (Go's concurrent*LimitMB + inflight timeouts).

A counter plus a broadcast: Go waits on a sync.Cond that every finishing request broadcasts, with
one timer for the whole wait. Admission is "in flight <= limit" (a request is admitted however
large it is, so one huge upload still goes through an idle server).

The limits are the server's, as in Go, however many processes serve it: with worker processes
each one counts its own bytes in a word of the shared block (`counters[index]`, written only by
its owner) and compares the sum of every process's word with the limit; a waiter also polls
every `SHARED_POLL` seconds, since another process's release does not wake it.
"""

from __future__ import annotations

import trio

__all__ = ["InflightLimit", "WaitOutcome", "SHARED_POLL"]

SHARED_POLL = 0.01


class WaitOutcome:
    OK = 200
    TIMEOUT = 429


class InflightLimit:
    """One direction's in-flight bytes; `limit` 0 disables waiting (the counter still counts).
    `counters`: every process's word (shared), `index` this process's; None: one process."""

    __slots__ = ("limit", "timeout", "shared", "_own", "_counters", "_index", "_changed")

    def __init__(self, limit: int, timeout: float, counters: memoryview | None = None, index: int = 0) -> None:
        self.limit = limit
        self.timeout = timeout
        self._own = 0
        self._counters = counters
        self.shared = counters is not None  # other processes see this counter (and only they could see a brief add)
        self._index = index
        self._changed = trio.Event()
        if counters is not None:  # a worker restarted in a dead one's place: its bytes are gone
            counters[index] = 0

    @property
    def inflight(self) -> int:
        """The server's bytes in flight in this direction (every process's)."""
        counters = self._counters
        return self._own if counters is None else sum(counters)

    @property
    def over(self) -> bool:
        return self.limit != 0 and self.inflight > self.limit

    def add(self, n: int) -> None:
        self._own += n
        if self._counters is not None:
            self._counters[self._index] = self._own

    def release(self, n: int) -> None:
        self._own -= n
        if self._counters is not None:
            self._counters[self._index] = self._own
        if self.limit != 0:
            self._broadcast()

    def _broadcast(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait(self) -> tuple[int, int]:
        """Wait while over the limit, up to `timeout` in all: (outcome, in-flight value seen last)."""
        seen = self.inflight
        if seen <= self.limit:
            return WaitOutcome.OK, seen
        with trio.move_on_after(self.timeout):
            while True:
                if self._counters is None:
                    await self._changed.wait()
                else:
                    with trio.move_on_after(SHARED_POLL):
                        await self._changed.wait()
                seen = self.inflight
                if seen <= self.limit:
                    return WaitOutcome.OK, seen
        # Go's timer wakes every waiter (cond.Broadcast) when it fires.
        self._broadcast()
        return WaitOutcome.TIMEOUT, seen
