"""The contract of the upstream harness's hook for a non-Go volume binary, self-contained.

`test/volume_server/framework/cluster_rust.go` execs the binary with exactly these double-dash
pairs, waits for `GET /healthz` < 500 and then a TCP connect to the gRPC port, and stops it with
SIGINT (SIGKILL after 10 s). This test does the same with `weedpy-volume`, in each mode, and checks
that the throttling flags of the harness's P8 profile are honoured.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import MasterProc, Proc, clean_env, free_port_pair, on_fresh_ports, start_proc, wait_http, wait_tcp
from tests.support.weedpy_proc import weedpy_executable


def harness_argv(workdir: Path, master: MasterProc, throttled: bool) -> tuple[list[str], int, int]:
    port, grpc_port = free_port_pair()
    config = workdir / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "security.toml").write_text("# optional security config generated for integration tests\n")
    data = workdir / "volume"
    data.mkdir(parents=True, exist_ok=True)
    limit = "1" if throttled else "0"
    argv = [
        weedpy_executable(),
        "--port", str(port), "--port.grpc", str(grpc_port), "--port.public", str(port),
        "--ip", "127.0.0.1", "--ip.bind", "127.0.0.1", "--dir", str(data), "--max", "16",
        "--master", master.address, "--securityFile", str(config / "security.toml"),
        "--readMode", "proxy", "--concurrentUploadLimitMB", limit, "--concurrentDownloadLimitMB", limit,
        "--preStopSeconds", "0",
    ]
    if throttled:
        argv += ["--inflightUploadDataTimeout", "2s", "--inflightDownloadDataTimeout", "2s"]
    return argv, port, grpc_port


def start_harness(workdir: Path, master: MasterProc, mode: str, throttled: bool) -> tuple[Proc, int, int]:
    """Start as the harness does and wait as it does (started again on fresh ports if one was taken)."""

    def start() -> tuple[Proc, int, int]:
        argv, port, grpc_port = harness_argv(workdir, master, throttled)
        proc = start_proc(argv, workdir / f"volume-{port}.log", cwd=workdir, env=clean_env({"WEEDPY_MODE": mode}))
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
            wait_tcp("127.0.0.1", grpc_port, proc=proc)
        except BaseException:
            proc.stop()
            raise
        return proc, port, grpc_port

    return on_fresh_ports(start)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and int(entry.name) not in out:
                out.add(int(entry.name))
                frontier.append(int(entry.name))
    return out


def _events(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize("mode", ["proxy", "native"])
def test_harness_argv_readiness_and_sigint(tmp_path: Path, master: MasterProc, mode: str) -> None:
    started, port, grpc_port = start_harness(tmp_path, master, mode, throttled=False)
    proc = started.popen
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/status", timeout=10).json()["Volumes"] is None
        children = descendants(proc.pid)
        go = {c for c in children if b"weedpy.worker" not in _cmdline(c)}
        if mode == "proxy":
            assert go, "proxy mode runs a Go backend"
        else:
            assert not go, "native mode runs no Go process (only its own workers)"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # the harness kills after 10 s: it must not need to
        stops = [e for e in _events(started.log_path) if e.get("event") in ("stopping", "stopping: no new connections")]
        assert [e["pre_stop_seconds"] for e in stops] == [0]  # --preStopSeconds 0 was the wait, not Go's 10 s
        deadline = time.monotonic() + 5
        while not all(gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(gone(c) for c in children), "a child outlived weedpy-volume"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["proxy", "native"])
def test_harness_throttling_flags_are_honoured(tmp_path: Path, master: MasterProc, mode: str) -> None:
    """P8: a 1 MB upload limit with a 2 s timeout turns a second upload into 429 while one is in flight."""
    started, port, grpc_port = start_harness(tmp_path, master, mode, throttled=True)
    proc = started.popen
    try:
        deadline = time.monotonic() + 30
        while True:  # the master allocates volumes on this server once it has registered
            r = httpx.get(f"{master.url}/dir/assign", params={"dataNode": f"127.0.0.1:{port}"}, timeout=10)
            if r.status_code == 200 and r.json().get("url") == f"127.0.0.1:{port}":
                fid = r.json()["fid"]
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        # A paused 2 MB upload: the head and half the body are sent, then nothing.
        paused = socket.create_connection(("127.0.0.1", port), timeout=10)
        size = 2 << 20
        paused.sendall(f"PUT /{fid} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        paused.sendall(b"x" * (size // 2))
        # Until the server has read the paused upload's head, a small upload still goes through
        # (201); from then on it waits out the inflight timeout and is refused.
        deadline = time.monotonic() + 30
        while True:
            r = httpx.put(f"http://127.0.0.1:{port}/{fid}", content=b"small", timeout=20)
            if r.status_code != 201 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 429, r.text
        # Go's words for an upload that waited for room until the inflight timeout, then gave up
        assert re.fullmatch(r"reject because inflight upload data \d+ > 1048576, and wait timeout", r.json()["error"]), r.text
        paused.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
