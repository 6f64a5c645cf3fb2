"""Mixed mode with worker processes (-workers=2), as real processes: writes (Go's) and native reads
over fresh connections, so they land on either process, never give a stale answer; a route
change reaches both processes before it is acknowledged; a worker killed is replaced by one that
reaches the leader's native side; the loopback hop to the leader listens
on 127.0.0.1 only and serves nobody without its token; the differ's dual-run mirrors the writes
of every process in order."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from difftool._stores import compare_stores
from proto import volume_server_pb2 as vs
from tests.native_core.support import call
from tests.support.logs import log_events
from tests.support.waiting import wait_until
from tests.support.process_tree import alive, serving_worker, worker_pids
from tests.support.procs import MasterProc, VolumeProc, start_master
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.serve.routes import native_share

pytestmark = pytest.mark.slow

VID = 7
FOLLOWER = """version = "mw-1"
default = "go"
[routes]
"admin.read" = "native"
"admin.status" = "native"
"""
FRESH = {"Connection": "close"}  # each request on a new connection: whichever process accepts it serves it


@pytest.fixture()
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "m")
    yield m
    m.stop()


@pytest.fixture()
def server(tmp_path: Path, master: MasterProc) -> Iterator[VolumeProc]:
    table = tmp_path / "routes.toml"
    table.write_text(FOLLOWER)
    s = start_weedpy_volume(tmp_path, master, extra=["-mode=mixed", f"-routes={table}", "-workers=2"])
    try:
        wait_until(lambda: any(e.get("event") == "worker ready" for e in log_events(s.proc.log_path)), what="the worker")
        assert call(s.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                    vs.AllocateVolumeResponse).ok
        yield s
    finally:
        s.stop()


def _fid(k: int) -> str:
    return f"{VID},{k:x}{0x3a7e0000 + k:08x}"


def test_writes_and_native_reads_on_fresh_connections_are_never_stale(server: VolumeProc) -> None:
    url, rounds = server.url, 300
    stale: list[str] = []
    for k in range(1, rounds + 1):
        fid, body = _fid(k), b"round %d " % k * (k % 7 + 1)
        w = httpx.put(f"{url}/{fid}", content=body, headers=FRESH, timeout=30)
        assert w.status_code == 201, w.text
        r = httpx.get(f"{url}/{fid}", headers=FRESH, timeout=30)  # native, right after Go acknowledged
        if r.status_code != 200 or r.content != body:
            stale.append(f"read {fid}: {r.status_code} {r.content[:60]!r}")
        if k % 3 == 0:
            assert httpx.delete(f"{url}/{fid}", headers=FRESH, timeout=30).status_code == 202
            r = httpx.get(f"{url}/{fid}", headers=FRESH, timeout=30)
            if r.status_code != 404:
                stale.append(f"read after delete {fid}: {r.status_code}")
    st = httpx.get(f"{url}/status", headers=FRESH, timeout=30).json()
    vol = next(v for v in st["Volumes"] if v["Id"] == VID)
    assert stale == [], stale[:10]
    assert (vol["FileCount"], vol["DeleteCount"]) == (rounds, rounds // 3)

    [worker] = worker_pids(server.proc.pid)
    def reads() -> list[dict]:
        return [e for e in log_events(server.proc.log_path) if e.get("event") == "http" and e.get("route") == "admin.read"]

    wait_until(lambda: len(reads()) == rounds + rounds // 3, what="every read logged")
    by_process = {e["worker"] for e in reads()}
    assert by_process == {0, 1}, by_process  # both processes served native reads
    assert all(e["target"] == "native" and e["routes_v"] == "mw-1" for e in reads())
    # a worker's native reads reach the leader over the hop, logged there with the worker's decision
    from_worker = [e for e in reads() if e["worker"] == 1]

    def hops() -> list[dict]:
        return [e for e in log_events(server.proc.log_path) if e.get("event") == "hop"]

    wait_until(lambda: len([e for e in hops() if e["route"] == "admin.read"]) == len(from_worker),
              what="a hop line for each read a worker took")
    hopped = hops()
    assert all(e["worker"] == 0 and e["from_worker"] == 1 and e["target"] == "native" and e["routes_v"] == "mw-1"
               for e in hopped)
    writes = [e for e in log_events(server.proc.log_path) if e.get("event") == "http" and e.get("route") == "admin.write"]
    assert {e["worker"] for e in writes} == {0, 1} and {e["target"] for e in writes} == {"go"}
    assert worker_pids(server.proc.pid) == [worker]  # no worker was replaced


def test_a_route_change_reaches_both_processes_before_it_is_acknowledged(server: VolumeProc) -> None:
    url = server.url
    files = {_fid(1000 + k): b"file %d" % k for k in range(60)}
    for fid, body in files.items():
        assert httpx.put(f"{url}/{fid}", content=body, headers=FRESH, timeout=30).status_code == 201
    phases = [  # (how the change is made, the version it installs, the target admin.read has then)
        ("api", "mw-2", "go"),
        ("sighup", "mw-3", "native"),
        ("api", "mw-4", "native 50%"),
    ]
    table = server.data_dir.parent / "routes.toml"
    seen: dict[str, list[str]] = {}
    for how, version, target in phases:
        if how == "api":
            route: object = "go" if target == "go" else {"target": "native", "native_pct": 50}
            r = httpx.patch(f"{url}/weedpy/routes", json={"version": version, "routes": {"admin.read": route}},
                            headers=FRESH, timeout=60)
            assert r.status_code == 200 and r.json()["version"] == version, r.text
        else:  # the leader reads the -routes file again; it shows the version once every process serves it
            table.write_text(FOLLOWER.replace('"mw-1"', f'"{version}"'))
            os.kill(server.proc.pid, signal.SIGHUP)
            wait_until(lambda v=version: httpx.get(f"{url}/weedpy/routes", headers=FRESH, timeout=30).json()["version"] == v,
                      what=f"{version} after SIGHUP")
        names = list(files)[len(seen) * 20:(len(seen) + 1) * 20]  # files read only after this change
        seen[version] = names
        for _ in range(2):
            for fid in names:
                got = httpx.get(f"{url}/{fid}", headers=FRESH, timeout=30)
                assert got.status_code == 200 and got.content == files[fid]

    def reads() -> list[dict]:
        return [e for e in log_events(server.proc.log_path) if e.get("event") == "http" and e.get("route") == "admin.read"]

    def hops() -> list[dict]:
        return [e for e in log_events(server.proc.log_path) if e.get("event") == "hop" and e.get("route") == "admin.read"]

    wait_until(lambda: len(reads()) == 2 * 60, what="every read logged")
    hopped = len([e for e in reads() if e["worker"] == 1 and e["target"] == "native"])
    wait_until(lambda: len(hops()) == hopped, what="a hop line for each native read a worker took")
    for version, names in seen.items():
        lines = [e for e in reads() if e["path"].strip("/") in names]
        assert {e["routes_v"] for e in lines} == {version}, (version, {e["routes_v"] for e in lines})
        assert {e["worker"] for e in lines} == {0, 1}, version  # both processes on the new table
        for e in lines:
            want = {"mw-2": "go", "mw-3": "native"}.get(version) or (
                "native" if native_share(e["path"].encode()) < 50 else "go")
            assert e["target"] == want, e
        # the leader served the worker's native reads on the worker's decision, and says so
        assert all(e["routes_v"] == version and e["target"] == "native" and e["from_worker"] == 1
                   for e in hops() if e["path"].strip("/") in names)
    changed = [(e["version"], e["by"]) for e in log_events(server.proc.log_path) if e.get("event") == "route table changed"]
    assert [v for v, _ in changed] == ["mw-2", "mw-3", "mw-4"], changed
    assert changed[1][1] == "sighup" and changed[0][1].startswith("api ") and changed[2][1].startswith("api ")


def test_a_dead_worker_is_replaced_and_the_replacement_reaches_the_leader(server: VolumeProc) -> None:
    url, log_path = server.url, server.proc.log_path
    files = {_fid(3000 + k): b"kept %d" % k for k in range(40)}
    for fid, body in files.items():
        assert httpx.put(f"{url}/{fid}", content=body, headers=FRESH, timeout=30).status_code == 201
    worker = serving_worker(server.proc.pid, log_path)
    os.kill(worker, signal.SIGKILL)
    replacement = serving_worker(server.proc.pid, log_path, exclude=frozenset({worker}))
    assert not alive(worker)
    before = len([e for e in log_events(log_path) if e.get("event") == "hop"])

    def read_all() -> bool:  # until the replacement took some: it has the hop's address and token too
        for fid, body in files.items():
            r = httpx.get(f"{url}/{fid}", headers=FRESH, timeout=30)
            assert r.status_code == 200 and r.content == body
        return len([e for e in log_events(log_path) if e.get("event") == "hop"]) > before

    wait_until(read_all, timeout=60, what="native reads from the replacement reaching the leader")
    assert alive(replacement) and worker_pids(server.proc.pid) == [replacement]


def test_the_hop_listens_on_loopback_and_serves_only_its_workers(server: VolumeProc) -> None:
    [listening] = [e for e in log_events(server.proc.log_path) if e.get("event") == "hop listening"]
    host, port = listening["host"], listening["port"]
    assert host == "127.0.0.1" and listening["worker"] == 0
    # bound to the loopback address itself (not 0.0.0.0): /proc lists the listener as 127.0.0.1
    bound = [line.split()[1] for line in Path(f"/proc/{server.proc.pid}/net/tcp").read_text().splitlines()[1:]
             if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]
    assert bound == [f"0100007F:{port:04X}"], bound
    fid = _fid(5000)
    assert httpx.put(f"{server.url}/{fid}", content=b"secret", timeout=30).status_code == 201
    hop = f"http://127.0.0.1:{port}/{fid}"
    for headers in ({}, {"X-Weedpy-Hop": "0" * 32 + ";1;admin;native;127.0.0.1;x"}, {"X-Weedpy-Hop": "junk"}):
        r = httpx.get(hop, headers=headers, timeout=30)
        assert r.status_code == 403 and b"secret" not in r.content, (headers, r.status_code)
    # a client cannot smuggle a hop header through the front either: it is replaced by the worker's
    for _ in range(10):
        r = httpx.get(f"{server.url}/{fid}", headers={**FRESH, "X-Weedpy-Hop": "junk"}, timeout=30)
        assert r.status_code == 200 and r.content == b"secret"
    wait_until(lambda: len([e for e in log_events(server.proc.log_path)
                           if e.get("event") == "hop refused: no valid token"]) == 3, what="3 refusals logged")


def test_dual_run_mirrors_the_writes_of_every_process(tmp_path: Path, master: MasterProc) -> None:
    table = tmp_path / "routes.toml"
    table.write_text('version = "mw-dual"\ndefault = "go"\n[routes]\n'
                     '"admin.read" = { target = "shadow", sample_pct = 100 }\n"admin.status" = "shadow"\n')
    go_dir, native_dir = tmp_path / "go", tmp_path / "py"
    s = start_weedpy_volume(tmp_path, master, data_dir=go_dir,
                            extra=["-mode=mixed", f"-routes={table}", f"-dir.native={native_dir}", "-workers=2"])
    try:
        wait_until(lambda: any(e.get("event") == "worker ready" for e in log_events(s.proc.log_path)), what="the worker")
        assert call(s.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                    vs.AllocateVolumeResponse).ok
        for k in range(1, 81):
            fid, body = _fid(k), b"dual %d" % k
            assert httpx.put(f"{s.url}/{fid}", content=body, headers=FRESH, timeout=30).status_code == 201
            r = httpx.get(f"{s.url}/{fid}", headers=FRESH, timeout=30)
            assert r.status_code == 200 and r.content == body
            if k % 4 == 0:
                assert httpx.delete(f"{s.url}/{fid}", headers=FRESH, timeout=30).status_code == 202
        reports = [httpx.get(f"{s.url}/weedpy/diff", headers=FRESH, timeout=30) for _ in range(10)]
        assert {r.status_code for r in reports} == {200}
        wait_until(lambda: httpx.get(f"{s.url}/weedpy/diff", timeout=30).json()["stores"]["mirror_pending"] == 0,
                  what="the mirror lane")
        report = httpx.get(f"{s.url}/weedpy/diff", timeout=30).json()
    finally:
        assert s.stop() == 0
    eps = {e["endpoint"]: e for e in report["endpoints"]}
    assert eps["admin.write"]["compared"] == 80 and eps["admin.delete"]["compared"] == 20
    assert report["stores"]["diverged_writes"] == 0
    stores = compare_stores(go_dir, native_dir)
    assert stores.equal and stores.needles == 60, stores.differences
    events = log_events(s.proc.log_path)
    writes = [e for e in events if e.get("event") == "http" and e.get("route") == "admin.write"]
    assert {e["worker"] for e in writes} == {0, 1}  # both processes took writes
    assert {e["worker"] for e in events if e.get("event") == "hop"} == {0}  # the differ is the leader's
    assert any(e.get("event") == "hop" and e.get("from_worker") == 1 and e["route"] == "admin.write" for e in events)
