"""Maintenance threads (native/lowprio.py, native/offload.py's `maintenance_thread`): with a nice
increment set, the job runs in a fresh thread whose nice value and I/O priority are lowered, and
none of that sticks to the caller's thread or to trio's cached worker threads, which go on
serving ordinary calls; without one (the default) it runs where it is called."""

from __future__ import annotations

import ctypes
import os
import platform
import threading

import pytest
import trio

from native.lowprio import maintenance_nice, run_low_priority
from native.offload import maintenance_thread

_IOPRIO_GET = {"x86_64": 252, "aarch64": 31, "arm64": 31}.get(platform.machine())


def _priorities() -> tuple[int, int, int | None]:
    """(native thread id, nice value, ioprio) of the calling thread."""
    tid = threading.get_native_id()
    io = None
    if _IOPRIO_GET is not None:
        io = ctypes.CDLL(None, use_errno=True).syscall(_IOPRIO_GET, 1, tid)
    return tid, os.getpriority(os.PRIO_PROCESS, tid), io


def test_job_runs_lowered_in_a_thread_of_its_own() -> None:
    base_tid, base_nice, base_io = _priorities()
    tid, nice, io = run_low_priority(_priorities, nice=5)
    assert tid != base_tid
    assert nice == min(19, base_nice + 5)
    if io is not None and io >= 0:
        assert io == (2 << 13) | 7  # best effort, lowest level
    assert _priorities() == (base_tid, base_nice, base_io)


def test_exceptions_reach_the_caller() -> None:
    def fail() -> None:
        raise ValueError("scrub failed")

    with pytest.raises(ValueError, match="scrub failed"):
        run_low_priority(fail, nice=3)


def test_nice_zero_runs_inline() -> None:
    assert run_low_priority(_priorities, nice=0)[0] == threading.get_native_id()


def test_setting_from_the_environment() -> None:
    assert maintenance_nice({}) == 0
    assert maintenance_nice({"WEEDPY_MAINTENANCE_NICE": "10"}) == 10
    assert maintenance_nice({"WEEDPY_MAINTENANCE_NICE": "40"}) == 19
    assert maintenance_nice({"WEEDPY_MAINTENANCE_NICE": "x"}) == 0


def test_trio_worker_threads_keep_their_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEEDPY_MAINTENANCE_NICE", "7")
    base_nice = os.getpriority(os.PRIO_PROCESS, 0)

    async def main() -> tuple[tuple, list[tuple]]:
        job = await maintenance_thread(_priorities)
        # trio's thread cache hands the waiting worker thread to the next calls
        after = [await trio.to_thread.run_sync(_priorities) for _ in range(3)]
        return job, after

    job, after = trio.run(main)
    assert job[1] == min(19, base_nice + 7)
    assert all(nice == base_nice for _, nice, _ in after)
    assert job[0] not in {tid for tid, _, _ in after}
