"""Native mode's reads and uploads served from uvloop's callbacks (native/http/uv_serve.py), with
everything else handed over to trio's path on the same connection: the answers, in order, are
Go's, byte for byte after the shared mask; an append that must wait for a lock waits in a worker
thread while the event loop serves other connections.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator

import pytest

import native.http.app as native_app
import native.http.uv_serve as uv_serve
from tests.native_http.support import NativeServer, go_and_native, start_native
from tests.native_http.test_diff_fast_write import BIN, file_part, go_get, go_post, multipart, raw_exchange, raw_from_bytes
from tests.support.compare import Raw, diff_text, mask_write_second
from tests.support.procs import VolumeProc


def read_answers(sock: socket.socket, count: int, heads: frozenset[int] = frozenset()) -> list[Raw]:
    """`count` answers read in order from one connection (`heads`: the indexes answering a HEAD);
    every answer here has a Content-Length."""
    answers: list[Raw] = []
    buf = b""
    while len(answers) < count:
        end = buf.find(b"\r\n\r\n")
        length = None
        if end >= 0:
            m = re.search(rb"(?im)^content-length:\s*(\d+)\r$", buf[:end + 2])
            length = 0 if len(answers) in heads or m is None else int(m.group(1))
        if end < 0 or len(buf) < end + 4 + (length or 0):
            data = sock.recv(65536)
            assert data, f"the connection closed after {len(answers)} answers"
            buf += data
            continue
        whole, buf = buf[:end + 4 + (length or 0)], buf[end + 4 + (length or 0):]
        answers.append(raw_from_bytes(whole, head_only=len(answers) in heads))
    return answers


def as_go(a: Raw) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """`a` masked for comparing with Go's answer; these uploads carry no `ts` (`mask_write_second`)."""
    return mask_write_second(a).masked()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VolumeProc, NativeServer]]:
    with go_and_native(tmp_path_factory.mktemp("uv-serve"), volumes=2, loop="uvloop") as (go, py):
        yield go, py


def _pipelined(port: int, batch: bytes, count: int) -> list[Raw]:
    """The answers to requests sent in one write on one connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(batch)
        return read_answers(s, count)


def one_by_one(port: int, requests: list[bytes]) -> list[Raw]:
    """Each request on the same connection, its answer read before the next is sent."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for i, request in enumerate(requests):
            s.sendall(request)
            out += read_answers(s, 1, frozenset({0}) if request.startswith(b"HEAD ") else frozenset())
            assert out[-1].status, i
    return out


def test_one_connection_moves_from_the_fast_paths_to_trio_and_answers_as_go(pair) -> None:
    """Reads and uploads the protocol answers, then a request it hands over (the status page, an
    upload with a header it does not take, a delete, a read with a query): every answer on the
    one connection is Go's, in order, and reads keep working after the hand-over."""
    go, py = pair
    fid = b"1,0d00000001"
    requests = [
        go_post(fid, multipart([file_part(b"first.bin", BIN)])),  # an upload the protocol answers
        go_get(fid),  # a read it answers
        go_get(b"1,0d00000099"),  # a read of nothing: handed over, trio answers Go's 404
        go_get(fid),  # served on trio's path from now on
        b"HEAD /" + fid + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        go_post(b"1,0c00000002", multipart([file_part(b"second.bin", BIN)]), extra=b"Accept: */*\r\n"),
        b"GET /1,0c00000002?readDeleted=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"DELETE /" + fid + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        go_get(fid),
    ]
    go_answers = one_by_one(go.port, requests)
    py_answers = one_by_one(py.port, requests)
    bad = [diff_text(f"request {i}", g, p) for i, (g, p) in enumerate(zip(go_answers, py_answers))
           if as_go(g) != as_go(p)]
    assert not bad, "\n\n".join(bad)
    assert [a.status for a in py_answers] == [201, 200, 404, 200, 200, 201, 200, 202, 404]


def test_pipelined_requests_are_answered_in_order(pair) -> None:
    """Reads and an upload sent in one write, a hand-over among them: the answers come back in
    the order asked, each as Go's."""
    go, py = pair
    fid = b"2,0e00000001"
    batch = (go_post(fid, multipart([file_part(b"p.bin", BIN)])) + go_get(fid) + go_get(fid)
             + b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + go_get(fid))
    go_answers, py_answers = (_pipelined(port, batch, 5) for port in (go.port, py.port))
    assert [a.status for a in py_answers] == [201, 200, 200, 200, 200]
    for i in (0, 1, 2, 4):  # /status lists different disks and volume counts: its status is enough
        assert as_go(go_answers[i]) == as_go(py_answers[i]), diff_text(f"answer {i}", go_answers[i], py_answers[i])
    assert py_answers[1].body == py_answers[4].body == BIN


