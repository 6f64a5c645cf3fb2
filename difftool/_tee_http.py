"""Dual-run on the HTTP path: serve from one side, record, and let the engine run the other.

`DualRunHttp` is an HTTP target (`async handle(exch)`) for the gateway's front. A request that is
neither sampled nor mirrored goes straight to the serving handler: no copy, no wrapper. Otherwise
the serving handler gets a `TeeExchange`, which passes every call through to the client's
exchange unchanged and keeps a bounded copy of the request body it reads and of the bytes it
sends. The client has its whole answer before anything else happens; then a job goes to the
engine, which later replays the recorded request on the other side through a real `Exchange`
over a capture stream (`run_other_http`), so both sides run exactly the code they run for clients.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable

from difftool._capture import http_request_bytes, read_http_response
from difftool._engine import DUAL_RUN_TARGETS, DiffEngine, Job
from difftool._records import HttpRequest, Outcome
from weedpy.serve.routes import RouteTable, http_endpoint, request_path
from weedpy.http1 import Exchange, ServerConnection
from weedpy.http1 import Request as WireRequest

__all__ = ["TeeExchange", "DualRunHttp", "run_other_http", "CaptureStream"]

HttpHandler = Callable[[Exchange], Awaitable[None]]
_HEAD_SLACK = 64 << 10  # response head bytes allowed on top of the body limit


class TeeExchange:
    """An `Exchange` seen through a recorder: every call and attribute goes to the real one."""

    __slots__ = ("_x", "body", "body_done", "body_cut", "out", "out_cut", "_body_limit", "_out_limit")

    def __init__(self, exch: Exchange, body_limit: int, out_limit: int) -> None:
        object.__setattr__(self, "_x", exch)
        object.__setattr__(self, "body", bytearray())
        object.__setattr__(self, "body_done", not exch.request.has_body)
        object.__setattr__(self, "body_cut", False)
        object.__setattr__(self, "out", bytearray())
        object.__setattr__(self, "out_cut", False)
        object.__setattr__(self, "_body_limit", body_limit)
        object.__setattr__(self, "_out_limit", out_limit)

    def __getattr__(self, name: str) -> object:
        return getattr(self._x, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._x, name, value)  # started, status, close_after: the client's exchange decides

    async def receive_body(self) -> bytes:
        data = await self._x.receive_body()
        if not data:
            object.__setattr__(self, "body_done", True)
        else:
            self._record_body(data)
        return data

    def buffered_body(self) -> bytes | None:
        data = self._x.buffered_body()
        if data is not None:
            self._record_body(data)
            object.__setattr__(self, "body_done", True)
        return data

    def unread(self, data: bytes) -> None:
        """Bytes given back are recorded again when `receive_body` returns them."""
        self._x.unread(data)
        object.__setattr__(self, "body_done", False)
        if data and not self.body_cut:
            del self.body[-len(data):]

    def _record_body(self, data: bytes) -> None:
        if self.body_cut:
            return
        if len(self.body) + len(data) > self._body_limit:
            object.__setattr__(self, "body_cut", True)
            self.body.clear()
        else:
            self.body.extend(data)

    async def send(self, data: bytes) -> None:
        if not self.out_cut:
            if len(self.out) + len(data) > self._out_limit:
                object.__setattr__(self, "out_cut", True)
                self.out.clear()
            else:
                self.out.extend(data)
        await self._x.send(data)

    def drain_buffered(self) -> bool:
        return self._x.drain_buffered()


class CaptureStream:
    """The stream under a replayed `Exchange`: the request was fed whole; sends are recorded."""

    __slots__ = ("data", "cut", "_limit")

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.cut = False
        self._limit = limit

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if len(self.data) + len(data) > self._limit:
            self.cut = True
        else:
            self.data += data

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        return b""

    async def aclose(self) -> None:
        pass


async def run_other_http(
    handler: HttpHandler, req: HttpRequest, *, client_host: str, local_port: int, limit: int,
    own_addrs: tuple[bytes, ...] = (), aliases: tuple[tuple[bytes, bytes], ...] = (), version: str = "",
) -> Outcome:
    """Run `req` through `handler` as if a client had sent it; the answer as a record."""
    conn = ServerConnection()
    conn.receive_data(http_request_bytes(req))
    head = conn.next_event()
    if not isinstance(head, WireRequest):
        return Outcome(None, "the recorded request does not parse", 0.0, own_addrs, version, aliases)
    stream = CaptureStream(limit + _HEAD_SLACK)
    exch = Exchange(head, conn, stream, 30.0, client_host, local_port, req.port_kind)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    await handler(exch)
    ms = (time.perf_counter() - t0) * 1000
    if stream.cut:
        return Outcome(None, "answer longer than the capture limit", ms, own_addrs, version, aliases)
    resp = read_http_response(bytes(stream.data), head_only=req.method == b"HEAD", limit=limit)
    if resp is None:
        return Outcome(None, "incomplete answer", ms, own_addrs, version, aliases)
    return Outcome(resp, "", ms, own_addrs, version, aliases)


SideInfo = Callable[[], tuple[tuple[bytes, ...], tuple[tuple[bytes, bytes], ...], str]]  # own addrs, aliases, version


class DualRunHttp:
    """Serve with `serving`, run `other` off the serving path, compare (see the module docstring).

    The same class serves plain `go`/`native` targets while dual-run is on: then only writes are
    teed (mirrored to the other store), nothing is sampled.
    """

    def __init__(
        self, serving: HttpHandler, other: HttpHandler, serving_side: str, engine: DiffEngine, routes: RouteTable,
        side_info: dict[str, SideInfo], control: HttpHandler | None = None,
    ) -> None:
        self._serving = serving
        self._other = other
        self._control = control
        self._side = serving_side
        self._other_side = "native" if serving_side == "go" else "go"
        self._engine = engine
        self._routes = routes
        self._info = side_info

    def handle(self, exch: Exchange) -> Awaitable[None]:
        """Not a coroutine itself: an unsampled, unmirrored request goes on without an extra frame."""
        req = exch.request
        endpoint = http_endpoint(exch.port_kind, req.method, request_path(req.target))
        engine = self._engine
        route = self._routes.lookup(endpoint)
        mirrored = engine.is_mirrored(endpoint)
        sampled = route.target in DUAL_RUN_TARGETS and engine.sampled(route.sample_pct) and engine.has_room(endpoint)
        behind = engine.behind(self._side)
        if not (sampled or mirrored or behind):
            return self._serving(exch)
        return self._tee(exch, endpoint, sampled, mirrored, behind)

    async def _tee(self, exch: Exchange, endpoint: str, sampled: bool, mirrored: bool, behind: bool) -> None:
        engine = self._engine
        if behind:
            await engine.catch_up()
            if not (sampled or mirrored):
                await self._serving(exch)
                return
        cfg = engine.config
        body_limit = cfg.mirror_limit if mirrored else cfg.capture_limit
        tee = TeeExchange(exch, body_limit, cfg.capture_limit + _HEAD_SLACK)
        started = time.time()
        t0 = time.perf_counter()
        await self._serving(tee)  # type: ignore[arg-type]
        ms = (time.perf_counter() - t0) * 1000
        await self._submit(endpoint, exch, tee, ms, sampled, mirrored, started)

    async def _submit(self, endpoint: str, exch: Exchange, tee: TeeExchange, ms: float, sampled: bool, mirrored: bool,
                      started: float) -> None:
        engine = self._engine
        if not tee.body_done:
            # The serving side answered without reading the whole body (401, 413, ...): it stored
            # nothing, and the other side cannot be given the same request.
            engine.aggregator.drop(endpoint, "body_unread")
            return
        if tee.body_cut:
            engine.drop(endpoint, "mirror_too_large" if mirrored else "too_large")
            return
        req = exch.request
        record = HttpRequest(req.method, req.target, req.headers, bytes(tee.body), exch.port_kind)
        own, aliases, version = self._info[self._side]()
        out, out_cut, head_only, limit = bytes(tee.out), tee.out_cut, req.method == b"HEAD", cfg_limit(engine)

        def serving() -> Outcome:  # parsed by the engine, off the serving path
            resp = None if out_cut else read_http_response(out, head_only, limit)
            error = "" if resp is not None else "answer longer than the capture limit" if out_cut else "incomplete answer"
            return Outcome(resp, error, ms, own, version, aliases)

        replay = pin_write_time(record, int(started)) if mirrored else record

        def replay_on(handler: HttpHandler, side: str) -> Callable[[], Awaitable[Outcome]]:
            """The recorded request, run on `handler` (the other side, or the control) later."""
            side_own, side_aliases, side_version = self._info[side]()

            async def run() -> Outcome:
                return await run_other_http(handler, replay, client_host=exch.client_host, local_port=exch.local_port,
                                            limit=cfg_limit(engine), own_addrs=side_own, aliases=side_aliases,
                                            version=side_version)
            return run

        run_other = replay_on(self._other, self._other_side)
        run_control = replay_on(self._control, "go-control") if self._control is not None else None
        await engine.submit(Job(endpoint, record, serving, self._side, run_other, compare=sampled or mirrored,
                                size=len(record.body), run_control=run_control))


def pin_write_time(req: HttpRequest, unix_s: int) -> HttpRequest:
    """The write as replayed on the other side: `ts` (the needle's Last-Modified) pinned to when the
    serving side took it, unless the client gave one. Both sides read `ts` (Go's FormValue("ts"));
    without it each would stamp its own clock, and the mirror runs later."""
    if req.method not in (b"POST", b"PUT", b"DELETE"):
        return req
    path, sep, query = req.target.partition(b"?")
    if any(p.split(b"=", 1)[0] == b"ts" for p in query.split(b"&")):
        return req
    target = req.target + (b"&" if query else b"" if sep else b"?") + b"ts=%d" % unix_s
    return dataclasses.replace(req, target=target)


def cfg_limit(engine: DiffEngine) -> int:
    return engine.config.capture_limit
