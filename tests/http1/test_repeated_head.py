"""A keep-alive client's next GET whose header lines repeat the last request's is read without
llhttp (ServerConnection's repeated-head path). Whatever arrives, the connection must give the
same events and errors as a connection that parses every request in full."""

from __future__ import annotations

from hypothesis import example, given, settings, strategies as st

from weedpy.http1 import NEED_DATA, ConnectionClosed, ProtocolError, Request, ServerConnection, canonical_head
from weedpy.http1 import _parse

GO_FIELDS = b"\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"


def events_of(conn: ServerConnection, data: bytes) -> list[object]:
    """The events one read gives, an error as (status, reason) in their place."""
    conn.receive_data(data)
    out: list[object] = []
    try:
        while (ev := conn.next_event()) is not NEED_DATA:
            out.append(ev)
            if isinstance(ev, ConnectionClosed):  # (it is given again on every call)
                break
    except ProtocolError as exc:
        out.append(("error", exc.status_hint, exc.public, str(exc)))
    return out


def parsed_in_full(first: bytes, second: bytes) -> list[object]:
    """The second read's events on a connection that never takes the repeated-head path."""
    conn = ServerConnection()
    events_of(conn, first)
    conn._last_fields = b""  # as if the first request could not be repeated
    return events_of(conn, second)


class _CountingParser:
    """The connection's llhttp parser, noting what it is fed."""

    def __init__(self, parser: object, feeds: list[bytes]) -> None:
        self._parser, self._feeds = parser, feeds

    def feed_data(self, data: bytes) -> None:
        self._feeds.append(data)
        self._parser.feed_data(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._parser, name)


def count_feeds(conn: ServerConnection) -> list[bytes]:
    feeds: list[bytes] = []
    conn._parser = _CountingParser(conn._parser, feeds)  # type: ignore[assignment]
    return feeds


def test_a_repeated_go_get_takes_the_short_path_and_reads_the_same() -> None:
    first = b"GET /3,01637037d6 HTTP/1.1" + GO_FIELDS
    second = b"HEAD /4,02abcdef?readDeleted=true HTTP/1.1" + GO_FIELDS
    conn = ServerConnection()
    [req1, _] = events_of(conn, first)
    assert conn._last_fields == GO_FIELDS
    feeds = count_feeds(conn)
    [req2, end] = events_of(conn, second)
    assert feeds == []  # llhttp was not fed
    assert isinstance(req2, Request) and req2.headers is req1.headers
    assert req2 == (b"HEAD", b"/4,02abcdef?readDeleted=true", req1.headers, b"1.1", True, None, False, False, second)
    assert [req2, end] == parsed_in_full(first, second)


def test_what_may_not_be_repeated_is_parsed_in_full() -> None:
    for first in (
        b"POST /1,1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",  # a framing header
        b"GET /1,1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # the connection ends
        b"GET /1,1 HTTP/1.0\r\nHost: x\r\n\r\n",
        b"\r\nGET /1,1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS /1,1 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        conn = ServerConnection()
        events_of(conn, first)
        assert conn._last_fields == b"", first


_FIELDS = st.sampled_from([
    GO_FIELDS,
    b"\r\n\r\n",
    b"\r\nHost: x\r\n\r\n",
    b"\r\nHost: a\r\nHost: b\r\n\r\n",
    b"\r\nhost:x\r\nX-Y:   spaced out\t\r\n\r\n",
    b"\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
    b"\r\nHost: x\r\nRange: bytes=0-9\r\nIf-None-Match: \"e\"\r\n\r\n",
    b"\r\nHost: x\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",  # hop by hop: no wire
    b"\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\r\nHost: x\r\nProxy-Connection: close\r\n\r\n",  # Go keeps an HTTP/1.1 connection
    b"\r\nHost: x\r\nKeep-Alive: 5\r\nTE: trailers\r\n\r\n",
    b"\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
])
_METHODS = st.sampled_from([b"GET", b"HEAD", b"DELETE", b"POST", b"PUT", b"OPTIONS", b"CONNECT", b"get", b"G\xc3T",
                            b"GET ", b""])
_TARGETS = st.one_of(
    st.binary(max_size=40).map(lambda b: b"/" + b),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7f), max_size=40).map(str.encode),
    st.sampled_from([b"*", b"http://h/x", b"/a b", b"/a#frag", b"/%zz", b"/\x7f", b"/\x80", b"//x", b""]),
)
_VERSIONS = st.sampled_from([b" HTTP/1.1", b" HTTP/1.0", b" HTTP/2.0", b" http/1.1", b"  HTTP/1.1", b" HTTP/1.1 ",
                             b""])


@settings(max_examples=600, deadline=None)
@given(first_method=st.sampled_from([b"GET", b"HEAD", b"DELETE"]), first_fields=_FIELDS, method=_METHODS,
       target=_TARGETS, version=_VERSIONS, fields=st.one_of(st.none(), st.none(), _FIELDS),
       tail=st.sampled_from([b"", b"", b"", b"x", b"GET / HTTP/1.1\r\n\r\n"]))
