"""Counts over a sliding window, per endpoint and per volume: what the cutover decisions read.

`Evidence.add(key, name)` counts one event now, in one-second buckets; `window(key, seconds)`
sums the last `seconds`. A key is an endpoint name, or `volume_key(vid)` for a volume. The fronts
count what each side answered (`requests.native`, `5xx.native`, `requests.go`, `5xx.go`:
`answered` per endpoint, `answered_volume` per volume a request names); the differ counts what
it compared (`samples`, `real`, `noise`, weedpy/cutover.py), per endpoint and per volume.
Endpoints keep `KEEP_S` of buckets (the longest window a rule may ask for); volumes keep
`volume_keep_s` (the window of the volumes' rule: a server has many volumes), and `prune` drops
the buckets of the volumes that had no traffic for that long. Memory: at most one small dict per
key per second kept that saw traffic, plus each key's totals since start (`totals`, for the
metrics port).

A mixed-mode worker process counts what its front answered in an `EvidenceTally`; the leader
takes each worker's counts once a second (`take`) and adds them to its `Evidence` (`merge`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Evidence", "EvidenceTally", "KEEP_S", "VOLUME_KEEP_S", "GRPC_SERVER_ERRORS", "volume_key", "side_of"]

KEEP_S = 3600  # the longest window a rule may ask for is what is kept
VOLUME_KEEP_S = 60  # a volume's buckets, until the volumes' rule asks for more (`volume_keep_s`)
_VOLUME = "volume "

# gRPC statuses that count as a server error (the 5xx of an rpc): the server failed, not the call.
GRPC_SERVER_ERRORS = frozenset({"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNIMPLEMENTED"})

_SIDE = {"go": "go", "shadow": "go", "native": "native", "native+verify": "native"}


def volume_key(vid: int) -> str:
    """The evidence key of volume `vid` (never an endpoint name: those have no space)."""
    return _VOLUME + str(vid)


def side_of(target: str) -> str | None:
    """The side (`go`, `native`) that answers for a target name; None for `off` and the like."""
    return _SIDE.get(target)


class Evidence:
    def __init__(self, clock: Callable[[], float] = time.monotonic, keep_s: int = KEEP_S,
                 volume_keep_s: int = VOLUME_KEEP_S) -> None:
        self._clock = clock
        self._keep = keep_s
        self.volume_keep_s = volume_keep_s  # set from the volumes' rule (weedpy/volume_rollback.py)
        self._buckets: dict[str, collections.deque[tuple[int, collections.Counter[str]]]] = {}
        self._totals: dict[str, collections.Counter[str]] = {}

    def add(self, key: str, name: str, n: int = 1) -> None:
        second = int(self._clock())
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = collections.deque()
            self._totals.setdefault(key, collections.Counter())
        if not buckets or buckets[-1][0] != second:
            keep = self.volume_keep_s if key.startswith(_VOLUME) else self._keep
            while buckets and buckets[0][0] <= second - keep:
                buckets.popleft()
            buckets.append((second, collections.Counter()))
        buckets[-1][1][name] += n
        self._totals[key][name] += n

    def answered(self, endpoint: str, target: str, server_error: bool) -> None:
        """A front's request is answered by `target`'s side; `server_error`: a 5xx (or its gRPC kin)."""
        side = _SIDE.get(target)
        if side is None:
            return
        self.add(endpoint, "requests." + side)
        if server_error:
            self.add(endpoint, "5xx." + side)

    def answered_volume(self, vid: int, target: str, server_error: bool) -> None:
        """The same, for a volume the request named (a file id's, an rpc's)."""
        self.answered(_VOLUME + str(vid), target, server_error)

    def merge(self, rows: Iterable[Sequence[Any]]) -> None:
        """Counts a worker process took (`EvidenceTally.take`): `[key, name, n]` rows."""
        for key, name, n in rows:
            self.add(str(key), str(name), int(n))

    def window(self, key: str, seconds: float) -> collections.Counter[str]:
        since = self._clock() - seconds
        out: collections.Counter[str] = collections.Counter()
        for second, counts in reversed(self._buckets.get(key, ())):
            if second + 1 <= since:  # the bucket holding `since` counts whole
                break
            out.update(counts)
        return out

    def totals(self, key: str) -> collections.Counter[str]:
        """Every count of `key` since the server started (the metrics port's counters)."""
        return collections.Counter(self._totals.get(key, ()))

    def endpoints(self) -> list[str]:
        return sorted(k for k in self._buckets if not k.startswith(_VOLUME))

    def volumes(self) -> list[int]:
        """The volumes counted since start (with traffic, or compared by the differ)."""
        return sorted(int(k[len(_VOLUME):]) for k in self._totals if k.startswith(_VOLUME))

    def prune(self) -> None:
        """Drop the buckets of the volumes that saw nothing for `volume_keep_s` (their totals stay)."""
        oldest = int(self._clock()) - self.volume_keep_s
        for key in [k for k, b in self._buckets.items() if k.startswith(_VOLUME) and (not b or b[-1][0] <= oldest)]:
            del self._buckets[key]


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

    def answered_volume(self, vid: int, target: str, server_error: bool) -> None:
        self.answered(_VOLUME + str(vid), target, server_error)

    def take(self) -> list[list[Any]]:
        """The counts as JSON rows `[key, name, n]`, and start again from zero."""
        counts, self._counts = self._counts, collections.Counter()
        return [[key, name, n] for (key, name), n in counts.items()]
