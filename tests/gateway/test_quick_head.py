"""The relay's shortcut for plain Go response heads agrees with the full parser, or declines."""

from __future__ import annotations

import pytest

from gateway.http_proxy import quick_head
from weedpy.http1 import ClientConnection, Response

BASE = b"HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nContent-Length: 1044\r\nContent-Type: image/bench\r\n\r\n"


def parsed(head: bytes) -> Response:
    c = ClientConnection()
    c.receive_data(head)
    ev = c.next_event()
    assert isinstance(ev, Response)
    return ev


@pytest.mark.parametrize("head", [
    BASE,
    BASE.replace(b"Content-Length", b"content-length"),
    BASE.replace(b"Content-Length: 1044", b"CONTENT-LENGTH:  7 "),
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 \r\ncOnTeNt-LeNgTh: 3\r\n\r\n",  # no reason; the name in any case
])
def test_plain_heads_agree_with_the_parser(head: bytes) -> None:
    status, length = quick_head(head)
    ev = parsed(head)
    assert status == ev.status and length == (ev.content_length or 0)


@pytest.mark.parametrize("head", [
    BASE.replace(b"Accept-Ranges: bytes", b"Transfer-Encoding: chunked"),
    BASE.replace(b"Accept-Ranges: bytes", b"TRANSFER-encoding: chunked"),
    BASE.replace(b"Accept-Ranges: bytes", b"Connection: close"),
    BASE.replace(b"Accept-Ranges: bytes", b"connection: close"),
    BASE.replace(b"Accept-Ranges: bytes", b"Keep-Alive: timeout=5"),
    BASE.replace(b"Accept-Ranges: bytes", b"kEEP-aLIVE: timeout=5"),
    BASE.replace(b"Accept-Ranges: bytes", b"content-LENGTH: 1044"),  # twice, in two spellings
    BASE.replace(b"Accept-Ranges: bytes", b"Content-Length: 1044"),  # twice
    BASE.replace(b"Content-Length: 1044", b"Content-Length:\t1044"),
    BASE.replace(b"Content-Length: 1044", b"Content-Length: 1044000000000000000"),  # past 18 digits
    BASE.replace(b"Content-Length: 1044", b"Content-Length: +1044"),
    b"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",  # until close
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\n",
])
def test_anything_unusual_goes_to_the_parser(head: bytes) -> None:
    assert quick_head(head) is None


def test_only_the_head_is_read_when_the_body_follows_it() -> None:
    """The body after the head (here one that looks like framing headers) is not the head's."""
    body = b"\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n"
    buf = BASE.replace(b"1044", b"%d" % len(body)) + body
    end = buf.find(b"\r\n\r\n") + 4
    assert quick_head(buf, end) == (200, len(body))
    assert quick_head(buf) is None  # the whole of it, read as a head, has two framings
