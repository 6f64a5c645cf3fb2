"""The relay's shortcut for plain Go response heads agrees with the full parser, or declines."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, seed, settings, strategies as st

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


# quick_head as it was with one group per alternative: the reference the cheaper pattern must match
_STATUS = {b"HTTP/1.1 %d " % status: status for status in range(200, 600)}
_GROUPED = re.compile(rb"\r\n(?:content-length: *([0-9]{1,18}) *(?=\r\n)|"
                      rb"(transfer-encoding|connection|keep-alive|content-length):)")


def grouped_quick_head(head: bytes, end: int | None = None) -> tuple[int, int] | None:
    status = _STATUS.get(head[:13])
    if status is None:
        return None
    found = _GROUPED.findall((head[13:end] if end is not None else head[13:]).lower())
    if not found:
        return (status, 0) if status in (204, 304) else None
    if len(found) != 1 or found[0][1]:
        return None
    return status, int(found[0][0])


_names = st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-length", b"Content-Lengths",
                          b"Content-Type", b"Connection", b"conNECTion", b"Connections", b"Transfer-Encoding",
                          b"transfer-encoding", b"Keep-Alive", b"KEEP-ALIVE", b"Keep-Alive-X", b"Etag", b"C",
                          b"Content", b"X-Content-Length", b"Con", b" Content-Length", b"Content-Length "])
_values = st.sampled_from([b"5", b" 5", b"5 ", b"  1044  ", b"\t5", b"+5", b"-1", b"0", b"x", b"", b"5x", b"1 2",
                           b"1" * 18, b"1" * 19, b"chunked", b"close", b"keep-alive", b"\r\nContent-Length: 3",
                           b"a\rb", b"a\nConnection: x", b"\x00", b"timeout=5"])
_line = st.builds(lambda n, sep, v: n + sep + v, _names, st.sampled_from([b":", b": ", b" :", b""]), _values)


@seed(11)
@settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    status=st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 Not Modified",
                            b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 ", b"HTTP/1.1 100 Continue", b"HTTP/1.0 200 OK"]),
    lines=st.lists(_line, max_size=8),
    ends=st.lists(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"]), min_size=8, max_size=8),
    body=st.sampled_from([b"", b"hello", b"\r\nContent-Length: 9\r\n", b"\r\nConnection: close\r\n\r\n"]),
)
@example(b"HTTP/1.1 200 OK", [b"Content-Length: 5", b"connection: close"], [b"\r\n"] * 8, b"")
@example(b"HTTP/1.1 204 No Content", [b"Connection:"], [b"\r\n"] * 8, b"")
def test_the_check_agrees_with_one_group_per_alternative(status: bytes, lines: list[bytes], ends: list[bytes],
                                                         body: bytes) -> None:
    """Over generated heads (names in any case and near misses, odd values, bare CR and LF,
    bodies that look like headers): the same answer as the pattern with a group per alternative."""
    head = status + b"\r\n" + b"".join(line + end for line, end in zip(lines, ends)) + b"\r\n"
    buf = head + body
    assert quick_head(buf, len(head)) == grouped_quick_head(buf, len(head))
    assert quick_head(buf) == grouped_quick_head(buf)
