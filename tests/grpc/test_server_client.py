"""Server (Router, ServerCall shell) and client (Channel) together over in-memory streams."""

from __future__ import annotations

import math

import pytest
import trio
from google.protobuf import wrappers_pb2 as W

from weedpy.grpc import (
    ChannelOptions,
    ClientCall,
    ConnectionSettings,
    Context,
    GrpcError,
    Router,
    ServerOptions,
    Status,
    encode_message,
    request_headers,
)

from .helpers import BIDI, CLIENT_STREAM, SERVER_STREAM, UNARY, memory_channel


def router(**handlers: object) -> Router:
    r = Router()
    specs = {"unary": UNARY, "server_stream": SERVER_STREAM, "client_stream": CLIENT_STREAM, "bidi": BIDI}
    for name, func in handlers.items():
        r.add(specs[name], func)
    return r


async def upper(req: W.StringValue, ctx: Context) -> W.StringValue:
    return W.StringValue(value=req.value.upper())


async def test_all_four_kinds() -> None:
    async def count(req: W.Int64Value, ctx: Context):
        for i in range(req.value):
            yield W.BytesValue(value=b"%d" % i)

    async def total(reqs, ctx: Context) -> W.Int64Value:
        return W.Int64Value(value=sum([len(r.value) async for r in reqs]))

    async def double(reqs, ctx: Context):
        async for r in reqs:
            yield W.Int64Value(value=r.value * 2)

    handler = router(unary=upper, server_stream=count, client_stream=total, bidi=double)
    async with memory_channel(handler) as (ch, conns):
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="abc"), W.StringValue)).value == "ABC"
        async with ch.unary_stream(SERVER_STREAM.path, W.Int64Value(value=4), W.BytesValue) as responses:
            assert [r.value async for r in responses] == [b"0", b"1", b"2", b"3"]
        reqs = [W.BytesValue(value=b"x" * n) for n in (1, 10, 100)]
        assert (await ch.stream_unary(CLIENT_STREAM.path, reqs, W.Int64Value)).value == 111
        async with ch.stream_stream(BIDI.path, W.Int64Value) as call:
            for i in range(3):  # lock-step: each answer before the next request
                await call.send_message(W.Int64Value(value=i))
                assert (await call.receive_message()).value == 2 * i
            call.done_writing()
            assert await call.receive_message() is None
        assert call.status == Status.OK
        assert conns.opened == 1


async def test_empty_streams() -> None:
    async def nothing(req, ctx: Context):
        return
        yield

    async def total(reqs, ctx: Context) -> W.Int64Value:
        return W.Int64Value(value=len([r async for r in reqs]))

    async with memory_channel(router(server_stream=nothing, client_stream=total)) as (ch, _):
        async with ch.unary_stream(SERVER_STREAM.path, W.Int64Value(), W.BytesValue) as responses:
            assert [r async for r in responses] == []
        assert (await ch.stream_unary(CLIENT_STREAM.path, [], W.Int64Value)).value == 0


async def test_metadata_both_ways_with_binary_values_and_peer() -> None:
    seen: dict[str, object] = {}

    async def handler(req: W.StringValue, ctx: Context) -> W.StringValue:
        seen["md"] = dict(ctx.metadata)
        seen["peer"] = ctx.peer
        seen["method"] = ctx.method
        ctx.send_initial_metadata([("initial", "yes"), ("blob-bin", b"\x00\x01")])
        ctx.set_trailing_metadata([("trailing", "done"), ("t-bin", b"\xff" * 5)])
        return W.StringValue(value="ok")

    async with memory_channel(router(unary=handler)) as (ch, _):
        async with ch.open_call(UNARY.path, W.StringValue, metadata=[("x-id", "42"), ("k-bin", b"\x00\xfe\x80")]) as call:
            await call.send_message(W.StringValue(value="q"), end=True)
            assert (await call.receive_unary()).value == "ok"
        assert seen["md"]["x-id"] == "42" and seen["md"]["k-bin"] == b"\x00\xfe\x80"
        assert seen["peer"] == "10.0.0.9:4242" and seen["method"] == UNARY.path
        assert ("initial", "yes") in call.initial_metadata and ("blob-bin", b"\x00\x01") in call.initial_metadata
        assert ("trailing", "done") in call.trailing_metadata and ("t-bin", b"\xff" * 5) in call.trailing_metadata


