"""Per-endpoint counts over a sliding window: what the cutover decisions read.

`Evidence.add(endpoint, name)` counts one event now, in one-second buckets kept for `KEEP_S`;
`window(endpoint, seconds)` sums the last `seconds`. The fronts count what each side answered
(`requests.native`, `5xx.native`, `requests.go`, `5xx.go`: `answered`); the differ counts what it
compared (`samples`, `real`, `noise`, weedpy/cutover.py). Memory: at most one small dict per
endpoint per second of `KEEP_S` that saw traffic.

A mixed-mode worker process counts what its front answered in an `EvidenceTally`; the leader
takes each worker's counts once a second (`take`) and adds them to its `Evidence` (`merge`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Evidence", "EvidenceTally", "KEEP_S", "GRPC_SERVER_ERRORS"]

KEEP_S = 3600  # the longest window a rule may ask for is what is kept

# gRPC statuses that count as a server error (the 5xx of an rpc): the server failed, not the call.
GRPC_SERVER_ERRORS = frozenset({"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNIMPLEMENTED"})

_SIDE = {"go": "go", "shadow": "go", "native": "native", "native+verify": "native"}


class Evidence:
    def __init__(self, clock: Callable[[], float] = time.monotonic, keep_s: int = KEEP_S) -> None:
        self._clock = clock
        self._keep = keep_s
        self._buckets: dict[str, collections.deque[tuple[int, collections.Counter[str]]]] = {}

    def add(self, endpoint: str, name: str, n: int = 1) -> None:
        second = int(self._clock())
        buckets = self._buckets.get(endpoint)
        if buckets is None:
            buckets = self._buckets[endpoint] = collections.deque()
        if not buckets or buckets[-1][0] != second:
            while buckets and buckets[0][0] <= second - self._keep:
                buckets.popleft()
            buckets.append((second, collections.Counter()))
        buckets[-1][1][name] += n

    def answered(self, endpoint: str, target: str, server_error: bool) -> None:
        """A front's request is answered by `target`'s side; `server_error`: a 5xx (or its gRPC kin)."""
        side = _SIDE.get(target)
        if side is None:
            return
        self.add(endpoint, "requests." + side)
        if server_error:
            self.add(endpoint, "5xx." + side)

    def merge(self, rows: Iterable[Sequence[Any]]) -> None:
        """Counts a worker process took (`EvidenceTally.take`): `[endpoint, name, n]` rows."""
        for endpoint, name, n in rows:
            self.add(str(endpoint), str(name), int(n))

    def window(self, endpoint: str, seconds: float) -> collections.Counter[str]:
        since = self._clock() - seconds
        out: collections.Counter[str] = collections.Counter()
        for second, counts in reversed(self._buckets.get(endpoint, ())):
            if second + 1 <= since:  # the bucket holding `since` counts whole
                break
            out.update(counts)
        return out

    def endpoints(self) -> list[str]:
        return sorted(self._buckets)


class EvidenceTally:
    """A worker process's answers since the leader last took them (the fronts call `answered`)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def answered(self, endpoint: str, target: str, server_error: bool) -> None:
        side = _SIDE.get(target)
        if side is None:
            return
        self._counts[endpoint, "requests." + side] += 1
        if server_error:
            self._counts[endpoint, "5xx." + side] += 1

    def take(self) -> list[list[Any]]:
        """The counts as JSON rows `[endpoint, name, n]`, and start again from zero."""
        counts, self._counts = self._counts, collections.Counter()
        return [[endpoint, name, n] for (endpoint, name), n in counts.items()]
