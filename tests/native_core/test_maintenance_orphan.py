"""A compaction child whose server dies (killed, crashed) stops copying: an orphan that went on
would write `.cpd`/`.cpx` under the next server's compaction of the same volume (the same
paths, opened again with O_TRUNC). Real processes: a server stand-in running the real copy in a
child, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_SERVER = textwrap.dedent("""
    import os, sys, threading
    from native.maintenance_child import compact_copy_in_child
    from native.storage import Needle, Volume, compact_steps
    v = Volume.create(sys.argv[1], 7)
    data = os.urandom(256 << 10)
    for key in range(1, 65):
        v.write_needle(Needle.create(key, 0x1234, data))
    v.sync()
    # 1 MiB/s and the server's 128 MiB report interval: the child copies for ~16 s, silent
    steps = compact_steps(v, bytes_per_second=1 << 20, copy=compact_copy_in_child(128 << 20))
    threading.Thread(target=next, args=(steps,)).start()  # silent until the copy's end
    print("copying", flush=True)
""")


def _child_of(pid: int) -> int:
    for _ in range(200):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[1]) == pid and b"maintenance_child" in cmdline:
                return int(entry)
        time.sleep(0.05)
    raise AssertionError("no maintenance child")


def _wait_gone(pid: int) -> None:
    for _ in range(1200):  # the buggy orphan copies to the end (~16 s) before it notices
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            return
        if stat[0] == b"Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"maintenance child {pid} still running")


def test_a_compaction_child_stops_when_its_server_dies(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(tmp_path)], env=env, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"copying\n"
        child = _child_of(server.pid)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        _wait_gone(child)
        # the orphan did not finish the copy: no `.cpx` written after its server died
        assert not (tmp_path / "7.cpx").exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
