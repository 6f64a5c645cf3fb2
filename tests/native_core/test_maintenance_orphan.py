"""A compaction child stops copying when its server dies (killed, crashed: an orphan that went
on would write `.cpd`/`.cpx` under the next server's compaction of the same volume, the same
paths opened again with O_TRUNC) or when its volume is deleted (it would leave a `.cpx` behind).
Real processes: the real copy in a real child, its server stand-in killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from native.maintenance_child import compact_copy_in_child
from native.storage import Needle, StorageError, Volume, commit_compact, compact, compact_steps
from tests.native_core.test_maintenance_child import maintenance_children

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
        found = maintenance_children(pid)
        if found:
            return found[0]
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


def _filled(directory: Path, needles: int) -> tuple[Volume, bytes]:
    """A volume of `needles` needles of the same 256 KiB, synced."""
    v = Volume.create(str(directory), 7)
    data = os.urandom(256 << 10)
    for key in range(1, needles + 1):
        v.write_needle(Needle.create(key, 0x1234, data))
    v.sync()
    return v, data


def _compaction_in_thread(v: Volume) -> tuple[threading.Thread, list[object]]:
    """A compaction of `v` at 1 MiB/s with its copy in a child (silent, no progress line, until
    the copy ends), driven by a thread; the list gets its result or its StorageError."""
    steps = compact_steps(v, bytes_per_second=1 << 20, copy=compact_copy_in_child(128 << 20))
    outcome: list[object] = []

    def run() -> None:
        try:
            while True:
                next(steps)
        except StopIteration as stop:
            outcome.append(stop.value)
        except StorageError as exc:
            outcome.append(exc)
        finally:
            steps.close()

    t = threading.Thread(target=run)
    t.start()
    return t, outcome


def test_a_compaction_child_stops_when_its_volume_is_deleted(tmp_path: Path) -> None:
    """A volume deleted mid-compaction (delete_collection closes and removes it while a
    compaction runs): the copy fails as it does in the server's thread ("volume N is closed"),
    and no `.cpx` is left behind in the directory."""
    v, _ = _filled(tmp_path, 16)
    t, outcome = _compaction_in_thread(v)  # the copy takes ~4 s
    _child_of(os.getpid())
    v.destroy()
    t.join()
    (result,) = outcome
    assert isinstance(result, StorageError) and str(result) == "volume 7 is closed"
    assert os.listdir(tmp_path) == []


def test_a_compaction_child_ends_when_its_volume_is_closed(tmp_path: Path) -> None:
    """A volume closed mid-compaction (unmounted; it may be mounted again as a new volume and
    compacted anew into the same `.cpd`/`.cpx`): the copy fails as in the server's thread
    ("volume N is closed") and its child is gone, no second writer of those files left."""
    v, data = _filled(tmp_path, 32)
    t, outcome = _compaction_in_thread(v)  # the copy takes ~8 s
    child = _child_of(os.getpid())
    v.close()
    t.join()
    (result,) = outcome
    assert isinstance(result, StorageError) and str(result) == "volume 7 is closed"
    _wait_gone(child)
    assert (tmp_path / "7.dat").exists() and not (tmp_path / "7.cpx").exists()
    again = Volume.load(str(tmp_path), 7)
    try:
        final = compact(again, copy=compact_copy_in_child(128 << 20))
        assert final.ran and final.copied == 32
        assert commit_compact(again)
        assert again.read_needle(32).data == data
    finally:
        again.close()
