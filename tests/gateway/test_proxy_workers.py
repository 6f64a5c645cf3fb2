"""Proxy mode with worker processes: a worker relays on its own, follows the backend's restarts,
is restarted when it dies, and never outlives its leader."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.procs import MasterProc, VolumeProc, start_master
from tests.support.process_tree import alive, child_with, serving_worker
from tests.support.weedpy_proc import start_weedpy_volume


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master")
    yield m
    m.stop()


@pytest.fixture
def gateway(tmp_path: Path, master: MasterProc) -> Iterator[VolumeProc]:
    g = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-workers=2", "-preStopSeconds=0"])
    yield g
    g.stop()


def _worker(g: VolumeProc, exclude: frozenset[int] = frozenset()) -> int:
    return serving_worker(g.proc.pid, g.proc.log_path, exclude=exclude)


def _fids(master: MasterProc, n: int) -> list[str]:
    """File ids, asked for while the leader runs (the master may grow volumes through its gRPC)."""
    return [httpx.get(f"http://{master.address}/dir/assign", timeout=10).json()["fid"] for _ in range(n)]


def _write_and_read(url: str, fid: str, body: bytes) -> None:
    """A fresh connection each time: whichever process accepts serves it."""
    w = httpx.post(f"{url}/{fid}", files={"file": ("f.bin", body)}, timeout=10)
    assert w.status_code == 201, w.text
    r = httpx.get(f"{url}/{fid}", timeout=10)
    assert r.status_code == 200 and r.content == body


def test_a_worker_relays_while_the_leader_is_frozen(gateway: VolumeProc, master: MasterProc) -> None:
    worker = _worker(gateway)
    fids = _fids(master, 6)
    _write_and_read(gateway.url, fids[0], b"before")
    os.kill(gateway.proc.pid, signal.SIGSTOP)  # every new connection must now go to the worker
    try:
        for i, fid in enumerate(fids[1:]):
            _write_and_read(gateway.url, fid, b"served by the worker %d" % i)
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)
    assert alive(worker)


def test_workers_follow_the_backend_across_its_restart(gateway: VolumeProc, master: MasterProc) -> None:
    worker = _worker(gateway)
    [fid] = _fids(master, 1)
    backend = child_with(gateway.proc.pid, b"volume")
    os.kill(backend, signal.SIGKILL)
    new_backend = child_with(gateway.proc.pid, b"volume", exclude=frozenset({backend}))
    deadline = time.monotonic() + 60
    while httpx.get(f"{gateway.url}/status", timeout=10).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(gateway.proc.pid, signal.SIGSTOP)  # the worker alone: it must know the new endpoints
    try:
        _write_and_read(gateway.url, fid, b"after the restart")
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)
    assert alive(worker) and alive(new_backend)


def test_a_dead_worker_is_replaced(gateway: VolumeProc, master: MasterProc) -> None:
    worker = _worker(gateway)
    [fid] = _fids(master, 1)
    os.kill(worker, signal.SIGKILL)
    replacement = _worker(gateway, exclude=frozenset({worker}))
    assert replacement != worker and not alive(worker)
    os.kill(gateway.proc.pid, signal.SIGSTOP)
    try:
        _write_and_read(gateway.url, fid, b"the replacement serves")
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)


def test_workers_die_with_their_leader(gateway: VolumeProc) -> None:
    worker = _worker(gateway)
    gateway.proc.popen.kill()
    gateway.proc.popen.wait()
    deadline = time.monotonic() + 15
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker)
