"""Pushing to a Prometheus push gateway, differential against Go 4.48.

A real Go master started with `-metrics.address` (a small HTTP listener in this test stands for
the push gateway) and `-metrics.intervalSeconds=1` hands both to its volume servers. The bundled
Go `weed volume` and weedpy's native mode (no -metricsPort: pushing does not need the port) serve
the same workload; each must PUT its families to the group job=volumeServer, instance=its own
-ip:-port, again and again, and the `SeaweedFS_volumeServer_*` families pushed must be the same.
Go pushes the protobuf-delimited format, weedpy the text format; both are what a push gateway takes.
"""

from __future__ import annotations

import dataclasses
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.metrics.support import parse_exposition, wait_for, workload
from tests.support.procs import MasterProc, start_go_volume, start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume

pytestmark = pytest.mark.slow

NS = "SeaweedFS_volumeServer_"
TIMING = {NS + "master_disconnections"}  # Go counts a first failed heartbeat stream or not, by timing
HANG_GUARD_S = 90.0


@dataclasses.dataclass(frozen=True)
class Push:
    method: str
    path: str  # percent-decoded
    content_type: str
    body: bytes


class _Gateway(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pushes: list[Push] = []
        self.lock = threading.Lock()

    def by_instance(self, instance: str) -> list[Push]:
        with self.lock:
            return [p for p in self.pushes if p.path.endswith("/instance/" + instance)]


class _Handler(http.server.BaseHTTPRequestHandler):
    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: _Gateway = self.server  # type: ignore[assignment]
        with server.lock:
            server.pushes.append(Push(self.command, unquote(self.path), self.headers.get("Content-Type", ""), body))
        self.send_response(200)  # what a push gateway answers a PUT it took (Go accepts 200 and 202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gateway() -> Iterator[_Gateway]:
    gw = _Gateway()
    thread = threading.Thread(target=gw.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        gw.shutdown()
        gw.server_close()


@pytest.fixture(scope="module")
def pushing_master(tmp_path_factory: pytest.TempPathFactory, gateway: _Gateway) -> Iterator[MasterProc]:
    m = start_master(tmp_path_factory.mktemp("push-master"), extra=[
        f"-metrics.address=127.0.0.1:{gateway.server_address[1]}", "-metrics.intervalSeconds=1"])
    try:
        yield m
    finally:
        m.stop()


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def family_names(push: Push) -> set[str]:
    """The families in a push: TYPE lines of the text format, or field 1 (name) of each
    length-delimited io.prometheus.client.MetricFamily of Go's protobuf format."""
    if push.content_type.startswith("text/plain"):
        return set(parse_exposition(push.body.decode()).types)
    assert "delimited" in push.content_type, push.content_type
    names, i, data = set(), 0, push.body
    while i < len(data):
        size, i = _varint(data, i)
        msg, i = data[i:i + size], i + size
        j = 0
        while j < len(msg):
            tag, j = _varint(msg, j)
            field, wire = tag >> 3, tag & 7
            if wire == 2:
                n, j = _varint(msg, j)
                if field == 1:
                    names.add(msg[j:j + n].decode())
                    break
                j += n
            elif wire == 0:
                j = _varint(msg, j)[1]
            elif wire == 1:
                j += 8
            elif wire == 5:
                j += 4
            else:
                raise AssertionError(f"wire type {wire} in a MetricFamily")
    return names


def test_native_pushes_its_families_as_go_does(tmp_path: Path, pushing_master: MasterProc, gateway: _Gateway) -> None:
    master = pushing_master
    go = start_go_volume(tmp_path, master, name="go", extra=["-dataCenter=dc-go"])
    native = start_weedpy_volume(tmp_path, master, name="native", extra=["-mode=native", "-dataCenter=dc-native"])
    try:
        servers = {"go": go, "native": native}
        for server in servers.values():
            wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        instances = {name: f"127.0.0.1:{server.port}" for name, server in servers.items()}
        for name in servers:
            wait_for(lambda: len(gateway.by_instance(instances[name])) >= 2, HANG_GUARD_S, f"{name} never pushed twice")
        workload(master.url, "dc-go")
        workload(master.url, "dc-native")

        def families(name: str) -> set[str]:
            pushes = gateway.by_instance(instances[name])
            return {f for f in family_names(pushes[-1]) if f.startswith(NS)} - TIMING

        # Go sets some gauges when it collects a heartbeat (every few seconds): wait until a push of
        # Go's carries the workload, then until both push the same families (or say which differ)
        wait_for(lambda: {NS + "request_total", NS + "total_disk_size"} <= families("go"), HANG_GUARD_S,
                 "Go never pushed the workload")
        deadline = time.monotonic() + HANG_GUARD_S
        while families("native") != families("go") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert families("native") == families("go"), families("native") ^ families("go")
        for name, instance in instances.items():
            pushes = gateway.by_instance(instance)
            assert {p.method for p in pushes} == {"PUT"}, (name, {p.method for p in pushes})
            assert {p.path for p in pushes} == {f"/metrics/job/volumeServer/instance/{instance}"}, name
        def latest_native():
            push = gateway.by_instance(instances["native"])[-1]
            assert push.content_type.startswith("text/plain; version=0.0.4"), push.content_type
            return parse_exposition(push.body.decode())

        # the values are the server's: a push after the workload counts its two uploads
        wait_for(lambda: latest_native().value(NS + "request_total", type="POST", code="201") == 2, HANG_GUARD_S,
                 "the uploads were never pushed")
        assert {"SeaweedFS_build_info", "python_info"} <= set(latest_native().types)
    finally:
        native.stop()
        go.stop()


def test_no_push_without_a_gateway_from_the_master(tmp_path: Path, master: MasterProc, gateway: _Gateway) -> None:
    """The session's master names no push gateway: a native server pushes nothing anywhere."""
    native = start_weedpy_volume(tmp_path, master, name="quiet", extra=["-mode=native"])
    try:
        wait_for_volume_server(master, f"127.0.0.1:{native.port}")
        assert '"pushing metrics"' not in native.proc.log_path.read_text()
        assert not gateway.by_instance(f"127.0.0.1:{native.port}")
    finally:
        native.stop()


def test_proxy_pushes_the_front_families_under_the_front_address(
    tmp_path: Path, pushing_master: MasterProc, gateway: _Gateway,
) -> None:
    """Proxy mode: the Go backend does not push under its private address; the gateway pushes
    what its metrics port would serve (Go's families and its own weedpy_*) under the front's."""
    since = len(gateway.pushes)  # the servers of the tests before have stopped
    proxy = start_weedpy_volume(tmp_path, pushing_master, name="proxy", extra=["-mode=proxy", "-dataCenter=dc-proxy"])
    try:
        wait_for_volume_server(pushing_master, f"127.0.0.1:{proxy.port}")
        front = f"127.0.0.1:{proxy.port}"
        workload(pushing_master.url, "dc-proxy")

        def latest():
            pushes = gateway.by_instance(front)
            return parse_exposition(pushes[-1].body.decode()) if pushes else None

        wait_for(lambda: (e := latest()) is not None and e.value(NS + "request_total", type="POST", code="201") == 2
                 and e.value("weedpy_http_requests_total", route="admin.write", target="go", code="201") == 2,
                 HANG_GUARD_S, "the front never pushed the workload")
        pushes = gateway.by_instance(front)
        assert {(p.method, p.path) for p in pushes} == {("PUT", f"/metrics/job/volumeServer/instance/{front}")}
        assert "weedpy_backend_metrics_up" in latest().types and latest().value("weedpy_backend_metrics_up") == 1
        with gateway.lock:  # one volume server group only: the backend never pushed under its private address
            groups = {p.path for p in gateway.pushes[since:] if "/job/volumeServer/" in p.path}
        assert groups == {f"/metrics/job/volumeServer/instance/{front}"}, groups
    finally:
        proxy.stop()
