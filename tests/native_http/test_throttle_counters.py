"""The in-flight byte counters of -concurrentUploadLimitMB / -concurrentDownloadLimitMB are the
server's: with worker processes each process keeps its own word in the shared block, and the
limit is checked against their sum."""

from __future__ import annotations

from native.http._throttle import InflightLimit


def _words(*values: int) -> memoryview:
    words = memoryview(bytearray(8 * len(values))).cast("Q")
    for i, v in enumerate(values):
        words[i] = v
    return words


def test_the_limit_counts_every_process_bytes() -> None:
    words = _words(3 << 20, 0)
    mine = InflightLimit(4 << 20, 1.0, words, 1)
    mine.add(2 << 20)
    assert (mine.inflight, mine.over) == (5 << 20, True)
    mine.release(2 << 20)
    assert (mine.inflight, mine.over) == (3 << 20, False)


def test_a_worker_restarted_in_a_dead_ones_place_does_not_inherit_its_bytes() -> None:
    """A worker killed in the middle of uploads leaves its word set; the worker that takes its
    index starts from zero, or the server would count bytes no one sends and throttle for them."""
    words = _words(1 << 20, 5 << 20)  # index 1 died with 5 MiB in flight
    restarted = InflightLimit(4 << 20, 1.0, words, 1)
    assert (restarted.inflight, restarted.over) == (1 << 20, False)
