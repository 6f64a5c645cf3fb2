"""The gateway's gRPC front: relay to a backend (ours, then real Go), routing, deadlines, resets,
end-to-end flow control and one log event per call."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
import trio
from google.protobuf import wrappers_pb2 as W

from gateway.backend import BackendEndpoints
from gateway.grpc_proxy import forward_headers, serve_grpc_proxy
from weedpy.serve.grpc_front import NamedTarget
from weedpy.serve.routes import Route, RouteTable, Target
from tests.grpc.helpers import BIDI, CLIENT_STREAM, SERVER_STREAM, UNARY
from weedpy.grpc import (
    Channel,
    ChannelOptions,
    ClientCall,
    ConnectionSettings,
    Context,
    GrpcError,
    Router,
    ServerCall,
    Status,
    request_headers,
    serve_listeners,
)


@dataclass
class StaticBackend:
    """A BackendView whose answer the test sets."""

    endpoints: BackendEndpoints | None

    def current(self) -> BackendEndpoints | None:
        return self.endpoints


async def listen(nursery: trio.Nursery, handler: Any) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(serve_listeners, listeners, handler)
    return listeners[0].socket.getsockname()[1]


async def start_proxy(nursery: trio.Nursery, backend: StaticBackend, **kw: Any) -> int:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    await nursery.start(functools.partial(serve_grpc_proxy, listener, backend, **kw))
    return listener.socket.getsockname()[1]


def endpoints(grpc_port: int) -> BackendEndpoints:
    return BackendEndpoints(http=("127.0.0.1", 1), grpc=("127.0.0.1", grpc_port))


class Recorder:
    """Backend handlers that record what reached them."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.cancelled = trio.Event()
        self.started = trio.Event()
        self.produced = 0
        self.consumed = 0

    def router(self) -> Router:
        r = Router()
        r.add(UNARY, self.unary)
        r.add(SERVER_STREAM, self.server_stream)
        r.add(CLIENT_STREAM, self.client_stream)
        r.add(BIDI, self.bidi)
        return r

    async def unary(self, req: W.StringValue, ctx: Context) -> W.StringValue:
        self.calls.append({"md": dict(ctx.metadata), "remaining": ctx.time_remaining(), "value": req.value})
        if req.value == "hang":
            self.started.set()
            try:
                await trio.sleep_forever()
            finally:
                self.cancelled.set()
        if req.value == "fail":
            ctx.set_trailing_metadata([("detail-bin", b"\x00why")])
            raise GrpcError(Status.NOT_FOUND, "volume 3 not found: 100% gone\n")
        ctx.send_initial_metadata([("x-backend", "ours")])
        ctx.set_trailing_metadata([("x-trailer", "t")])
        return W.StringValue(value=req.value[::-1])

    async def server_stream(self, req: W.Int64Value, ctx: Context) -> AsyncIterator[W.BytesValue]:
        n = req.value or 1 << 40
        for _ in range(n):
            yield W.BytesValue(value=b"s" * (64 << 10))
            self.produced += 1

    async def client_stream(self, reqs: AsyncIterator[W.BytesValue], ctx: Context) -> W.Int64Value:
        total = 0
        async for r in reqs:
            await self.started.wait()
            total += len(r.value)
            self.consumed += 1
        return W.Int64Value(value=total)

    async def bidi(self, reqs: AsyncIterator[W.Int64Value], ctx: Context) -> AsyncIterator[W.Int64Value]:
        async for r in reqs:
            yield W.Int64Value(value=r.value + 1000)


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def grpc_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "grpc"]