async def test_error_before_any_message_is_trailers_only_with_encoded_message() -> None:
    async def fail(req, ctx: Context):
        ctx.set_trailing_metadata([("why", "because")])
        ctx.abort(Status.NOT_FOUND, "volume 7 n\u00e4ht gefunden\n100%")

    async with memory_channel(router(unary=fail)) as (ch, _):
        async with ch.open_call(UNARY.path, W.StringValue) as call:
            await call.send_message(W.StringValue(), end=True)
            with pytest.raises(GrpcError) as info:
                await call.receive_message()
        assert info.value.status == Status.NOT_FOUND
        assert info.value.message == "volume 7 n\u00e4ht gefunden\n100%"
        assert ("why", "because") in info.value.trailing_metadata
        assert call.initial_metadata is None  # no separate response headers: trailers-only


async def test_error_after_messages_arrives_in_trailers() -> None:
    async def some_then_fail(req, ctx: Context):
        yield W.BytesValue(value=b"first")
        raise GrpcError(Status.DATA_LOSS, "broken after one")

    async with memory_channel(router(server_stream=some_then_fail)) as (ch, _):
        got = []
        with pytest.raises(GrpcError) as info:
            async with ch.unary_stream(SERVER_STREAM.path, W.Int64Value(), W.BytesValue) as responses:
                async for r in responses:
                    got.append(r.value)
        assert got == [b"first"] and info.value.status == Status.DATA_LOSS


async def test_unknown_method_is_unimplemented() -> None:
    async with memory_channel(router(unary=upper)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary("/test.T/Missing", W.StringValue(), W.StringValue)
        assert info.value.status == Status.UNIMPLEMENTED
        assert info.value.message == "unknown method Missing for service test.T"


async def test_compressed_request_encoding_is_unimplemented_like_grpc_go() -> None:
    called = []

    async def handler(req, ctx):
        called.append(req)
        return W.StringValue()

    async with memory_channel(router(unary=handler)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await _raw_unary(ch, UNARY.path, extra=[(b"grpc-encoding", b"gzip")])
        assert info.value.status == Status.UNIMPLEMENTED
        assert info.value.message == 'grpc: Decompressor is not installed for grpc-encoding "gzip"'
        await _raw_unary(ch, UNARY.path, extra=[(b"grpc-encoding", b"identity")])
        assert len(called) == 1


async def _raw_unary(ch, path: str, payload: bytes = b"", extra=(), timeout: float | None = None) -> bytes:
    """A unary call with hand-made headers (no client-side deadline)."""
    pool = ch._pool
    headers = request_headers(path, pool.authority, timeout=timeout) + list(extra)
    handle = await pool.open_stream(headers)
    try:
        call = ClientCall(handle, ch.options, None)
        await call.send_message(payload, end=True)
        return await call.receive_unary()
    finally:
        handle.release()


async def test_request_larger_than_server_limit_is_resource_exhausted() -> None:
    called = []

    async def handler(req, ctx):
        called.append(1)
        return W.StringValue()

    opts = ServerOptions(max_receive_message_length=1000)
    async with memory_channel(router(unary=handler), server_options=opts) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(value="x" * 2000), W.StringValue)
        assert info.value.status == Status.RESOURCE_EXHAUSTED
        assert not called
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="x" * 900), W.StringValue)) is not None


async def test_response_larger_than_limits_is_resource_exhausted_on_either_side() -> None:
    async def big(req: W.StringValue, ctx) -> W.StringValue:
        return W.StringValue(value="y" * int(req.value))

    async with memory_channel(router(unary=big), server_options=ServerOptions(max_send_message_length=5000)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(value="6000"), W.StringValue)
        assert info.value.status == Status.RESOURCE_EXHAUSTED and "trying to send" in info.value.message
    async with memory_channel(router(unary=big), channel_options=ChannelOptions(max_receive_message_length=3000)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(value="4000"), W.StringValue)
        assert info.value.status == Status.RESOURCE_EXHAUSTED and "received message larger" in info.value.message
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="2000"), W.StringValue)).value == "y" * 2000