@example(first_method=b"GET", first_fields=GO_FIELDS, method=b"GET", target=b"/1,1", version=b" HTTP/1.0",
         fields=None, tail=b"")
@example(first_method=b"GET", first_fields=GO_FIELDS, method=b"GET", target=b"/a\x00b", version=b" HTTP/1.1",
         fields=GO_FIELDS, tail=b"")
@example(first_method=b"GET", first_fields=GO_FIELDS, method=b"GET", target=b"/a\rb", version=b" HTTP/1.1",
         fields=GO_FIELDS, tail=b"")
def test_any_second_request_reads_as_a_full_parse_reads_it(first_method: bytes, first_fields: bytes, method: bytes,
                                                            target: bytes, version: bytes, fields: bytes | None,
                                                            tail: bytes) -> None:
    """(fields None: the first request's header lines again, the case the short path takes.)"""
    first = first_method + b" /1,1 HTTP/1.1" + first_fields
    fields = first_fields if fields is None else fields
    second = method + b" " + target + version + fields + tail
    conn = ServerConnection()
    got_first = events_of(conn, first)
    got = events_of(conn, second)
    assert got == parsed_in_full(first, second)
    # what a relay relies on: a request sharing the headers of one whose head was canonical alone in
    # its read is canonical alone in its read too (but for the empty tuple every request without
    # headers shares)
    first_req, req = got_first[0], got[0] if got else None
    if isinstance(first_req, Request) and isinstance(req, Request) and req.headers and \
            req.headers is first_req.headers:
        if first_req.wire is not None and canonical_head(first_req) is first_req.wire:
            assert req.wire is not None and canonical_head(req) is req.wire


def test_the_size_bound_leaves_a_long_head_to_llhttp() -> None:
    target = b"/" + b"a" * _parse._REPEAT_MAX
    first = b"GET /1,1 HTTP/1.1" + GO_FIELDS
    second = b"GET " + target + b" HTTP/1.1" + GO_FIELDS
    conn = ServerConnection()
    events_of(conn, first)
    feeds = count_feeds(conn)
    assert events_of(conn, second) == parsed_in_full(first, second)
    assert feeds == [second]


def test_a_client_whose_heads_keep_changing_stops_being_noted() -> None:
    conn = ServerConnection()
    for i in range(_parse._NOTES + 3):
        data = b"GET /1,1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-%d\r\n\r\n" % i
        [req, _] = events_of(conn, data)
        assert req.headers[1] == (b"Range", b"bytes=0-%d" % i)
    assert conn._last_fields == b""
    # one head that repeats is noted again only on a new connection; this one parses in full
    feeds = count_feeds(conn)
    events_of(conn, data)
    events_of(conn, data)
    assert feeds == [data, data]


def test_repeats_keep_the_notes_coming() -> None:
    """A client that repeats each head a few times is noted for as long as it does."""
    conn = ServerConnection()
    other = b"GET /1,1 HTTP/1.1\r\nHost: y\r\n\r\n"
    for i in range(3 * _parse._NOTES):
        for data in (b"GET /1,%d HTTP/1.1" % i + GO_FIELDS, b"GET /2,%d HTTP/1.1" % i + GO_FIELDS, other, other):
            events_of(conn, data)
    first = b"GET /1,1 HTTP/1.1" + GO_FIELDS
    feeds = count_feeds(conn)
    events_of(conn, first)
    events_of(conn, first)
    assert feeds == [first]  # the first noted, the second repeated


def test_nothing_is_repeated_after_a_request_that_ends_the_connection() -> None:
    first = b"GET /1,1 HTTP/1.1" + GO_FIELDS
    closing = b"GET /1,2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    conn, full = ServerConnection(), ServerConnection()
    for data in (first, closing):
        events_of(conn, data)
        events_of(full, data)
    full._last_fields = b""
    assert conn._last_fields == b""
    assert events_of(conn, first) == events_of(full, first)


def test_a_large_head_is_not_kept() -> None:
    """A connection keeps at most _REPEAT_MAX bytes of notes, whatever heads it is sent."""
    conn = ServerConnection()
    big = b"GET /1,1 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * _parse._REPEAT_MAX + b"\r\n\r\n"
    [req, _] = events_of(conn, big)
    assert req.headers[1][1] == b"p" * _parse._REPEAT_MAX
    assert conn._last_fields == b""


