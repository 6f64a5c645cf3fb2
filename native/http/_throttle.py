"""In-flight byte limits for uploads and downloads (Go's concurrent*LimitMB + inflight timeouts).

A counter plus a broadcast: Go waits on a sync.Cond that every finishing request broadcasts, with
one timer for the whole wait. Admission is "in flight <= limit" (a request is admitted however
large it is, so one huge upload still goes through an idle server).
"""

from __future__ import annotations

import trio

__all__ = ["InflightLimit", "WaitOutcome"]


class WaitOutcome:
    OK = 200
    TIMEOUT = 429


class InflightLimit:
    """One direction's in-flight bytes; `limit` 0 disables waiting (the counter still counts)."""

    __slots__ = ("limit", "timeout", "inflight", "_changed")

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self.inflight = 0
        self._changed = trio.Event()

    @property
    def over(self) -> bool:
        return self.limit != 0 and self.inflight > self.limit

    def add(self, n: int) -> None:
        self.inflight += n

    def release(self, n: int) -> None:
        self.inflight -= n
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
                await self._changed.wait()
                seen = self.inflight
                if seen <= self.limit:
                    return WaitOutcome.OK, seen
        # Go's timer wakes every waiter (cond.Broadcast) when it fires.
        self._broadcast()
        return WaitOutcome.TIMEOUT, seen