async def test_all_kinds_relayed_with_metadata_and_one_log_event_per_call(nursery, logs) -> None:
    rec = Recorder()
    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))))
    async with Channel("127.0.0.1", proxy) as ch:
        async with ch.open_call(UNARY.path, W.StringValue, metadata=[("x-id", "7"), ("tok-bin", b"\xff\x00")], timeout=30) as call:
            await call.send_message(W.StringValue(value="abc"), end=True)
            assert (await call.receive_unary()).value == "cba"
        assert ("x-backend", "ours") in call.initial_metadata and ("x-trailer", "t") in call.trailing_metadata
        assert rec.calls[0]["md"]["x-id"] == "7" and rec.calls[0]["md"]["tok-bin"] == b"\xff\x00"
        assert 29 < rec.calls[0]["remaining"] <= 30  # grpc-timeout forwarded
        async with ch.unary_stream(SERVER_STREAM.path, W.Int64Value(value=5), W.BytesValue) as rs:
            assert [len(r.value) async for r in rs] == [64 << 10] * 5
        rec.started.set()
        reqs = [W.BytesValue(value=b"c" * 100_000) for _ in range(30)]
        assert (await ch.stream_unary(CLIENT_STREAM.path, reqs, W.Int64Value)).value == 3_000_000
        async with ch.stream_stream(BIDI.path, W.Int64Value) as call:
            for i in range(3):
                await call.send_message(W.Int64Value(value=i))
                assert (await call.receive_message()).value == 1000 + i
            call.done_writing()
            assert await call.receive_message() is None
    events = grpc_events(logs)
    assert [e["route"] for e in events] == [UNARY.path, SERVER_STREAM.path, CLIENT_STREAM.path, BIDI.path]
    for e in events:
        assert e["target"] == "go" and e["status"] == "OK" and e["peer"].startswith("127.0.0.1:")
        assert e["duration_ms"] >= 0 and e["routes_v"] == "builtin"


async def test_error_trailers_only_response_passes_through_unchanged(nursery, logs) -> None:
    rec = Recorder()
    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))))
    async with Channel("127.0.0.1", proxy) as ch:
        async with ch.open_call(UNARY.path, W.StringValue) as call:
            await call.send_message(W.StringValue(value="fail"), end=True)
            with pytest.raises(GrpcError) as info:
                await call.receive_message()
        assert call.initial_metadata is None  # still trailers-only after the relay
        assert info.value.status == Status.NOT_FOUND and info.value.message == "volume 3 not found: 100% gone\n"
        assert ("detail-bin", b"\x00why") in info.value.trailing_metadata
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary("/test.T/Unknown", W.StringValue(), W.StringValue)
        assert info.value.status == Status.UNIMPLEMENTED
    assert [e["status"] for e in grpc_events(logs)] == ["NOT_FOUND", "UNIMPLEMENTED"]


async def test_raw_headers_and_trailers_are_relayed_byte_for_byte(nursery) -> None:
    seen: list[tuple[tuple[bytes, bytes], ...]] = []

    class Raw:
        async def handle(self, call: ServerCall) -> None:
            seen.append(call.headers)
            while (ev := await call.receive_data()) is not None:
                call.acknowledge(ev.flow_len)
            call.send_headers([(b":status", b"200"), (b"content-type", b"application/grpc+proto"), (b"x-odd", b"A b  c")])
            await call.send_data(b"\x00\x00\x00\x00\x02hi")
            call.send_trailers([(b"grpc-status", b"0"), (b"grpc-message", b"%41ok"), (b"z-last", b"1")])

    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, Raw()))))
    async with Channel("127.0.0.1", proxy) as ch:
        async with ch.open_call("/x.Y/Z", None, metadata=[("a", "1"), ("b-bin", b"\x01")], timeout=5) as call:
            await call.send_message(b"payload", end=True)
            assert await call.receive_unary() == b"hi"
        assert call.initial_metadata == (("x-odd", "A b  c"),)
        assert call.trailing_metadata == (("z-last", "1"),)
    sent = request_headers("/x.Y/Z", b"127.0.0.1:%d" % proxy, timeout=5, metadata=[("a", "1"), ("b-bin", b"\x01")])
    assert [h for h in seen[0]] == [h for h in sent]  # same headers, same order, grpc-timeout unchanged


def test_forward_headers_drops_hop_by_hop_only() -> None:
    headers = ((b":path", b"/a/b"), (b"te", b"trailers"), (b"connection", b"x"), (b"keep-alive", b"1"), (b"k", b"v"))
    assert forward_headers(headers) == [(b":path", b"/a/b"), (b"te", b"trailers"), (b"k", b"v")]


