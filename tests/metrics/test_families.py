"""The metrics port against Go's: the bundled `weed volume -metricsPort` and weedpy's native mode
(two worker processes) serve the same workload in the same run; their `SeaweedFS_volumeServer_*`
families (names, types, label names) must be the same, and the values mean the same things."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.metrics.support import Exposition, Workload, scrape, wait_for, workload
from tests.support.process_tree import serving_worker, worker_pids
from tests.support.procs import MasterProc, free_port, start_go_volume, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume

pytestmark = pytest.mark.slow

NS = "SeaweedFS_volumeServer_"
# Go counts a heartbeat stream that fails; whether its first one does depends on timing.
TIMING = {NS + "master_disconnections"}


def _request(e: Exposition, kind: str, code: int) -> float:
    return e.value(NS + "request_total", type=kind, code=str(code))


def _check_meaning(e: Exposition, w: Workload, who: str) -> None:
    not_found = w.missing + w.mismatched + w.deleted_reads
    assert _request(e, "GET", 200) == w.reads, who
    assert _request(e, "HEAD", 200) == w.heads, who
    assert _request(e, "GET", 404) == not_found, who
    assert _request(e, "POST", 201) == w.uploads, who
    assert _request(e, "DELETE", 202) == w.deletes, who
    assert e.value(NS + "request_seconds_count", type="GET") == w.reads + not_found, who
    assert e.value(NS + "file_read_failures") == not_found, who
    assert e.value(NS + "file_read_invalid_needles") == w.missing, who
    assert e.value(NS + "handler_total", type="errorGetNotFound") == not_found, who
    assert e.value(NS + "in_flight_requests", type="GET") == 0, who
    assert e.value(NS + "request_seconds_count", type="writeToLocalDisk") == w.uploads, who
    assert e.value(NS + "replication_targets_count") == w.uploads + w.deletes, who  # no replicas: observed as 0
    assert e.value(NS + "replication_targets_sum") == 0, who
    assert e.value(NS + "max_volumes") == 16, who
    assert e.value(NS + "total_disk_size", collection=w.collection, type="normal") > 0, who


def test_native_serves_go_families(tmp_path: Path, master: MasterProc) -> None:
    go_metrics, native_metrics = free_port(), free_port()
    go = start_go_volume(tmp_path, master, name="go", extra=[f"-metricsPort={go_metrics}", "-dataCenter=dc-go"])
    native = start_weedpy_volume(tmp_path, master, name="native", extra=[
        "-mode=native", "-workers=2", f"-metricsPort={native_metrics}", "-dataCenter=dc-native"])
    try:
        wait_for_volume_server(master, f"127.0.0.1:{go.port}")
        wait_for_volume_server(master, f"127.0.0.1:{native.port}")
        w_go = workload(master.url, "dc-go")
        w_native = workload(master.url, "dc-native", reads=12)  # enough connections to reach both workers
        go_url, native_url = f"http://127.0.0.1:{go_metrics}/metrics", f"http://127.0.0.1:{native_metrics}/metrics"
        # Go sets the disk size and read-only gauges when it collects a heartbeat (every few seconds)
        wait_for(lambda: scrape(go_url).value(NS + "total_disk_size", collection="dc-go", type="deleted_bytes") > 0,
                 30, "Go never counted the deleted bytes")
        go_e, native_e = scrape(go_url), scrape(native_url)

        go_families = {k: v for k, v in go_e.described(NS).items() if k not in TIMING}
        native_families = {k: v for k, v in native_e.described(NS).items() if k not in TIMING}
        assert native_families == go_families
        for name in TIMING & set(native_e.types):  # when both have it, it is the same family
            if name in go_e.types:
                assert native_e.described(name)[name] == go_e.described(name)[name]
        assert native_e.described("SeaweedFS_build_info") == go_e.described("SeaweedFS_build_info")
        build = [labels for name, labels, _ in native_e.samples if name == "SeaweedFS_build_info"]
        assert build == [labels for name, labels, _ in go_e.samples if name == "SeaweedFS_build_info"]

        _check_meaning(go_e, w_go, "go")
        _check_meaning(native_e, w_native, "native")
        # the same number of volumes as Go holds for the same assignments (each in its own collection)
        assert go_e.value(NS + "volumes", collection="dc-go", type="volume") > 0
        assert (native_e.value(NS + "volumes", collection="dc-native", type="volume")
                == go_e.value(NS + "volumes", collection="dc-go", type="volume"))
        for reason in ("IsReadOnly", "noWriteOrDelete", "noWriteCanDelete", "isDiskSpaceLow"):
            assert native_e.value(NS + "read_only_volumes", collection="dc-native", type=reason) == 0
        assert (native_e.value(NS + "total_disk_size", collection="dc-native", type="deleted_bytes")
                == go_e.value(NS + "total_disk_size", collection="dc-go", type="deleted_bytes") > 0)
        # the disk each names as -dir gave it
        assert {ls["name"] for n, ls, _ in native_e.samples if n == NS + "resource"} == {str(native.data_dir)}
        assert "process_cpu_seconds_total" in native_e.types and "python_info" in native_e.types
        assert "go_goroutines" in go_e.types  # each runtime's own families beside the server's

        # the Go-compatible odds and ends of the endpoint: 404 elsewhere, gzip when asked
        other = httpx.get(f"http://127.0.0.1:{native_metrics}/", timeout=10)
        assert (other.status_code, other.text) == (404, "404 page not found\n")
        zipped = httpx.get(native_url, headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert zipped.headers.get("content-encoding") == "gzip" and b"# TYPE" in zipped.content
    finally:
        native.stop()
        go.stop()


def test_counts_from_every_worker(tmp_path: Path, master: MasterProc) -> None:
    """-workers=3: reads served by any process count once each, and keep counting in the totals
    after the worker that served them is replaced."""
    port = free_port()
    server = start_weedpy_volume(tmp_path, master, name="workers", extra=[
        "-mode=native", "-workers=3", f"-metricsPort={port}", "-dataCenter=dc-workers"])
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        a = httpx.get(f"{master.url}/dir/assign", params={"dataCenter": "dc-workers", "collection": "dc-workers"}, timeout=30).json()
        node = a["url"]
        assert httpx.post(f"http://{node}/{a['fid']}", files={"file": ("a", b"x")}, timeout=30).status_code == 201
        reads = 40
        for _ in range(reads):
            with httpx.Client() as c:  # a connection each: the kernel hands them to every process
                assert c.get(f"http://{node}/{a['fid']}", timeout=30).status_code == 200
        before = scrape(url)
        assert _request(before, "GET", 200) == reads
        # a worker that is killed is replaced; what it counted (it answered the scrape) stays
        leader = server.proc.pid
        workers = worker_pids(leader)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        serving_worker(leader, server.proc.log_path, exclude=frozenset(workers))
        for _ in range(5):
            with httpx.Client() as c:
                assert c.get(f"http://{node}/{a['fid']}", timeout=30).status_code == 200
        after = scrape(url)
        assert _request(after, "GET", 200) == reads + 5
    finally:
        server.stop()
