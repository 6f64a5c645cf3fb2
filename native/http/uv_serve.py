"""Native mode's common requests answered from uvloop's callbacks (weedpy/serve/uv_host.py).

The plain read (`fast_read`) and the plain upload (`upload_volume` .. `upload_reply`, the pieces
of `fast_write`) are served by an asyncio protocol per connection, with the bytes, log line and
metrics trio's path gives them (`HttpFront.direct_route` / `direct_done`); nothing is scheduled
per request. Any other request, and one of these the fast path declines (a header it does not
take, a JWT, a limit in play, a volume being swapped, a part it does not parse), is handed over
with its connection to trio's path, which serves it with every rule it has and serves that
connection from then on.

An upload's body is collected here (at most `FAST_WRITE_LIMIT` bytes, announced by its
Content-Length) while it arrives; a body that stalls for the idle timeout is handed over with
what came, and trio's path then waits for the rest under its own timeout. The append runs right
here unless a lock is held elsewhere (a compaction commit, an fsync, another process's append):
then it runs in a worker thread, and the connection reads nothing more until it is answered.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from native.http._fast import fast_read
from native.http._fast_write import (
    Upload,
    append_unsynced,
    sync_upload,
    UploadTarget,
    plan_upload,
    store_upload,
    upload_reply,
    stop_timer,
    upload_volume,
)
from native.storage import StorageError, WouldBlock
from weedpy.http1 import NEED_DATA, Data, EndOfMessage, ProtocolError, Request, ServerConnection
from weedpy.serve.http_front import DirectToken, HttpFront
from weedpy.serve.uv_host import UvConnection, UvHost

if TYPE_CHECKING:
    import asyncio

    from native.http.app import NativeHttp

__all__ = ["NativeUvHttp"]

_perf = time.perf_counter
_mono = time.monotonic
_NATIVE = "native"


class NativeUvHttp(UvHost):
    """A native server process's plain-HTTP ports (an `HttpServe`): reads and uploads here,
    the rest through the process's whole HTTP handler on trio's path."""

    def __init__(self, app: NativeHttp, front: HttpFront, buffer_size: int = 0) -> None:
        super().__init__(buffer_size)
        self.app = app
        self.front = front
        self.disk_timer = app.ctx.metrics.timer("writeToLocalDisk")  # (in flight, seconds) of every append

    def protocol(self, kind: str, conn: ServerConnection | None = None) -> Callable[[], asyncio.Protocol]:
        return lambda: _Conn(self, kind, conn)


class _Conn(UvConnection):
    """One client connection: plain reads and uploads answered in its callbacks."""

    __slots__ = ("req", "token", "t0", "target", "pieces", "busy", "held", "wsize", "wstamp")

    host: NativeUvHttp

    def __init__(self, host: NativeUvHttp, kind: str, conn: ServerConnection | None = None) -> None:
        super().__init__(host, kind, conn)
        self.req: Request | None = None  # the upload in progress
        self.token: DirectToken | None = None
        self.t0 = 0.0
        self.target: UploadTarget | None = None  # the upload whose body is arriving
        self.pieces: list[bytes] = []
        self.busy = False  # an append runs in a worker thread: read nothing until it is answered
        self.held = 0  # download bytes counted until a slow client takes the answer they are in
        self.wsize = 0  # while paused: the write buffer's size last seen, and when it last shrank
        self.wstamp = 0.0

    # -- the transport's callbacks -----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last_rx = _mono()
        if self.lingering:
            return
        self.conn.receive_data(data)
        if not self.busy:
            self.serve()

    def eof_received(self) -> bool:
        if self.lingering:
            self.shut()
            return False
        self.conn.receive_data(b"")
        if not self.busy:
            self.serve()
        return True  # keep writing: an answer may still go out

    def pause_writing(self) -> None:  # the client is slow to read its answers
        self.wpaused = True
        t = self.t
        self.wsize, self.wstamp = (0 if t is None else t.get_write_buffer_size()), _mono()

    def resume_writing(self) -> None:
        self.wpaused = False
        if self.held:  # the answer is down to the low-water mark: out, as Go would count it
            self.release_held()
        t = self.t
        if not self.busy and not self.gone and not self.lingering and t is not None and not t.is_closing():
            self.serve()

    def ended(self) -> None:
        if self.held:
            self.release_held()
        if self.req is not None and not self.busy:  # the client went away in the middle of its body
            self.finish(0)

    def release_held(self) -> None:
        """The download bytes of a paused answer stop counting in flight."""
        self.host.app.download.release(self.held)
        self.held = 0

    def waiting_for_client(self) -> bool:
        return not self.busy and not self.wpaused  # not while an append or the client's reading holds it up

    def idle_check(self, now: float, timeout: float) -> None:
        t = self.t
        if self.wpaused and t is not None:
            # Go's write deadline (the idle timeout, renewed on every Write: weed/util/net_timeout.go)
            # ends an answer its client stopped taking, and with it the bytes it counts in flight
            size = t.get_write_buffer_size()
            if size != self.wsize:
                self.wsize, self.wstamp = size, now
            elif now - self.wstamp > timeout:
                t.abort()  # connection_lost -> ended: what `held` counts is released
            return
        if self.target is not None and self.t is not None and now - self.last_rx > timeout:
            self.give_up(b"".join(self.pieces), False)  # a stalled body: trio's path answers it as Go does
            return
        super().idle_check(now, timeout)

    # -- requests ----------------------------------------------------------------------------------
    def serve(self) -> None:
        """Serve every request whose bytes are here; stop at one that must wait or go to trio."""
        try:
            while True:
                t = self.t
                if t is None or self.gone or self.lingering:
                    return
                if self.target is not None:
                    if not self.take_body():
                        return
                    continue
                req = self.take_request()
                if req is None:
                    return
                method = req.method
                if method == b"GET" or method == b"HEAD":
                    if not self.read(req):
                        return
                elif method != b"POST" or not self.begin_upload(req):
                    self.hand_over(req)
                    return
        except Exception as exc:  # a bug must not leave the client waiting
            self.crashed(exc)

    def read(self, req: Request) -> bool:
        """Answer a plain read; False when handed over to trio's path."""
        host = self.host
        front = host.front
        has_body = req.chunked or req.content_length  # Request.has_body, inline
        if has_body or type(self.conn.next_event()) is not EndOfMessage:
            # a read with a body is not the fast path's; one without ends at once (its end is
            # taken here, so trio's path gets it as a request whose body was all taken)
            self.hand_over(req, None if has_body else (b"", True))
            return False
        token = front.direct_route(self.kind, req, self.client_host, _NATIVE)
        if token is None:
            self.hand_over(req, (b"", True))
            return False
        t0 = _perf()
        app = host.app
        fast = fast_read(app, req)
        if fast is None:
            front.direct_forget(token)
            self.hand_over(req, (b"", True))
            return False
        data, rest, inflight = fast
        t = self.t
        assert t is not None
        # Go counts the bytes in flight until they are out. A small answer is the transport's at
        # once, so only another process (a shared counter) could ever see it counted; a large one
        # a slow client leaves in uvloop's buffer (past the high-water mark: `pause_writing`,
        # told during the write) stays counted until `resume_writing` or the connection's end.
        download = app.download
        if rest:
            t.write(data)
            t.write(rest)
            if self.wpaused:  # counted from here, in the same callback: nothing ran in between
                download.add(inflight)
                self.held += inflight
        elif download.shared:
            download.add(inflight)
            t.write(data)
            download.release(inflight)
        else:
            t.write(data)
        front.direct_done(token, req.method, 200, _perf() - t0, self.client_host)
        return True

    def begin_upload(self, req: Request) -> bool:
        """Start collecting a plain upload's body; False when trio's path must serve it."""
        host = self.host
        target = upload_volume(host.app, req, self.kind)
        if target is None:
            return False
        token = host.front.direct_route(self.kind, req, self.client_host, _NATIVE)
        if token is None:
            return False
        self.req, self.token, self.t0, self.target, self.pieces = req, token, _perf(), target, []
        return True

    def take_body(self) -> bool:
        """Take the body bytes the parser has; True once the upload was answered."""
        conn = self.conn
        pieces = self.pieces
        try:
            while True:
                ev = conn.next_event()
                if ev is NEED_DATA:
                    assert self.t is not None
                    self.t.resume_reading()
                    return False
                if type(ev) is Data:
                    pieces.append(ev.data)
                elif type(ev) is EndOfMessage:
                    break
                else:
                    raise ProtocolError("unexpected event in request body")
        except ProtocolError:  # kept by the parser: trio's path meets it again and answers as Go does
            self.give_up(b"".join(pieces), False)
            return False
        body = b"".join(pieces) if len(pieces) != 1 else pieces[0]
        self.pieces = []
        target, self.target = self.target, None
        assert target is not None and self.req is not None
        up = plan_upload(self.host.app, self.req, target, body)
        if up is None:
            self.give_up(body, True)
            return False
        return self.store(up)

    def store(self, up: Upload) -> bool:
        """Append and answer; False while the append waits for a lock in a worker thread."""
        host = self.host
        app = host.app
        app.upload.add(up.length)  # as the full path counts an upload in flight until its reply is out
        in_flight, seconds = host.disk_timer  # Go's writeToLocalDisk timer, counted inline
        in_flight.value += 1
        t0 = _perf()
        outcome: bool | StorageError
        try:
            if up.fsync:  # the append here, the wait for the disk in a worker thread
                self.in_thread(up, t0, sync_upload, up, append_unsynced(app, up))
                return False
            outcome = store_upload(app, up, blocking=False)
        except WouldBlock:
            self.in_thread(up, t0, store_upload, app, up)
            return False
        except StorageError as exc:
            outcome = exc
        except BaseException:  # a bug (the connection is dropped): as `stored`, nothing stays in flight
            in_flight.value -= 1
            self.drop(up)
            raise
        in_flight.value -= 1
        seconds.observe(_perf() - t0)
        self.answer(up, outcome)
        return True

    def in_thread(self, up: Upload, t0: float, fn: Callable[..., bool], *args: Any) -> None:
        """Finish the upload with `fn(*args)` in a worker thread; `stored` answers it."""
        self.busy = True
        if self.t is not None:
            self.t.pause_reading()  # a pipelining client waits too
        host = self.host
        loop = host.loop
        assert loop is not None
        loop.run_in_executor(None, fn, *args).add_done_callback(
            functools.partial(self.stored, up, functools.partial(stop_timer, host.disk_timer, t0)))

    def stored(self, up: Upload, stop: Callable[[], None], done: asyncio.Future[Any]) -> None:
        """An append that waited in a worker thread is over: answer it, then go on reading."""
        stop()
        self.busy = False
        try:
            exc = done.exception()
            outcome: bool | StorageError = done.result() if exc is None else exc  # type: ignore[assignment]
            if exc is not None and not isinstance(exc, StorageError):
                raise exc
            self.answer(up, outcome)
        except Exception as exc:  # as trio's path: logged, the connection closes without an answer
            self.drop(up)
            self.crashed(exc)
            return
        if self.t is not None and not self.gone:
            self.serve()

    def answer(self, up: Upload, outcome: bool | StorageError) -> None:
        req, token = self.req, self.token
        assert req is not None
        host = self.host
        app = host.app
        wire, status = upload_reply(app, up, outcome, req, self.client_host)
        if self.t is not None:
            self.t.write(wire)
        app.upload.release(up.length)
        # the upload is over: its log line and metrics (`finish`, inline)
        self.req = self.token = self.target = None
        if token is not None:
            host.front.direct_done(token, req.method, status, _perf() - self.t0, self.client_host)

    def drop(self, up: Upload) -> None:
        """An upload that ends without an answer (a bug; the connection closes): nothing of it
        stays counted in flight, and its log line says so."""
        self.host.app.upload.release(up.length)
        self.finish(0)

    def finish(self, status: int) -> None:
        """The upload in progress is over: its log line and metrics."""
        req, token = self.req, self.token
        self.req = self.token = None
        self.target = None
        if req is not None and token is not None:
            self.host.front.direct_done(token, req.method, status, _perf() - self.t0, self.client_host)

    def give_up(self, body: bytes, complete: bool) -> None:
        """Hand the upload in progress, with the body taken so far, to trio's path."""
        req, token = self.req, self.token
        self.req = self.token = None
        self.target = None
        self.pieces = []
        if token is not None:
            self.host.front.direct_forget(token)
        self.hand_over(req, (body, complete))