def test_a_head_limit_a_repeated_head_could_reach_is_counted_by_llhttp() -> None:
    """A repeated head shares only its header lines with the one it repeats: a longer target can
    take it past a small head limit, which the full parse refuses (431)."""
    fields = b"\r\nHost: x\r\nX-Pad: " + b"a" * 150 + b"\r\n\r\n"
    first = b"GET / HTTP/1.1" + fields
    second = b"GET /" + b"b" * 100 + b" HTTP/1.1" + fields
    conn, full = ServerConnection(max_head=200), ServerConnection(max_head=200)
    assert events_of(conn, first) == events_of(full, first)
    full._last_fields = b""
    assert events_of(conn, second) == events_of(full, second) == [("error", 431, "", "request head too large")]


def test_an_http10_request_is_not_noted() -> None:
    """llhttp keeps an HTTP/1.0 connection alive on a keep-alive token even beside a close token;
    on HTTP/1.1 the close token ends it: the same header lines under another version must not be
    read as the noted request's (keep_alive would stay True)."""
    fields = b"\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n"
    first = b"GET /1 HTTP/1.0" + fields
    second = b"GET /2 HTTP/1.1" + fields
    conn = ServerConnection()
    [req1, _] = events_of(conn, first)
    assert req1.keep_alive  # llhttp's reading, and a Go volume server's (it answers keep-alive)
    assert conn._last_fields == b""
    [req2, end] = events_of(conn, second)
    assert not req2.keep_alive
    assert [req2, end] == parsed_in_full(first, second)


_KEEP = b"\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
_UPGRADE = b"\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
_BOTH = b"\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n"
# Whole heads, heads with what may follow them in one read, parts of heads and bodies, and
# requests that change the connection's state (close, upgrade, CONNECT, HTTP/1.0, errors).
_READS = st.sampled_from([
    b"GET /1,1 HTTP/1.1" + GO_FIELDS, b"GET /2,2?x=1 HTTP/1.1" + GO_FIELDS, b"HEAD /3 HTTP/1.1" + GO_FIELDS,
    b"DELETE /4 HTTP/1.1" + GO_FIELDS, b"GET /1,1 HTTP/1.0" + GO_FIELDS, b"GET /1,1 HTTP/1.1" + GO_FIELDS + b"\r\n",
    b"GET /1 HTTP/1.0" + _KEEP, b"GET /2 HTTP/1.1" + _KEEP, b"GET /1 HTTP/1.0" + _BOTH, b"GET /2 HTTP/1.1" + _BOTH,
    b"GET /u HTTP/1.1" + _UPGRADE, b"HEAD /u HTTP/1.1" + _UPGRADE, b"CONNECT /u HTTP/1.1" + _UPGRADE,
    b"CONNECT h:1 HTTP/1.1\r\nHost: x\r\n\r\n", b"OPTIONS * HTTP/1.1" + GO_FIELDS, b"GET http://x/1 HTTP/1.1" + GO_FIELDS,
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", b"ab", b"c", b"abc",
    b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"3\r\nabc\r\n0\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"GET /c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
    b"GET /p HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n",
    b"GET /p HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\nGET /q HTTP/1.1" + GO_FIELDS,
    b"\r\n", b"\r", b"\n", b"GE", b"GET /x HTT", b"T /1 HTTP/1.1" + GO_FIELDS, b"\r\nGET /1,1 HTTP/1.1" + GO_FIELDS,
    b"GET /1,1 HTTP/1.1" + GO_FIELDS + b"GET /1,2 HTTP/1.1" + GO_FIELDS, b"GET /1,1 HTTP/1.1" + GO_FIELDS + b"x",
    b"GET /1,1 HTTP/1.1" + GO_FIELDS[:20], GO_FIELDS[20:], GO_FIELDS,
    b"GET / HTTP/1.1\r\n\r\n", b"GET /a HTTP/1.1\r\n\r\n", b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", b"GET /\x00 HTTP/1.1" + GO_FIELDS,
    b"GET /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"GET /1 HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
])


@settings(max_examples=400, deadline=None)
@given(reads=st.lists(_READS, max_size=12), eof=st.booleans())
@example(reads=[b"GET /1 HTTP/1.0" + _BOTH, b"GET /2 HTTP/1.1" + _BOTH], eof=False)
def test_any_sequence_of_reads_reads_as_a_full_parse_reads_it(reads: list[bytes], eof: bool) -> None:
    """Read by read, the connection gives what one that never takes the short path gives, and a
    request sharing the headers of an earlier one whose head was canonical alone in its read (what
    gateway/uv_relay.py's memo trusts) is canonical alone in its read."""
    conn, full = ServerConnection(), ServerConnection()
    checked: tuple[tuple[bytes, bytes], ...] | None = None
    for data in reads + [b""] * eof:
        full._last_fields = b""
        got = events_of(conn, data)
        assert got == events_of(full, data)
        assert conn.partial_request_line() == full.partial_request_line()
        for req in got:
            if isinstance(req, Request):
                if req.wire is not None and req.headers is checked:
                    assert canonical_head(req) is req.wire
                elif canonical_head(req) is req.wire and req.wire is not None and req.headers:
                    checked = req.headers