async def test_server_enforces_grpc_timeout_and_cancels_the_handler(autojump_clock: trio.abc.Clock) -> None:
    cancelled = trio.Event()

    async def stuck(req, ctx: Context):
        assert ctx.time_remaining() == pytest.approx(2.5)
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with memory_channel(router(unary=stuck)) as (ch, _):
        start = trio.current_time()
        with pytest.raises(GrpcError) as info:
            await _raw_unary(ch, UNARY.path, b"", timeout=2.5)  # grpc-timeout only, no client deadline
        assert info.value.status == Status.DEADLINE_EXCEEDED
        assert trio.current_time() - start == pytest.approx(2.5)
        assert cancelled.is_set()


async def test_client_timeout_raises_deadline_exceeded_and_resets_the_server_call(autojump_clock) -> None:
    cancelled = trio.Event()
    deadline_seen: list[float] = []

    async def stuck(req, ctx: Context):
        deadline_seen.append(ctx.deadline)
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with memory_channel(router(unary=stuck)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(), W.StringValue, timeout=1.0)
        assert info.value.status == Status.DEADLINE_EXCEEDED
        with trio.fail_after(1):
            await cancelled.wait()
        assert deadline_seen and deadline_seen[0] != math.inf


async def test_client_reset_cancels_the_handler_at_once() -> None:
    started, cancelled = trio.Event(), trio.Event()

    async def stuck(reqs, ctx: Context):
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()
        yield W.Int64Value()

    async with memory_channel(router(bidi=stuck)) as (ch, _):
        async with ch.stream_stream(BIDI.path, W.Int64Value) as call:
            await call.send_message(W.Int64Value(value=1))
            await started.wait()
        # leaving the block with the call open sent RST_STREAM(CANCEL)
        with trio.fail_after(1):
            await cancelled.wait()


async def test_unexpected_handler_exception_is_unknown() -> None:
    async def broken(req, ctx):
        raise ValueError("boom")

    async with memory_channel(router(unary=broken)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(), W.StringValue)
        assert info.value.status == Status.UNKNOWN and "ValueError" in info.value.message


async def test_many_concurrent_calls_share_one_connection() -> None:
    gate = trio.Event()

    async def wait_then_echo(req: W.StringValue, ctx) -> W.StringValue:
        await gate.wait()
        return req

    async with memory_channel(router(unary=wait_then_echo)) as (ch, conns):
        results: list[str] = []

        async def one(i: int) -> None:
            results.append((await ch.unary_unary(UNARY.path, W.StringValue(value=str(i)), W.StringValue)).value)

        async with trio.open_nursery() as n:
            for i in range(50):
                n.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert sorted(results, key=int) == [str(i) for i in range(50)]
        assert conns.opened == 1


async def test_a_full_connection_opens_another() -> None:
    gate = trio.Event()

    async def wait_then_echo(req, ctx):
        await gate.wait()
        return req

    opts = ServerOptions(settings=ConnectionSettings(max_concurrent_streams=3))
    async with memory_channel(router(unary=wait_then_echo), server_options=opts) as (ch, conns):
        async with trio.open_nursery() as n:
            for _ in range(7):
                n.start_soon(ch.unary_unary, UNARY.path, W.StringValue(), W.StringValue)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert conns.opened == 3  # 3 + 3 + 1 streams


async def test_broken_connection_fails_open_calls_and_the_next_call_reconnects() -> None:
    started = trio.Event()

    async def stuck(req, ctx):
        if req.value == "hang":
            started.set()
            await trio.sleep_forever()
        return req

    async with memory_channel(router(unary=stuck)) as (ch, conns):
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="a"), W.StringValue)).value == "a"
        async with trio.open_nursery() as n:
            failures: list[GrpcError] = []

            async def hang() -> None:
                try:
                    await ch.unary_unary(UNARY.path, W.StringValue(value="hang"), W.StringValue)
                except GrpcError as exc:
                    failures.append(exc)

            n.start_soon(hang)
            await started.wait()
            await conns.server_streams[0].aclose()
        assert failures and failures[0].status == Status.UNAVAILABLE
        assert (await ch.unary_unary(UNARY.path, W.StringValue(value="b"), W.StringValue)).value == "b"
        assert conns.opened == 2


