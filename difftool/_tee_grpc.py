"""Dual-run on the gRPC path: serve a call from one side, record it, let the engine run the other.

`DualRunGrpc` is a gateway `CallTarget`. An unsampled, unmirrored call goes straight to the
serving target. Otherwise the serving target gets a `TeeCall`: the client's `ServerCall` with a
recorder on it (request DATA as read, response headers, DATA, trailers or trailers-only, resets;
bounded). After the call has ended for the client, the engine replays the request on the other
side over an in-memory HTTP/2 connection served by that side's own handler (`run_other_grpc`),
with the client's peer address, so both sides run the code, checks included, they run for clients.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence

import trio
import trio.testing

from difftool._capture import capture_grpc
from difftool._engine import DUAL_RUN_TARGETS, DiffEngine, Job
from difftool._records import GrpcRequest, GrpcResponse, Outcome
from weedpy.serve.routes import RouteTable, grpc_endpoint
from weedpy.grpc import (
    CallHandler,
    ConnectionPool,
    DataReceived,
    GrpcError,
    MessageReader,
    ServerCall,
    ServerOptions,
    Status,
    encode_message,
    encode_metadata,
    grpc_error_in,
    percent_encode,
    serve_connection,
)
from weedpy.grpc import ProtocolError as GrpcProtocolError

__all__ = ["TeeCall", "DualRunGrpc", "run_other_grpc"]

_RESPONSE_HEADERS = ((b":status", b"200"), (b"content-type", b"application/grpc"))
_NOT_FORWARDED = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"})


class TeeCall:
    """A `ServerCall` with a recorder: methods that move data are wrapped, the rest pass through."""

    def __init__(self, call: ServerCall, limit: int) -> None:
        self._call = call
        self._limit = limit
        self.request = bytearray()
        self.request_cut = False
        self.request_done = False
        self.response_headers: tuple[tuple[bytes, bytes], ...] = ()
        self.response = bytearray()
        self.response_cut = False
        self.trailers: tuple[tuple[bytes, bytes], ...] = ()
        self.trailers_only = False
        self.reset_code: int | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self._call, name)

    def _keep(self, buf: bytearray, data: bytes, cut_attr: str) -> None:
        if getattr(self, cut_attr):
            return
        if len(buf) + len(data) > self._limit:
            setattr(self, cut_attr, True)
            buf.clear()
        else:
            buf += data

    # request side
    async def receive_data(self) -> DataReceived | None:
        ev = await self._call.receive_data()
        if ev is None:
            self.request_done = True
        else:
            self._keep(self.request, ev.data, "request_cut")
        return ev

    async def receive_message(self) -> bytes | None:
        msg = await self._call.receive_message()
        if msg is None:
            self.request_done = True
        else:
            self._keep(self.request, encode_message(msg), "request_cut")
        return msg

    def acknowledge(self, n: int) -> None:
        self._call.acknowledge(n)

    # response side
    def send_headers(self, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        if end_stream:
            self.trailers_only = True
            self.trailers = tuple(headers)
        self.response_headers = tuple(headers)
        self._call.send_headers(headers, end_stream)

    def send_initial_metadata(self, metadata: Sequence[tuple[str, str | bytes]] = ()) -> None:
        if self._call.headers_sent:
            raise RuntimeError("initial metadata already sent")
        self.send_headers(_RESPONSE_HEADERS + tuple(encode_metadata(metadata)) if metadata else _RESPONSE_HEADERS)

    async def send_data(self, data: bytes) -> None:
        self._keep(self.response, data, "response_cut")
        await self._call.send_data(data)

    async def send_message(self, payload: bytes) -> None:
        if not self._call.headers_sent:
            self.send_initial_metadata()
        self._keep(self.response, encode_message(payload), "response_cut")
        await self._call.send_message(payload)

    def send_trailers(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.trailers = tuple(headers)
        self._call.send_trailers(headers)

    def finish(self, status: Status, message: str = "", metadata: Sequence[tuple[str, str | bytes]] = ()) -> None:
        trailers = [(b"grpc-status", b"%d" % status)]
        if message:
            trailers.append((b"grpc-message", percent_encode(message)))
        trailers.extend(encode_metadata(metadata))
        if self._call.headers_sent:
            self.send_trailers(trailers)
        else:
            self.send_headers(_RESPONSE_HEADERS + tuple(trailers), end_stream=True)

    def reset(self, error_code: int = 8) -> None:
        self.reset_code = error_code
        self._call.reset(error_code)

    # records
    def request_record(self) -> GrpcRequest:
        call = self._call
        metadata = tuple((k, v) for k, v in call.headers if not k.startswith(b":") and k not in _NOT_FORWARDED)
        return GrpcRequest(call.method, metadata, _messages(bytes(self.request)))

    def response_record(self) -> GrpcResponse:
        trailers = self.trailers
        return GrpcResponse(self.response_headers, _messages(bytes(self.response)), trailers, self.trailers_only,
                            self.reset_code)


def _messages(raw: bytes) -> tuple[bytes, ...]:
    reader = MessageReader(None, allow_compressed=True)
    reader.feed(raw)
    out = []
    try:
        while (m := reader.next_message()) is not None:
            out.append(m)
    except GrpcProtocolError:
        pass
    return tuple(out)


async def run_other_grpc(
    handler: CallHandler, req: GrpcRequest, *, peer: str, options: ServerOptions, limit: int,
    own_addrs: tuple[bytes, ...] = (), aliases: tuple[tuple[bytes, bytes], ...] = (), version: str = "",
) -> Outcome:
    """Serve `req` with `handler` over an in-memory HTTP/2 connection; the answer as a record."""
    client, server = trio.testing.memory_stream_pair()

    async def connect() -> trio.abc.Stream:
        return client

    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(serve_connection, server, handler, peer=peer, options=options))
        pool = ConnectionPool("in-memory", 0, nursery, connector=connect)
        try:
            out = await capture_grpc(pool, req, limit=limit, own_addrs=own_addrs, version=version)
        finally:
            pool.close()
            nursery.cancel_scope.cancel()
    return Outcome(out.response, out.error, out.ms, own_addrs, version, aliases)


SideInfo = Callable[[], tuple[tuple[bytes, ...], tuple[tuple[bytes, bytes], ...], str]]


class DualRunGrpc:
    """A gateway CallTarget: `serving` answers, `other` (a CallHandler) runs off the serving path."""

    def __init__(
        self, name: str, serving: CallHandler, other: CallHandler, other_options: ServerOptions, serving_side: str,
        engine: DiffEngine, routes: RouteTable, side_info: dict[str, SideInfo],
        control: CallHandler | None = None, control_options: ServerOptions | None = None,
    ) -> None:
        self.name = name
        self._control = control
        self._control_options = control_options or other_options
        self._serving = serving
        self._other = other
        self._other_options = other_options
        self._side = serving_side
        self._other_side = "native" if serving_side == "go" else "go"
        self._engine = engine
        self._routes = routes
        self._info = side_info

    async def handle(self, call: ServerCall) -> None:
        endpoint = grpc_endpoint(call.method)
        engine = self._engine
        route = self._routes.lookup(endpoint)
        mirrored = engine.is_mirrored(endpoint)
        sampled = route.target in DUAL_RUN_TARGETS and engine.sampled(route.sample_pct) and engine.has_room(endpoint)
        if engine.behind(self._side):
            await engine.catch_up()
        if not (sampled or mirrored):
            await self._serving.handle(call)
            return
        cfg = engine.config
        tee = TeeCall(call, cfg.mirror_limit if mirrored else cfg.capture_limit)
        t0 = time.perf_counter()
        finished = False
        try:
            try:
                await self._serving.handle(tee)  # type: ignore[arg-type]
            except* Exception as group:  # as GrpcFront does: a GrpcError becomes the call's status
                err = grpc_error_in(group)
                if err is None:
                    raise
                if not call.finished and not call.reset_by_peer:
                    with contextlib.suppress(GrpcError):
                        tee.finish(err.status, err.message, err.trailing_metadata)
            finished = True
        finally:
            if not finished:  # crashed or cancelled: no answer to compare; a write may be half done
                engine.drop(endpoint, "mirror_serving_failed" if mirrored else "serving_failed")
        await self._submit(endpoint, call, tee, (time.perf_counter() - t0) * 1000, sampled, mirrored)

    async def _submit(self, endpoint: str, call: ServerCall, tee: TeeCall, ms: float, sampled: bool, mirrored: bool) -> None:
        engine = self._engine
        if tee.request_cut:
            engine.drop(endpoint, "mirror_too_large" if mirrored else "too_large")
            return
        if not tee.request_done and not tee.trailers_only and tee.reset_code is None and not call.input_ended:
            # the serving side ended without reading the whole request: the other side cannot be given it
            engine.aggregator.drop(endpoint, "request_unread")
            if not mirrored:
                return
        record = tee.request_record()
        own, aliases, version = self._info[self._side]()
        compare = sampled or mirrored
        if tee.response_cut:
            compare = False
            if not mirrored:
                engine.aggregator.drop(endpoint, "too_large")
                return
        serving = Outcome(tee.response_record(), "", ms, own, version, aliases)
        peer, limit = call.peer, engine.config.capture_limit

        def replay_on(handler: CallHandler, side: str, options: ServerOptions) -> Callable[[], Awaitable[Outcome]]:
            """The recorded call, run on `handler` (the other side, or the control) later."""
            side_own, side_aliases, side_version = self._info[side]()

            async def run() -> Outcome:
                return await run_other_grpc(handler, record, peer=peer, options=options, limit=limit,
                                            own_addrs=side_own, aliases=side_aliases, version=side_version)
            return run

        run_other = replay_on(self._other, self._other_side, self._other_options)
        run_control = (replay_on(self._control, "go-control", self._control_options)
                       if self._control is not None else None)
        await engine.submit(Job(endpoint, record, serving, self._side, run_other, compare=compare, run_control=run_control,
                         size=sum(map(len, record.messages))))
