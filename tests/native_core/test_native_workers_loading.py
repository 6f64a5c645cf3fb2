"""Native mode with worker processes over volumes that take a while to load (real processes, a
real master): the leader loads them in several threads while its workers start and follow its
volume table, and every process ends up serving every volume; a worker that starts (or is
started again) never repairs or removes a file itself, and answers /healthz as its leader does.

Which process accepts a fresh connection is the kernel's choice; to ask a given process the other
one is frozen (SIGSTOP) for that step.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio

from proto import volume_server_pb2 as vs
from tests.native_core.support import call, start_native
from tests.support.bulk_volumes import DATA, needle_fid, write_volume
from tests.support.procs import MasterProc, VolumeProc, start_master
from tests.support.process_tree import alive, serving_worker
from weedpy.grpc import Channel

# Big enough that loading them (several threads, a map file each) overlaps the worker's start.
VOLUMES, NEEDLES = 8, 200_000


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master", volume_size_limit_mb=1000)
    yield m
    m.stop()


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """`pid` stopped: every new connection goes to the other process."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def fresh(s: VolumeProc, path: str) -> httpx.Response:
    """A GET on a new connection (whichever process accepts it)."""
    with httpx.Client(timeout=20) as c:
        return c.get(f"{s.url}{path}")


def full_counts(s: VolumeProc) -> dict[int, int]:
    r = fresh(s, "/status")
    assert r.status_code == 200, r.text
    return {v["Id"]: v["FileCount"] for v in r.json().get("Volumes") or []}


def compact(grpc_port: int, vid: int) -> None:
    async def run() -> None:
        async with Channel("127.0.0.1", grpc_port) as ch:
            async with ch.unary_stream("/volume_server_pb.VolumeServer/VacuumVolumeCompact",
                                       vs.VacuumVolumeCompactRequest(volume_id=vid), vs.VacuumVolumeCompactResponse,
                                       timeout=60) as responses:
                async for _ in responses:
                    pass

    trio.run(run)


def wait_loaded(s: VolumeProc, timeout: float = 120) -> None:
    """Until the leader logged that every volume is loaded (start_native returns at the first
    200 of /healthz, which any process may have answered)."""
    deadline = time.monotonic() + timeout
    while '"volumes loaded"' not in s.proc.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, s.proc.log_tail()
        s.proc.check_alive()
        time.sleep(0.05)


def test_every_process_serves_every_volume_loaded_while_it_started(tmp_path: Path, master: MasterProc) -> None:
    data = tmp_path / "data"
    data.mkdir()
    expect = {vid: write_volume(data, vid, NEEDLES, True, seed=vid) for vid in range(1, VOLUMES + 1)}
    (data / "99.dat").write_bytes(b"\x03")  # a volume that does not load (no super block): skipped
    (data / "99.idx").write_bytes(b"")
    s = start_native(tmp_path, master, extra=["-workers=2"], data_dir=data)
    try:
        leader = s.proc.pid
        worker = serving_worker(leader, s.proc.log_path)
        wait_loaded(s)
        want = {vid: e["FileCount"] for vid, e in expect.items()}
        for pid, other in ((leader, worker), (worker, leader)):
            with frozen(other):  # each process alone
                assert fresh(s, "/healthz").status_code == 200
                assert full_counts(s) == want
                for vid, e in expect.items():
                    r = fresh(s, f"/{needle_fid(vid, e['Live'])}")
                    assert (r.status_code, r.content) == (200, DATA), (vid, r.status_code)
        assert "Traceback" not in s.proc.log_path.read_text(errors="replace"), s.proc.log_tail()
    finally:
        s.stop()


def test_a_worker_started_during_a_compaction_leaves_its_files(tmp_path: Path, master: MasterProc) -> None:
    """A worker started while the leader compacts a volume (here: one replaced after a kill)
    does not take the compaction's files for a crash's leftovers: the commit finds them."""
    vid = 7
    s = start_native(tmp_path, master, extra=["-workers=2"])
    try:
        g = s.grpc_port
        assert call(g, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse).ok
        with httpx.Client(timeout=20) as c:
            for key in range(1, 41):
                assert c.post(f"{s.url}/{vid},{key:x}00001234", files={"file": ("f", b"x" * 1000)}).status_code == 201
            for key in range(1, 41, 2):
                assert c.delete(f"{s.url}/{vid},{key:x}00001234").status_code == 202
        leader = s.proc.pid
        worker = serving_worker(leader, s.proc.log_path)
        compact(g, vid)
        assert sorted(p.suffix for p in s.data_dir.glob(f"{vid}.cp*")) == [".cpd", ".cpx"]
        os.kill(worker, signal.SIGKILL)
        while alive(worker):
            time.sleep(0.01)
        worker = serving_worker(leader, s.proc.log_path, exclude=frozenset({worker}))
        assert sorted(p.suffix for p in s.data_dir.glob(f"{vid}.cp*")) == [".cpd", ".cpx"]
        assert call(g, "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=vid), vs.VacuumVolumeCommitResponse).ok
        for pid, other in ((leader, worker), (worker, leader)):
            with frozen(other):
                for key in range(1, 41):
                    r = fresh(s, f"/{vid},{key:x}00001234")
                    assert r.status_code == (404 if key % 2 else 200), (pid, key, r.status_code)
    finally:
        s.stop()