async def test_backend_down_is_unavailable_at_once(nursery, logs) -> None:
    backend = StaticBackend(None)
    proxy = await start_proxy(nursery, backend)
    closed_port = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    dead = closed_port.socket.getsockname()[1]
    await closed_port.aclose()
    async with Channel("127.0.0.1", proxy) as ch:
        with trio.fail_after(3):
            with pytest.raises(GrpcError) as info:
                await ch.unary_unary(UNARY.path, W.StringValue(), W.StringValue, timeout=60)
            assert info.value.status == Status.UNAVAILABLE
            backend.endpoints = endpoints(dead)  # configured, but nothing listens there
            with pytest.raises(GrpcError) as info:
                await ch.unary_unary(UNARY.path, W.StringValue(), W.StringValue, timeout=60)
            assert info.value.status == Status.UNAVAILABLE
    assert [e["status"] for e in grpc_events(logs)] == ["UNAVAILABLE", "UNAVAILABLE"]


async def test_backend_restart_on_a_new_port_is_followed(nursery) -> None:
    rec = Recorder()
    backend = StaticBackend(endpoints(await listen(nursery, rec.router())))
    proxy = await start_proxy(nursery, backend)
    async with Channel("127.0.0.1", proxy) as ch:
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="ab"), W.StringValue)).value == "ba"
        backend.endpoints = endpoints(await listen(nursery, rec.router()))
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="cd"), W.StringValue)).value == "dc"
    assert len(rec.calls) == 2


async def test_proxy_enforces_the_deadline_and_resets_the_backend_stream(nursery, logs) -> None:
    rec = Recorder()
    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))))
    async with Channel("127.0.0.1", proxy) as ch:
        pool = ch._pool
        # grpc-timeout only: the client itself does not time out, so the answer must come from the proxy
        handle = await pool.open_stream(request_headers(UNARY.path, pool.authority, timeout=0.3))
        try:
            call = ClientCall(handle, ch.options, W.StringValue)
            await call.send_message(W.StringValue(value="hang"), end=True)
            with trio.fail_after(5):
                with pytest.raises(GrpcError) as info:
                    await call.receive_unary()
        finally:
            handle.release()
        assert info.value.status == Status.DEADLINE_EXCEEDED
        with trio.fail_after(5):
            await rec.cancelled.wait()
    assert grpc_events(logs)[-1]["status"] == "DEADLINE_EXCEEDED"


async def test_client_reset_cancels_the_backend_handler(nursery, logs) -> None:
    rec = Recorder()
    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))))
    async with Channel("127.0.0.1", proxy) as ch:
        async with ch.open_call(UNARY.path, W.StringValue) as call:
            await call.send_message(W.StringValue(value="hang"), end=True)
            await rec.started.wait()
        with trio.fail_after(5):
            await rec.cancelled.wait()
    with trio.fail_after(5):
        while not grpc_events(logs):
            await trio.sleep(0.01)
    assert grpc_events(logs)[-1]["status"] == "CANCELLED"


async def test_backend_reset_reaches_the_client(nursery) -> None:
    class Resetter:
        async def handle(self, call: ServerCall) -> None:
            call.send_headers([(b":status", b"200"), (b"content-type", b"application/grpc")])
            await call.send_data(b"\x00\x00\x00\x00\x00")
            call.reset(0x2)  # INTERNAL_ERROR

    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, Resetter()))))
    async with Channel("127.0.0.1", proxy) as ch:
        async with ch.open_call(UNARY.path, None) as call:
            await call.send_message(b"", end=True)
            assert await call.receive_message() == b""
            with pytest.raises(GrpcError) as info:
                await call.receive_message()
    assert info.value.status == Status.INTERNAL and "RST_STREAM" in info.value.message


