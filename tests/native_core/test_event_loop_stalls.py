"""The event loop never waits on a volume a worker thread holds (native/offload.py).

A native server runs in this process (its trio loop in the main thread, the test's clients in
plain threads), heartbeating to a recording master. A plain thread then holds volume B as a
compaction commit does at its swap: B's write lock taken and its read gate closed for a swap.
A write and a large (streamed) read of B are sent and seen waiting; then reads and a write of
volume A, /status, gRPC calls and a heartbeat must all be answered before B is let go, and B's
requests after it. The test asserts on the answers and on the order of events, never on how
long anything took: a server whose event loop waited for B answers nothing until B is released,
so its answers come after the release (or not at all before the deadline, when the test releases
B anyway).
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import trio

from native.server import NativeServer
from proto import volume_server_pb2 as vs
from tests.native_core.recording_master import RecordingMaster
from tests.native_core.support import call
from weedpy.config import parse_volume_args
from weedpy.ports import free_port_pair
from weedpy.security import SecurityConfig
from weedpy.serve.lifecycle import run_server
from weedpy.serve.routes import native_route_table

A, B = 1, 2
DEADLINE = 60.0  # for one answer; B is released after it whatever happened (a stall, not a hang)
BIG = (2 << 20) + 123  # > 1 MiB: read through the streaming path (the read gate, then sendfile)


class _WatchedCondition(threading.Condition):
    """The volume's `_io` condition, telling the test when a reader waits at the closed gate."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.someone_waits = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.someone_waits.set()
        return super().wait(timeout)


class _WatchedLock:
    """The volume's write lock, telling the test when someone waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.someone_waits = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self.someone_waits.set()
        return self._lock.acquire(True, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _upload(url: str, fid: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{url}/{fid}", files={"file": ("f.bin", data, "application/octet-stream")}, timeout=DEADLINE)


def test_a_volume_held_by_a_worker_thread_stalls_no_other_request_nor_the_heartbeat(tmp_path: Path) -> None:
    master = RecordingMaster().start()
    port, grpc_port = free_port_pair()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = parse_volume_args([
        f"-port={port}", f"-port.grpc={grpc_port}", "-ip=127.0.0.1", f"-dir={data_dir}", "-max=8",
        f"-master={master.address}", "-workers=1", "-preStopSeconds=0",
    ], environ={})
    server = NativeServer(cfg, SecurityConfig(), native_route_table(None))
    url = f"http://127.0.0.1:{port}"
    events: list[str] = []
    answers: dict[str, object] = {}
    lock = threading.Lock()

    def note(label: str, answer: object = None) -> None:
        with lock:
            events.append(label)
            answers[label] = answer

    def scenario() -> None:
        with httpx.Client(timeout=DEADLINE) as c:
            for _ in range(600):
                try:
                    if c.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                threading.Event().wait(0.1)
            else:
                raise AssertionError("the native server never became healthy")
        for vid in (A, B):
            assert call(grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse).ok
        small_a, big_b = b"small needle of A" * 60, bytes(range(256)) * (BIG // 256) + b"x" * (BIG % 256)
        assert _upload(url, "1,0100000001", small_a).status_code == 201
        assert _upload(url, "2,0200000002", big_b).status_code == 201
        assert server.parts is not None
        server.parts.master.pulse = 0.5  # full heartbeats every half second from now on

        vol = server._store.find_volume(B)
        gate, write_lock = _WatchedCondition(), _WatchedLock()
        vol._io, vol._write_lock = gate, write_lock  # nothing in flight on B: safe to swap in

        # B held as a commit holds it at its swap: the write lock, and the gate closed to new reads
        write_lock.acquire()
        with gate:
            vol._swapping = True
        note("B held")
        waiting = []

        def b_write() -> None:
            r = _upload(url, "2,0300000003", b"written to B")
            note("B write answered", r.status_code)

        def b_read() -> None:
            r = httpx.get(f"{url}/2,0200000002", timeout=DEADLINE)
            note("B read answered", (r.status_code, r.content == big_b))

        for fn, flag in ((b_write, write_lock.someone_waits), (b_read, gate.someone_waits)):
            t = threading.Thread(target=fn)
            t.start()
            waiting.append(t)
            assert flag.wait(DEADLINE), f"{fn.__name__} never reached volume B"
        heartbeats_before = len(master.snapshot())

        def probe(label: str, fn) -> threading.Thread:
            def run() -> None:
                try:
                    answer = fn()
                except Exception as exc:  # noqa: BLE001 - no answer (a client timeout): asserted on below
                    note(f"{label} failed", repr(exc))
                else:
                    note(label, answer)
            t = threading.Thread(target=run)
            t.start()
            return t

        def heartbeat() -> int:
            hbs = master.wait_for(lambda got: any(hb.volumes for hb in got[heartbeats_before:]), timeout=DEADLINE)
            return sorted(v.id for v in next(hb for hb in hbs[heartbeats_before:] if hb.volumes).volumes)

        def status() -> list[int]:
            r = httpx.get(f"{url}/status", timeout=DEADLINE)
            return sorted(v["Id"] for v in r.json()["Volumes"])

        def volume_status(vid: int):
            out = call(grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse,
                       timeout=DEADLINE)
            return out.ok and out.response.file_count

        probes = [
            probe("A fast read", lambda: httpx.get(f"{url}/1,0100000001", timeout=DEADLINE).content == small_a),
            probe("A full read", lambda: httpx.get(f"{url}/1,0100000001?a=b", timeout=DEADLINE).content == small_a),
            probe("A write", lambda: _upload(url, "1,0400000004", b"written to A").status_code),
            probe("status", status),
            probe("VolumeStatus A", lambda: volume_status(A)),
            probe("VolumeStatus B", lambda: volume_status(B)),
            probe("heartbeat", heartbeat),
        ]
        for t in probes:
            t.join(DEADLINE)
        note("B released")
        with gate:
            vol._swapping = False
            gate.notify_all()
        write_lock.release()
        for t in waiting:
            t.join(DEADLINE)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_server, cfg, server)
            try:
                await trio.to_thread.run_sync(scenario)
            finally:
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        master.stop()

    released = events.index("B released")
    stalled = [p for p in ("A fast read", "A full read", "A write", "status", "VolumeStatus A", "VolumeStatus B",
                           "heartbeat") if p not in events[:released]]
    assert not stalled, f"answered only once volume B was released (the event loop waited for it): {events}"
    assert answers["A fast read"] is True and answers["A full read"] is True
    assert answers["A write"] == 201
    assert answers["status"] == [A, B]
    assert answers["VolumeStatus A"] in (1, 2) and answers["VolumeStatus B"] == 1  # A's write may come first
    assert answers["heartbeat"] == [A, B]
    # B's own requests waited for B, in threads, and were answered once it was free
    assert events.index("B write answered") > released and answers["B write answered"] == 201
    assert events.index("B read answered") > released and answers["B read answered"] == (200, True)
