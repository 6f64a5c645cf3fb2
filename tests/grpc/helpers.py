"""Shared test plumbing: method specs over well-known protobuf types, in-memory channels."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import trio
import trio.testing
from google.protobuf import wrappers_pb2 as W
from google.protobuf.message import Message

from weedpy.grpc import CallHandler, Channel, ChannelOptions, ServerOptions, serve_connection


@dataclass(frozen=True, slots=True)
class Kind:
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True, slots=True)
class Method:
    path: str
    request: type[Message]
    response: type[Message]
    kind: Kind


UNARY = Method("/test.T/Unary", W.StringValue, W.StringValue, Kind(False, False))
SERVER_STREAM = Method("/test.T/ServerStream", W.Int64Value, W.BytesValue, Kind(False, True))
CLIENT_STREAM = Method("/test.T/ClientStream", W.BytesValue, W.Int64Value, Kind(True, False))
BIDI = Method("/test.T/Bidi", W.Int64Value, W.Int64Value, Kind(True, True))


@dataclass
class Connections:
    """How many connections a memory channel opened, and their server ends (to break them)."""

    opened: int = 0
    server_streams: list[trio.abc.Stream] = field(default_factory=list)


@contextlib.asynccontextmanager
async def memory_channel(
    handler: CallHandler,
    server_options: ServerOptions = ServerOptions(),
    channel_options: ChannelOptions = ChannelOptions(),
) -> AsyncIterator[tuple[Channel, Connections]]:
    """A Channel whose connections are in-memory pairs served by `handler`."""
    conns = Connections()
    async with trio.open_nursery() as nursery:

        async def connect() -> trio.abc.Stream:
            client, server = trio.testing.memory_stream_pair()
            conns.opened += 1
            conns.server_streams.append(server)
            nursery.start_soon(functools.partial(serve_connection, server, handler, peer="10.0.0.9:4242", options=server_options))
            return client

        options = ChannelOptions(
            max_receive_message_length=channel_options.max_receive_message_length,
            max_send_message_length=channel_options.max_send_message_length,
            settings=channel_options.settings,
            connector=connect,
        )
        async with Channel("memory", 1, options=options) as ch:
            yield ch, conns
        nursery.cancel_scope.cancel()