async def test_server_stream_backpressure_is_end_to_end(nursery) -> None:
    """A client that reads slowly: the backend may run ahead by the windows, never by the stream."""
    rec = Recorder()
    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))))
    window = 256 << 10
    opts = ChannelOptions(settings=ConnectionSettings(stream_window=window, connection_window=window))
    message = (64 << 10) + 5
    # in flight at most: our window + the proxy's backend-stream window (1 MiB) + a message queued
    # in the backend + one being relayed
    bound = window + (1 << 20) + 3 * message
    async with Channel("127.0.0.1", proxy, options=opts) as ch:
        async with ch.unary_stream(SERVER_STREAM.path, W.Int64Value(value=0), W.BytesValue) as rs:
            read = 0
            peak = 0
            for _ in range(200):  # 12.5 MiB
                await rs.receive_message()
                read += 1
                if read % 20 == 0:
                    await trio.sleep(0.05)  # let the producer run as far ahead as it can
                peak = max(peak, (rec.produced - read) * message)
            assert peak <= bound
            assert peak >= window // 2  # and it did run ahead: the bound is not vacuous


async def test_client_stream_backpressure_is_end_to_end(nursery) -> None:
    rec = Recorder()
    proxy = await start_proxy(nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))))
    window = 256 << 10
    message = W.BytesValue(value=b"q" * (32 << 10))
    async with Channel("127.0.0.1", proxy) as ch:
        async with ch.open_call(CLIENT_STREAM.path, W.Int64Value) as call:
            sent = 0
            with trio.move_on_after(1):
                while True:
                    await call.send_message(message)
                    sent += 1
            # the backend handler reads nothing until `started`: client (1 MiB proxy window) +
            # proxy->backend (1 MiB backend window) is all that may be in flight
            assert rec.consumed == 0
            assert sent * (32 << 10) <= 2 * (1 << 20) + 4 * (32 << 10)
            assert sent * (32 << 10) >= window
            rec.started.set()
            call.done_writing()
            assert (await call.receive_unary()).value == (sent + 1) * (32 << 10)


async def test_route_to_a_native_target_and_off(nursery, logs) -> None:
    async def native_unary(req: W.StringValue, ctx: Context) -> W.StringValue:
        return W.StringValue(value="native:" + req.value)

    native = Router()
    native.add(UNARY, native_unary)
    table = RouteTable(
        version="t1",
        default=Route(Target.GO),
        routes={UNARY.path: Route(Target.NATIVE), CLIENT_STREAM.path: Route(Target.OFF)},
    )
    proxy = await start_proxy(nursery, StaticBackend(None), routes=table, targets={Target.NATIVE: NamedTarget("native", native)})
    async with Channel("127.0.0.1", proxy) as ch:
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="x"), W.StringValue)).value == "native:x"
        with pytest.raises(GrpcError) as info:
            await ch.stream_unary(CLIENT_STREAM.path, [], W.Int64Value)
        assert info.value.status == Status.UNAVAILABLE and "off" in info.value.message
    events = grpc_events(logs)
    assert [(e["target"], e["status"], e["routes_v"]) for e in events] == [("native", "OK", "t1"), ("off", "UNAVAILABLE", "t1")]


async def test_check_hook_sees_the_first_request_and_can_refuse(nursery) -> None:
    rec = Recorder()
    checked: list[str] = []

    async def check(call: ServerCall, raw: bytes) -> None:
        req = W.StringValue.FromString(raw)
        checked.append(req.value)
        if req.value.startswith("evil"):
            raise GrpcError(Status.PERMISSION_DENIED, "source not trusted")

    proxy = await start_proxy(
        nursery, StaticBackend(endpoints(await listen(nursery, rec.router()))), checks={UNARY.path: check, CLIENT_STREAM.path: check}
    )
    rec.started.set()
    async with Channel("127.0.0.1", proxy) as ch:
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(value="evil.host:8080"), W.StringValue)
        assert info.value.status == Status.PERMISSION_DENIED
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="good"), W.StringValue)).value == "doog"
        # a streaming call: the first message is inspected, it and the rest reach the backend intact
        first = W.StringValue(value="fine").SerializeToString()
        reqs = [first] + [W.BytesValue(value=b"r" * 50_000).SerializeToString() for _ in range(10)]
        total = await ch.stream_unary(CLIENT_STREAM.path, reqs, W.Int64Value)
        assert total.value == 4 + 500_000
    assert checked == ["evil.host:8080", "good", "fine"]
    assert [c["value"] for c in rec.calls] == ["good"]


