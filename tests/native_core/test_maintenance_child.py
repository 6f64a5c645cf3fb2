"""Compaction copies and scrubs in a child process (native/maintenance_child.py): the same bytes
and texts as in the server's threads, the child lowered, and a child killed or abandoned mid-way
leaves the volume serving and the next compaction working. Real child processes throughout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from native.maintenance_child import compact_copy_in_child, in_child, scrub_in_child
from native.storage import Needle, VacuumError, Volume, commit_compact, compact_steps, scrub_volume

VID = 7


def _volume(directory: Path, needles: int = 200, size: int = 64 << 10) -> Volume:
    v = Volume.create(str(directory), VID)
    data = os.urandom(size)
    for key in range(1, needles + 1):
        v.write_needle(Needle.create(key, 0x1234, data[key:] + data[:key]))
    for key in range(1, needles + 1, 4):
        v.delete_needle(key)
    v.sync()
    return v


def _run(steps: Iterator[int]) -> tuple[object, list[int]]:
    offsets = []
    try:
        while True:
            offsets.append(next(steps))
    except StopIteration as stop:
        return stop.value, offsets


def _digests(v: Volume) -> tuple[str, str]:
    return tuple(hashlib.sha256(Path(v.file_name(ext)).read_bytes()).hexdigest() for ext in (".cpd", ".cpx"))


def maintenance_children(parent: int | None = None) -> list[int]:
    """The maintenance children of `parent` (this process) still alive."""
    parent = os.getpid() if parent is None else parent
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"maintenance_child" in cmdline and stat[0] != b"Z":
            out.append(int(entry))
    return out


def _children_end() -> list[int]:
    """`maintenance_children()` once every killed child has ended (a killed child may be reaped by a
    thread of its own, `_finish`), waiting at most 10 s."""
    deadline = time.monotonic() + 10
    while (alive := maintenance_children()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return alive


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[16])


def test_compaction_in_a_child_writes_the_same_files(tmp_path: Path) -> None:
    v = _volume(tmp_path)
    try:
        # a corrupted record: dropped by both, with the same counts
        nv = v.nm.get(6)
        with open(v.dat_path, "r+b") as f:
            f.seek(nv.offset * 8 + 40)
            f.write(b"\xff\xfe")
        here, here_offsets = _run(compact_steps(v, now_s=1_000))
        here_files = _digests(v)
        there, there_offsets = _run(compact_steps(v, now_s=1_000, copy=compact_copy_in_child(1 << 20)))
        assert there == here
        assert here.skipped == 1 and here.copied == 149
        assert _digests(v) == here_files
        # the child reports the first needle past each 1 MiB step, as the rpc would stop at them
        expected, target = [], 1 << 20
        for off in here_offsets:
            if off > target:
                expected.append(off)
                target = off + (1 << 20)
        assert there_offsets == expected and expected
        assert commit_compact(v)
        assert v.read_needle(2).data and v.nm.get(6) is None  # the corrupted one is gone
    finally:
        v.close()


def test_scrub_in_a_child_reports_what_the_thread_reports(tmp_path: Path) -> None:
    v = _volume(tmp_path)
    try:
        assert scrub_in_child(v) == scrub_volume(v) == (200 + 50, [])
        nv = v.nm.get(10)
        with open(v.dat_path, "r+b") as f:
            f.seek(nv.offset * 8 + 100)
            f.write(b"\x00\x01\x02")
        count, errs = scrub_in_child(v)
        assert (count, errs) == scrub_volume(v)
        assert len(errs) == 1 and "needle 10 " in errs[0]
    finally:
        v.close()


def test_scrub_of_a_missing_index_is_reported_without_a_child(tmp_path: Path) -> None:
    v = _volume(tmp_path, needles=4)
    try:
        os.rename(v.idx_path, v.idx_path + ".away")
        count, errs = scrub_in_child(v)
        os.rename(v.idx_path + ".away", v.idx_path)
        assert count == 0 and errs[0].startswith(f"failed to open IDX file {v.idx_path} for volume {VID}")
    finally:
        v.close()


def test_a_killed_child_fails_the_compaction_and_the_volume_serves_on(tmp_path: Path) -> None:
    v = _volume(tmp_path, needles=64, size=256 << 10)
    try:
        # 1 MiB/s: the child is still copying when it is killed
        steps = compact_steps(v, bytes_per_second=1 << 20, copy=compact_copy_in_child(1 << 20))
        next(steps)
        (child,) = maintenance_children()
        assert _nice(child) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 19)
        os.kill(child, 9)
        with pytest.raises(VacuumError, match="compaction process ended without a result"):
            _run(steps)
        assert maintenance_children() == []
        assert v.read_needle(2).data
        v.write_needle(Needle.create(1000, 0x1234, b"after"))
        result, _ = _run(compact_steps(v, copy=compact_copy_in_child(1 << 20)))
        assert result.ran and result.copied == 64 - 16 + 1
        assert commit_compact(v)
        assert v.read_needle(1000).data == b"after"
    finally:
        v.close()


def test_an_abandoned_compaction_ends_its_child(tmp_path: Path) -> None:
    v = _volume(tmp_path, needles=64, size=256 << 10)
    try:
        steps = compact_steps(v, bytes_per_second=1 << 20, copy=compact_copy_in_child(1 << 20))
        next(steps)
        assert len(maintenance_children()) == 1
        steps.close()  # what a cancelled VacuumVolumeCompact does
        assert _children_end() == []
        assert v.compaction_lock.acquire(blocking=False)  # the next compaction may start
        v.compaction_lock.release()
    finally:
        v.close()


def test_a_killed_child_slow_to_end_is_reaped_by_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An abandoned call's close may run on the event loop's thread: `_finish` waits for the
    killed child only a moment (here none at all), then a thread reaps it; no zombie is left."""
    import native.maintenance_child as mc

    monkeypatch.setattr(mc, "_REAP_WAIT_S", 0)
    proc = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE)
    mc._finish(proc)
    deadline = time.monotonic() + 10
    while proc.returncode is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.returncode == -9  # killed, and reaped by _finish's wait or its thread's
    assert not Path(f"/proc/{proc.pid}").exists() or b") Z" not in Path(f"/proc/{proc.pid}/stat").read_bytes()
    assert proc.stdout is not None and proc.stdout.closed


def test_a_bug_in_the_child_is_one_line_for_the_server_not_a_traceback() -> None:
    """An exception the child does not expect (here a job without its fields) is reported as the
    call's error on the protocol, and nothing lands on the server's stderr (its log)."""
    import json
    import sys

    import native.maintenance_child as mc

    done = subprocess.run([sys.executable, "-c", mc._BOOT, json.dumps({"job": "compact"})],
                          capture_output=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == b""
    assert done.stdout.startswith(b"E compact process failed: KeyError: ")
    assert done.stdout.count(b"\n") == 1


def test_setting_from_the_environment() -> None:
    assert in_child({})
    assert not in_child({"WEEDPY_MAINTENANCE_CHILD": "0"})
