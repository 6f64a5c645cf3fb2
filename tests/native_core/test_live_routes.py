"""Live route changes on real processes: SIGHUP re-reads -routes, the admin API replaces or edits
the table, under 8-way mixed load with no failed request, a broken table refused (the running one
kept, the log naming the entry), the same process throughout; with -workers=N every worker serves
the new table before the API answers."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import call, start_native
from tests.support.logs import log_events
from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, start_master
from tests.support.weedpy_proc import start_weedpy_volume

pytestmark = pytest.mark.slow

P = "/volume_server_pb.VolumeServer/"
VID = 9


@pytest.fixture()
def master(tmp_path: Path):
    m = start_master(tmp_path / "m")
    yield m  # stopped even when the server under test fails to start
    m.stop()


def _version(url: str) -> str:
    return httpx.get(f"{url}/weedpy/routes", timeout=10).json()["version"]


class Load:
    """N threads of mixed traffic (uploads, reads of what they wrote, /status, a gRPC status call);
    every answer that is not the expected one is a failure."""

    def __init__(self, url: str, grpc_port: int, threads: int = 8) -> None:
        self.url = url
        self.grpc_port = grpc_port
        self.failures: list[str] = []
        self.counts = [0] * threads
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, n: int) -> None:
        written: list[tuple[str, bytes]] = []
        with httpx.Client(timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                kind = i % 4
                try:
                    if kind == 0 or not written:
                        fid = f"{VID},{(n << 20) + i:x}{0x1000 + i:08x}"
                        body = f"thread {n} file {i}".encode()
                        r = client.put(f"{self.url}/{fid}", content=body)
                        if r.status_code != 201:
                            self.failures.append(f"PUT {fid}: {r.status_code} {r.text[:200]}")
                        else:
                            written.append((fid, body))
                    elif kind in (1, 2):
                        fid, body = written[(i * 7) % len(written)]
                        r = client.get(f"{self.url}/{fid}")
                        if r.status_code != 200 or r.content != body:
                            self.failures.append(f"GET {fid}: {r.status_code} {r.content[:100]!r}")
                    elif n == 0:
                        out = call(self.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=VID),
                                   vs.VolumeStatusResponse)
                        if not out.ok:
                            self.failures.append(f"VolumeStatus: {out.status} {out.message}")
                    else:
                        r = client.get(f"{self.url}/status")
                        if r.status_code != 200 or "Volumes" not in r.json():
                            self.failures.append(f"/status: {r.status_code}")
                except Exception as exc:  # noqa: BLE001 - every failed request counts
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self.counts[n] += 1


T1 = """version = "t1"
default = "go"
[routes]
"admin.read" = "go"
"""
T2 = """version = "t2"
default = "go"
[routes]
"admin.read" = "native"
"admin.status" = "native"
"/volume_server_pb.VolumeServer/VolumeStatus" = "native"
"""
BROKEN_FILE = """version = "broken"
default = "go"
[routes]
"admin.reed" = "native"
"""
UNSAFE = """version = "unsafe"
default = "go"
[routes]
"admin.read" = "native"
"admin.write" = "native"
"admin.delete" = "native"
"""


def test_mixed_mode_changes_routes_live_under_load(tmp_path: Path, master: MasterProc) -> None:
    table = tmp_path / "routes.toml"
    table.write_text(T1)
    server = start_weedpy_volume(tmp_path, master, extra=[f"-routes={table}", "-mode=mixed"])
    url, pid, log_path = server.url, server.proc.pid, server.proc.log_path
    try:
        assert call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                    vs.AllocateVolumeResponse).ok
        with Load(url, server.grpc_port) as load:
            time.sleep(1.5)
            # 1. SIGHUP: the edited file is read again
            table.write_text(T2)
            os.kill(pid, signal.SIGHUP)
            wait_until(lambda: _version(url) == "t2", timeout=20.0, what="t2 after SIGHUP")
            time.sleep(1.5)
            # 2. the API edits one entry (a new version of its own)
            r = httpx.patch(f"{url}/weedpy/routes", json={"version": "t3", "routes": {"admin.read": "go"}}, timeout=30)
            assert r.status_code == 200 and r.json()["version"] == "t3", r.text
            time.sleep(1.5)
            # 3. broken tables are refused, the running one stays
            r = httpx.put(f"{url}/weedpy/routes", content=UNSAFE, timeout=30)
            assert r.status_code == 400 and "admin.write" in r.json()["error"], r.text
            table.write_text(BROKEN_FILE)
            os.kill(pid, signal.SIGHUP)
            wait_until(lambda: any(e.get("event") == "route table refused" and "admin.reed" in e.get("error", "")
                                   for e in log_events(log_path)), timeout=20.0, what="the refused file in the log")
            assert _version(url) == "t3"
            # 4. the API replaces the whole table
            r = httpx.put(f"{url}/weedpy/routes", content=T2.replace('"t2"', '"t4"'), timeout=30)
            assert r.status_code == 200 and r.json()["version"] == "t4", r.text
            time.sleep(1.5)
        assert not load.failures, load.failures[:10]
        assert sum(load.counts) > 200 and min(load.counts) > 10, load.counts
        server.proc.check_alive()
        assert server.proc.pid == pid

        events = log_events(log_path)
        refused = [e for e in events if e.get("event") == "route table refused"]
        assert any("admin.write" in e["error"] for e in refused) and any("admin.reed" in e["error"] for e in refused)
        changed = [(e["version"], e["by"]) for e in events if e.get("event") == "route table changed"]
        assert [v for v, _ in changed] == ["t2", "t3", "t4"] and changed[0][1] == "sighup", changed
        assert changed[1][1].startswith("api 127.0.0.1")
        # every request line carries its table's version, and the target that table gives it
        want = {"t1": "go", "t2": "native", "t3": "go", "t4": "native"}
        reads = [e for e in events if e.get("event") == "http" and e.get("route") == "admin.read"]
        seen = {e["routes_v"] for e in reads}
        assert seen == set(want), seen
        assert all(e["target"] == want[e["routes_v"]] for e in reads)
        grpc = [e for e in events if e.get("event") == "grpc" and e.get("route") == P + "VolumeStatus"]
        assert {e["routes_v"] for e in grpc} >= {"t1", "t2", "t3"}
        assert all(e["target"] == ("go" if e["routes_v"] == "t1" else "native") for e in grpc)  # t3 edits admin.read only

        status = httpx.get(f"{url}/weedpy/routes", timeout=10).json()
        assert status["serial"] == 4 and status["changed_by"].startswith("api 127.0.0.1")
        assert [c["version"] for c in status["history"]] == ["t4", "t3", "t2", "t1"]
        assert "admin.read: go -> native" in status["history"][0]["moved"]
    finally:
        server.stop()


def test_workers_apply_each_change_before_the_api_answers(tmp_path: Path, master: MasterProc) -> None:
    table = tmp_path / "routes.toml"
    table.write_text('version = "w1"\ndefault = "native"\n')
    server = start_native(tmp_path, master, extra=[f"-routes={table}", "-workers=3"])
    url, pid, log_path = server.url, server.proc.pid, server.proc.log_path
    try:
        assert call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                    vs.AllocateVolumeResponse).ok
        wait_until(lambda: sum(1 for e in log_events(log_path) if e.get("event") == "worker ready") >= 2,
                   timeout=20.0, what="the workers")

        def ui_statuses() -> set[int]:  # fresh connections: whichever process accepts each
            return {httpx.get(f"{url}/ui/index.html", headers={"Connection": "close"}, timeout=10).status_code
                    for _ in range(24)}

        with Load(url, server.grpc_port) as load:
            assert ui_statuses() == {200}
            for round_ in range(3):  # the API, on fresh connections (a worker forwards it to the leader)
                r = httpx.patch(f"{url}/weedpy/routes", json={"routes": {"admin.ui": "off"}},
                                headers={"Connection": "close"}, timeout=60)
                assert r.status_code == 200, r.text
                assert ui_statuses() == {503}, round_
                r = httpx.patch(f"{url}/weedpy/routes", json={"routes": {"admin.ui": None}},
                                headers={"Connection": "close"}, timeout=60)
                assert r.status_code == 200, r.text
                assert ui_statuses() == {200}, round_
            # SIGHUP: the leader reads the file and tells every worker
            table.write_text('version = "w2"\ndefault = "native"\n[routes]\n"admin.ui" = "off"\n')
            os.kill(pid, signal.SIGHUP)
            wait_until(lambda: _version(url) == "w2", timeout=20.0, what="w2 after SIGHUP")
            wait_until(lambda: ui_statuses() == {503}, timeout=5, what="every worker on w2")
            # refused: go targets in native mode, whichever process took the request
            for _ in range(4):
                r = httpx.patch(f"{url}/weedpy/routes", json={"routes": {"admin.read": "go"}},
                                headers={"Connection": "close"}, timeout=60)
                assert r.status_code == 400 and "admin.read" in r.json()["error"], r.text
            assert _version(url) == "w2" and ui_statuses() == {503}
            for _ in range(20):
                assert httpx.get(f"{url}/weedpy/routes", headers={"Connection": "close"}, timeout=10).status_code == 200
        assert not load.failures, load.failures[:10]
        server.proc.check_alive()
        assert server.proc.pid == pid
        events = log_events(log_path)
        api = [e for e in events if e.get("event") == "routes api"]
        assert {e.get("worker") for e in api} - {0}, "no API request reached a worker process"
        assert not [e for e in events if e.get("event") in ("worker exited", "worker failed", "restarting worker")]
        http = [e for e in events if e.get("event") == "http" and e.get("route") == "admin.ui"]
        assert {e.get("worker") for e in http if e["routes_v"] == "w2"} - {0}
    finally:
        server.stop()


def test_native_pct_serves_each_file_from_one_side(tmp_path: Path, master: MasterProc) -> None:
    from weedpy.serve.routes import native_share

    table = tmp_path / "routes.toml"
    table.write_text('version = "p30"\ndefault = "go"\n[routes]\n"admin.read" = { target = "native", native_pct = 30 }\n')
    server = start_weedpy_volume(tmp_path, master, extra=[f"-routes={table}", "-mode=mixed"])
    url = server.url
    try:
        assert call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                    vs.AllocateVolumeResponse).ok
        files = {f"{VID},{k:x}{0x5eed0000 + k:08x}": f"file {k}".encode() for k in range(1, 601)}
        with httpx.Client(timeout=30) as client:
            for fid, body in files.items():
                assert client.put(f"{url}/{fid}", content=body).status_code == 201
            for fid, body in files.items():
                vid, rest = fid.split(",")
                for path in (f"/{fid}", f"/{vid}/{rest}/name.txt"):  # two spellings of one file
                    r = client.get(url + path)
                    assert r.status_code == 200 and r.content == body, (path, r.status_code)
            r = client.patch(f"{url}/weedpy/routes", json={
                "version": "p60", "routes": {"admin.read": {"target": "native", "native_pct": 60}}})
            assert r.status_code == 200, r.text
            for fid, body in files.items():
                assert client.get(f"{url}/{fid}").content == body
        def reads_logged() -> list[dict]:
            return [e for e in log_events(server.proc.log_path) if e.get("event") == "http" and e.get("route") == "admin.read"]

        wait_until(lambda: len(reads_logged()) == 3 * len(files), timeout=20.0, what="every read logged")
        reads = reads_logged()
        side: dict[tuple[str, str], set[str]] = {}
        for e in reads:
            fid = e["path"].strip("/").replace("/", ",", 1).split("/")[0]
            side.setdefault((e["routes_v"], fid), set()).add(e["target"])
            pct = 30 if e["routes_v"] == "p30" else 60
            assert e["target"] == ("native" if native_share(e["path"].encode()) < pct else "go"), e
        assert all(len(s) == 1 for s in side.values())  # one side per file, whatever the spelling
        at30 = {fid for (v, fid), s in side.items() if v == "p30" and s == {"native"}}
        at60 = {fid for (v, fid), s in side.items() if v == "p60" and s == {"native"}}
        assert abs(len(at30) / len(files) * 100 - 30) < 7 and abs(len(at60) / len(files) * 100 - 60) < 7
        assert at30 <= at60  # raising the share only moves files from go to native
    finally:
        server.stop()


def test_a_read_of_a_volume_not_held_here_answers_as_go_does_from_native(tmp_path: Path, master: MasterProc) -> None:
    """Mixed mode's native reads of a volume this server does not hold go on as Go's do (-readMode);
    the read-only view has no EC volumes to look in (it used to fail the connection there)."""
    table = tmp_path / "routes.toml"
    table.write_text('version = "r1"\ndefault = "go"\n')
    server = start_weedpy_volume(tmp_path, master, extra=[f"-routes={table}", "-mode=mixed"])
    url = server.url
    try:
        answers = {}
        with httpx.Client(timeout=30) as c:
            for target in ("go", "native"):
                r = c.patch(f"{url}/weedpy/routes", json={"routes": {"admin.read": target}})
                assert r.status_code == 200, r.text
                got = c.get(f"{url}/77,01637037d6")
                answers[target] = (got.status_code, got.content)
        assert answers["native"] == answers["go"], answers
    finally:
        server.stop()
