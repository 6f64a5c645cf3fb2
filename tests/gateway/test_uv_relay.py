"""Proxy mode's uvloop relay (gateway/uv_relay.py) in a worker process: plain requests relayed on
uvloop with the front's log line, the rest handed over to trio's path on the same connection,
live route changes followed. The leader is stopped (SIGSTOP) while the worker is tested, so that
every connection goes to the worker."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.relay_fault import TEST_FAULT_ENV
from tests.support.logs import log_events
from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, VolumeProc, clean_env, free_port, start_master
from tests.support.process_tree import descendants, serving_worker
from tests.support.weedpy_proc import start_weedpy_volume


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master")
    yield m
    m.stop()


@pytest.fixture
def gateway(tmp_path: Path, master: MasterProc) -> Iterator[VolumeProc]:
    g = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-workers=2", "-preStopSeconds=0"])
    yield g
    g.stop()


@contextlib.contextmanager
def _leader_stopped(g: VolumeProc) -> Iterator[int]:
    """The worker alone accepts meanwhile; yields its pid."""
    worker = serving_worker(g.proc.pid, g.proc.log_path)
    os.kill(g.proc.pid, signal.SIGSTOP)
    try:
        yield worker
    finally:
        os.kill(g.proc.pid, signal.SIGCONT)


def _fids(master: MasterProc, n: int) -> list[str]:
    return [httpx.get(f"http://{master.address}/dir/assign", timeout=10).json()["fid"] for _ in range(n)]


def _worker_http_events(g: VolumeProc) -> list[dict]:
    return [e for e in log_events(g.proc.log_path) if e.get("event") == "http" and e.get("worker") == 1]


def _send_until_full(s: socket.socket, body: bytes, timeout: float) -> int:
    """Send `body` until every buffer on the way is full (a send waits `timeout` in vain); how
    much of it went."""
    s.settimeout(timeout)
    sent = 0
    with contextlib.suppress(TimeoutError):
        while sent < len(body):
            sent += s.send(body[sent:sent + (1 << 16)])
    return sent


def _uvloop_loaded(pid: int) -> bool:
    return b"uvloop" in Path(f"/proc/{pid}/maps").read_bytes()


def test_the_worker_relays_plain_requests_on_uvloop_with_the_front_log_line(gateway: VolumeProc,
                                                                            master: MasterProc) -> None:
    fids = _fids(master, 8)
    with _leader_stopped(gateway) as worker:
        assert _uvloop_loaded(worker)
        with httpx.Client(timeout=10) as client:  # one keep-alive connection
            for i, fid in enumerate(fids):
                body = b"kept alive %d " % i * (1 + 300 * i)  # up to ~40 KiB: bodies in several reads
                assert client.post(f"{gateway.url}/{fid}", files={"file": ("f.bin", body)}).status_code == 201
                r = client.get(f"{gateway.url}/{fid}")
                assert r.status_code == 200 and r.content == body
                head = client.head(f"{gateway.url}/{fid}")
                assert head.status_code == 200 and head.content == b""
                assert head.headers["content-length"] == r.headers["content-length"]  # Go's length (gzipped)
        missing = httpx.get(f"{gateway.url}/{fids[0]}0", timeout=10)  # Go's 404, through the relay
        assert missing.status_code == 404
        assert httpx.delete(f"{gateway.url}/{fids[1]}", timeout=10).status_code == 202
        assert httpx.get(f"{gateway.url}/{fids[1]}", timeout=10).status_code == 404
    wait_until(lambda: len(_worker_http_events(gateway)) >= 27, what="the worker's log lines")
    events = _worker_http_events(gateway)
    by_route = {(e["route"], e["method"], e["status"]) for e in events}
    assert {("admin.write", "POST", 201), ("admin.read", "GET", 200), ("admin.read", "HEAD", 200),
            ("admin.read", "GET", 404), ("admin.delete", "DELETE", 202)} <= by_route
    assert all(e["target"] == "go" and e["routes_v"] == "builtin" and e["client"] == "127.0.0.1" for e in events)
    assert all(e["path"].startswith("/") and e["ms"] >= 0 for e in events)


def test_what_the_relay_does_not_serve_is_handed_to_trio_on_the_same_connection(gateway: VolumeProc,
                                                                                master: MasterProc) -> None:
    fid, fid2, fid3 = _fids(master, 3)
    host, port = gateway.url.removeprefix("http://").split(":")
    with _leader_stopped(gateway):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", f"/{fid}", body=b"plain body", headers={"Content-Type": "application/octet-stream"})
        assert conn.getresponse().read() and True
        conn.request("GET", f"/{fid}")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"plain body"
        # chunked: trio's path from here on, on this same connection
        conn.request("POST", f"/{fid2}", body=iter([b"chunked ", b"body"]), encode_chunked=True,
                     headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        assert r.status == 201, r.read()
        r.read()
        conn.request("GET", f"/{fid2}")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"chunked body"
        conn.close()
        # Expect: 100-continue: the client waits for the interim answer before it sends the body
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"PUT /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                      b"Content-Type: application/octet-stream\r\n\r\n" % fid3.encode())
            first = s.recv(65536)
            assert first.startswith(b"HTTP/1.1 100 Continue\r\n"), first
            s.sendall(b"hello")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += s.recv(65536)
            assert answer.startswith(b"HTTP/1.1 201 "), answer
        assert httpx.get(f"{gateway.url}/{fid3}", timeout=10).content == b"hello"


def test_pipelined_requests_are_answered_in_order(gateway: VolumeProc, master: MasterProc) -> None:
    fids = _fids(master, 2)
    for i, fid in enumerate(fids):
        assert httpx.post(f"{gateway.url}/{fid}", files={"file": ("f", b"file %d" % i)}, timeout=10).status_code == 201
    host, port = gateway.url.removeprefix("http://").split(":")
    with _leader_stopped(gateway), socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % f.encode() for f in fids) +
                  b"GET /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % fids[0].encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert data.index(b"file 0") < data.index(b"file 1") < data.rindex(b"file 0")
    assert data.count(b"Connection: close\r\n") == 1


def test_a_route_change_reaches_the_relay(gateway: VolumeProc, master: MasterProc) -> None:
    [fid] = _fids(master, 1)
    assert httpx.post(f"{gateway.url}/{fid}", files={"file": ("f", b"routed")}, timeout=10).status_code == 201
    r = httpx.patch(f"{gateway.url}/weedpy/routes", json={"version": "reads-off", "routes": {"admin.read": "off"}},
                    timeout=30)
    assert r.status_code == 200, r.text
    with _leader_stopped(gateway):
        off = httpx.get(f"{gateway.url}/{fid}", timeout=10)
    assert off.status_code == 503 and "routed to off" in off.text
    r = httpx.patch(f"{gateway.url}/weedpy/routes", json={"version": "reads-on", "routes": {"admin.read": None}},
                    timeout=30)
    assert r.status_code == 200, r.text
    with _leader_stopped(gateway):
        on = httpx.get(f"{gateway.url}/{fid}", timeout=10)
    assert on.status_code == 200 and on.content == b"routed"
    wait_until(lambda: {"reads-off", "reads-on"} <= {e["routes_v"] for e in _worker_http_events(gateway)},
               what="the worker's log lines under both tables")
    reads = [(e["routes_v"], e["target"], e["status"]) for e in _worker_http_events(gateway) if e["route"] == "admin.read"]
    assert ("reads-off", "off", 503) in reads and ("reads-on", "go", 200) in reads


def test_with_the_trio_relay_chosen_the_worker_runs_without_uvloop(tmp_path: Path, master: MasterProc) -> None:
    g = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-workers=2", "-preStopSeconds=0"],
                            env=clean_env({"WEEDPY_HTTP_LOOP": "trio"}))
    try:
        [fid] = _fids(master, 1)
        with _leader_stopped(g) as worker:
            assert not _uvloop_loaded(worker)
            assert httpx.post(f"{g.url}/{fid}", files={"file": ("f", b"trio")}, timeout=10).status_code == 201
            assert httpx.get(f"{g.url}/{fid}", timeout=10).content == b"trio"
    finally:
        g.stop()


def test_the_leader_leaves_http_connections_to_its_worker(gateway: VolumeProc) -> None:
    serving_worker(gateway.proc.pid, gateway.proc.log_path)
    for _ in range(24):  # fresh connections: without the deferral the two processes share them
        assert httpx.get(f"{gateway.url}/status", headers={"Connection": "close"}, timeout=10).status_code == 200
    wait_until(lambda: sum(e.get("path") == "/status" for e in log_events(gateway.proc.log_path)
                           if e.get("event") == "http") >= 24, what="the /status log lines")
    served_by = [e.get("worker") for e in log_events(gateway.proc.log_path)
                 if e.get("event") == "http" and e.get("path") == "/status"]
    assert served_by == [1] * 24


def test_large_bodies_and_a_chunked_answer_cross_the_relay(gateway: VolumeProc, master: MasterProc) -> None:
    """Bodies of several socket reads each way (flow control), and Go's chunked status page
    (the relay's response parser: no Content-Length to pass through)."""
    [fid] = _fids(master, 1)
    body = os.urandom(3 << 20)
    with _leader_stopped(gateway), httpx.Client(timeout=30) as client:
        assert client.post(f"{gateway.url}/{fid}", files={"file": ("big.bin", body)}).status_code == 201
        r = client.get(f"{gateway.url}/{fid}")
        assert r.status_code == 200 and r.content == body
        with client.stream("GET", f"{gateway.url}/ui/index.html") as ui:
            page = ui.read()
            assert ui.status_code == 200 and ui.headers.get("transfer-encoding") == "chunked"
        assert b"SeaweedFS" in page
        assert client.get(f"{gateway.url}/{fid}").content == body  # the connection goes on after it
    wait_until(lambda: any(e["route"] == "admin.ui" for e in _worker_http_events(gateway)), what="the ui log line")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_pipelined_answers_to_a_client_that_reads_nothing_hold_bounded_memory(gateway: VolumeProc,
                                                                               master: MasterProc) -> None:
    """Small answers fill a client's buffers, then a 20 MB one is asked for on the same
    connection: the relay reads from Go only what the client takes (as trio's path does), so the
    worker's resident memory grows by far less than the file."""
    small, big = _fids(master, 2)
    small_body, big_body = os.urandom(30 << 10), os.urandom(20 << 20)
    with httpx.Client(timeout=60) as client:
        assert client.post(f"{gateway.url}/{small}", files={"file": ("s.bin", small_body)}).status_code == 201
        assert client.post(f"{gateway.url}/{big}", files={"file": ("b.bin", big_body)}).status_code == 201
    host, port = gateway.url.removeprefix("http://").split(":")
    with _leader_stopped(gateway) as worker:
        before = _rss_mb(worker)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((host, int(port)))
            s.sendall(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % small.encode() * 40 +
                      b"GET /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % big.encode())
            wait_until(lambda: any(e["path"] == f"/{small}" for e in _worker_http_events(gateway)),
                       what="a small answer relayed")
            time.sleep(3)  # the relay reads from Go while anything lets it
            growth = _rss_mb(worker) - before
            s.settimeout(30)
            data = bytearray()
            while piece := s.recv(1 << 20):  # once the client reads, every answer comes, in order
                data += piece
    assert growth < 8, f"the worker's resident memory grew {growth:.0f} MB for answers nobody reads"
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 41 and data.count(small_body) == 40
    assert data.endswith(big_body)


def test_an_upload_waiting_on_a_slow_backend_is_not_an_idle_client(tmp_path: Path) -> None:
    """While Go takes an upload's body slower than the client sends it, the relay stops reading
    the client: that is no idle client (neither Go nor trio's path times it out), so the upload
    goes through once Go reads again, however long past -idleTimeout that is. The body is larger
    than what the kernel's buffers on the way hold (loopback autotunes up to tens of MB)."""
    master = start_master(tmp_path / "big-master", volume_size_limit_mb=200)
    g = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-workers=2", "-preStopSeconds=0",
                                                     "-idleTimeout=2"])
    try:
        [fid] = _fids(master, 1)
        go = next(p for p in descendants(g.proc.pid) if Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]
                  .endswith(b"weed"))
        body = os.urandom(80 << 20)
        host, port = g.url.removeprefix("http://").split(":")
        with _leader_stopped(g), socket.create_connection((host, int(port)), timeout=30) as s:
            os.kill(go, signal.SIGSTOP)
            try:
                s.sendall(b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: %d\r\n\r\n" % (fid.encode(), len(body)))
                sent = _send_until_full(s, body, 0.5)
                time.sleep(4)  # twice -idleTimeout with Go stopped
            finally:
                os.kill(go, signal.SIGCONT)
            s.settimeout(30)
            s.sendall(body[sent:])
            answer = b""
            while b"\r\n\r\n" not in answer and (piece := s.recv(65536)):
                answer += piece
        assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
        assert httpx.get(f"{g.url}/{fid}", timeout=30).content == body
    finally:
        g.stop()
        master.stop()


def test_an_error_raised_in_a_uvloop_callback_is_one_json_log_event() -> None:
    """What a relay callback raises is logged like every other event (one JSON line naming the
    error), not as asyncio's plain-text traceback through the stdlib's logging."""
    code = (
        "import asyncio, trio\n"
        "from weedpy.logs import configure_logging\n"
        "from weedpy.serve.uv_host import run_trio_on_uvloop\n"
        "sink = configure_logging()\n"
        "async def main():\n"
        "    asyncio.get_running_loop().call_soon(lambda: 1 / 0)\n"
        "    await trio.sleep(0.2)\n"
        "run_trio_on_uvloop(main)\n"
        "sink.flush()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), out.stderr
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["event loop error"], events
    assert "ZeroDivisionError" in events[0]["error"]


def _go(g: VolumeProc) -> tuple[int, tuple[str, int]]:
    """The backend's pid and the address of its admin port."""
    for pid in descendants(g.proc.pid):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if argv[0].endswith(b"weed"):
            port = next(int(a.split(b"=", 1)[1]) for a in argv if a.startswith(b"-port="))
            return pid, ("127.0.0.1", port)
    raise AssertionError("no Go backend")


@contextlib.contextmanager
def _accept_queue_full(addr: tuple[str, int]) -> Iterator[None]:
    """Connections to `addr` (a stopped process's listener) until its accept queue is full: from
    then on a connection to it stays in the making (the kernel drops its SYNs)."""
    pending: list[socket.socket] = []
    try:
        for _ in range(20000):
            s = socket.socket()
            pending.append(s)
            s.setblocking(False)
            s.connect_ex(addr)
            poll = select.poll()
            poll.register(s, select.POLLOUT)
            if not poll.poll(500):
                break
        else:
            raise AssertionError("the accept queue never filled")
        yield
    finally:
        for s in pending:
            s.close()


def test_a_body_waits_in_the_kernel_while_the_backend_connection_opens(gateway: VolumeProc,
                                                                        master: MasterProc) -> None:
    """While the relay's connection to Go is in the making (Go's accept queue is full), the
    client's body is not read into memory: the client can send no more than the sockets on the
    way hold, however large the body. Once Go accepts again the upload goes through whole."""
    [fid] = _fids(master, 1)
    go, go_addr = _go(gateway)
    body = os.urandom(24 << 20)
    host, port = gateway.url.removeprefix("http://").split(":")
    with _leader_stopped(gateway) as worker:
        before = _rss_mb(worker)
        os.kill(go, signal.SIGSTOP)
        try:
            with _accept_queue_full(go_addr), socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
                s.connect((host, int(port)))
                s.sendall(b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: %d\r\n\r\n" % (fid.encode(), len(body)))
                sent = _send_until_full(s, body, 1)
                growth = _rss_mb(worker) - before
                os.kill(go, signal.SIGCONT)  # Go takes the queued connections; the relay's is next
                s.settimeout(30)
                s.sendall(body[sent:])
                answer = b""
                while b"\r\n\r\n" not in answer and (piece := s.recv(65536)):
                    answer += piece
        finally:
            os.kill(go, signal.SIGCONT)
    assert sent < 4 << 20, f"the client sent {sent >> 20} MiB before the backend connection opened"
    assert growth < 8, f"the worker's resident memory grew {growth:.0f} MB while the backend connection opened"
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert httpx.get(f"{gateway.url}/{fid}", timeout=30).content == body


def test_a_pipelined_upload_behind_an_unanswered_request_waits_in_the_kernel(gateway: VolumeProc,
                                                                           master: MasterProc) -> None:
    """An upload pipelined behind a request Go has not answered yet (Go stopped) is not read
    into memory meanwhile: the client can send no more than the sockets on the way hold. Both
    answers come, in order, once Go runs again."""
    first, second = _fids(master, 2)
    go, _ = _go(gateway)
    body = os.urandom(24 << 20)
    host, port = gateway.url.removeprefix("http://").split(":")
    with _leader_stopped(gateway) as worker:
        before = _rss_mb(worker)
        os.kill(go, signal.SIGSTOP)
        try:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
                s.connect((host, int(port)))
                s.sendall(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % first.encode() +
                          b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (second.encode(), len(body)))
                sent = _send_until_full(s, body, 1)
                growth = _rss_mb(worker) - before
                os.kill(go, signal.SIGCONT)
                s.settimeout(30)
                s.sendall(body[sent:])
                answers = b""
                while piece := s.recv(65536):
                    answers += piece
        finally:
            os.kill(go, signal.SIGCONT)
    assert sent < 4 << 20, f"the client sent {sent >> 20} MiB while the request before it waited for Go"
    assert growth < 8, f"the worker's resident memory grew {growth:.0f} MB while the request before it waited"
    assert answers.startswith(b"HTTP/1.1 404 "), answers[:300]  # nothing written to `first`: Go's 404
    assert answers.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 201 " in answers, answers[:600]
    assert httpx.get(f"{gateway.url}/{second}", timeout=30).content == body


def test_a_relay_callback_that_raises_ends_its_request_with_an_answer(tmp_path: Path, master: MasterProc) -> None:
    """A bug in one of the relay's callbacks (made to raise by the test-only fault switch,
    gateway/relay_fault.py) answers that request Go's 500 and closes its connection, counted
    and logged once; the worker serves the next request as before."""
    metrics_port = free_port()
    g = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-workers=2", "-preStopSeconds=0",
                                                     f"-metricsPort={metrics_port}"],
                            env=clean_env({TEST_FAULT_ENV: "relay:start,attach,response_data,parsed"}))
    try:
        [fid] = _fids(master, 1)
        host, port = g.url.removeprefix("http://").split(":")
        # `attach` first: with no pooled connection yet, it runs once the backend connection opens
        # (a task's done callback, where what is raised reaches no transport and the client hung)
        faults = {"attach": f"/{fid}", "start": f"/{fid}", "response_data": f"/{fid}", "parsed": "/ui/index.html"}
        with _leader_stopped(g):
            for callback, path in faults.items():
                conn = http.client.HTTPConnection(host, int(port), timeout=10)  # a hang fails here
                conn.request("GET", path, headers={"Weedpy-Test-Fault": callback})
                r = conn.getresponse()
                assert (r.status, r.getheader("Connection"), r.read()) == (500, "close", b"500 Internal Server Error")
                conn.close()
                if callback == "attach":
                    assert httpx.post(f"{g.url}/{fid}", files={"file": ("f", b"served")}, timeout=10).status_code == 201
                assert httpx.get(f"{g.url}/{fid}", timeout=10).content == b"served", callback
        wait_until(lambda: sum(e.get("event") == "relay callback failed" for e in log_events(g.proc.log_path)) >= 4,
                   what="the failures' log lines")
        events = log_events(g.proc.log_path)
        failed = [e for e in events if e.get("event") == "relay callback failed"]
        assert sorted(e["error"] for e in failed) == sorted(f"RelayTestFault('test-only fault in {c}')" for c in faults)
        assert all(e["worker"] == 1 and e["client"] == "127.0.0.1" for e in failed)
        assert not any(e.get("event") == "event loop error" for e in events)
        statuses = [(e["path"], e["status"]) for e in _worker_http_events(g)]
        assert statuses.count((f"/{fid}", 500)) == 2 and ("/ui/index.html", 500) in statuses  # `start`: no route yet
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
        assert 'weedpy_relay_errors_total{protocol="http",reason="internal"} 4' in text, [
            line for line in text.splitlines() if "relay_errors" in line]
        g.stop()  # no backend connection was left open: Go's graceful stop has none to wait for
        stopped = [e for e in log_events(g.proc.log_path) if e.get("event") == "backend stopped"]
        assert [e["returncode"] for e in stopped] == [0], stopped
    finally:
        g.stop()
