"""Waiting in tests for what a real process will do: one poll loop for every test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


class _Alive(Protocol):
    def check_alive(self) -> None: ...


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", *,
               interval: float = 0.05, proc: _Alive | None = None) -> T:
    """Poll `predicate` until it returns something true and return that; AssertionError naming
    `what` (and the last value) after `timeout` seconds. With `proc`, a process that exits
    meanwhile fails the wait at once, with its log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check_alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(interval)
