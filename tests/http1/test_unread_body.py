"""A request body the handler left unread, handled as Go's net/http handles it.

Before the answer (`settle_body`, called by `send_go_response`): up to 256 KiB more is read and
dropped and the connection stays open; a Content-Length body with 256 KiB or more still to come
is not read and the answer closes the connection. A connection that closes with body bytes still
on the wire lingers (FIN, then the client's bytes are read and dropped for up to half a second),
so a client that sends its whole body before reading gets the answer, not a reset. The
differential against Go is tests/http1/test_unread_body_go.py.
"""

from __future__ import annotations

import trio

from weedpy.http1 import (
    MAX_POST_HANDLER_READ, Exchange, GoResponse, listening_socket, send_go_response, serve_connection, serve_fast,
    simple_response,
)

KIB = 1024


async def refuse(exch: Exchange) -> None:
    """A handler that answers a POST with 401 without reading its body (a JWT or whitelist
    refusal), and anything else with 200."""
    await send_go_response(exch, GoResponse(401 if exch.request.method == b"POST" else 200))


async def refuse_raw(exch: Exchange) -> None:
    """A handler that writes its answer itself and never looks at the body."""
    exch.started, exch.status = True, 401
    await exch.send(simple_response(401))


def _head(length: int | None, *extra: bytes) -> bytes:
    framing = b"Transfer-Encoding: chunked\r\n" if length is None else b"Content-Length: %d\r\n" % length
    return b"POST /3,01637037d6 HTTP/1.1\r\nHost: x\r\n" + framing + b"".join(extra) + b"\r\n"


async def _client(handler, pieces: list[bytes], *, pause: float = 0.0, then: bytes = b"") -> tuple[bytes, str]:
    """Send every piece (pausing between them), then `then`, then read until the server closes or
    goes quiet: what came back, and how the read ended ("eof", "reset" or "open")."""
    async with trio.open_nursery() as nursery:
        sock = listening_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        nursery.start_soon(serve_fast, sock,
                           lambda s: serve_connection(s, handler, idle_timeout=5, port_kind="admin"), nursery)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        out, end = b"", "open"
        try:
            for piece in pieces:
                await client.send_all(piece)
                if pause:
                    await trio.sleep(pause)
            if then:
                await client.send_all(then)
            with trio.move_on_after(3):
                while data := await client.receive_some(65536):
                    out += data
                end = "eof"
        except trio.BrokenResourceError:
            end = "reset"
        await client.aclose()
        nursery.cancel_scope.cancel()
    return out, end


async def test_small_unread_body_is_read_before_the_answer_and_the_connection_stays_open() -> None:
    body = [b"x" * (10 * KIB)] * 10  # 100 KiB, sent slowly after the head
    with trio.fail_after(20):
        out, end = await _client(refuse, [_head(100 * KIB), *body], pause=0.05,
                                 then=b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert end == "eof"
    answers = out.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"401", b"200"]  # the second request ran on the same connection
    assert b"Connection: close" not in answers[0]


async def test_large_unread_body_is_not_read_and_the_answer_closes_without_a_reset() -> None:
    """1 MiB declared: answered at once with Connection: close; the client, which sends its whole
    body before reading (as httpx and most clients do), still reads the answer and a clean EOF."""
    with trio.fail_after(20):
        out, end = await _client(refuse, [_head(1024 * KIB), b"y" * (1024 * KIB)])
    assert out.startswith(b"HTTP/1.1 401 ") and b"Connection: close\r\n" in out
    assert end == "eof"


async def test_unread_body_just_below_the_limit_is_drained() -> None:
    with trio.fail_after(20):
        out, end = await _client(refuse, [_head(MAX_POST_HANDLER_READ - 1), b"z" * (MAX_POST_HANDLER_READ - 1)],
                                 then=b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 ") == 2 and end == "eof"


async def test_long_chunked_body_is_read_up_to_the_limit_then_closed() -> None:
    chunk = b"%x\r\n%s\r\n" % (64 * KIB, b"c" * (64 * KIB))
    with trio.fail_after(20):
        out, end = await _client(refuse, [_head(None), chunk * 8 + b"0\r\n\r\n"])
    assert out.startswith(b"HTTP/1.1 401 ") and b"Connection: close\r\n" in out
    assert end == "eof"


async def test_expect_continue_body_not_read_closes_at_once() -> None:
    with trio.fail_after(10):
        out, end = await _client(refuse, [_head(100 * KIB, b"Expect: 100-continue\r\n")])
    assert out.startswith(b"HTTP/1.1 401 ") and b"Connection: close\r\n" in out
    assert b"100 Continue" not in out and end == "eof"


async def test_answer_written_without_settling_still_reaches_a_client_that_is_still_sending() -> None:
    """The connection loop's own safety net: the body is not drained, but the close lingers."""
    with trio.fail_after(20):
        out, end = await _client(refuse_raw, [_head(1024 * KIB), b"w" * (1024 * KIB)])
    assert out.startswith(b"HTTP/1.1 401 ")
    assert end == "eof"
