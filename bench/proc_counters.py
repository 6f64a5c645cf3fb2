"""Per-process counters around a benchmark phase: user/system CPU, context switches, syscalls.

CPU per request says how much a server spends; these say where the kernel side of it goes,
which py-spy does not see: how often each process blocks and is woken (voluntary context
switches), is preempted (involuntary ones), and which syscalls it makes per request (epoll_wait
per request is the inverse of how many requests one wake-up of the event loop serves).

`task_counters(pid)` reads /proc (every thread of the process). `SyscallCounts` runs
`perf stat -a --per-thread` with syscall tracepoints for the duration of a phase and sums the
counts per process (threads a process starts during the phase included); it needs perf and the
permission to use tracepoints (root). Both are bench-only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["task_counters", "SyscallCounts", "SYSCALL_EVENTS"]

_TICK = os.sysconf("SC_CLK_TCK")

# The syscalls an HTTP event loop and a shared volume make; `all` is every syscall.
SYSCALL_EVENTS = {
    "all": "raw_syscalls:sys_enter",
    "epoll_wait": "syscalls:sys_enter_epoll_wait",
    "epoll_ctl": "syscalls:sys_enter_epoll_ctl",
    "recv": "syscalls:sys_enter_recvfrom",
    "send": "syscalls:sys_enter_sendto",
    "fcntl": "syscalls:sys_enter_fcntl",
    "pread": "syscalls:sys_enter_pread64",
    "pwrite": "syscalls:sys_enter_pwrite64",
    "futex": "syscalls:sys_enter_futex",
    "fstat": "syscalls:sys_enter_newfstat",
    "cs": "context-switches",
    "migrations": "cpu-migrations",
}


def task_counters(pid: int) -> dict[str, float]:
    """user and system CPU seconds, voluntary and involuntary context switches, of every thread
    of `pid` alive now (a thread that exited took its switches with it; its CPU stays counted)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    out = {"user": int(fields[11]) / _TICK, "sys": int(fields[12]) / _TICK, "vcs": 0.0, "ivcs": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        out["vcs"] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        out["ivcs"] += int(line.split()[1])
        except OSError:
            continue
    return out


def _tgid(tid: int) -> int | None:
    try:
        with open(f"/proc/{tid}/status") as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class SyscallCounts:
    """`with SyscallCounts() as sc: ...` then `sc.per_process(pids)`: {name: {event: count}}.

    Counts every thread on the machine (perf's --per-thread) and keeps the threads of the pids
    asked for, mapped to their process when the phase ends."""

    def __init__(self, events: Mapping[str, str] = SYSCALL_EVENTS) -> None:
        perf = shutil.which("perf")
        if perf is None:
            raise SystemExit("perf is not installed (apt-get install linux-perf)")
        self._perf = perf
        self._events = dict(events)
        self._dir = Path(tempfile.mkdtemp(prefix="perf-stat-"))
        self._out = self._dir / "stat.csv"
        self._proc: subprocess.Popen[bytes] | None = None
        self._text = ""

    def __enter__(self) -> SyscallCounts:
        self._proc = subprocess.Popen(
            [self._perf, "stat", "-a", "--per-thread", "-x,", "-o", str(self._out),
             "-e", ",".join(self._events.values())],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attaches its counters to every CPU before the phase starts
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(timeout=60)
        self._text = self._out.read_text() if self._out.exists() else ""
        shutil.rmtree(self._dir, ignore_errors=True)

    def per_process(self, pids: Mapping[str, int]) -> dict[str, dict[str, int]]:
        by_event = {v: k for k, v in self._events.items()}
        want = {pid: name for name, pid in pids.items()}
        out: dict[str, dict[str, int]] = {name: dict.fromkeys(self._events, 0) for name in pids}
        tgids: dict[int, int | None] = {}
        for line in _rows(self._text.splitlines()):
            thread, count, event = line
            tid = int(thread.rsplit("-", 1)[1])
            if tid not in tgids:
                tgids[tid] = _tgid(tid)
            name = want.get(tgids[tid])  # type: ignore[arg-type]
            if name is not None and event in by_event:
                out[name][by_event[event]] += count
        return out


def _rows(lines: Iterable[str]) -> Iterable[tuple[str, int, str]]:
    for line in lines:
        parts = line.split(",")
        if len(parts) < 4 or line.startswith("#") or not parts[1].isdigit():
            continue
        yield parts[0], int(parts[1]), parts[3]
