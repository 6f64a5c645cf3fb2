"""Exhaustion, against Go 4.48, native and proxy mode side by side: a thousand idle connections,
headers trickled at one byte a second, an upload over the file size limit, a lying
Content-Length, a gRPC stream whose client never reads. Other clients keep being served (their
p99 is recorded beside the same client's p99 on an idle server), the answers are Go's, no
descriptor outlives its connection, and resident memory stays under a cap."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import call
from tests.reliability.hostile.support import allocate, parse_responses, raw_exchange
from tests.support.process_tree import descendants
from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.grpc import ConnectionSettings, GrpcConnection, encode_message, request_headers

IDLE = 1000
RSS_CAP_MB = 400  # native or proxy, all its processes together, under any of these loads
IDLE_TIMEOUT = 10  # -idleTimeout for all three: Go's idle deadline, reset by every read
VIDS = {"go": 61, "native": 62, "proxy": 63}
SMALL = b"s" * 1024  # what the other clients read
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, master: MasterProc) -> Iterator[dict[str, VolumeProc]]:
    work: Path = tmp_path_factory.mktemp("exhaustion")
    flags = ["-fileSizeLimitMB=1", f"-idleTimeout={IDLE_TIMEOUT}"]
    out: dict[str, VolumeProc] = {}
    try:
        out["go"] = start_go_volume(work, master, extra=flags, name="go")
        out["native"] = start_weedpy_volume(work, master, extra=["-mode=native", *flags], name="native")
        out["proxy"] = start_weedpy_volume(work, master, extra=["-mode=proxy", *flags], name="proxy")
        for name, server in out.items():
            allocate(server, VIDS[name])
            r = httpx.post(f"{server.url}/{_small_fid(name)}", content=SMALL, headers=OCTETS, timeout=30)
            assert r.status_code == 201, r.text
        yield out
    finally:
        for p in out.values():
            p.stop()


def _small_fid(name: str) -> str:
    return f"{VIDS[name]},1{0x5EED:08x}"


def _p99_ms(server: VolumeProc, name: str, n: int = 200) -> dict[str, float]:
    """Another client: `n` reads of a 1 KiB needle on one keep-alive connection (p50, p99, max
    in ms; every read must succeed)."""
    times = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(f"{server.url}/{_small_fid(name)}")
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200 and r.content == SMALL, r.status_code
    times.sort()
    return {"p50": round(times[n // 2], 2), "p99": round(times[min(n - 1, int(n * 0.99))], 2),
            "max": round(times[-1], 2)}


def _tree(pid: int) -> list[int]:
    """The server and its processes (native's workers; proxy's workers and Go backend)."""
    return [pid, *descendants(pid)]


def _fds(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except FileNotFoundError:
            pass
    return total


def _rss_mb(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


@pytest.mark.parametrize("name", ["go", "native", "proxy"])
def test_idle_connections_do_not_starve_others_or_leak(pair: dict[str, VolumeProc], name: str, record_property) -> None:
    server = pair[name]
    pid = server.proc.pid
    httpx.get(f"{server.url}/status", timeout=10)
    before = _fds(pid)
    socks = []
    try:
        for _ in range(IDLE):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        time.sleep(0.5)
        t0 = time.monotonic()
        r = httpx.get(f"{server.url}/status", timeout=10)
        served_ms = (time.monotonic() - t0) * 1000
        assert r.status_code == 200
        peak_fds, rss = _fds(pid), _rss_mb(pid)
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while _fds(pid) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _fds(pid)
    record_property("idle", IDLE)
    record_property("peak_fds", peak_fds)
    record_property("fds_after", after - before)
    record_property("rss_mb", round(rss))
    record_property("other_client_ms", round(served_ms, 1))
    assert peak_fds >= before + IDLE * 0.9  # the connections were really held
    assert after <= before + 5, f"{after - before} descriptors left after the clients closed"
    if name != "go":
        assert rss < RSS_CAP_MB


def _statuses(server: VolumeProc, payload: bytes, timeout: float = 3.0) -> list[int]:
    rs, _ = parse_responses(raw_exchange(server.port, payload, timeout=timeout))
    return [r.status for r in rs]


def test_body_over_the_size_limit_and_lying_length_answer_as_go(pair: dict[str, VolumeProc]) -> None:
    big = b"x" * (2 << 20)
    got = {}
    for name, vid in (("go", 61), ("native", 62)):
        server = pair[name]
        over = httpx.post(f"{server.url}/{vid},1a0badc0de", files={"file": ("big.bin", big, "application/octet-stream")}, timeout=30)
        short = _statuses(server, b"POST /%d,1b0badc0de HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly-ten-b" % vid)
        long_ = _statuses(server, b"POST /%d,1c0badc0de HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                   b"Content-Type: text/plain\r\nConnection: close\r\n\r\nabcdefgh" % vid)
        got[name] = (over.status_code, short, long_)
        assert httpx.get(f"{server.url}/status", timeout=10).status_code == 200  # still serving
    assert got["native"] == got["go"], got


# ---- headers at one byte a second -------------------------------------------------------------

TRICKLERS = 200  # connections that send one header byte a second and never finish
COMPLETE = b"GET /status HTTP/1.0\r\n\r\n"  # 24 bytes at 1 byte/s: longer than the idle timeout
STALLED_HEAD = b"GET /status HTTP/1.1\r\nHost: a\r\nX-Half: z"
# What Go 4.48 sends when the idle timeout ends "GET /sta": the half line fails its parse
GO_HALF_LINE_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       b"Connection: close\r\n\r\n400 Bad Request")


def _secs(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class _Trickle(threading.Thread):
    """One connection sending `payload` a byte every `gap` seconds (`stop_after` bytes, or all, or
    for ever when `payload` is None), then reading what the server answers until it closes."""

    def __init__(self, port: int, payload: bytes | None, gap: float = 1.0, stop_after: int | None = None) -> None:
        super().__init__(daemon=True)
        self.port, self.payload, self.gap, self.stop_after = port, payload, gap, stop_after
        self.halt = threading.Event()
        self.answer = b""
        self.closed_after: float | None = None  # seconds from the last byte sent to the server's close
        self.sent = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=120) as s:
                self._trickle(s)
                if self.halt.is_set():
                    return
                last = time.monotonic()
                s.settimeout(IDLE_TIMEOUT * 3 + 30)
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    self.answer += data
                self.closed_after = time.monotonic() - last
        except OSError as exc:
            self.error = repr(exc)

    def _trickle(self, s: socket.socket) -> None:
        payload = self.payload if self.payload is not None else b"GET /status HTTP/1.1\r\nX-Slow: " + b"a" * 10**6
        limit = len(payload) if self.stop_after is None else self.stop_after
        for i in range(limit):
            if self.halt.wait(self.gap if i else 0):
                return
            s.sendall(payload[i:i + 1])
            self.sent += 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["go", "native", "proxy"])
def test_headers_at_one_byte_a_second_are_held_as_go_holds_them(pair: dict[str, VolumeProc], name: str,
                                                                 record_property) -> None:
    """Go sets no header deadline (no ReadHeaderTimeout, no ReadTimeout): its listener's idle
    deadline (-idleTimeout) is renewed by every read, so a request trickled a byte a second is
    served however long it takes (an HTTP/1.0 one without Host included). One that stops is ended
    by the idle timeout: half a request line is taken as the whole line, which Go refuses with its
    400; a whole line with half its headers is closed without an answer. All three do exactly
    that, with 200 more such connections open, while another client is served; its p99 is
    recorded beside its p99 on the idle server."""
    server = pair[name]
    pid = server.proc.pid
    httpx.get(f"{server.url}/status", timeout=10)
    before = _fds(pid)
    idle = _p99_ms(server, name)
    complete = _Trickle(server.port, COMPLETE)
    stalled_line = _Trickle(server.port, COMPLETE, stop_after=8)  # "GET /sta", then nothing
    stalled_head = _Trickle(server.port, STALLED_HEAD, gap=0.2)  # a whole line, half a header
    slow = [_Trickle(server.port, None) for _ in range(TRICKLERS)]
    for t in (complete, stalled_line, stalled_head, *slow):
        t.start()
    try:
        time.sleep(3)
        loaded = _p99_ms(server, name)
        peak_fds, rss = _fds(pid), _rss_mb(pid)
        complete.join(len(COMPLETE) + 30)
        stalled_line.join(IDLE_TIMEOUT * 3 + 40)
        stalled_head.join(IDLE_TIMEOUT * 3 + 40)
    finally:
        for t in slow:
            t.halt.set()
        for t in slow:
            t.join(10)
    deadline = time.monotonic() + 15
    while _fds(pid) > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _fds(pid)
    statuses = [r.status for r in parse_responses(complete.answer)[0]]
    record_property("trickled_bytes", complete.sent)
    record_property("trickled_status", statuses)
    record_property("half_line_answer", [r.status for r in parse_responses(stalled_line.answer)[0]])
    record_property("half_line_closed_after_s", _secs(stalled_line.closed_after))
    record_property("half_head_answer_bytes", len(stalled_head.answer))
    record_property("half_head_closed_after_s", _secs(stalled_head.closed_after))
    record_property("tricklers", TRICKLERS)
    record_property("p99_idle_ms", idle["p99"])
    record_property("p99_trickled_ms", loaded["p99"])
    record_property("p50_idle_ms", idle["p50"])
    record_property("p50_trickled_ms", loaded["p50"])
    record_property("rss_mb", round(rss))
    record_property("peak_fds", peak_fds - before)
    record_property("fds_after", after - before)
    errors = [t.error for t in (complete, stalled_line, stalled_head)]
    assert errors == [None] * 3, errors
    assert statuses == [200], complete.answer[:300]  # served, however long the head took
    assert stalled_line.answer == GO_HALF_LINE_ANSWER, stalled_line.answer[:300]
    assert stalled_head.answer == b"" and stalled_head.closed_after is not None  # closed without an answer
    for t in (stalled_line, stalled_head):  # by the idle timeout, not by a header deadline
        assert t.closed_after is not None and t.closed_after > IDLE_TIMEOUT / 2
    assert peak_fds >= before + TRICKLERS * 0.9  # the trickling connections were really held
    assert after <= before + 5, f"{after - before} descriptors left after the clients closed"
    if name != "go":
        assert rss < RSS_CAP_MB


# ---- a gRPC stream whose client never reads -----------------------------------------------------

STUCK_MB = 48  # the volume copied to a client that never reads: 48 needles of 1,000,000 bytes
STUCK_GROWTH_CAP_MB = 24  # what the server may hold for it: at most half of what it would send


def _fill(server: VolumeProc, name: str) -> int:
    """Write STUCK_MB needles into the server's volume; its .dat size afterwards."""
    vid = VIDS[name]
    with httpx.Client(timeout=60) as client:
        for key in range(0x100, 0x100 + STUCK_MB):  # clear of the keys the other tests wrote
            data = os.urandom(1_000_000)
            r = client.post(f"{server.url}/{vid},{key:x}{0x5EED:08x}", content=data, headers=OCTETS)
            assert r.status_code == 201, r.text
        status = client.get(f"{server.url}/status").json()
    return next(v["Size"] for v in status["Volumes"] if v["Id"] == vid)


