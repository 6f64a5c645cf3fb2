"""Driving blocking storage iterators from trio: a worker-thread hop per batch, not per item."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import trio

__all__ = ["next_batch"]

T = TypeVar("T")


def _take(it: Iterator[T], max_items: int, max_bytes: int, size: Callable[[T], int]) -> list[T]:
    out: list[T] = []
    total = 0
    for item in it:
        out.append(item)
        total += size(item)
        if len(out) >= max_items or total >= max_bytes:
            break
    return out


async def next_batch(
    it: Iterator[T], *, max_items: int = 256, max_bytes: int = 4 << 20, size: Callable[[T], int] = lambda _: 0,
) -> list[T]:
    """The next items of `it` (empty when exhausted), read in one worker thread."""
    return await trio.to_thread.run_sync(_take, it, max_items, max_bytes, size)
