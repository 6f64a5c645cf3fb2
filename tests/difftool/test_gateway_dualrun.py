"""`weedpy volume -mode=mixed` with shadow routes, as a real process: the master grows volumes through
the front (AllocateVolume reaches both stores), uploads/reads/deletes go through the front, the admin
API and `weedpy diff report` expose the comparisons, and after a clean stop the Go and native data
directories hold the same needles. Stores that start different refuse to start."""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from difftool._stores import compare_stores
from difftool.cli import main as diff_main
from native.storage import Store
from tests.support.procs import MasterProc, clean_env, free_port, free_port_pair, start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume, weedpy_volume_argv

pytestmark = pytest.mark.slow

TABLE = """
version = "dual-1"
default = "go"
[routes]
"admin.read" = { target = "shadow", sample_pct = 100 }
"admin.status" = "shadow"
"/volume_server_pb.VolumeServer/VolumeStatus" = "shadow"
"""


@pytest.fixture()
def master(tmp_path: Path):
    m = start_master(tmp_path / "m")
    yield m
    m.stop()


@pytest.mark.parametrize("control", [False, True], ids=["no-control", "control"])
def test_mixed_mode_dual_run(tmp_path: Path, master: MasterProc, control: bool) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(TABLE)
    go_dir, native_dir, control_dir = tmp_path / "go", tmp_path / "py", tmp_path / "gc"
    extra = ["-mode=mixed", f"-routes={routes}", f"-dir.native={native_dir}"]
    if control:
        extra.append(f"-dir.control={control_dir}")
    server = start_weedpy_volume(tmp_path, master, data_dir=go_dir, extra=extra)
    try:
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        r = httpx.get(f"{master.url}/vol/grow", params={"count": 2, "replication": "000"}, timeout=30)
        assert r.status_code == 200, r.text
        fids = []
        with httpx.Client(timeout=30) as c:
            for i in range(6):
                a = c.get(f"{master.url}/dir/assign").json()
                body = (b"payload %d " % i) * (50 * (i + 1))
                up = c.post(f"http://{a['url']}/{a['fid']}", files={"file": (f"f{i}.txt", body, "text/plain")})
                assert up.status_code == 201, up.text
                fids.append((a["fid"], body))
            for fid, body in fids:
                got = c.get(f"{server.url}/{fid}")
                assert got.status_code == 200 and got.content == body  # the client gets Go's answer
                c.head(f"{server.url}/{fid}")
            assert c.delete(f"{server.url}/{fids[0][0]}").status_code == 202
            assert c.get(f"{server.url}/{fids[0][0]}").status_code == 404
            c.get(f"{server.url}/status")
            deadline = time.monotonic() + 30  # the comparisons run after the answers
            while True:
                report = c.get(f"{server.url}/weedpy/diff").json()
                eps = {e["endpoint"]: e for e in report["endpoints"]}
                reads = eps.get("admin.read", {})
                done = (eps.get("admin.delete", {}).get("compared") and report["stores"]["mirror_pending"] == 0
                        and reads.get("compared", 0) + reads.get("dropped", 0) >= 13)
                if done or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        topo = httpx.get(f"{master.url}/dir/status", timeout=10).json()["Topology"]
        nodes = [n["Url"] for dc in topo["DataCenters"] for rack in dc["Racks"] for n in rack["DataNodes"] or ()]
        out = tmp_path / "report"
        rc = diff_main(["report", "--from", server.url, "--out", str(out / "report.json"), "--html",
                        str(out / "report.html"), "--junit", str(out / "junit.xml"), "--fixtures", str(out / "fixtures")])
        assert rc in (0, 1)
        assert ET.fromstring((out / "junit.xml").read_bytes()).find("testsuite") is not None
    finally:
        assert server.stop() == 0
    eps = {e["endpoint"]: e for e in report["endpoints"]}
    assert report["meta"]["routes_v"] == "dual-1" and report["meta"]["mirroring"] is True
    assert eps["/volume_server_pb.VolumeServer/AllocateVolume"]["compared"] == 2  # the master's grow, mirrored
    assert eps["admin.write"]["compared"] == 6 and eps["admin.delete"]["compared"] == 1
    # every read was compared, unless the paced comparisons fell behind on a loaded machine and a
    # later write overtook them (dropped and counted as such, never silently)
    read = eps["admin.read"]
    assert read["compared"] + read["dropped"] >= 13 and set(read["dropped_by_reason"]) <= {"overtaken"}
    assert read["compared"] >= 6
    assert report["stores"]["diverged_writes"] == 0
    stores = compare_stores(go_dir, native_dir)
    assert stores.equal and stores.volumes == 2 and stores.needles == 5, stores.differences
    assert report["meta"]["control"] is control
    if control:  # the second Go got every write and answered every compared request
        assert compare_stores(go_dir, control_dir, names=("go", "go-control")).equal
        assert eps["admin.read"]["control_compared"] == eps["admin.read"]["compared"]
        assert eps["admin.write"]["control_compared"] == 6
        assert nodes == [f"127.0.0.1:{server.port}"], nodes  # the control never joined the cluster


def test_stores_that_differ_refuse_to_start(tmp_path: Path, master: MasterProc) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(TABLE)
    go_dir, native_dir = tmp_path / "go", tmp_path / "py"
    go_dir.mkdir()
    store = Store.open([str(native_dir)], max_counts=4)
    store.allocate_volume(5)
    store.close()
    port, grpc_port = free_port_pair()
    argv = weedpy_volume_argv(port=port, grpc_port=grpc_port, public_port=port, data_dir=go_dir, master=master.address,
                              extra=["-mode=mixed", f"-routes={routes}", f"-dir.native={native_dir}"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert done.returncode == 1
    assert "volume 5 only in native" in done.stderr and "start both empty" in done.stderr
    argv = weedpy_volume_argv(port=free_port(), grpc_port=free_port(), public_port=port, data_dir=go_dir,
                              master=master.address, extra=["-mode=mixed", f"-routes={routes}"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert done.returncode == 1 and "-dir.native" in done.stderr