def test_an_append_waiting_for_a_lock_leaves_the_loop_serving(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another thread holds the volume's write lock (as a compaction commit or an fsync
    does), an upload waits in a worker thread: a read on another connection is answered
    meanwhile, the upload and a request pipelined behind it are answered once the lock is free."""
    calls: list[tuple[str, bool]] = []  # (thread, blocking) of each append the protocol asked for
    real = uv_serve.store_upload

    def spy(app, up, blocking=True):
        calls.append((threading.current_thread().name, blocking))
        return real(app, up, blocking)

    monkeypatch.setattr(uv_serve, "store_upload", spy)
    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        stored = raw_exchange(py.port, go_post(b"1,0f00000001", multipart([file_part(b"a.bin", BIN)])))
        assert stored.status == 201
        vol = py.store.find_volume(1)
        lock = vol._write_lock
        upload = go_post(b"1,1100000002", multipart([file_part(b"b.bin", b"second " * 100)]))
        with socket.create_connection(("127.0.0.1", py.port), timeout=30) as waiting:
            with lock:
                waiting.sendall(upload + go_get(b"1,1100000002"))
                read = raw_exchange(py.port, go_get(b"1,0f00000001"))  # another connection, answered now
                assert (read.status, read.body) == (200, BIN)
                waiting.setblocking(False)
                try:
                    early = waiting.recv(65536)
                except BlockingIOError:
                    early = b""
                assert early == b"", "the upload was answered while its volume's lock was held"
                waiting.setblocking(True)
            answers = read_answers(waiting, 2)
        assert [a.status for a in answers] == [201, 200]
        assert answers[1].body == b"second " * 100
    loop_thread = calls[0][0]
    assert calls[0][1] is False  # the first upload: on the event loop, no lock to wait for
    assert calls[1:] == [(loop_thread, False), (calls[2][0], True)] and calls[2][0] != loop_thread


class _ThreadSpy:
    """A volume's file operations, noting which thread wrote and synced which descriptor."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.seen: list[tuple[str, int, str]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        self.seen.append(("pwrite", fd, threading.current_thread().name))
        return self._real.pwrite(fd, data, offset)  # type: ignore[attr-defined]

    def fdatasync(self, fd: int) -> None:
        self.seen.append(("fdatasync", fd, threading.current_thread().name))
        self._real.fdatasync(fd)  # type: ignore[attr-defined]


def test_an_fsync_upload_appends_on_the_loop_and_waits_for_the_disk_in_a_thread(tmp_path) -> None:
    """`?fsync=true`: the record and its row are written on the event loop's thread, as any
    upload's; the group commit's fdatasync of both files runs in a worker thread, and the upload
    is answered after it (so the loop never takes the GIL back from a thread doing the append)."""
    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        vol = py.store.find_volume(1)
        spy = vol.files = _ThreadSpy(vol.files)
        plain = raw_exchange(py.port, go_post(b"1,1200000001", multipart([file_part(b"p.bin", BIN)])))
        assert plain.status == 201
        assert [(op, fd) for op, fd, _ in spy.seen] == [("pwrite", vol._dat_fd), ("pwrite", vol._idx_fd)]
        loop_thread = spy.seen[0][2]
        spy.seen.clear()
        synced = raw_exchange(py.port, go_post(b"1,1300000002?fsync=true", multipart([file_part(b"s.bin", BIN)])))
        assert synced.status == 201
        ops = [(op, fd, thread == loop_thread) for op, fd, thread in spy.seen]
        assert ops == [("pwrite", vol._dat_fd, True), ("pwrite", vol._idx_fd, True),
                       ("fdatasync", vol._dat_fd, False), ("fdatasync", vol._idx_fd, False)]
        assert vol._synced_upto == vol._dat_size
        assert raw_exchange(py.port, go_get(b"1,1300000002")).body == BIN


