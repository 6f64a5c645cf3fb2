"""Storage work from the event loop: what may run right there and what goes to a thread.

The rule (docs/performance.md, "Event-loop stalls"): the trio thread never waits on a lock that a
worker thread or another process can hold (a volume's write lock through a compaction commit, an
fsync, a scrub's index read or a tier move; the read gate through a commit's swap; a shared
volume's slot lock; an EC volume's journal lock through its fsync), nor reads or writes large
files. Storage calls that can wait take `blocking=False` and raise `WouldBlock` instead;
`storage_call` makes that the common case and moves the rest to a thread.

Threads are a shared resource too: trio's default limiter gives every run 40, and calls that wait
on a busy volume hold theirs until it is free. The heartbeat's snapshot (`heartbeat_thread`) and
the status pages (`control_thread`) run on limiters of their own, so a volume that keeps many
calls waiting cannot delay the master's heartbeat or /status behind them, nor a slow status page
the heartbeat.

Maintenance (compaction and its commit, scrubs) goes through `maintenance_thread`: a worker thread
as any other by default (which waits for a child process for a compaction's copy and a volume
scrub: native/maintenance_child.py), one of lowered CPU and I/O priority with `WEEDPY_MAINTENANCE_NICE`
(native/lowprio.py says why that is not the default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from native.lowprio import run_low_priority
from native.storage import WouldBlock

__all__ = ["storage_call", "control_thread", "heartbeat_thread", "maintenance_thread", "CONTROL_THREADS"]

T = TypeVar("T")

CONTROL_THREADS = 4  # heartbeat snapshots, /status, /ui: few at once, never queued behind data calls

_control = trio.lowlevel.RunVar("weedpy_control_limiter")
_heartbeat = trio.lowlevel.RunVar("weedpy_heartbeat_limiter")


async def storage_call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(..., blocking=False)` right here on the event loop (the common case: no lock to wait
    for); when it would wait for a lock another thread or process holds (a compaction commit, an
    fsync, another process's append), `fn(...)` in a worker thread instead, so no connection, gRPC
    stream or heartbeat ever waits behind it."""
    try:
        return fn(*args, blocking=False, **kwargs)
    except WouldBlock:
        return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def _limiter(var: trio.lowlevel.RunVar, tokens: int) -> trio.CapacityLimiter:
    try:
        return var.get()
    except LookupError:
        limiter = trio.CapacityLimiter(tokens)
        var.set(limiter)
        return limiter


async def control_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """`fn(*args)` in a worker thread of the status pages' limiter (see the module docstring)."""
    return await trio.to_thread.run_sync(fn, *args, limiter=_limiter(_control, CONTROL_THREADS))


async def heartbeat_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """`fn(*args)` in the heartbeat's own worker thread (one snapshot at a time)."""
    return await trio.to_thread.run_sync(fn, *args, limiter=_limiter(_heartbeat, 1))


async def maintenance_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """`fn(*args)` in a worker thread; with `WEEDPY_MAINTENANCE_NICE` set, in a fresh thread of
    lower CPU and I/O priority that the worker thread waits for (see native/lowprio.py)."""
    return await trio.to_thread.run_sync(functools.partial(run_low_priority, fn, *args))
