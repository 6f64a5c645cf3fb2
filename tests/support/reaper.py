"""Every server a test starts dies with the test process, however that process ends.

Servers run in sessions of their own (a terminal's Ctrl-C must reach the test, which stops them
in order), so nothing ties them to pytest: a run stopped from outside (SIGTERM or SIGKILL to
pytest or its process group, a lost xdist worker, `os._exit`) runs no teardown, and its servers
with their Go backends went on serving for hours. So the first server a test process starts
also starts a watchdog, in a session of its own too, reading a pipe whose write end only the test
process holds. Each server's pid goes down the pipe; every second the watchdog notes the
server's descendants (the Go backend, the worker processes: sessions of their own, and handed to
init once their leader is gone). When the pipe ends, the test process is gone: the watchdog
SIGKILLs every noted process still alive and still the same process (pid and start time).

`python -m tests.support.reaper` is the watchdog; it needs only the standard library.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.process_tree import kill_tree, start_time, tree

__all__ = ["Reaper", "REAPER", "watch"]

_ROOT = Path(__file__).resolve().parents[2]
REFRESH = 1.0  # seconds between notes of each server's descendants


class Reaper:
    """The test process's side: starts the watchdog on first use and tells it each server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._write_fd: int | None = None
        self._owner = 0  # the pid that started the watchdog (a forked child starts its own)
        self.watchdog: subprocess.Popen[bytes] | None = None

    def register(self, pid: int) -> None:
        started = start_time(pid)
        if started is None:
            return
        line = f"{pid} {started}\n".encode()
        with self._lock:
            for _ in range(2):
                if self._write_fd is None or self._owner != os.getpid():
                    self._start()
                assert self._write_fd is not None
                try:
                    os.write(self._write_fd, line)
                    return
                except BrokenPipeError:  # the watchdog was killed: start another
                    os.close(self._write_fd)
                    self._write_fd = None

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()  # neither end is inherited by the servers (O_CLOEXEC)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env["PYTHONPATH"] = str(_ROOT)
        self.watchdog = subprocess.Popen(
            [sys.executable, "-m", "tests.support.reaper"], stdin=read_fd, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=_ROOT, env=env, start_new_session=True,
        )
        os.close(read_fd)
        self._write_fd, self._owner = write_fd, os.getpid()


REAPER = Reaper()  # one per test process: the pipe must live exactly as long as the process


def _note(servers: dict[tuple[int, int], set[tuple[int, int]]]) -> None:
    """Add each live server's current tree to what is known of it; forget processes gone."""
    for (pid, started), known in list(servers.items()):
        if start_time(pid) == started:
            known.update(tree(pid))
        alive_known = {m for m in known if start_time(m[0]) == m[1]}
        if alive_known:
            servers[(pid, started)] = alive_known
        else:
            del servers[(pid, started)]


def watch(fd: int) -> int:
    """Read servers from `fd` until it ends, then kill what is left of them; the pids killed."""
    servers: dict[tuple[int, int], set[tuple[int, int]]] = {}
    buf = b""
    while True:
        ready, _, _ = select.select([fd], [], [], REFRESH)
        if ready:
            data = os.read(fd, 1 << 16)
            if not data:
                break
            *lines, buf = (buf + data).split(b"\n")
            for line in lines:
                pid, started = (int(x) for x in line.split())
                servers[(pid, started)] = {(pid, started)}
        _note(servers)
    killed = 0
    for _ in range(2):  # a second pass for anything forked while the first was killing
        _note(servers)
        killed += len(kill_tree([m for known in servers.values() for m in known]))
        time.sleep(0.2)
    return killed


if __name__ == "__main__":
    sys.exit(0 if watch(sys.stdin.fileno()) >= 0 else 1)
