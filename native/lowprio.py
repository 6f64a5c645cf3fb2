"""Maintenance work (compaction, its commit, scrubs) at a lower CPU and I/O priority, on request.

Such work is bulk: it copies or reads a whole volume, and nobody waits for it by the
millisecond, while the reads and writes served beside it are. On a machine whose cores are
busy, a serving thread that wakes for a request can wait behind a maintenance thread of the
same priority for a scheduler slice; a maintenance thread with a higher nice value gives way
at once. But a maintenance thread of a serving process shares that process's GIL: lowered, it
can be taken off its core while it holds the GIL, and the serving thread that wants the GIL
then waits for a thread the kernel has put last. On a saturated machine that inversion cost
more than the lowering saved (a single stall of 0.2 s in the stall benchmark's compaction
window, docs/performance.md), so the default is no lowering: `WEEDPY_MAINTENANCE_NICE=N` turns
it on (nice +N and the lowest best-effort I/O level).

Linux sets nice values and I/O priorities per thread, and an unprivileged thread cannot raise
its priority again once lowered: so a lowered job runs in a fresh thread of its own, never in
one of trio's cached worker threads, which later serve ordinary calls. A host that refuses the
calls runs the job at normal priority.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["DEFAULT_NICE", "maintenance_nice", "lower_this_thread", "run_low_priority"]

T = TypeVar("T")

DEFAULT_NICE = 0  # added to the thread's nice value; 0: maintenance at normal priority, in the caller's thread
_NICE_ENV = "WEEDPY_MAINTENANCE_NICE"
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}.get(os.uname().machine)  # syscall numbers
_IOPRIO_WHO_PROCESS = 1  # a thread id is a "process" to ioprio_set
_IOPRIO_CLASS_BE, _IOPRIO_BE_LOWEST, _IOPRIO_CLASS_IDLE = 2, 7, 3


def maintenance_nice(env: Mapping[str, str] = os.environ) -> int:
    """The nice increment for maintenance threads: `WEEDPY_MAINTENANCE_NICE` (0-19), else 0."""
    try:
        return min(19, max(0, int(env.get(_NICE_ENV, DEFAULT_NICE))))
    except ValueError:
        return DEFAULT_NICE


def lower_this_thread(nice: int, *, io_idle: bool = False) -> None:
    """Raise the calling thread's nice value by `nice` and put its I/O in the lowest best-effort
    level (`io_idle`: in the idle class, served only when the disk has nothing else to do; for
    a child process, never for a thread that shares a GIL); nothing when `nice` is 0 or the
    host refuses."""
    if nice <= 0:
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (OSError, AttributeError):
        pass
    if _IOPRIO_SET is not None:
        import ctypes  # only when maintenance runs: not at start-up

        try:
            ctypes.CDLL(None, use_errno=True).syscall(
                _IOPRIO_SET, _IOPRIO_WHO_PROCESS, tid,
                _IOPRIO_CLASS_IDLE << 13 if io_idle else (_IOPRIO_CLASS_BE << 13) | _IOPRIO_BE_LOWEST)
        except (OSError, AttributeError):
            pass


def run_low_priority(fn: Callable[..., T], /, *args: Any, nice: int | None = None) -> T:
    """`fn(*args)` in a fresh thread lowered by `lower_this_thread` (`nice`: default
    `maintenance_nice()`); waits for it and returns its result or raises its exception."""
    nice = maintenance_nice() if nice is None else nice
    if nice <= 0:
        return fn(*args)
    outcome: list[Any] = []

    def job() -> None:
        lower_this_thread(nice)
        try:
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # handed to the caller's thread as it is
            outcome.append((False, exc))

    t = threading.Thread(target=job, name="weedpy-maintenance", daemon=True)
    t.start()
    t.join()
    ok, value = outcome[0]
    if ok:
        return value
    raise value
