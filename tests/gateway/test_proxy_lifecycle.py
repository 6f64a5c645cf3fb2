"""Proxy mode as a process: supervision, signals, bad input, streaming without buffering, whitelist."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.procs import (
    BIND_FAILURE, MasterProc, VolumeProc, clean_env, free_port, free_port_pair, wait_for_volume_server,
)
from tests.support.process_tree import alive, child_with, worker_pids
from tests.support.weedpy_proc import start_weedpy_volume, weedpy_executable, weedpy_volume_argv


def backend_pid(gateway: VolumeProc, timeout: float = 30) -> int:
    return child_with(gateway.proc.pid, b"volume", timeout, exclude=frozenset(worker_pids(gateway.proc.pid)))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture()
def gateway(tmp_path: Path, master: MasterProc) -> Iterator[VolumeProc]:
    g = start_weedpy_volume(tmp_path, master, extra=["-fileSizeLimitMB=400"])
    try:
        yield g
    finally:
        g.stop()


def _upload(url: str, master: MasterProc, data: bytes = b"some data") -> str:
    assign = httpx.get(f"{master.url}/dir/assign", timeout=30).json()
    fid = assign["fid"]
    r = httpx.post(f"{url}/{fid}", files={"file": ("a.txt", data)}, timeout=30)
    assert r.status_code == 201, r.text
    return fid


def test_backend_killed_is_restarted_and_gaps_answer_503(gateway: VolumeProc, master: MasterProc) -> None:
    before = backend_pid(gateway)
    os.kill(before, signal.SIGKILL)
    time.sleep(0.1)
    # The restart waits at least 0.5 s of backoff: a request now lands in the gap and must be
    # answered 503 then (one held until a backend is back would get Go's 200).
    gap = httpx.get(f"{gateway.url}/status", timeout=30)
    assert gap.status_code == 503 and gap.json()["error"] in (
        "volume server backend is not running", "volume server backend is not reachable"), gap.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.get(f"{gateway.url}/status", timeout=5)
        if r.status_code == 200:
            break
        assert r.status_code == 503
        time.sleep(0.05)
    else:
        raise AssertionError("backend was not restarted")
    assert backend_pid(gateway) != before
    gateway.proc.check_alive()
    wait_for_volume_server(master, f"127.0.0.1:{gateway.port}")
    fid = _upload(gateway.url, master)
    assert httpx.get(f"{gateway.url}/{fid}").content == b"some data"


@pytest.mark.slow
def test_backend_stays_up_while_the_gateway_idles(gateway: VolumeProc) -> None:
    # Regression: a parent-death signal tied to an idle worker thread killed the backend every ~10 s.
    first = backend_pid(gateway)
    time.sleep(13)
    assert alive(first) and backend_pid(gateway) == first
    assert httpx.get(f"{gateway.url}/status", timeout=10).status_code == 200


def test_sigterm_exits_zero_in_time_with_no_backend_left(tmp_path: Path, master: MasterProc) -> None:
    g = start_weedpy_volume(tmp_path, master, extra=["-preStopSeconds=1"])
    child = backend_pid(g)
    t0 = time.monotonic()
    g.proc.popen.send_signal(signal.SIGTERM)
    rc = g.proc.popen.wait(timeout=60)
    assert rc == 0, g.proc.log_tail()
    assert time.monotonic() - t0 >= 1.0  # -preStopSeconds=1 was honoured
    stops = [json.loads(line) for line in g.proc.log_path.read_text().splitlines() if '"stopping: no new connections"' in line]
    assert [e["pre_stop_seconds"] for e in stops] == [1]  # and it was the wait, not the 10 s default
    deadline = time.monotonic() + 15  # the backend goes with the gateway, as soon as the kernel reaps it
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_sigkill_of_the_gateway_takes_the_backend_down(tmp_path: Path, master: MasterProc) -> None:
    g = start_weedpy_volume(tmp_path, master)
    child = backend_pid(g)
    g.proc.popen.kill()
    g.proc.popen.wait()
    deadline = time.monotonic() + 15
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)


def test_backend_that_cannot_start_exits_nonzero_with_its_output(tmp_path: Path, master: MasterProc) -> None:
    fake = tmp_path / "fake-weed"
    fake.write_text("#!/bin/sh\necho 'fake weed refusing to start' >&2\nexit 3\n")
    fake.chmod(0o755)
    for _ in range(3):  # again on fresh ports if someone took a picked one first
        port, grpc = free_port_pair()
        argv = weedpy_volume_argv(port=port, grpc_port=grpc, public_port=port, data_dir=tmp_path / "d",
                                  master=master.address, extra=[f"-weedBinary={fake}"])
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
        if BIND_FAILURE not in r.stderr.lower():
            break
    assert r.returncode == 1
    assert "fake weed refusing to start" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [(["-port=x"], "-port"), (["--nosuchflag", "1"], "nosuchflag"), (["-readMode=sometimes"], "readMode")],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    r = subprocess.run([weedpy_executable(), *args], capture_output=True, text=True, timeout=30, env=clean_env())
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_front_port_in_use_exits_1(tmp_path: Path, master: MasterProc) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = weedpy_volume_argv(port=port, grpc_port=free_port(), public_port=port, data_dir=tmp_path / "d",
                                  master=master.address)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert r.returncode == 1 and "cannot bind" in r.stderr


def _raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                got = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not got:
                break
            chunks.append(got)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /1,0101 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /1,0101 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
)
def test_malformed_requests_get_400_and_the_gateway_keeps_serving(gateway: VolumeProc, raw: bytes) -> None:
    reply = _raw_exchange(gateway.port, raw)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply[:200]
    assert b"Connection: close" in reply
    assert httpx.get(f"{gateway.url}/status", timeout=10).status_code == 200


def test_expect_continue_and_keep_alive(gateway: VolumeProc, master: MasterProc) -> None:
    fid = httpx.get(f"{master.url}/dir/assign", timeout=30).json()["fid"]
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(f"PUT /{fid} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        s.sendall(b"hello")
        reply = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while b"}" not in reply:
            reply += s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 201 Created")
        s.sendall(f"GET /{fid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # same connection
        again = b""
        while not again.endswith(b"hello"):
            again += s.recv(4096)
        assert again.startswith(b"HTTP/1.1 200 OK")


def test_whitelist_is_enforced_on_the_real_client_address(tmp_path: Path, master: MasterProc) -> None:
    g = start_weedpy_volume(tmp_path, master, extra=["-whiteList=10.11.12.13,192.168.0.0/16"])
    try:
        # The guard answers before any volume lookup; no volume can be grown here anyway: the
        # master's AllocateVolume comes from 127.0.0.1, outside the whitelist (refused, as by Go).
        fid = "1,01637037d6"
        r = httpx.post(f"{g.url}/{fid}", content=b"x", timeout=10)
        assert r.status_code == 401 and r.content == b""
        assert r.headers["server"].startswith("SeaweedFS Volume")
        assert httpx.delete(f"{g.url}/{fid}", timeout=10).status_code == 401
        assert httpx.get(f"{g.url}/status", timeout=10).status_code == 200
    finally:
        g.stop()


@pytest.mark.slow
def test_256_mib_upload_and_download_stream_through_bounded_memory(gateway: VolumeProc, master: MasterProc) -> None:
    size = 256 << 20
    piece = bytes(range(256)) * 256  # 64 KiB

    def body() -> Iterator[bytes]:
        for _ in range(size // len(piece)):
            yield piece

    fid = httpx.get(f"{master.url}/dir/assign", timeout=30).json()["fid"]
    r = httpx.put(f"{gateway.url}/{fid}", content=body(), headers={"Content-Type": "application/octet-stream"},
                  timeout=300)
    assert r.status_code == 201, r.text
    received = 0
    with httpx.stream("GET", f"{gateway.url}/{fid}", timeout=300) as resp:
        assert resp.status_code == 200
        for data in resp.iter_raw(1 << 20):
            received += len(data)
    assert received == size
    assert peak_rss_mib(gateway.proc.pid) < 100