def test_an_append_that_fails_unexpectedly_leaves_nothing_in_flight(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An append raising what no storage call should (a bug): the connection is dropped without
    an answer, and neither the upload limit's in-flight bytes nor the writeToLocalDisk gauge keeps
    the upload (left counted, they would throttle every later upload under
    -concurrentUploadLimitMB)."""
    def broken(app, up, blocking=True):
        raise RuntimeError("a bug in the append")

    monkeypatch.setattr(uv_serve, "store_upload", broken)
    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        request = go_post(b"1,1400000001", multipart([file_part(b"x.bin", BIN)]))
        with socket.create_connection(("127.0.0.1", py.port), timeout=30) as s:
            s.sendall(request)
            try:
                rest = s.recv(65536)
            except ConnectionResetError:
                rest = b""
        assert rest == b""
        assert py.app.upload.inflight == 0
        assert py.app.ctx.metrics.timer("writeToLocalDisk")[0].value == 0
        monkeypatch.undo()
        assert raw_exchange(py.port, request).status == 201  # the server serves on


def test_a_client_that_closes_in_the_middle_of_a_body_leaves_the_server_serving(tmp_path) -> None:
    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        request = go_post(b"1,1000000001", multipart([file_part(b"cut.bin", BIN)]))
        with socket.create_connection(("127.0.0.1", py.port), timeout=30) as s:
            s.sendall(request[: len(request) - 100])
        done = threading.Event()
        answers: list[Raw] = []

        def read_after() -> None:
            answers.append(raw_exchange(py.port, go_get(b"1,1000000001")))
            done.set()

        threading.Thread(target=read_after, daemon=True).start()
        assert done.wait(30)
        assert answers[0].status == 404  # nothing of the cut upload was stored


def test_a_connection_comes_back_from_trio_after_a_plain_request(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read the fast path does not take (a Range) moves the connection to trio's path; the next
    plain read, which trio's path answers the fast way, brings it back to the protocol's: each
    answer is Go's, and the loop that answered each is the one expected."""
    go, py = pair
    seen: list[tuple[str, bool]] = []  # (loop, answered by its fast read)
    for module, name in ((uv_serve, "uv"), (native_app, "trio")):
        real = module.fast_read

        def spy(app, req, real=real, name=name):
            found = real(app, req)
            seen.append((name, found is not None))
            return found

        monkeypatch.setattr(module, "fast_read", spy)
    fid = b"2,1200000001"
    ranged = b"GET /" + fid + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=3-9\r\n\r\n"
    requests = [go_post(fid, multipart([file_part(b"r.bin", BIN)])), go_get(fid), ranged, go_get(fid), go_get(fid), ranged]
    go_answers = one_by_one(go.port, requests)
    py_answers = one_by_one(py.port, requests)
    assert [a.status for a in py_answers] == [201, 200, 206, 200, 200, 206]
    for i, (g, p) in enumerate(zip(go_answers, py_answers)):
        assert as_go(g) == as_go(p), diff_text(f"request {i}", g, p)
    # the protocol declines each Range read (then trio's path declines its fast read too and serves
    # it in full); the plain read after one is trio's, the next one the protocol's again
    assert seen == [("uv", True), ("uv", False), ("trio", False), ("trio", True), ("uv", True), ("uv", False),
                    ("trio", False)]


def test_large_reads_pipelined_are_the_protocols_and_gos(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Needles over VIEW_OVER (their data written as a view after the head) up to 4 MiB, pipelined
    in one write with a small one between and read only once all were asked: the protocol answers
    each (a client slow to read pauses it between answers), in order, each as Go's."""
    go, py = pair
    seen: list[bool] = []
    real = uv_serve.fast_read

    def spy(app, req):
        found = real(app, req)
        seen.append(found is not None and bool(found[1]))  # answered here, the body as the rest
        return found

    monkeypatch.setattr(uv_serve, "fast_read", spy)
    big, mid = os.urandom((3 << 20) + 11), os.urandom(70_000)
    fids = (b"2,1300000001", b"2,1400000001", b"2,1500000001")
    for port in (go.port, py.port):
        for fid, data in zip(fids, (big, BIN, mid)):
            raw_exchange(port, go_post(fid, multipart([file_part(b"x.bin", data)])))
    batch = go_get(fids[0]) + go_get(fids[1]) + go_get(fids[2]) + go_get(fids[0])
    go_answers, py_answers = (_pipelined(port, batch, 4) for port in (go.port, py.port))
    assert [a.body for a in py_answers] == [big, BIN, mid, big]
    for i, (g, p) in enumerate(zip(go_answers, py_answers)):
        assert as_go(g) == as_go(p), diff_text(f"answer {i}", g, p)
    assert seen == [True, False, True, True]


@pytest.mark.parametrize("loop", ["uvloop", "trio"])
def test_every_native_process_runs_the_loop_it_is_told(tmp_path, loop: str) -> None:
    """A native server with a worker: both processes on uvloop by default, neither loads it with
    WEEDPY_HTTP_LOOP=trio; uploads and reads on fresh connections (either process) work both ways."""
    from pathlib import Path

    import httpx

    from tests.support.procs import clean_env, start_master, wait_for_volume_server
    from tests.support.process_tree import serving_worker
    from tests.support.weedpy_proc import start_weedpy_volume

    master = start_master(tmp_path / "master")
    try:
        env = clean_env({"WEEDPY_HTTP_LOOP": "trio"} if loop == "trio" else {})
        server = start_weedpy_volume(tmp_path, master, extra=["-mode=native", "-workers=2"], env=env)
        try:
            wait_for_volume_server(master, f"127.0.0.1:{server.port}")
            worker = serving_worker(server.proc.pid, server.proc.log_path)
            for pid in (server.proc.pid, worker):
                assert (b"uvloop" in Path(f"/proc/{pid}/maps").read_bytes()) == (loop == "uvloop"), pid
            for i in range(6):
                a = httpx.get(f"{master.url}/dir/assign", timeout=10).json()
                body = b"%s %d " % (loop.encode(), i) * 50
                assert httpx.post(f"http://{a['url']}/{a['fid']}", files={"file": ("f.bin", body)},
                                  timeout=10).status_code == 201
                r = httpx.get(f"http://{a['url']}/{a['fid']}", timeout=10)  # a fresh connection each
                assert (r.status_code, r.content) == (200, body)
        finally:
            server.stop()
    finally:
        master.stop()


def test_a_hand_over_waiting_on_a_client_that_reads_nothing_backs_off_then_closes() -> None:
    """A connection handed over once its answers are out: while the client reads none of them
    the protocol looks again less and less often (no busy loop), and after the idle timeout it
    closes the connection instead of waiting forever."""
    import asyncio

    from weedpy.serve.uv_host import UvConnection, UvHost

    class StuckTransport:
        """A client that never reads: what was written stays in the buffer."""

        aborted = False

        def pause_reading(self) -> None: ...

        def get_write_buffer_size(self) -> int:
            return 4096

        def get_extra_info(self, name: str):
            return ("127.0.0.1", 1) if name == "peername" else None

        def abort(self) -> None:
            self.aborted = True

    async def main() -> tuple[int, bool, int]:
        host = UvHost()
        host.loop, host.idle = asyncio.get_running_loop(), 0.3
        closed: list[int] = []
        host.closed = lambda: closed.append(1)  # type: ignore[method-assign]
        class Counting(UvConnection):
            __slots__ = ("looks",)

            def _detach(self, *args) -> None:
                self.looks += 1
                super()._detach(*args)

        conn = Counting(host, "admin")
        conn.looks = 0
        transport = StuckTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.hand_over(None)
        await asyncio.sleep(1.0)
        conn.connection_lost(None)  # what the transport's abort leads to
        return conn.looks, transport.aborted, len(closed)

    looks, aborted, closed = asyncio.run(main())
    assert aborted and closed == 1
    assert looks <= 10  # 5, 10, 20, ... ms apart until the idle timeout (a fixed 5 ms: about 60)


def test_an_upload_whose_volume_went_away_after_its_head_is_stored_as_the_store_would(tmp_path) -> None:
    """The append goes to the volume its head found; if that volume was unmounted since, the
    store answers (not found, or the volume mounted again in its place takes the append)."""
    from native.http._fast_write import plan_upload, store_upload, upload_volume
    from native.storage import VolumeNotFound
    from weedpy.http1 import Data, ServerConnection

    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        conn = ServerConnection()
        conn.receive_data(go_post(b"1,0e00000001", multipart([file_part(b"a.bin", BIN)])))
        req = conn.next_event()
        body = conn.next_event()
        assert isinstance(body, Data)
        target = upload_volume(py.app, req, "admin")
        assert target is not None and target.volume is py.store.find_volume(1)
        up = plan_upload(py.app, req, target, body.data)
        assert up is not None
        assert py.store.unmount_volume(1)
        with pytest.raises(VolumeNotFound, match=r"^volume 1 not found$"):
            store_upload(py.app, up)
        remounted = py.store.mount_volume(1)
        assert remounted is not up.volume
        assert store_upload(py.app, up) is False  # appended to the volume mounted now
        read = raw_exchange(py.port, go_get(b"1,0e00000001"))
        assert (read.status, read.body) == (200, BIN)


class _HeldSync(_ThreadSpy):
    """`_ThreadSpy` whose first fdatasync waits for `release` (a disk writing back a lot)."""

    def __init__(self, real: object) -> None:
        super().__init__(real)
        self.entered = threading.Event()
        self.release = threading.Event()

    def fdatasync(self, fd: int) -> None:
        super().fdatasync(fd)
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)


def test_an_upload_arriving_during_a_sync_of_its_volume_appends_in_a_worker_thread(tmp_path) -> None:
    """While a sync of a volume's files runs in a worker thread, the event loop does not append to
    them: an append there waits while the kernel writes the file back (tens of ms for a large
    sync), and would stall every connection. The upload is appended in a worker thread instead,
    and the loop answers reads meanwhile."""
    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        assert raw_exchange(py.port, go_post(b"1,1500000001", multipart([file_part(b"r.bin", BIN)]))).status == 201
        vol = py.store.find_volume(1)
        spy = vol.files = _HeldSync(vol.files)
        synced: list[Raw] = []
        first = threading.Thread(target=lambda: synced.append(raw_exchange(
            py.port, go_post(b"1,1600000002?fsync=true", multipart([file_part(b"s.bin", BIN)])))), daemon=True)
        first.start()
        try:
            assert spy.entered.wait(30)
            loop_thread = spy.seen[0][2]  # the fsync upload's own append: on the loop, before its sync
            assert [(op, thread == loop_thread) for op, _, thread in spy.seen] == [
                ("pwrite", True), ("pwrite", True), ("fdatasync", False)]
            spy.seen.clear()
            plain = raw_exchange(py.port, go_post(b"1,1700000003", multipart([file_part(b"p.bin", BIN)])))
            assert plain.status == 201
            assert [(op, fd) for op, fd, _ in spy.seen] == [("pwrite", vol._dat_fd), ("pwrite", vol._idx_fd)]
            assert all(thread != loop_thread for _, _, thread in spy.seen), spy.seen
            assert raw_exchange(py.port, go_get(b"1,1500000001")).body == BIN  # the loop serves on
            assert not synced  # the fsync upload is still waiting for its sync
        finally:
            spy.release.set()
            first.join(30)
        assert [a.status for a in synced] == [201]
        spy.seen.clear()
        later = raw_exchange(py.port, go_post(b"1,1800000004", multipart([file_part(b"l.bin", BIN)])))
        assert later.status == 201
        assert [thread == loop_thread for _, _, thread in spy.seen] == [True, True]  # back on the loop


class _ReadSpy:
    """A volume's file operations, noting which thread read the `.dat` and how."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.seen: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        self.seen.append(("pread", threading.current_thread().name))
        return self._real.pread(fd, length, offset)  # type: ignore[attr-defined]

    def preadv(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        if not flags:
            self.seen.append(("pread", threading.current_thread().name))
            return self._real.preadv(fd, buffers, offset)  # type: ignore[attr-defined]
        try:
            got = self._real.preadv(fd, buffers, offset, flags)  # type: ignore[attr-defined]
        except BlockingIOError:
            self.seen.append(("miss", threading.current_thread().name))
            raise
        self.seen.append(("cached", threading.current_thread().name))
        return got


def test_a_read_of_a_record_not_in_the_page_cache_waits_for_the_disk_in_a_worker_thread(tmp_path) -> None:
    """The event loop reads a record only from the page cache: a miss would wait for the disk
    (tens of ms behind a large writeback) with every connection of the process. The GET is
    answered with the same bytes from a worker thread's read (or, when the kernel's readahead
    that the miss started has already brought the page in, from the cache), never from a read
    on the loop that waits; the next read of the record is served on the loop again."""
    with start_native(tmp_path / "native", volumes=(1,), loop="uvloop") as py:
        assert raw_exchange(py.port, go_post(b"1,1900000001", multipart([file_part(b"c.bin", BIN)]))).status == 201
        first = raw_exchange(py.port, go_get(b"1,1900000001"))
        vol = py.store.find_volume(1)
        vol.sync_appended()
        os.posix_fadvise(vol._dat_fd, 0, 0, os.POSIX_FADV_DONTNEED)
        spy = vol.files = _ReadSpy(vol.files)
        missed = raw_exchange(py.port, go_get(b"1,1900000001"))
        assert (missed.status, missed.body) == (200, BIN)
        assert as_go(missed) == as_go(first)  # the same answer as from the page cache
        assert spy.seen[0][0] == "miss", spy.seen
        loop_thread = spy.seen[0][1]
        assert ("pread", loop_thread) not in spy.seen, spy.seen  # no read on the loop waits
        spy.seen.clear()
        assert raw_exchange(py.port, go_get(b"1,1900000001")).body == BIN
        assert spy.seen == [("cached", loop_thread)]
