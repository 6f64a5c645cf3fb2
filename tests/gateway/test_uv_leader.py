"""Proxy mode in one process (`-workers=1`, the default on a one-core machine): the leader itself
relays the plain HTTP requests on uvloop (trio as its guest keeps gRPC, the heartbeat relay and
the backend), with the front's log line and metrics, and hands the rest to trio's path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.logs import log_events

from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, VolumeProc, clean_env, start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master")
    yield m
    m.stop()


def _uvloop_loaded(pid: int) -> bool:
    return b"uvloop" in Path(f"/proc/{pid}/maps").read_bytes()


@pytest.mark.parametrize("loop", ["uvloop", "trio"])
def test_one_process_relays_on_uvloop_unless_told_trio(tmp_path: Path, master: MasterProc, loop: str) -> None:
    env = clean_env({"WEEDPY_HTTP_LOOP": "trio"} if loop == "trio" else {})
    g: VolumeProc = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-workers=1", "-preStopSeconds=0"],
                                        env=env)
    try:
        wait_for_volume_server(master, f"127.0.0.1:{g.port}")
        assert _uvloop_loaded(g.proc.pid) == (loop == "uvloop")
        fids = [httpx.get(f"http://{master.address}/dir/assign", timeout=10).json()["fid"] for _ in range(3)]
        with httpx.Client(timeout=10) as client:  # one keep-alive connection: relayed, handed over, relayed
            for i, fid in enumerate(fids):
                body = b"leader %d " % i * (1 + 500 * i)
                assert client.post(f"{g.url}/{fid}", files={"file": ("f.bin", body)}).status_code == 201
                r = client.get(f"{g.url}/{fid}")
                assert r.status_code == 200 and r.content == body
            routes = client.get(f"{g.url}/weedpy/routes")  # the route API: trio's path
            assert routes.status_code == 200 and routes.json()["mode"] == "proxy"
            assert client.get(f"{g.url}/{fids[0]}").status_code == 200
        # gRPC through the leader's trio side: the master lists the volumes the writes made
        status = httpx.get(f"{g.url}/status", timeout=10).json()
        assert len(status["Volumes"] or []) > 0
        def lines(route: str, status: int) -> list[dict]:
            return [e for e in log_events(g.proc.log_path)
                    if e.get("event") == "http" and e.get("route") == route and e.get("status") == status]

        wait_until(lambda: len(lines("admin.read", 200)) == 4 and len(lines("admin.write", 201)) == 3,
                   what="one log line per request (written once a moment)")
        assert all(e["target"] == "go" for e in lines("admin.read", 200) + lines("admin.write", 201))
        assert g.stop() == 0  # SIGINT: the backend stopped, then the front, in order
    finally:
        g.stop()
