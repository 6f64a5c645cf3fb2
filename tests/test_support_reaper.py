"""No server a test starts outlives the test: a test process killed from outside (SIGKILL, or
SIGTERM to its process group, which runs no teardown) takes its servers with it, Go backends and
worker processes included; and a stop that times out kills the server's whole tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.process_tree import alive, descendants
from tests.support.procs import start_proc

ROOT = Path(__file__).resolve().parents[1]

# A stand-in for a pytest process: a master and a proxy-mode weedpy server with two workers (so a
# Go backend and a worker process, each in a session of its own), then it waits to be killed.
_TEST_PROCESS = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tests.support.procs import start_master
    from tests.support.process_tree import descendants
    from tests.support.weedpy_proc import start_weedpy_volume

    work = Path(sys.argv[1])
    master = start_master(work / "master")
    server = start_weedpy_volume(work, master, extra=["-mode=proxy", "-workers=2"])
    pids = [master.proc.pid, server.proc.pid, *descendants(server.proc.pid)]
    print(json.dumps(pids), flush=True)
    time.sleep(3600)
""")


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@pytest.mark.parametrize("how", ["sigkill", "sigterm_to_group"])
def test_servers_die_with_a_test_process_killed_from_outside(tmp_path: Path, how: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    test_proc = subprocess.Popen([sys.executable, "-c", _TEST_PROCESS, str(tmp_path)], stdout=subprocess.PIPE,
                                 cwd=ROOT, env=env, start_new_session=True)
    pids: list[int] = []
    try:
        assert test_proc.stdout is not None
        line = test_proc.stdout.readline()
        assert line, "the stand-in test process started no server"
        pids = json.loads(line)
        assert len(pids) >= 4, pids  # master, leader, Go backend, worker
        assert all(alive(p) for p in pids)
        if how == "sigkill":
            test_proc.kill()
        else:
            os.killpg(test_proc.pid, signal.SIGTERM)  # what stopping a shell job does
        test_proc.wait(10)
        left = _wait_gone(pids, 15)
        assert left == [], f"processes outlived the test process that started them: {left}"
    finally:
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        if test_proc.poll() is None:
            test_proc.kill()
            test_proc.wait()


_STUBBORN = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"],
        start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(3600)
""")


def test_a_stop_that_times_out_kills_the_whole_tree(tmp_path: Path) -> None:
    """A leader that ignores SIGINT, with a child in its own session that ignores SIGTERM (a Go
    backend stuck in its shutdown): after the stop's timeout neither is left."""
    proc = start_proc([sys.executable, "-c", _STUBBORN], tmp_path / "stubborn.log", cwd=tmp_path)
    deadline = time.monotonic() + 20
    while not descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = [proc.pid, *descendants(proc.pid)]
    assert len(tree) == 2, tree
    try:
        assert proc.stop(timeout=1) == -signal.SIGKILL
        assert _wait_gone(tree, 10) == []
    finally:
        for p in tree:
            if alive(p):
                os.kill(p, signal.SIGKILL)
