"""The metrics port in proxy and mixed modes: the Go backend's families (scraped from its private
port) followed by the gateway's own weedpy_* families, counted over every process."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from tests.metrics.support import Exposition, scrape, wait_for, workload
from tests.support.process_tree import child_with, worker_pids
from tests.support.procs import MasterProc, PortTaken, free_port, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume

pytestmark = pytest.mark.slow

NS = "SeaweedFS_volumeServer_"


def _http(e: Exposition, route: str, target: str, code: int) -> float:
    return e.value("weedpy_http_requests_total", route=route, target=target, code=str(code))


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_proxy_serves_the_backends_families_and_its_own(tmp_path: Path, master: MasterProc) -> None:
    port = free_port()
    server = start_weedpy_volume(tmp_path, master, name="proxy", extra=[
        "-mode=proxy", "-workers=2", f"-metricsPort={port}", "-dataCenter=dc-proxy"])
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        leader = server.proc.pid
        assert len(worker_pids(leader)) == 1
        backend = child_with(leader, b"-metricsPort=")
        argv = _cmdline(backend)
        # the backend's families come from a private loopback port, not the operator's
        assert "-metricsIp=127.0.0.1" in argv and f"-metricsPort={port}" not in argv, argv

        w = workload(master.url, "dc-proxy", reads=12)
        e = scrape(url)
        assert len(e.type_lines) == len(set(e.type_lines)), "a family declared twice"
        # Go's own counts of what it served through the gateway
        not_found = w.missing + w.mismatched + w.deleted_reads
        assert e.value(NS + "request_total", type="GET", code="200") == w.reads
        assert e.value(NS + "request_total", type="GET", code="404") == not_found
        assert e.value(NS + "file_read_invalid_needles") == w.missing
        assert "go_goroutines" in e.types and "process_cpu_seconds_total" in e.types  # the backend's runtime
        # the gateway's, from both processes
        assert _http(e, "admin.read", "go", 200) == w.reads + w.heads
        assert _http(e, "admin.read", "go", 404) == not_found
        assert _http(e, "admin.write", "go", 201) == w.uploads
        assert _http(e, "admin.delete", "go", 202) == w.deletes
        assert e.value("weedpy_http_request_seconds_count", route="admin.read", target="go") == w.reads + w.heads + not_found
        alloc = e.value("weedpy_grpc_requests_total", route="/volume_server_pb.VolumeServer/AllocateVolume",
                        target="go", code="OK")
        assert alloc >= 1  # the master grew the collection through the gateway
        assert e.value("weedpy_backend_metrics_up") == 1
        assert e.value("weedpy_backend_restarts_total", backend="go") == 0
        assert e.value("weedpy_route_table_info", version="builtin") == 1
        assert "python_info" in e.types
        assert e.types["weedpy_http_requests_total"] == "counter"
        assert e.types["weedpy_http_request_seconds"] == "histogram"

        # the backend dies: the gateway restarts it and counts it; the counts so far stay
        os.kill(backend, signal.SIGKILL)
        wait_for(lambda: scrape(url).value("weedpy_backend_restarts_total", backend="go") == 1, 60,
                 "the restart was not counted")
        wait_for(lambda: scrape(url).value("weedpy_backend_metrics_up") == 1, 60, "the new backend's families")
        after = scrape(url)
        assert _http(after, "admin.read", "go", 200) == w.reads + w.heads
        assert after.value(NS + "request_total", type="GET", code="200") == 0  # a new Go process counts anew
    finally:
        server.stop()


ROUTES = """
default = "go"
[routes]
"admin.read" = "native"
"""


def test_mixed_counts_by_target(tmp_path: Path, master: MasterProc) -> None:
    port = free_port()
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    server = start_weedpy_volume(tmp_path, master, name="mixed", extra=[
        "-mode=mixed", f"-routes={routes}", f"-metricsPort={port}", "-dataCenter=dc-mixed"])
    try:
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        w = workload(master.url, "dc-mixed")
        e = scrape(f"http://127.0.0.1:{port}/metrics")
        not_found = w.missing + w.mismatched + w.deleted_reads
        assert _http(e, "admin.read", "native", 200) == w.reads + w.heads
        assert _http(e, "admin.read", "native", 404) == not_found
        assert _http(e, "admin.write", "go", 201) == w.uploads
        assert e.value(NS + "request_total", type="POST", code="201") == w.uploads  # Go's, for what Go served
        assert e.value(NS + "request_total", type="GET", code="200") == 0  # the reads were native's
        assert e.value("weedpy_route_table_info", version="routes.toml") == 1
        assert len(e.type_lines) == len(set(e.type_lines))
    finally:
        server.stop()


def test_metrics_port_taken(tmp_path: Path, master: MasterProc) -> None:
    """A metrics port that cannot be bound stops the start-up in one line (Go: glog.Fatal)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortTaken):  # it exits instead of serving (three tries, each on this port)
            start_weedpy_volume(tmp_path, master, name="taken", extra=["-mode=native", f"-metricsPort={port}"])
        log = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("taken-*.log"))
        assert f"cannot bind 127.0.0.1:{port}: Address already in use" in log
