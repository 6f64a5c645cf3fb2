"""weedpy/procs.py: a child process never outlives the process that spawned it, armed between
fork and exec or, for a child that runs weedpy (`self_armed`), by the child itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# The spawning process: starts a child with ChildProcess, prints its pid, then waits to be killed.
_PARENT = """
import sys, trio
from weedpy.procs import ChildProcess

CHILD = '''
import os, sys, time
from weedpy.procs import PARENT_PID_ENV, die_with_parent
die_with_parent(os.environ)
print(PARENT_PID_ENV in os.environ, flush=True)
time.sleep(60)
'''

async def main(self_armed):
    proc = ChildProcess([sys.executable, "-c", CHILD], {**__import__("os").environ}, capture_output=True,
                        self_armed=self_armed)
    line = await proc.stdout.receive_some(100)
    print(proc.pid, line.decode().strip(), flush=True)
    await trio.sleep(60)

trio.run(main, sys.argv[1] == "self")
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["self", "preexec"])
def test_a_child_dies_with_the_process_that_spawned_it(how: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, how], stdout=subprocess.PIPE, text=True)
    child = "0"
    try:
        assert parent.stdout is not None
        child, leaked = parent.stdout.readline().split()
        assert leaked == "False"  # the parent's pid is not left in the child's own children's environment
        assert _alive(int(child))
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(int(child)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(int(child))
    finally:
        parent.kill()
        parent.wait()
        if int(child) and _alive(int(child)):
            os.kill(int(child), signal.SIGKILL)  # the check failed: nothing is left behind
