"""H2Transport/StreamHandle over in-memory streams: GOAWAY, broken connections, backpressure."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from weedpy.grpc import (
    ConnectionSettings,
    DataReceived,
    GrpcConnection,
    GrpcError,
    H2Transport,
    RequestStarted,
    Status,
    StreamHandle,
    request_headers,
)

REQ = request_headers("/t.T/M", b"mem:1")


async def pair(nursery: trio.Nursery, server_settings: ConnectionSettings = ConnectionSettings()):
    c, s = trio.testing.memory_stream_pair()
    incoming: list[StreamHandle] = []
    arrived = trio.Event()

    def on_request(h: StreamHandle, ev: RequestStarted) -> None:
        incoming.append(h)
        arrived.set()

    server = H2Transport(s, GrpcConnection(client_side=False, settings=server_settings), on_request)
    client = H2Transport(c, GrpcConnection(client_side=True))
    nursery.start_soon(server.run)
    nursery.start_soon(client.run)
    await client.wait_ready()
    return client, server, incoming, arrived


async def test_goaway_fails_open_streams_promptly_and_the_connection_is_retired(nursery) -> None:
    client, server, incoming, arrived = await pair(nursery)
    h = client.open_stream(REQ)
    await arrived.wait()
    server.close()  # GOAWAY
    with trio.fail_after(2):
        with pytest.raises(GrpcError) as info:
            while True:
                await h.receive()
    assert info.value.status == Status.UNAVAILABLE
    assert not client.usable
    with pytest.raises(GrpcError):
        client.open_stream(REQ)


async def test_peer_vanishing_fails_blocked_senders(nursery) -> None:
    client, server, incoming, arrived = await pair(nursery, ConnectionSettings(stream_window=1000, connection_window=65535))
    h = client.open_stream(REQ)
    await arrived.wait()
    await h.send_data(b"x" * 1000)  # exactly the window

    errors: list[GrpcError] = []

    async def blocked_send() -> None:
        try:
            await h.send_data(b"y")
        except GrpcError as exc:
            errors.append(exc)

    async with trio.open_nursery() as n:
        n.start_soon(blocked_send)
        await trio.testing.wait_all_tasks_blocked()
        assert not errors  # really blocked on the window
        server.close()
    assert [e.status for e in errors] == [Status.UNAVAILABLE]


async def test_release_returns_unconsumed_bytes_to_the_connection_window(nursery) -> None:
    """Bytes a finished call never read must not shrink the connection window for the others."""
    settings = ConnectionSettings(stream_window=60000, connection_window=65535)
    client, server, incoming, arrived = await pair(nursery, settings)
    with trio.fail_after(5):
        await _three_calls(client, incoming)


async def _three_calls(client: H2Transport, incoming: list[StreamHandle]) -> None:
    for _ in range(3):  # 3 x 60000 > the 65535 connection window: only works if each is released
        n_before = len(incoming)
        h = client.open_stream(REQ)
        await h.send_data(b"z" * 60000)
        while len(incoming) == n_before:
            await trio.sleep(0)
        server_h = incoming[-1]
        got = 0
        while got < 60000:
            ev = await server_h.receive()
            if isinstance(ev, DataReceived):
                got += len(ev.data)
        server_h.release()  # never acknowledged by the reader: release gives it back
        h.release()
