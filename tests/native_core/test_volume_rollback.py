"""Per-volume evidence and automatic rollback on real processes (a real master, the real Go
backend), with one process and with `-workers=2`: the per-volume counts are the traffic sent,
summed over every process; a volume native owns whose reads fail (the test-only fault switch,
`5xx:volume:VID`) is moved back to Go by the `[volumes] auto_rollback` rule under load, every
acknowledged write reads back from Go, another native volume stays, and `/weedpy/volumes`,
`weedpy cutover status`, the metrics and the log show it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from native.storage.ownership import NATIVE_FOLDER
from proto import volume_server_pb2 as vs
from tests.metrics.support import scrape
from tests.native_core.support import allocate_volume, call, move_volume, start_mixed
from tests.support.logs import log_events
from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, VolumeProc, clean_env, free_port, start_master
from tests.support.weedpy_proc import start_weedpy_volume, weedpy_executable
from weedpy.cutover import TEST_FAULT_ENV

pytestmark = pytest.mark.slow

FAULTY = 7  # native owns it, its reads fail: rolled back
HEALTHY = 8  # native owns it, no fault: stays
HANG_GUARD_S = 120.0  # only against a hang: the rollback is judged by its recorded evidence


@pytest.fixture()
def master(tmp_path: Path):
    m = start_master(tmp_path / "m")
    yield m
    m.stop()


def _start(tmp_path: Path, master: MasterProc, data: Path, rule: str, workers: int, metrics_port: int,
           env: dict[str, str] | None = None) -> VolumeProc:
    table = tmp_path / "routes.toml"
    table.write_text(f'version = "vol-1"\ndefault = "go"\n\n[volumes]\nauto_rollback = {{ {rule} }}\n')
    return start_mixed(tmp_path, master, data, workers=workers, env=env,
                       extra=[f"-routes={table}", f"-metricsPort={metrics_port}"])


def _fid(vid: int, key: int) -> str:
    return f"{vid},{key:x}{0x3000 + key:08x}"


def _volumes(server: VolumeProc) -> dict:
    return httpx.get(f"{server.url}/weedpy/volumes", timeout=10).json()


def _row(doc: dict, vid: int) -> dict:
    return next(r for r in doc["evidence"] if r["volume"] == vid)


def _weedpy() -> str:
    return str(Path(weedpy_executable()).with_name("weedpy"))


@pytest.mark.parametrize("workers", [1, 2])
def test_per_volume_counts_are_the_traffic_sent(tmp_path: Path, master: MasterProc, workers: int) -> None:
    """N reads of a Go volume and M of a native one (and writes, and rpcs naming each): the
    per-volume counts in `/weedpy/volumes`, `weedpy cutover status -json` and the metrics are
    exactly those, for the side that served them, summed over every process."""
    go_vid, native_vid = 11, 12
    metrics_port = free_port()
    server = _start(tmp_path, master, tmp_path / "data", "max_5xx_pct = 50, window_s = 600, min_samples = 1000",
                    workers, metrics_port)
    headers = {"Connection": "close"} if workers > 1 else {}  # fresh connections: every process serves some
    try:
        allocate_volume(server, go_vid)
        allocate_volume(server, native_vid)
        move_volume(server, native_vid, "native")
        sent = {go_vid: {"writes": 5, "reads": 23, "rpcs": 3}, native_vid: {"writes": 7, "reads": 31, "rpcs": 4}}
        with httpx.Client(timeout=30, headers=headers) as c:
            for vid, n in sent.items():
                fids = [_fid(vid, k) for k in range(1, n["writes"] + 1)]
                for fid in fids:
                    assert c.put(f"{server.url}/{fid}", content=fid.encode()).status_code == 201
                for i in range(n["reads"]):
                    r = c.get(f"{server.url}/{fids[i % len(fids)]}")
                    assert r.status_code == 200 and r.content == fids[i % len(fids)].encode()
                for _ in range(n["rpcs"]):
                    assert call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid),
                                vs.VolumeStatusResponse).ok
        # every request the allocation (an rpc naming the volume, served by Go) and the traffic above
        want = {go_vid: {"requests_go": 1 + 5 + 23 + 3, "requests_native": 0},
                native_vid: {"requests_go": 1, "requests_native": 7 + 31 + 4}}

        def counts() -> dict[int, dict[str, int]]:
            doc = _volumes(server)
            return {vid: {k: _row(doc, vid)[k] for k in ("requests_go", "requests_native")}
                    for vid in want if any(r["volume"] == vid for r in doc["evidence"])}

        wait_until(lambda: counts() == want, what=f"the per-volume counts to be {want} (workers report each second)")
        doc = _volumes(server)
        for vid in want:
            row = _row(doc, vid)
            assert (row["5xx"], row["samples"], row["window_s"]) == (0, 0, 600), row
            assert row["owner"] == ("native" if vid == native_vid else "go")
            assert row["requests"] == want[vid]["requests_go"] + want[vid]["requests_native"]
        out = subprocess.run([_weedpy(), "cutover", "status", "-json", f"-server=127.0.0.1:{server.port}"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out
        rows = {r["volume"]: r for r in json.loads(out.stdout)["volumes"]["evidence"]}
        assert {vid: {k: rows[vid][k] for k in ("requests_go", "requests_native")} for vid in want} == want
        out = subprocess.run([_weedpy(), "cutover", "status", f"-server=127.0.0.1:{server.port}"],
                             capture_output=True, text=True, timeout=30)
        assert re.search(rf"^{native_vid}\s+native\s+600s\s+43\s+0/42\s+0/1\s+0\s+0\s+0$", out.stdout, re.M), out.stdout
        assert re.search(rf"^{go_vid}\s+go\s+600s\s+32\s+0/0\s+0/32\s", out.stdout, re.M), out.stdout
        e = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        for vid, sides in want.items():
            for side in ("go", "native"):
                assert e.value("weedpy_volume_requests_total", volume=str(vid), side=side) == sides[f"requests_{side}"]
        assert e.value("weedpy_volume_owner", volume=str(native_vid), owner="native") == 1
        assert e.value("weedpy_volume_owner", volume=str(go_vid), owner="go") == 1
        assert e.label_names("weedpy_volume_requests_total") == {frozenset({"volume", "side"})}
    finally:
        server.stop()


class Load:
    """Writers and readers of the faulty volume (every answer 201/200 with the right bytes, or a
    500 for a read before the rollback) and of the healthy one (every answer right)."""

    def __init__(self, server: VolumeProc, fresh: bool) -> None:
        self.server = server
        self.headers = {"Connection": "close"} if fresh else {}
        self.acked: dict[str, bytes] = {}
        self.failures: list[str] = []
        self.faulty_reads: dict[int, int] = {}  # status -> count
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(vid, n), daemon=True)
                         for vid in (FAULTY, HEALTHY) for n in range(2)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, vid: int, n: int) -> None:
        mine: list[str] = []
        i = 0
        with httpx.Client(timeout=60, headers=self.headers) as c:
            while not self._stop.is_set():
                i += 1
                try:
                    if i % 3 == 1 or not mine:
                        fid = _fid(vid, (n + 1) << 20 | i)
                        body = f"volume {vid} thread {n} write {i}".encode()
                        r = c.put(f"{self.server.url}/{fid}", content=body)
                        if r.status_code != 201:
                            self.failures.append(f"PUT {fid}: {r.status_code} {r.text[:200]}")
                            continue
                        with self._lock:
                            self.acked[fid] = body
                        mine.append(fid)
                        continue
                    fid = mine[i % len(mine)]
                    r = c.get(f"{self.server.url}/{fid}")
                    if vid == FAULTY:
                        with self._lock:
                            self.faulty_reads[r.status_code] = self.faulty_reads.get(r.status_code, 0) + 1
                        if r.status_code == 500:
                            continue
                    if r.status_code != 200 or r.content != self.acked[fid]:
                        self.failures.append(f"GET {fid}: {r.status_code} {r.content[:100]!r}")
                except Exception as exc:  # noqa: BLE001 - every failed request counts
                    self.failures.append(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_native_volume_is_rolled_back_to_go(tmp_path: Path, master: MasterProc, workers: int) -> None:
    data = tmp_path / "data"
    metrics_port = free_port()
    server = _start(tmp_path, master, data, "max_5xx_pct = 20, window_s = 30, min_samples = 10", workers,
                    metrics_port, env={TEST_FAULT_ENV: f"5xx:volume:{FAULTY}"})
    url = f"127.0.0.1:{server.port}"
    try:
        for vid in (FAULTY, HEALTHY):
            allocate_volume(server, vid)
            move_volume(server, vid, "native")
        assert _volumes(server)["native"] == [FAULTY, HEALTHY]
        with Load(server, fresh=workers > 1) as load:
            wait_until(lambda: FAULTY not in _volumes(server)["native"], timeout=HANG_GUARD_S,
                       what="the faulty volume to be rolled back")
            served = sum(load.faulty_reads.values())
            wait_until(lambda: sum(load.faulty_reads.values()) >= served + 20, what="reads of it after the rollback")
        assert not load.failures, load.failures[:10]
        assert set(load.faulty_reads) == {200, 500} and load.faulty_reads[500] >= 10, load.faulty_reads
        doc = _volumes(server)
        assert doc["native"] == [HEALTHY]  # the other native volume stays
        [rb] = doc["rollbacks"]
        assert (rb["volume"], rb["from"], rb["to"], rb["by"]) == (FAULTY, "native", "go", "auto_rollback")
        # moved on the evidence of the rule's window: at least min_samples native answers in the last 30 s
        m = re.fullmatch(r"5xx answers from native (\d+)/(\d+) = [0-9.]+% over 30s > 20%", rb["reason"])
        assert m is not None and int(m[2]) >= 10 and int(m[1]) * 5 > int(m[2]), rb
        assert doc["rollbacks_total"] == 1 and doc["auto_rollback"]["max_5xx_pct"] == 20
        faulty, healthy = _row(doc, FAULTY), _row(doc, HEALTHY)
        assert faulty["owner"] == "go" and faulty["rolled_back"] and faulty["5xx_native"] >= 10, faulty
        assert faulty["requests_go"] > 0 and faulty["5xx_go"] == 0, faulty
        assert healthy["owner"] == "native" and not healthy["rolled_back"], healthy
        assert healthy["requests_native"] > 0 and healthy["5xx_native"] == 0, healthy
        assert [(mv["vid"], mv["to"], mv["by"]) for mv in doc["moves"] if mv["by"] == "auto_rollback"] == [
            (FAULTY, "go", "auto_rollback")]

        # every acknowledged write of the volume reads back from Go, which owns its files again
        assert not list((data / NATIVE_FOLDER).glob(f"{FAULTY}.*")) and (data / f"{FAULTY}.dat").exists()
        with httpx.Client(timeout=30) as c:
            bad = [fid for fid, body in load.acked.items()
                   if (r := c.get(f"{server.url}/{fid}")).status_code != 200 or r.content != body]
        assert not bad, f"{len(bad)} acknowledged writes not readable: {bad[:5]}"
        assert sum(fid.startswith(f"{FAULTY},") for fid in load.acked) > 10

        e = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert e.value("weedpy_volume_rollbacks_total", volume=str(FAULTY)) == 1
        assert e.value("weedpy_volume_rollbacks_total", volume=str(HEALTHY)) == 0
        assert e.value("weedpy_volume_5xx_total", volume=str(FAULTY), side="native") >= 10
        assert e.value("weedpy_volume_5xx_total", volume=str(HEALTHY), side="native") == 0
        assert e.value("weedpy_volume_owner", volume=str(FAULTY), owner="go") == 1
        assert e.value("weedpy_volume_owner", volume=str(HEALTHY), owner="native") == 1

        out = subprocess.run([_weedpy(), "cutover", "status", f"-server={url}"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out
        assert re.search(rf"^{FAULTY}\s+go \(rolled back\)\s", out.stdout, re.M), out.stdout
        assert re.search(rf"^{HEALTHY}\s+native\s", out.stdout, re.M), out.stdout
        assert re.search(rf"^volume rolled back .*: volume {FAULTY} native -> go: 5xx answers from native", out.stdout,
                         re.M), out.stdout
        out = subprocess.run([_weedpy(), "cutover", "status", "-json", f"-server={url}"], capture_output=True,
                             text=True, timeout=30)
        assert json.loads(out.stdout)["volumes"]["rollbacks_total"] == 1

        events = log_events(server.proc.log_path)
        rolled = [e for e in events if e.get("event") == "volume rolled back"]
        assert [(e["volume"], e["by"]) for e in rolled] == [(FAULTY, "auto_rollback")], rolled
        assert rolled[0]["reason"] == rb["reason"]
        assert any(e.get("event") == "volume moved" and e.get("by") == "auto_rollback" and e.get("vid") == FAULTY
                   for e in events)
    finally:
        server.stop()


def test_the_volumes_rule_changes_live(tmp_path: Path, master: MasterProc) -> None:
    """Without a `[volumes]` rule a failing volume stays where it is; the rule added by SIGHUP
    takes it back to Go; a broken rule is refused naming `[volumes]`; `null` removes the rule."""
    metrics_port = free_port()
    table = tmp_path / "routes.toml"
    table.write_text('version = "live-1"\ndefault = "go"\n')
    server = start_weedpy_volume(tmp_path, master, data_dir=tmp_path / "data",
                                 env=clean_env({TEST_FAULT_ENV: f"5xx:volume:{FAULTY}"}),
                                 extra=["-mode=mixed", f"-routes={table}", f"-metricsPort={metrics_port}"])
    try:
        allocate_volume(server, FAULTY)
        move_volume(server, FAULTY, "native")
        fid = _fid(FAULTY, 1)
        with httpx.Client(timeout=30) as c:
            assert c.put(f"{server.url}/{fid}", content=b"kept").status_code == 201
            assert [c.get(f"{server.url}/{fid}").status_code for _ in range(30)] == [500] * 30
            wait_until(lambda: _row(_volumes(server), FAULTY)["5xx_native"] == 30, what="the evidence")
            time.sleep(3)  # the volumes are checked once a second: with no rule, the volume stays
            assert _volumes(server)["native"] == [FAULTY] and _volumes(server)["rollbacks"] == []

            r = c.patch(f"{server.url}/weedpy/routes", json={"volumes": {"auto_rollback": {"max_5xx_pct": 200}}})
            assert r.status_code == 400 and "[volumes] auto_rollback: max_5xx_pct" in r.json()["error"], r.text
            table.write_text('version = "live-2"\ndefault = "go"\n[volumes]\n'
                             'auto_rollback = { max_5xx_pct = 50, window_s = 600, min_samples = 10 }\n')
            server.proc.popen.send_signal(signal.SIGHUP)
            wait_until(lambda: _volumes(server)["native"] == [], what="the rollback once the rule is in force")
            r = c.get(f"{server.url}/{fid}")
            assert r.status_code == 200 and r.content == b"kept"
            [rb] = _volumes(server)["rollbacks"]
            assert rb["volume"] == FAULTY and rb["reason"].startswith("5xx answers from native 30/31 = 96.77% over 600s")
            r = c.patch(f"{server.url}/weedpy/routes", json={"volumes": None})
            assert r.status_code == 200, r.text
            doc = httpx.get(f"{server.url}/weedpy/routes", timeout=10).json()
            assert "volumes" not in doc["table"] and doc["volumes"]["auto_rollback"] is None
        events = log_events(server.proc.log_path)
        changes = [e for e in events if e.get("event") == "route table changed"]
        assert [c["by"] for c in changes][:1] == ["sighup"] and any(
            m.startswith("[volumes] auto_rollback: none -> ") for m in changes[0]["moved"]), changes
    finally:
        server.stop()
