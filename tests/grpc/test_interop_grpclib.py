"""An independent client (grpclib, under asyncio in a worker thread) against our trio server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpclib.client
import grpclib.const
import grpclib.exceptions
import pytest
import trio
from google.protobuf import wrappers_pb2 as W

from weedpy.grpc import Context, GrpcError, Router, Status, serve_listeners

from .helpers import BIDI, CLIENT_STREAM, SERVER_STREAM, UNARY

C = grpclib.const.Cardinality


class Served:
    def __init__(self, port: int) -> None:
        self.port = port

    async def run(self, scenario: Callable[[grpclib.client.Channel], Awaitable[Any]]) -> Any:
        """Run an asyncio grpclib scenario in a thread while trio keeps serving."""

        async def main() -> Any:
            channel = grpclib.client.Channel("127.0.0.1", self.port)
            try:
                return await scenario(channel)
            finally:
                channel.close()

        return await trio.to_thread.run_sync(asyncio.run, main())


def build_router(events: dict[str, trio.Event], seen: dict[str, Any]) -> Router:
    async def unary(req: W.StringValue, ctx: Context) -> W.StringValue:
        seen["metadata"] = dict(ctx.metadata)
        seen["peer"] = ctx.peer
        if req.value == "fail":
            raise GrpcError(Status.FAILED_PRECONDITION, "n\u00e9cessite 100% de disque")
        if req.value == "sleep":
            try:
                await trio.sleep(30)
            finally:
                events["cancelled"].set()
        ctx.send_initial_metadata([("hello", "world")])
        ctx.set_trailing_metadata([("digest-bin", b"\x00\x01\x02\xff")])
        return W.StringValue(value=req.value[::-1])

    async def server_stream(req: W.Int64Value, ctx: Context) -> AsyncIterator[W.BytesValue]:
        for i in range(req.value):
            yield W.BytesValue(value=bytes([i % 256]) * 20000)

    async def client_stream(reqs: AsyncIterator[W.BytesValue], ctx: Context) -> W.Int64Value:
        return W.Int64Value(value=sum([len(r.value) async for r in reqs]))

    async def bidi(reqs: AsyncIterator[W.Int64Value], ctx: Context) -> AsyncIterator[W.Int64Value]:
        async for r in reqs:
            yield W.Int64Value(value=-r.value)

    router = Router()
    router.add(UNARY, unary)
    router.add(SERVER_STREAM, server_stream)
    router.add(CLIENT_STREAM, client_stream)
    router.add(BIDI, bidi)
    return router


@pytest.fixture
async def served(nursery: trio.Nursery) -> tuple[Served, dict[str, trio.Event], dict[str, Any]]:
    events = {"cancelled": trio.Event()}
    seen: dict[str, Any] = {}
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(serve_listeners, listeners, build_router(events, seen))
    return Served(listeners[0].socket.getsockname()[1]), events, seen


async def test_unary_with_metadata_both_ways(served) -> None:
    server, _, seen = served

    async def scenario(ch: grpclib.client.Channel) -> Any:
        async with ch.request(UNARY.path, C.UNARY_UNARY, W.StringValue, W.StringValue,
                              metadata=[("x-who", "grpclib"), ("token-bin", b"\xde\xad\xbe\xef\x00")]) as stream:
            await stream.send_message(W.StringValue(value="abc"), end=True)
            reply = await stream.recv_message()
            await stream.recv_trailing_metadata()
            return reply.value, dict(stream.initial_metadata), dict(stream.trailing_metadata)

    value, initial, trailing = await server.run(scenario)
    assert value == "cba"
    assert initial["hello"] == "world"
    assert trailing["digest-bin"] == b"\x00\x01\x02\xff"
    assert seen["metadata"]["x-who"] == "grpclib" and seen["metadata"]["token-bin"] == b"\xde\xad\xbe\xef\x00"
    assert seen["peer"].startswith("127.0.0.1:")


async def test_streaming_kinds(served) -> None:
    server, _, _ = served

    async def scenario(ch: grpclib.client.Channel) -> Any:
        async with ch.request(SERVER_STREAM.path, C.UNARY_STREAM, W.Int64Value, W.BytesValue) as s:
            await s.send_message(W.Int64Value(value=50), end=True)
            sizes = [len(m.value) async for m in s]
        async with ch.request(CLIENT_STREAM.path, C.STREAM_UNARY, W.BytesValue, W.Int64Value) as s:
            for _ in range(40):
                await s.send_message(W.BytesValue(value=b"u" * 30000))
            await s.end()
            total = (await s.recv_message()).value
        async with ch.request(BIDI.path, C.STREAM_STREAM, W.Int64Value, W.Int64Value) as s:
            answers = []
            for i in range(5):
                await s.send_message(W.Int64Value(value=i))
                answers.append((await s.recv_message()).value)
            await s.end()
            assert await s.recv_message() is None
        return sizes, total, answers

    sizes, total, answers = await server.run(scenario)
    assert sizes == [20000] * 50  # 1 MB through the default 64 KiB grpclib window
    assert total == 40 * 30000
    assert answers == [0, -1, -2, -3, -4]


async def test_error_status_and_unknown_method(served) -> None:
    server, _, _ = served

    async def scenario(ch: grpclib.client.Channel) -> Any:
        errors = []
        for path, value in ((UNARY.path, "fail"), ("/test.T/Nope", "x")):
            try:
                async with ch.request(path, C.UNARY_UNARY, W.StringValue, W.StringValue) as s:
                    await s.send_message(W.StringValue(value=value), end=True)
                    await s.recv_message()
            except grpclib.exceptions.GRPCError as exc:
                errors.append((exc.status.value, exc.message))
        return errors

    errors = await server.run(scenario)
    assert errors[0] == (Status.FAILED_PRECONDITION, "n\u00e9cessite 100% de disque")
    assert errors[1] == (Status.UNIMPLEMENTED, "unknown method Nope for service test.T")


async def test_client_timeout_cancels_our_handler(served) -> None:
    server, events, _ = served

    async def scenario(ch: grpclib.client.Channel) -> Any:
        try:
            async with ch.request(UNARY.path, C.UNARY_UNARY, W.StringValue, W.StringValue, timeout=0.5) as s:
                await s.send_message(W.StringValue(value="sleep"), end=True)
                await s.recv_message()
        except grpclib.exceptions.GRPCError as exc:
            return exc.status.value
        except asyncio.TimeoutError:
            return "timeout"
        return None

    outcome = await server.run(scenario)
    assert outcome in (Status.DEADLINE_EXCEEDED, "timeout")
    with trio.fail_after(5):
        await events["cancelled"].wait()
