"""Auto-rollback on real processes: a native handler made to differ (or to fail) by the test-only
fault switch is moved back to Go within its rule's window, with no failed request once it is;
`/weedpy/routes`, `weedpy cutover status`, the differ's report and the log show it."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.metrics.support import scrape
from tests.native_core.support import call
from tests.support.logs import log_events
from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, VolumeProc, clean_env, free_port, free_port_pair, start_master
from tests.support.weedpy_proc import start_weedpy_volume, weedpy_executable, weedpy_volume_argv
from weedpy.cutover import TEST_FAULT_ENV

pytestmark = pytest.mark.slow

VID = 5
HANG_GUARD_S = 120.0  # only against a hang: the rollback itself is judged by its recorded evidence


@pytest.fixture()
def master(tmp_path: Path):
    m = start_master(tmp_path / "m")
    yield m  # stopped even when the server under test fails to start
    m.stop()


def _write_files(url: str, grpc_port: int, n: int = 20) -> dict[str, bytes]:
    assert call(grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                vs.AllocateVolumeResponse).ok
    files = {f"{VID},{k:x}{0xfa170000 + k:08x}": f"rollback file {k}".encode() for k in range(1, n + 1)}
    with httpx.Client(timeout=30) as c:
        for fid, body in files.items():
            assert c.put(f"{url}/{fid}", content=body).status_code == 201
    return files


def _target(url: str, route: str) -> str:
    doc = httpx.get(f"{url}/weedpy/routes", timeout=10).json()
    return doc["table"]["routes"].get(route, doc["table"]["default"])["target"]


def test_a_differing_native_read_is_rolled_back_to_go(tmp_path: Path, master: MasterProc) -> None:
    table = tmp_path / "routes.toml"
    table.write_text("""version = "rb-1"
default = "go"
[routes]
"admin.read" = { target = "native+verify", sample_pct = 100, auto_rollback = { max_real_diff_pct = 5, window_s = 60, min_samples = 10 } }
""")
    metrics_port = free_port()
    server = start_weedpy_volume(
        tmp_path, master, data_dir=tmp_path / "go",
        extra=["-mode=mixed", f"-routes={table}", f"-dir.native={tmp_path / 'py'}", f"-metricsPort={metrics_port}"],
        env=clean_env({TEST_FAULT_ENV: "differ:admin.read"}),
    )
    url = server.url
    try:
        files = _write_files(url, server.grpc_port)
        deadline = time.monotonic() + HANG_GUARD_S
        with httpx.Client(timeout=30) as c:
            while _target(url, "admin.read") == "native+verify":
                assert time.monotonic() < deadline, "never rolled back"
                for fid, body in files.items():
                    r = c.get(f"{url}/{fid}")
                    assert r.status_code == 200 and r.content == body  # the client's answer is never lost
            assert _target(url, "admin.read") == "shadow"
            for fid, body in files.items():  # Go serves it now, native is still compared
                r = c.get(f"{url}/{fid}")
                assert r.status_code == 200 and r.content == body and "x-weedpy-test-fault" not in r.headers

        doc = httpx.get(f"{url}/weedpy/routes", timeout=10).json()
        [rb] = doc["rollbacks"]
        assert rb["route"] == "admin.read" and rb["from"] == "native+verify" and rb["to"] == "shadow"
        # moved on the evidence of its rule's window: at least min_samples compared in the last 60 s
        m = re.fullmatch(r"real differences (\d+)/(\d+) = [0-9.]+% over 60s > 5%", rb["reason"])
        assert m is not None and int(m[2]) >= 10 and doc["rollbacks_total"] == 1, rb
        row = next(r for r in doc["evidence"] if r["route"] == "admin.read")
        assert row["samples"] >= 10 and row["real"] >= 10 and row["rolled_back"] and row["last_change_by"] == "auto_rollback"
        assert doc["table"]["routes"]["admin.read"]["auto_rollback"]["max_real_diff_pct"] == 5  # kept: why it moved
        # the differ's samples per volume too (dual-run: no owners, every volume on both stores)
        vrow = next(r for r in doc["volumes"]["evidence"] if r["volume"] == VID)
        assert vrow["owner"] is None and vrow["samples"] >= 10 and vrow["real"] >= 10, vrow

        def volume_row() -> dict:
            return next(r for r in httpx.get(f"{url}/weedpy/routes", timeout=10).json()["volumes"]["evidence"]
                        if r["volume"] == VID)

        # what a worker process answered reaches the leader's counts once a second
        wait_until(lambda: volume_row()["requests_native"] >= 10, timeout=10, what="the workers' counts merged")
        assert volume_row()["requests_go"] >= len(files)
        exposition = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert exposition.value("weedpy_route_rollbacks_total", route="admin.read", **{"from": "native+verify"},
                                to="shadow") == 1
        report = httpx.get(f"{url}/weedpy/diff", timeout=10).json()
        assert report["cutover"]["rollbacks"][0]["route"] == "admin.read"
        fields = next(e for e in report["endpoints"] if e["endpoint"] == "admin.read")["fields"]
        assert any(f["field"] == "header:x-weedpy-test-fault" and f["class"] == "real" for f in fields)

        out = subprocess.run([str(Path(weedpy_executable()).with_name("weedpy")), "cutover", "status",
                              f"-server=127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out
        assert "shadow (rolled back)" in out.stdout, out.stdout
        assert any(line.startswith("rolled back ") and ": admin.read native+verify -> shadow: real differences" in line
                   for line in out.stdout.splitlines()), out.stdout
        out = subprocess.run([str(Path(weedpy_executable()).with_name("weedpy")), "cutover", "status", "--json",
                              "--server", f"127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=30)
        assert json.loads(out.stdout)["rollbacks_total"] == 1

        wait_until(lambda: _rolled_back(server) != [], timeout=10, what="the rollback's log line")
        events = log_events(server.proc.log_path)
        assert any(e.get("event", "").startswith("TEST-ONLY FAULT") for e in events)
        assert [e["route"] for e in events if e.get("event") == "route rolled back"] == ["admin.read"]
        assert any(e.get("event") == "route table changed" and e.get("by") == "auto_rollback" for e in events)
    finally:
        server.stop()


def test_native_server_errors_roll_the_route_back_to_go(tmp_path: Path, master: MasterProc) -> None:
    table = tmp_path / "routes.toml"
    rule = "auto_rollback = { max_5xx_pct = 20, window_s = 30, min_samples = 10 }"
    table.write_text(f"""version = "rb-5xx"
