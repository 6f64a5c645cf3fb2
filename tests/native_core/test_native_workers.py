"""Native mode with worker processes (real processes, a real master): what one process acknowledges
every other serves at once, state changes reach every process before their rpc answers, and a
worker killed in the middle of appends loses nothing acknowledged.

Which process accepts a fresh connection is the kernel's choice; to make a step land on a given
process the other one is frozen (SIGSTOP) for that step.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio

from proto import volume_server_pb2 as vs
from tests.native_core.support import call, start_native
from tests.support.procs import MasterProc, VolumeProc, start_go_volume, start_master
from tests.support.process_tree import alive, serving_worker
from weedpy.grpc import Channel

VID = 7


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master")
    yield m
    m.stop()


@pytest.fixture
def server(tmp_path: Path, master: MasterProc) -> Iterator[VolumeProc]:
    s = start_native(tmp_path, master, extra=["-workers=2", "-preStopSeconds=0"])
    assert call(s.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                vs.AllocateVolumeResponse).ok
    yield s
    s.stop()


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """`pid` stopped: every new connection goes to the other process."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def fid(key: int, cookie: int = 0x1234ABCD) -> str:
    return f"{VID},{key:x}{cookie:08x}"


@functools.cache
def fresh() -> httpx.Client:
    """A client that opens a new connection for every request (so either process may take it),
    without building a TLS context per request as httpx.get does."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=20)


def put(s: VolumeProc, f: str, body: bytes) -> int:
    return fresh().post(f"{s.url}/{f}", files={"file": ("f.bin", body)}).status_code


def get(s: VolumeProc, f: str) -> tuple[int, bytes]:
    r = fresh().get(f"{s.url}/{f}")
    return r.status_code, r.content


def delete(s: VolumeProc, f: str) -> int:
    return fresh().delete(f"{s.url}/{f}").status_code


def test_each_process_serves_what_the_other_acknowledged(server: VolumeProc) -> None:
    leader = server.proc.pid
    worker = serving_worker(leader, server.proc.log_path)
    for key in range(1, 21):
        body = random.Random(key).randbytes(100 + key * 37)
        writer, reader = (leader, worker) if key % 2 else (worker, leader)
        with frozen(reader):  # the write lands on `writer`
            assert put(server, fid(key), body) == 201
        with frozen(writer):  # the read, right after the acknowledgement, on the other
            assert get(server, fid(key)) == (200, body)
            assert delete(server, fid(key)) == 202
        with frozen(reader):  # the delete, seen by the first
            assert get(server, fid(key))[0] == 404
    # and every needle counted once by the process that reports to the master
    status = call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=VID), vs.VolumeStatusResponse)
    assert status.ok
    # every log line names the process that wrote it: the writes above landed on both
    time.sleep(0.5)  # request lines are flushed every 0.1 s
    events = [json.loads(line) for line in server.proc.log_path.read_text().splitlines() if line.startswith("{")]
    assert all(e.get("worker") in (0, 1) for e in events), [e for e in events if e.get("worker") not in (0, 1)][:3]
    writers = {e["worker"] for e in events if e.get("event") == "http" and e.get("route") == "admin.write"}
    assert writers == {0, 1}


def test_fresh_connections_never_read_stale(server: VolumeProc) -> None:
    """Write, read, delete, read, each on a fresh connection (either process): 0 stale answers."""
    rnd = random.Random(5)
    stale = []
    for key in range(100, 1600):
        body = rnd.randbytes(rnd.randint(1, 3000))
        assert put(server, fid(key), body) == 201
        got = get(server, fid(key))
        if got != (200, body):
            stale.append((key, "read", got[0]))
        assert delete(server, fid(key)) == 202
        if get(server, fid(key))[0] != 404:
            stale.append((key, "delete"))
    assert stale == []


def _reader(server: VolumeProc, bodies: dict[str, bytes], deleted: set[str], stop: threading.Event,
            errors: list[str]) -> None:
    keys = sorted(bodies)
    i = 0
    while not stop.is_set():
        f = keys[i % len(keys)]
        i += 1
        try:
            code, content = get(server, f)
        except httpx.HTTPError as exc:
            errors.append(f"{f}: {exc!r}")
            continue
        if code >= 500 or (code == 200 and content != bodies[f]) or (code == 404 and f not in deleted):
            errors.append(f"{f}: {code}")


def test_state_changes_under_read_load(server: VolumeProc) -> None:
    """Read-only marks, a compaction and the volume's deletion while both processes serve reads of
    that volume: no 5xx, no wrong byte, a needle is 404 only once deleted, and after each rpc
    answers every process serves the new state."""
    leader = server.proc.pid
    worker = serving_worker(leader, server.proc.log_path)
    rnd = random.Random(9)
    bodies = {fid(k): rnd.randbytes(rnd.randint(10, 20000)) for k in range(1, 200)}
    for f, body in bodies.items():
        assert put(server, f, body) == 201
    deleted: set[str] = set()
    for f in list(bodies)[::2]:
        deleted.add(f)  # before the delete: a concurrent read may already see it gone
        assert delete(server, f) == 202
    stop, errors = threading.Event(), []
    readers = [threading.Thread(target=_reader, args=(server, bodies, deleted, stop, errors)) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        g = server.grpc_port
        assert call(g, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=VID), vs.VolumeMarkReadonlyResponse).ok
        for pid in (leader, worker):  # every process refuses writes now
            other = worker if pid == leader else leader
            with frozen(other):
                assert put(server, fid(900), b"refused") >= 400
        assert call(g, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=VID), vs.VolumeMarkWritableResponse).ok
        assert call(g, "VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=VID), vs.VacuumVolumeCheckResponse).ok
        compact(g)
        assert call(g, "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=VID), vs.VacuumVolumeCommitResponse).ok
        time.sleep(0.5)  # reads keep going on the compacted files
        for pid in (leader, worker):  # the compacted volume, read by each process alone
            other = worker if pid == leader else leader
            with frozen(other):
                f = next(k for k in bodies if k not in deleted)
                assert get(server, f) == (200, bodies[f])
                assert put(server, fid(1000 + pid % 100), b"after the commit") == 201
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
    assert call(server.grpc_port, "VolumeDelete", vs.VolumeDeleteRequest(volume_id=VID),
                vs.VolumeDeleteResponse).ok
    for pid in (leader, worker):  # gone everywhere once the rpc answered
        other = worker if pid == leader else leader
        with frozen(other):
            assert get(server, next(iter(bodies)))[0] == 404


def compact(grpc_port: int) -> None:
    async def run() -> None:
        async with Channel("127.0.0.1", grpc_port) as ch:
            async with ch.unary_stream("/volume_server_pb.VolumeServer/VacuumVolumeCompact",
                                       vs.VacuumVolumeCompactRequest(volume_id=VID), vs.VacuumVolumeCompactResponse,
                                       timeout=60) as responses:
                async for _ in responses:
                    pass

    trio.run(run)


def _writer(server: VolumeProc, first: int, stop: threading.Event, acked: dict[str, bytes], lock: threading.Lock) -> None:
    rnd = random.Random(first)
    key = first
    while not stop.is_set():
        body = rnd.randbytes(rnd.randint(0, 40000))
        try:
            code = put(server, fid(key), body)
        except httpx.HTTPError:
            code = 0  # not acknowledged: it may or may not be there
        if code == 201:
            with lock:
                acked[fid(key)] = body
        key += 1


@pytest.mark.slow
def test_sigkill_of_a_worker_loses_no_acknowledged_write(server: VolumeProc, master: MasterProc, tmp_path: Path) -> None:
    leader = server.proc.pid
    stop, lock, acked = threading.Event(), threading.Lock(), {}
    writers = [threading.Thread(target=_writer, args=(server, 1 + i * 1_000_000, stop, acked, lock)) for i in range(4)]
    for t in writers:
        t.start()
    killed = set()
    try:
        for _ in range(3):
            worker = serving_worker(leader, server.proc.log_path, exclude=frozenset(killed))
            time.sleep(0.3)  # let it take its share of the appends
            os.kill(worker, signal.SIGKILL)
            killed.add(worker)
            while alive(worker):
                time.sleep(0.01)
        serving_worker(leader, server.proc.log_path, exclude=frozenset(killed))  # replaced once more
        time.sleep(0.3)
    finally:
        stop.set()
        for t in writers:
            t.join()
    assert len(acked) > 50
    lost = [f for f, body in acked.items() if get(server, f) != (200, body)]
    assert lost == []
    server.stop()
    verify = subprocess.run([sys.executable, "-m", "native.storage.verify", str(server.data_dir)],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    go = start_go_volume(tmp_path, master, data_dir=server.data_dir)  # Go loads it, writable
    try:
        status = call(go.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=VID), vs.VolumeStatusResponse)
        assert status.ok and not status.response.is_read_only
        some = list(acked.items())[:: max(1, len(acked) // 20)]
        assert [get(go, f) for f, _ in some] == [(200, body) for _, body in some]
        assert put(go, fid(999_999_999), b"Go appends after the killed workers") == 201
    finally:
        go.stop()


def _socket_owners(pids: list[int], port: int, client_ports: set[int]) -> dict[int, int]:
    """How many of the connections from `client_ports` to `port` each of `pids` holds (its
    descriptors' socket inodes matched with /proc/net/tcp)."""
    inode_pid = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inode_pid[int(link[8:-1])] = pid
    held = dict.fromkeys(pids, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        owner = inode_pid.get(int(fields[9]))
        if local_port == port and remote_port in client_ports and owner is not None:
            held[owner] += 1
    return held


def test_a_burst_of_new_connections_is_spread_over_both_processes(server: VolumeProc) -> None:
    """A client opening 16 connections at once (a keep-alive pool) gets both processes: each
    accepts while it holds no more connections than the other (weedpy/serve/spread.py). Without
    that, whichever process was awake took them all in about half of such bursts."""
    leader = server.proc.pid
    worker = serving_worker(leader, server.proc.log_path)
    for _ in range(5):
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=20) for _ in range(16)]
        try:
            for s in socks:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks:  # answered: accepted by one of the processes
                head = b""
                while b"\r\n\r\n" not in head:
                    piece = s.recv(4096)
                    assert piece, "connection closed before the answer"
                    head += piece
                assert head.startswith(b"HTTP/1.1 200")
            held = _socket_owners([leader, worker], server.port, {s.getsockname()[1] for s in socks})
            assert sum(held.values()) >= 16, held  # a socket a process is handing over may show in both
            assert min(held.values()) >= 2, held
        finally:
            for s in socks:
                s.close()
        time.sleep(0.2)  # the processes see the connections close
