"""A raw TCP splice: bytes both ways between a client and an upstream chosen per connection."""

from __future__ import annotations

import socket
from collections.abc import Callable

import trio

__all__ = ["splice", "serve_tcp_relay"]


async def _pump(src: trio.abc.ReceiveStream, dst: trio.abc.SendStream) -> None:
    try:
        async for data in src:
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        if isinstance(dst, trio.SocketStream):
            try:
                await dst.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass


async def splice(a: trio.SocketStream, b: trio.SocketStream) -> None:
    """Copy until both directions have ended, then close both."""
    try:
        async with trio.open_nursery() as n:
            n.start_soon(_pump, a, b)
            n.start_soon(_pump, b, a)
    finally:
        with trio.CancelScope(shield=True):
            await a.aclose()
            await b.aclose()


async def serve_tcp_relay(
    listener: trio.SocketListener, upstream: Callable[[], tuple[str, int] | None],
) -> None:
    """Accept forever; each connection is spliced to `upstream()` (refused when it is None)."""

    async def on_connection(client: trio.SocketStream) -> None:
        addr = upstream()
        if addr is None:
            await client.aclose()
            return
        try:
            remote = await trio.open_tcp_stream(*addr)
        except OSError:
            await client.aclose()
            return
        for s in (client, remote):
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        await splice(client, remote)

    await trio.serve_listeners(on_connection, [listener])