default = "go"
[routes]
"admin.read" = {{ target = "native", {rule} }}
"admin.status" = {{ target = "native", {rule} }}
""")
    server = start_weedpy_volume(tmp_path, master, extra=["-mode=mixed", f"-routes={table}"],
                                 env=clean_env({TEST_FAULT_ENV: "5xx:admin.read"}))
    url = server.url
    try:
        files = _write_files(url, server.grpc_port)
        statuses = []
        with httpx.Client(timeout=30) as c:
            deadline = time.monotonic() + HANG_GUARD_S
            while _target(url, "admin.read") == "native":
                assert time.monotonic() < deadline, "never rolled back"
                for fid in files:
                    statuses.append(c.get(f"{url}/{fid}").status_code)
                assert c.get(f"{url}/status").status_code == 200
            for fid, body in files.items():
                r = c.get(f"{url}/{fid}")
                assert r.status_code == 200 and r.content == body
        # the fault until the rule moved the route (it may move between two reads), then Go's answers
        first_ok = statuses.index(200) if 200 in statuses else len(statuses)
        assert first_ok >= 10 and set(statuses[:first_ok]) == {500} and set(statuses[first_ok:]) <= {200}, statuses
        doc = httpx.get(f"{url}/weedpy/routes", timeout=10).json()
        assert [r["route"] for r in doc["rollbacks"]] == ["admin.read"]
        # moved on the evidence of its rule's window: at least min_samples native answers in the last 30 s
        m = re.fullmatch(r"5xx answers from native (\d+)/(\d+) = [0-9.]+% over 30s > 20%", doc["rollbacks"][0]["reason"])
        assert m is not None and int(m[2]) >= 10, doc["rollbacks"][0]
        wait_until(lambda: _rolled_back(server) != [], timeout=10, what="the rollback's log line")
        assert _rolled_back(server) == ["admin.read"]
        assert _target(url, "admin.status") == "native"  # its own rule holds: no server errors
    finally:
        server.stop()


def _rolled_back(server: VolumeProc) -> list[str]:
    """The routes of the server's `route rolled back` log lines (the log is flushed from a thread
    a moment after the event)."""
    return [e["route"] for e in log_events(server.proc.log_path) if e.get("event") == "route rolled back"]


def test_the_fault_switch_stops_a_server_not_bound_to_loopback(tmp_path: Path) -> None:
    port, grpc_port = free_port_pair()
    argv = weedpy_volume_argv(port=port, grpc_port=grpc_port, public_port=port, data_dir=tmp_path,
                              master="127.0.0.1:1") + ["-mode=mixed", "-ip.bind=0.0.0.0"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                         env=clean_env({TEST_FAULT_ENV: "differ:admin.read"}))
    assert out.returncode == 1 and "for tests only" in out.stderr, out
