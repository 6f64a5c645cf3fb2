"""canonical_head: a relay forwards a request head as received only when the rebuilt head would say
exactly the same thing; anything a rebuild would change (hop-by-hop headers, HTTP/1.0, a head
that arrived in pieces or behind another request) is rebuilt instead."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, example, given, seed, settings, strategies as st

from gateway.http_proxy import backend_request_head
from weedpy.http1 import NEED_DATA, HOP_BY_HOP, ProtocolError, Request, ServerConnection, canonical_head


def requests_of(*reads: bytes) -> list[Request]:
    conn = ServerConnection()
    out: list[Request] = []
    for data in reads:
        conn.receive_data(data)
        while (ev := conn.next_event()) is not NEED_DATA:
            if isinstance(ev, Request):
                out.append(ev)
    return out


GET = b"GET /3,01637037d6 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
POST_HEAD = b"POST /3,01637037d6 HTTP/1.1\r\nHost: v\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"


def test_plain_heads_go_as_received() -> None:
    assert [canonical_head(r) for r in requests_of(GET)] == [GET]
    assert [canonical_head(r) for r in requests_of(POST_HEAD + b"hello")] == [POST_HEAD]
    odd_spacing = b"GET /a?b=c HTTP/1.1\r\nhost:x\r\nX-Y:   spaced out\t\r\n\r\n"
    assert [canonical_head(r) for r in requests_of(odd_spacing)] == [odd_spacing]


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nconnection: X-Secret\r\nX-Secret: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic eA==\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a leading empty line the rebuilt head leaves out
])
def test_heads_a_relay_rewrites_are_rebuilt(raw: bytes) -> None:
    [req] = requests_of(raw)
    assert canonical_head(req) is None


def test_a_head_in_pieces_or_behind_another_request_is_rebuilt() -> None:
    [split] = requests_of(GET[:20], GET[20:])
    assert canonical_head(split) is None
    first, second = requests_of(GET + GET)
    assert canonical_head(first) == GET and canonical_head(second) is None
    after_body = requests_of(POST_HEAD + b"hello" + GET)
    assert [canonical_head(r) for r in after_body] == [POST_HEAD, None]


def test_head_in_the_read_after_a_body_goes_as_received() -> None:
    reqs = requests_of(POST_HEAD + b"hello", GET)
    assert [canonical_head(r) for r in reqs] == [POST_HEAD, GET]


def parsed_view(head: bytes) -> tuple:
    """What a server reads from a head: method, target, version, headers (names case-folded,
    values trimmed as HTTP says; the order among one name's values kept, not across names), and
    the body framing."""
    [req] = requests_of(head)
    headers = sorted(((n.lower(), v.strip(b" \t")) for n, v in req.headers), key=lambda h: h[0])
    return (req.method, req.target, req.http_version, headers,
            req.content_length, req.chunked)


plain_names = st.sampled_from([b"Host", b"User-Agent", b"Content-Type", b"X-Case", b"Accept-Encoding",
                               b"Content-Length", b"Expect"])
hop_names = st.sampled_from([b"Connection", b"Keep-Alive", b"TE", b"Upgrade", b"Transfer-Encoding",
                             b"Proxy-Connection", b"Trailer"])
names = st.one_of(plain_names, plain_names, plain_names, hop_names)
values = st.text(alphabet="abcXYZ019 -=,;/", min_size=0, max_size=12).map(str.encode)
spaces = st.sampled_from([b"", b" ", b"  ", b"\t", b" \t "])


@given(
    method=st.sampled_from([b"GET", b"POST", b"HEAD", b"DELETE", b"PUT"]),
    target=st.sampled_from([b"/3,01637037d6", b"/a?b=c", b"http://x/1,ab", b"/"]),
    version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
    headers=st.lists(st.tuples(names, st.booleans(), spaces, values, spaces), max_size=6),
    body=st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_a_head_sent_as_received_reads_as_the_rebuilt_one(method, target, version, headers, body) -> None:
    """Whenever canonical_head takes the received bytes, a server reads from them exactly what it
    reads from the head the relay would have written (and nothing hop-by-hop is in them)."""
    lines = [b"%s %s %s" % (method, target, version)]
    for name, lower, pre, value, post in headers:
        if name.lower() == b"content-length":
            value = b"5"
        lines.append((name.lower() if lower else name) + b":" + pre + value + post)
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + (b"hello" if body else b"")
    try:
        reqs = requests_of(raw)
    except ProtocolError:
        return
    if not reqs:
        return
    req = reqs[0]
    head = canonical_head(req)
    event("rebuilt" if head is None else "sent as received")
    if head is None:
        return
    assert raw.startswith(head)
    assert not any(n.lower() in HOP_BY_HOP for n, _ in req.headers)
    assert parsed_view(head) == parsed_view(backend_request_head(req))


def counted_head(req: Request) -> bytes | None:
    """canonical_head as it was before a read holding the head alone was checked by one `replace`:
    the head's lines counted on every request."""
    wire = req.wire
    if wire is None:
        return None
    end = wire.find(b"\r\n\r\n") + 4
    if end < 4:
        return None
    head = wire[:end] if end < len(wire) else wire
    lines = len(req.headers) + 2
    if head.count(b"\n") != lines or head.count(b"\r\n") != lines:
        return None
    if not head.startswith(b"%s %s HTTP/1.1\r\n" % (req.method, req.target)):
        return None
    return head


_line_end = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\n "])
_piece = st.sampled_from([b"Host: v", b"X-A: 1", b"Content-Length: 3", b"x-b:\t2 ", b"C: \r", b"D: \n", b"E: \x00",
                          b"", b" folded", b"GET / HTTP/1.1", b"abc"])


@seed(7)
@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    line=st.sampled_from([b"GET /1,ab HTTP/1.1", b"POST /a?b=c HTTP/1.1", b"GET  /x HTTP/1.1", b"GET /x  HTTP/1.1",
                          b"\r\nGET /x HTTP/1.1", b"GET /x HTTP/1.0"]),
    lines=st.lists(st.tuples(_piece, _line_end), max_size=6),
    tail=st.sampled_from([b"", b"abc", b"GET / HTTP/1.1\r\n\r\n", b"\r\n", b"\r\n\r\n", b"x\r\n\r\n"]),
    cuts=st.lists(st.integers(0, 200), max_size=2),
)
@example(b"GET /1,ab HTTP/1.1", [(b"Host: v", b"\r\n")], b"GET / HTTP/1.1\r\n\r\n", [])
@example(b"POST /a?b=c HTTP/1.1", [(b"Content-Length: 3", b"\r\n")], b"x\r\n\r\n", [])
def test_the_shortcut_takes_what_counting_takes(line: bytes, lines: list, tail: bytes, cuts: list[int]) -> None:
    """Over generated reads (bare CR and LF, folds, NUL, bodies and pipelined requests after the
    head, heads in pieces): canonical_head gives exactly what counting the head's lines gave."""
    raw = line + b"\r\n" + b"".join(p + e for p, e in lines) + b"\r\n" + tail
    points = sorted({c % (len(raw) + 1) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)]) if b > a]  # (b"" would be the end)
    try:
        reqs = requests_of(*pieces)
    except ProtocolError:
        reqs = []
    for req in reqs:
        assert canonical_head(req) == counted_head(req)
    for method, target in ((b"GET", b"/1,ab"), (b"POST", b"/a?b=c")):  # any read, as if parsed with one header a line
        wire = Request(method, target, ((b"h", b"v"),) * len(lines), b"1.1", True, None, False, False, raw)
        assert canonical_head(wire) == counted_head(wire)
