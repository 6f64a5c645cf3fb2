"""A server's processes as the kernel lists them (/proc): its children and descendants, whether
one is alive, the one whose command line says what it is (the Go backend, a worker), and a
snapshot of a whole tree that can be killed later without hitting a reused pid. Standard
library only: the reaper's watchdog (tests/support/reaper.py) runs it outside pytest."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

__all__ = ["children", "descendants", "alive", "start_time", "tree", "kill_tree", "child_with", "worker_pids",
           "serving_worker"]


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from one pass over /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return out


def descendants(pid: int) -> list[int]:
    """Children, their children and so on (processes in sessions of their own included)."""
    kids: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        kids.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, who it is; None if gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def tree(pid: int) -> list[tuple[int, int]]:
    """The process and its descendants as (pid, start time): what `kill_tree` kills later, even
    after the leader is gone and its children were handed to init."""
    out = []
    for p in (pid, *descendants(pid)):
        t = start_time(p)
        if t is not None:
            out.append((p, t))
    return out


def kill_tree(members: list[tuple[int, int]]) -> list[int]:
    """SIGKILL every member still alive and still the same process; the pids signalled."""
    killed = []
    for pid, started in members:
        if start_time(pid) == started and alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(pid)
    return killed


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def child_with(pid: int, marker: bytes, timeout: float = 30, exclude: frozenset[int] = frozenset()) -> int:
    """The first child of `pid` whose command line holds `marker` (and is not in `exclude`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children(pid):
            if child not in exclude and marker in _cmdline(child) and alive(child):
                return child
        time.sleep(0.05)
    raise AssertionError(f"no child of {pid} with {marker!r} in its command line")


def worker_pids(pid: int) -> list[int]:
    """The weedpy worker processes of the server whose leader is `pid`."""
    return sorted(c for c in children(pid) if b"weedpy.worker" in _cmdline(c) and alive(c))


def serving_worker(leader: int, log_path: Path, timeout: float = 60, exclude: frozenset[int] = frozenset()) -> int:
    """The pid of a worker of `leader` that accepts connections: its leader logged it ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = set(worker_pids(leader)) - exclude
        for line in log_path.read_text(errors="replace").splitlines():
            if '"worker ready"' in line:
                pid = json.loads(line).get("pid")
                if pid in live:
                    return pid
        time.sleep(0.05)
    raise AssertionError(f"no worker of {leader} ready: {worker_pids(leader)}")