class _StuckStream:
    """A gRPC client that asks for a volume's `.dat` (CopyFile, server streaming), opens its
    HTTP/2 windows to the maximum, then never reads: only TCP's buffers stop the server."""

    def __init__(self, grpc_port: int, vid: int, size: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", grpc_port))
        core = GrpcConnection(client_side=True, settings=ConnectionSettings(stream_window=2**31 - 1,
                                                                           connection_window=2**31 - 1))
        core.initiate()
        req = vs.CopyFileRequest(volume_id=vid, ext=".dat", compaction_revision=0xFFFFFFFF, stop_offset=size)
        sid = core.open_stream(request_headers("/volume_server_pb.VolumeServer/CopyFile", b"127.0.0.1"))
        core.send_data(sid, encode_message(req.SerializeToString()), end_stream=True)
        self.sock.sendall(core.data_to_send())

    def close(self) -> None:
        self.sock.close()


def _grpc_status_ok(server: VolumeProc) -> bool:
    out = call(server.grpc_port, "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
    return out.ok and bool(out.response.disk_statuses)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["go", "native", "proxy"])
def test_a_grpc_stream_that_is_never_read_holds_bounded_memory(pair: dict[str, VolumeProc], name: str,
                                                                record_property) -> None:
    """CopyFile of a 48 MB `.dat` to a client that opened its windows wide and reads nothing:
    the server holds at most what TCP and a bounded send buffer take (resident memory grows by
    less than half the file), other clients are served (HTTP reads, a unary rpc), and once the
    client goes, so do the stream's descriptors."""
    server = pair[name]
    pid = server.proc.pid
    size = _fill(server, name)
    httpx.get(f"{server.url}/status", timeout=10)
    time.sleep(1)
    before_fds, before_rss = _fds(pid), _rss_mb(pid)
    idle = _p99_ms(server, name)
    stuck = [_StuckStream(server.grpc_port, VIDS[name], size) for _ in range(2)]
    try:
        time.sleep(4)  # the server sends until TCP stops it
        loaded = _p99_ms(server, name)
        assert _grpc_status_ok(server)
        time.sleep(2)
        rss = _rss_mb(pid)
    finally:
        for s in stuck:
            s.close()
    deadline = time.monotonic() + 20
    while _fds(pid) > before_fds + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _fds(pid)
    assert _grpc_status_ok(server)
    growth = rss - before_rss
    record_property("dat_mb", round(size / 1e6, 1))
    record_property("stuck_streams", len(stuck))
    record_property("rss_before_mb", round(before_rss))
    record_property("rss_growth_mb", round(growth, 1))
    record_property("p99_idle_ms", idle["p99"])
    record_property("p99_stuck_ms", loaded["p99"])
    record_property("fds_after", after - before_fds)
    assert growth < STUCK_GROWTH_CAP_MB, f"resident memory grew {growth:.0f} MB for streams nobody reads"
    assert after <= before_fds + 5, f"{after - before_fds} descriptors left after the clients closed"
    if name != "go":
        assert rss < RSS_CAP_MB