# -- against the real Go volume server -----------------------------------------------------------

from proto import volume_server_pb2 as vs  # noqa: E402
from tests.support.procs import MasterProc, VolumeProc, start_go_volume  # noqa: E402

SVC = "/volume_server_pb.VolumeServer/"


@pytest.fixture(scope="module")
def go_volume(master: MasterProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeProc]:
    v = start_go_volume(tmp_path_factory.mktemp("go-proxy"), master, name="proxied")
    try:
        yield v
    finally:
        v.stop()


async def test_go_backend_unary_streaming_errors_and_deadline(nursery, go_volume: VolumeProc, logs) -> None:
    import os

    import httpx

    proxy = await start_proxy(nursery, StaticBackend(endpoints(go_volume.grpc_port)))
    async with Channel("127.0.0.1", proxy) as ch:
        status = await ch.unary_unary(SVC + "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse, timeout=10)
        assert "4.48" in status.version
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(SVC + "NoSuchMethod", b"", timeout=10)
        assert info.value.status == Status.UNIMPLEMENTED
        vid = 91
        await ch.unary_unary(SVC + "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse)
        payload = os.urandom(5 << 20)
        r = await trio.to_thread.run_sync(
            lambda: httpx.post(f"{go_volume.url}/{vid},0200000002", files={"file": ("b", payload)}, timeout=30)
        )
        assert r.status_code == 201, r.text
        st = await ch.unary_unary(SVC + "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid), vs.ReadVolumeFileStatusResponse)
        got = bytearray()
        async with ch.unary_stream(
            SVC + "CopyFile",
            vs.CopyFileRequest(volume_id=vid, ext=".dat", stop_offset=st.dat_file_size, compaction_revision=st.compaction_revision),
            vs.CopyFileResponse,
            timeout=30,
        ) as responses:
            async for msg in responses:
                got += msg.file_content
        assert len(got) == st.dat_file_size and payload in bytes(got)
        with pytest.raises(GrpcError) as info:
            async with ch.unary_stream(
                SVC + "VolumeTailSender",
                vs.VolumeTailSenderRequest(volume_id=vid, since_ns=2**62, idle_timeout_seconds=60),
                vs.VolumeTailSenderResponse,
                timeout=0.7,
            ) as responses:
                async for _ in responses:
                    pass
        assert info.value.status == Status.DEADLINE_EXCEEDED
    statuses = [(e["route"].rsplit("/", 1)[1], e["status"]) for e in grpc_events(logs)]
    assert statuses[:2] == [("VolumeServerStatus", "OK"), ("NoSuchMethod", "UNIMPLEMENTED")]
    assert ("CopyFile", "OK") in statuses


async def test_grpclib_client_through_the_proxy_to_go(nursery, go_volume: VolumeProc) -> None:
    import asyncio

    import grpclib.client
    import grpclib.const

    proxy = await start_proxy(nursery, StaticBackend(endpoints(go_volume.grpc_port)))

    async def scenario() -> tuple[str, int]:
        channel = grpclib.client.Channel("127.0.0.1", proxy)
        try:
            async with channel.request(
                SVC + "VolumeServerStatus", grpclib.const.Cardinality.UNARY_UNARY,
                vs.VolumeServerStatusRequest, vs.VolumeServerStatusResponse, timeout=10,
            ) as stream:
                await stream.send_message(vs.VolumeServerStatusRequest(), end=True)
                status = await stream.recv_message()
            ping = await grpclib.client.UnaryUnaryMethod(
                channel, SVC + "Ping", vs.PingRequest, vs.PingResponse
            )(vs.PingRequest(), timeout=10)
            return status.version, ping.start_time_ns
        finally:
            channel.close()

    version, start_ns = await trio.to_thread.run_sync(asyncio.run, scenario())
    assert "4.48" in version and start_ns > 0