async def test_connection_refused_is_unavailable() -> None:
    from weedpy.grpc import Channel

    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    async with Channel("127.0.0.1", port) as ch:
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(), W.StringValue)
    assert info.value.status == Status.UNAVAILABLE


async def test_client_streaming_backpressure_when_the_handler_does_not_read() -> None:
    """The server acknowledges nothing it has not consumed: the sender stalls at the window."""
    release = trio.Event()

    async def slow(reqs, ctx):
        await release.wait()
        return W.Int64Value(value=len([r async for r in reqs]))

    window = 64 << 10
    opts = ServerOptions(settings=ConnectionSettings(stream_window=window, connection_window=1 << 20))
    async with memory_channel(router(client_stream=slow), server_options=opts) as (ch, _):
        async with ch.open_call(CLIENT_STREAM.path, W.Int64Value) as call:
            sent = 0
            chunk = W.BytesValue(value=b"z" * 1000)
            with trio.move_on_after(1) as scope:
                for _ in range(1000):
                    await call.send_message(chunk)
                    sent += 1
            assert scope.cancelled_caught
            framed = len(encode_message(chunk.SerializeToString()))
            assert window // framed <= sent <= window // framed + 1
            release.set()
            sent += 1  # the send cancelled while waiting for the window still went out
            for _ in range(1000 - sent):
                await call.send_message(chunk)
            call.done_writing()
            assert (await call.receive_unary()).value == 1000


async def test_server_streaming_backpressure_when_the_client_does_not_read() -> None:
    produced = 0

    async def endless(req, ctx):
        nonlocal produced
        while True:
            yield W.BytesValue(value=b"p" * 4000)
            produced += 1

    window = 64 << 10
    opts = ChannelOptions(settings=ConnectionSettings(stream_window=window, connection_window=1 << 20))
    async with memory_channel(router(server_stream=endless), channel_options=opts) as (ch, _):
        async with ch.unary_stream(SERVER_STREAM.path, W.Int64Value(), W.BytesValue) as responses:
            first = await responses.receive_message()
            await trio.sleep(0.5)
            assert first.value == b"p" * 4000
            assert produced <= window // 4000 + 2  # bounded by the window, not by time
            for _ in range(100):
                await responses.receive_message()
            assert produced >= 100


async def test_grpc_error_from_a_handler_nursery_keeps_its_status() -> None:
    async def fan_out(req, ctx: Context):
        async with trio.open_nursery() as n:

            async def fail() -> None:
                raise GrpcError(Status.ABORTED, "child failed")

            n.start_soon(fail)
        return W.StringValue()

    async with memory_channel(router(unary=fan_out)) as (ch, _):
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(UNARY.path, W.StringValue(), W.StringValue)
        assert info.value.status == Status.ABORTED and info.value.message == "child failed"


async def test_connection_lost_under_a_handler_nursery_does_not_stop_the_server(nursery) -> None:
    """A child failing (connection gone) while the body is cancelled must stay inside its connection."""
    from weedpy.grpc import Channel, serve_listeners

    inside = trio.Event()

    class ReadsInAChild:
        async def handle(self, call) -> None:
            if call.method != BIDI.path:
                await router(unary=upper).handle(call)
                return
            async with trio.open_nursery() as n:
                n.start_soon(call.receive_message)
                n.start_soon(call.receive_message)
                inside.set()
                await trio.sleep_forever()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(serve_listeners, listeners, ReadsInAChild())
    port = listeners[0].socket.getsockname()[1]
    for _ in range(2):
        inside = trio.Event()
        async with Channel("127.0.0.1", port) as ch:
            async with ch.stream_stream(BIDI.path, W.Int64Value) as call:
                await call.send_message(W.Int64Value(value=1))
                await inside.wait()
                ch._pool.close()  # the connection goes away under the handler
        async with Channel("127.0.0.1", port) as ch:
            assert (await ch.unary_unary(UNARY.path, W.StringValue(value="still"), W.StringValue)).value == "STILL"
