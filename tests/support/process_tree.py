"""A server's processes as the kernel lists them (/proc): its children, whether one is alive, and
the one whose command line says what it is (the Go backend, a worker)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["children", "alive", "child_with", "worker_pids", "serving_worker"]


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
