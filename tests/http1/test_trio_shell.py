"""The trio connection shell: keep-alive, pipelining, unread bodies, idle timeout, bad input."""

from __future__ import annotations

import trio
import trio.testing

from weedpy.http1 import Exchange, GoResponse, send_go_response, serve_connection


async def echo_handler(exch: Exchange) -> None:
    body = b""
    if exch.request.target.startswith(b"/read"):
        while piece := await exch.receive_body():
            body += piece
    resp = GoResponse(200, body=exch.request.target + b" " + body)
    resp.header.set("Content-Type", "text/plain")
    await send_go_response(exch, resp)


async def serve_once(handler, client_bytes: bytes, idle: float = 5.0, read_for: float = 1.0) -> bytes:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, lambda s: serve_connection(s, handler, idle_timeout=idle, port_kind="admin"), 0, )
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await client.send_all(client_bytes)
        out = b""
        with trio.move_on_after(read_for):
            while data := await client.receive_some(65536):
                out += data
        await client.aclose()
        nursery.cancel_scope.cancel()
    return out


async def test_keep_alive_serves_pipelined_requests_in_order() -> None:
    reqs = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nwxyz"
            b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = await serve_once(echo_handler, reqs)
    assert out.count(b"HTTP/1.1 200 OK") == 4
    bodies = [part.split(b"\r\n\r\n", 1)[1][:20] for part in out.split(b"HTTP/1.1 200 OK")[1:]]
    assert [b.split(b"HTTP")[0] for b in bodies] == [b"/a ", b"/skip ", b"/read wxyz", b"/b "]
    assert out.rstrip().endswith(b"/b")
    assert b"Connection: close" in out.split(b"HTTP/1.1 200 OK")[-1]


async def test_unread_body_that_stalls_is_answered_after_the_idle_timeout_and_closed() -> None:
    """The server reads an unread body before answering (Go's net/http); what follows it in the
    stream is body, never a request, and a body that stops coming ends at the idle timeout."""
    with trio.fail_after(10):
        out = await serve_once(echo_handler, b"POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc"
                                             b"GET /never HTTP/1.1\r\n\r\n", idle=0.3, read_for=5)
    assert out.count(b"HTTP/1.1 200 OK") == 1 and b"/never" not in out
    assert b"Connection: close" in out


