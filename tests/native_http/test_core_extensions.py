"""The HTTP-core additions the native handlers rely on: Exchange.send_file (sendfile(2) on fast
socket streams, pread+send otherwise) and GoResponse.sniff_prefix for streamed bodies."""

from __future__ import annotations

import os
import socket
import tempfile

import trio

from weedpy.http1 import GoHeader, GoResponse, ServerConnection, serialize_head
from weedpy.http1._fastio import FastStream
from weedpy.http1._trio import Exchange


def _exchange(stream) -> Exchange:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    req = conn.next_event()
    return Exchange(req, conn, stream, 5.0, "127.0.0.1", 1, "admin")


async def test_send_file_sends_the_range_with_sendfile() -> None:
    data = os.urandom(3 << 20)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        a, b = socket.socketpair()
        exch = _exchange(FastStream(a))
        received = bytearray()

        async def reader() -> None:
            b.setblocking(False)
            while len(received) < len(data) - 100:
                try:
                    chunk = b.recv(1 << 20)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(b)
                    continue
                received.extend(chunk)

        async with trio.open_nursery() as n:
            n.start_soon(reader)
            sent = await exch.send_file(f.fileno(), 100, len(data) - 100)
        assert sent == len(data) - 100 and bytes(received) == data[100:]
        assert exch.bytes_out == sent
        a.close()
        b.close()


async def test_send_file_stops_at_end_of_file() -> None:
    with tempfile.TemporaryFile() as f:
        f.write(b"short")
        f.flush()
        a, b = socket.socketpair()
        exch = _exchange(FastStream(a))
        assert await exch.send_file(f.fileno(), 2, 100) == 3
        assert b.recv(10) == b"ort"
        a.close()
        b.close()


def test_streamed_body_is_sniffed_from_its_prefix() -> None:
    async def body():
        yield b"<html>"

    resp = GoResponse(200, GoHeader(), stream=body(), stream_length=6, sniff_prefix=b"<html><body>")
    resp.header.set("Content-Length", "6")
    head = serialize_head(resp, method=b"GET", keep_alive=True, sniff=lambda p: "text/html; charset=utf-8",
                          date="Thu, 01 Jan 2026 00:00:00 GMT")
    assert b"\r\nContent-Type: text/html; charset=utf-8\r\n" in head.head
    no_prefix = GoResponse(200, GoHeader(), stream=body(), stream_length=6)
    head2 = serialize_head(no_prefix, method=b"GET", keep_alive=True, sniff=lambda p: "x/y", date="d")
    assert b"Content-Type" not in head2.head


def test_header_values_keep_trailing_latin1_bytes_and_http10_close() -> None:
    resp = GoResponse(200, GoHeader(), b"x")
    resp.header.set("Foo", " a\xa0 ")
    head = serialize_head(resp, method=b"GET", keep_alive=False, http10=True, date="d").head
    assert b"\r\nFoo: a\xa0\r\n" in head and b"Connection" not in head
    head11 = serialize_head(GoResponse(200, GoHeader(), b"x"), method=b"GET", keep_alive=False, date="d").head
    assert head11.endswith(b"Connection: close\r\n\r\n")
