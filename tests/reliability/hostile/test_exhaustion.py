"""Exhaustion, against Go 4.48 and native mode side by side: a thousand idle connections, an
upload over the file size limit, a lying Content-Length. Other clients keep being served, the
answers are Go's, no descriptor outlives its connection, and resident memory stays under a cap."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.hostile.support import allocate, parse_responses, raw_exchange
from tests.support.process_tree import children
from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from tests.support.weedpy_proc import start_weedpy_volume

IDLE = 1000
RSS_CAP_MB = 400  # native, all its processes together, with a thousand idle connections open


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, master: MasterProc) -> Iterator[dict[str, VolumeProc]]:
    work: Path = tmp_path_factory.mktemp("exhaustion")
    flags = ["-fileSizeLimitMB=1"]
    out: dict[str, VolumeProc] = {}
    try:
        out["go"] = start_go_volume(work, master, extra=flags, name="go")
        out["native"] = start_weedpy_volume(work, master, extra=["-mode=native", *flags], name="native")
        for vid, server in zip((61, 62), out.values()):
            allocate(server, vid)
        yield out
    finally:
        for p in out.values():
            p.stop()


def _tree(pid: int) -> list[int]:
    """The server and its worker processes (native serves HTTP from several)."""
    return [pid, *children(pid)]


def _fds(pid: int) -> int:
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in _tree(pid))


def _rss_mb(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


@pytest.mark.parametrize("name", ["go", "native"])
def test_idle_connections_do_not_starve_others_or_leak(pair: dict[str, VolumeProc], name: str, record_property) -> None:
    server = pair[name]
    pid = server.proc.pid
    httpx.get(f"{server.url}/status", timeout=10)
    before = _fds(pid)
    socks = []
    try:
        for _ in range(IDLE):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        time.sleep(0.5)
        t0 = time.monotonic()
        r = httpx.get(f"{server.url}/status", timeout=10)
        served_ms = (time.monotonic() - t0) * 1000
        assert r.status_code == 200
        peak_fds, rss = _fds(pid), _rss_mb(pid)
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while _fds(pid) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _fds(pid)
    record_property("idle", IDLE)
    record_property("peak_fds", peak_fds)
    record_property("fds_after", after - before)
    record_property("rss_mb", round(rss))
    record_property("other_client_ms", round(served_ms, 1))
    assert peak_fds >= before + IDLE * 0.9  # the connections were really held
    assert after <= before + 5, f"{after - before} descriptors left after the clients closed"
    if name == "native":
        assert rss < RSS_CAP_MB


def _statuses(server: VolumeProc, payload: bytes, timeout: float = 3.0) -> list[int]:
    rs, _ = parse_responses(raw_exchange(server.port, payload, timeout=timeout))
    return [r.status for r in rs]


def test_body_over_the_size_limit_and_lying_length_answer_as_go(pair: dict[str, VolumeProc]) -> None:
    big = b"x" * (2 << 20)
    got = {}
    for name, vid in (("go", 61), ("native", 62)):
        server = pair[name]
        over = httpx.post(f"{server.url}/{vid},1a0badc0de", files={"file": ("big.bin", big, "application/octet-stream")}, timeout=30)
        short = _statuses(server, b"POST /%d,1b0badc0de HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly-ten-b" % vid)
        long_ = _statuses(server, b"POST /%d,1c0badc0de HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                   b"Content-Type: text/plain\r\nConnection: close\r\n\r\nabcdefgh" % vid)
        got[name] = (over.status_code, short, long_)
        assert httpx.get(f"{server.url}/status", timeout=10).status_code == 200  # still serving
    assert got["native"] == got["go"], got