async def test_malformed_request_gets_go_style_400_and_close() -> None:
    out = await serve_once(echo_handler, b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert out == b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"


async def test_idle_connection_is_closed() -> None:
    with trio.fail_after(5):
        out = await serve_once(echo_handler, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", idle=0.2, read_for=3)
    assert out.count(b"HTTP/1.1 200 OK") == 1


# -- the syscall-first stream (what the gateway and the native server serve on) -------------------

async def serve_fast_once(handler, sends: list[bytes], idle: float = 5.0, read_for: float = 1.0) -> bytes:
    return (await serve_fast_eof(handler, sends, idle, read_for))[0]


async def serve_fast_eof(handler, sends: list[bytes], idle: float = 5.0, read_for: float = 1.0) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection within `read_for`."""
    from weedpy.http1 import listening_socket, serve_fast

    async with trio.open_nursery() as nursery:
        sock = listening_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        nursery.start_soon(serve_fast, sock,
                           lambda s: serve_connection(s, handler, idle_timeout=idle, port_kind="admin"), nursery)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        for data in sends:
            await client.send_all(data)
            await trio.sleep(0.05)
        out = b""
        eof = False
        with trio.move_on_after(read_for):
            while data := await client.receive_some(65536):
                out += data
            eof = True
        await client.aclose()
        nursery.cancel_scope.cancel()
    return out, eof


async def test_fast_stream_pipelined_and_split_requests() -> None:
    reqs = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nwx")
    out = await serve_fast_once(echo_handler, [reqs, b"yz", b"GET /b HTTP/1.1\r\n", b"Host: x\r\nConnection: close\r\n\r\n"])
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert b"/read wxyz" in out and out.rstrip().endswith(b"/b")


async def test_fast_stream_idle_connection_is_closed() -> None:
    with trio.fail_after(5):
        out, eof = await serve_fast_eof(echo_handler, [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"], idle=0.2, read_for=3)
    assert out.count(b"HTTP/1.1 200 OK") == 1 and eof


async def test_fast_stream_receive_now() -> None:
    import socket

    from weedpy.http1 import FastStream

    a, b = socket.socketpair()
    stream = FastStream(a)
    try:
        assert stream.receive_now() is None
        b.sendall(b"abc")
        assert stream.receive_now() == b"abc"
        b.close()
        assert stream.receive_now() == b""
    finally:
        stream.close()


async def test_busy_pipelining_connection_does_not_starve_another() -> None:
    """Requests already buffered are served without waiting for the socket, so the loop must
    still yield once per request: two connections with 40 pipelined requests each interleave."""
    from weedpy.http1 import listening_socket, serve_fast

    order: list[bytes] = []

    async def record(exch: Exchange) -> None:
        order.append(exch.request.target[:2])
        await send_go_response(exch, GoResponse(204))

    async with trio.open_nursery() as nursery:
        sock = listening_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        nursery.start_soon(serve_fast, sock,
                           lambda s: serve_connection(s, record, idle_timeout=5, port_kind="admin"), nursery)
        clients = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        for name, client in zip((b"/a", b"/b"), clients):
            await client.send_all(b"".join(b"GET %s%d HTTP/1.1\r\nHost: x\r\n\r\n" % (name, i) for i in range(40)))
        with trio.fail_after(10):
            while len(order) < 80:
                await trio.sleep(0.01)
        for client in clients:
            await client.aclose()
        nursery.cancel_scope.cancel()
    first_b = order.index(b"/b")
    last_a = len(order) - 1 - order[::-1].index(b"/a")
    assert first_b < last_a, "one connection's buffered requests ran to the end before the other started"


async def test_fast_stream_slow_handler_is_not_an_idle_connection() -> None:
    async def slow(exch: Exchange) -> None:
        await trio.sleep(0.5)
        await echo_handler(exch)

    with trio.fail_after(10):
        out, eof = await serve_fast_eof(
            slow, [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"], idle=0.1, read_for=3)
    assert out.count(b"HTTP/1.1 200 OK") == 2 and eof  # served both, then idled out


async def test_fast_stream_half_sent_head_idles_out() -> None:
    with trio.fail_after(5):
        out, eof = await serve_fast_eof(echo_handler, [b"GET /a HTTP/1.1\r\nHo"], idle=0.2, read_for=3)
    assert out == b"" and eof


async def test_buffered_body_whole_partial_and_given_back() -> None:
    """buffered_body never waits: the whole body when it has arrived, else None with the bytes
    taken coming back first from receive_body; unread puts bytes back in front."""
    seen: list[tuple[bytes, object, object, bytes]] = []

    async def handler(exch: Exchange) -> None:
        first = exch.buffered_body()
        if first is not None:
            exch.unread(first[:3])
            again = exch.buffered_body()
        else:
            again = None
        rest = b""
        while piece := await exch.receive_body():
            rest += piece
        seen.append((exch.request.target, first, again, rest))
        await send_go_response(exch, GoResponse(204))

    whole = b"POST /whole HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    partial_head = b"POST /partial HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nwor"
    with trio.fail_after(10):
        out, _ = await serve_fast_eof(handler, [whole, partial_head, b"ld!"], read_for=1)
    assert out.count(b"HTTP/1.1 204") == 2
    assert seen[0] == (b"/whole", b"hello", b"hel", b"")  # `hel` given back, then taken again
    assert seen[1] == (b"/partial", None, None, b"world!")  # `wor` came back first


async def test_buffered_body_leaves_a_parse_error_for_receive_body() -> None:
    from weedpy.http1 import ProtocolError

    errors: list[str] = []

    async def handler(exch: Exchange) -> None:
        assert exch.buffered_body() is None
        try:
            await exch.receive_body()
        except ProtocolError as exc:
            errors.append(str(exc))
            raise

    await serve_fast_once(handler, [b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
    assert errors
