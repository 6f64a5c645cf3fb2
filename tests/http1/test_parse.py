"""The sans-IO HTTP/1.1 readers, driven from bytes: whole, a byte at a time, and pipelined."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from weedpy.http1 import (
    CONNECTION_CLOSED, NEED_DATA, ClientConnection, Data, EndOfMessage, InformationalResponse, ProtocolError,
    Request, Response, ServerConnection, chunk, end_to_end_headers, request_head, response_head, simple_response,
)


def drain(conn: ServerConnection | ClientConnection, data: bytes, step: int | None = None) -> list[object]:
    events: list[object] = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        conn.receive_data(piece)
        while (ev := conn.next_event()) is not NEED_DATA:
            events.append(ev)
            if ev is CONNECTION_CLOSED or (isinstance(conn, ClientConnection) and isinstance(ev, EndOfMessage)):
                return events
    return events


def merge_data(events: list[object]) -> list[object]:
    out: list[object] = []
    for ev in events:
        if isinstance(ev, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


POST = b"POST /3,01637037d6?ts=1 HTTP/1.1\r\nHost: v\r\nContent-Length: 5\r\nX-Case: KeepMe\r\n\r\nhello"
CHUNKED = b"PUT /1,ab HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"


@pytest.mark.parametrize("step", [None, 1, 7])
def test_request_with_length_body(step: int | None) -> None:
    events = merge_data(drain(ServerConnection(), POST, step))
    req = events[0]
    assert isinstance(req, Request)
    assert (req.method, req.target, req.content_length, req.chunked, req.keep_alive) == (
        b"POST", b"/3,01637037d6?ts=1", 5, False, True)
    assert req.headers == ((b"Host", b"v"), (b"Content-Length", b"5"), (b"X-Case", b"KeepMe"))
    assert events[1:] == [Data(b"hello"), EndOfMessage()]


@pytest.mark.parametrize("step", [None, 1, 5])
def test_chunked_request(step: int | None) -> None:
    events = merge_data(drain(ServerConnection(), CHUNKED, step))
    assert isinstance(events[0], Request) and events[0].chunked and events[0].content_length is None
    assert events[1:] == [Data(b"abcde"), EndOfMessage()]


def test_pipelined_requests_come_out_in_order() -> None:
    events = drain(ServerConnection(), POST + b"GET /x HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n")
    kinds = [type(e).__name__ for e in merge_data(events)]
    assert kinds == ["Request", "Data", "EndOfMessage", "Request", "EndOfMessage"]
    last = [e for e in events if isinstance(e, Request)][-1]
    assert last.keep_alive is False and not last.has_body


@pytest.mark.parametrize("step", [None, 7])
def test_proxy_connection_close_keeps_an_http11_connection_as_go_does(step: int | None) -> None:
    """Go reads Connection alone: after `Proxy-Connection: close` it reads the next request (llhttp
    would refuse it); a later `Connection: close` still ends the connection, and what follows that
    is refused."""
    raw = (b"GET /1 HTTP/1.1\r\nHost: v\r\nProxy-Connection: close\r\n\r\n"
           b"GET /2 HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
    conn = ServerConnection()
    events: list[object] = []
    with pytest.raises(ProtocolError, match="Data after `Connection: close`"):
        for piece in [raw] if step is None else [raw[i:i + step] for i in range(0, len(raw), step)]:
            conn.receive_data(piece)
            while (ev := conn.next_event()) is not NEED_DATA:
                events.append(ev)
    assert [(e.target, e.keep_alive) for e in events if isinstance(e, Request)] == [(b"/1", True), (b"/2", False)]


@pytest.mark.parametrize(("version", "lines", "keep"), [
    (b"1.1", b"Connection: x close\r\n", False),  # Go's hasToken finds it (llhttp's list does not)
    (b"1.1", b"Connection: close x\r\nProxy-Connection: x\r\n", False),
    (b"1.1", b"Connection: xclose\r\n", True),
    (b"1.0", b"Connection: close\r\nConnection: keep-alive\r\n", False),  # the first one alone counts
    (b"1.0", b"Connection: x\r\nConnection: keep-alive\r\n", False),
    (b"1.0", b"Connection: keep-alive, close\r\nProxy-Connection: close\r\n", True),  # wants10KeepAlive
    (b"1.0", b"Connection: x keep-alive\r\nProxy-Connection: x\r\n", True),
])
def test_keep_alive_is_gos_and_nothing_is_read_after_a_close(version: bytes, lines: bytes, keep: bool) -> None:
    """Go's server decides from the Connection headers as tests/native_http/test_hostile.py finds;
    where it ends the connection and llhttp would read on, what follows is refused."""
    raw = b"GET /1 HTTP/" + version + b"\r\nHost: v\r\n" + lines + b"\r\nGET /2 HTTP/1.1\r\nHost: v\r\n\r\n"
    conn = ServerConnection()
    conn.receive_data(raw)
    events: list[object] = []
    try:
        while (ev := conn.next_event()) is not NEED_DATA:
            events.append(ev)
        refused = False
    except ProtocolError:
        refused = True
    assert [(e.target, e.keep_alive) for e in events if isinstance(e, Request)] == \
        ([(b"/1", True), (b"/2", True)] if keep else [(b"/1", False)])
    assert refused is not keep


def test_expect_continue_and_http10() -> None:
    ev = drain(ServerConnection(), b"PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")[0]
    assert isinstance(ev, Request) and ev.expect_continue
    ev = drain(ServerConnection(), b"GET /a HTTP/1.0\r\n\r\n")[0]
    assert isinstance(ev, Request) and ev.http_version == b"1.0" and not ev.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        # Go reads the chunks (and drops the Content-Length); refused, as a front end reading the
        # Content-Length would frame the body otherwise
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        # Go takes equal duplicates (llhttp has no leniency for them)
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ],
)
def test_ambiguous_or_malformed_requests_are_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        drain(ServerConnection(), raw)
    # Go answers a transfer coding other than chunked with 501, every other refusal here with 400
    assert info.value.status_hint == (501 if b"gzip" in raw else 400)


def test_oversized_head_gets_431() -> None:
    with pytest.raises(ProtocolError) as info:
        drain(ServerConnection(max_head=1024), b"GET / HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n")
    assert info.value.status_hint == 431


def test_eof_mid_request_is_an_error_and_between_requests_is_a_close() -> None:
    conn = ServerConnection()
    drain(conn, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    conn.receive_data(b"")
    with pytest.raises(ProtocolError):
        conn.next_event()
    conn = ServerConnection()
    events = drain(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.receive_data(b"")
    assert conn.next_event() == CONNECTION_CLOSED and isinstance(events[0], Request)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_any_input_parses_or_raises_protocol_error(raw: bytes) -> None:
    conn = ServerConnection(max_head=200)
    try:
        drain(conn, raw)
    except ProtocolError:
        pass


RESP = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nEtag: \"ab\"\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize("step", [None, 1])
def test_response_with_length(step: int | None) -> None:
    events = merge_data(drain(ClientConnection(), RESP, step))
    resp = events[0]
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason, resp.content_length, resp.keep_alive) == (201, b"Created", 2, True)
    assert resp.headers[1] == (b"Etag", b'"ab"')
    assert events[1:] == [Data(b"{}"), EndOfMessage()]


def test_head_response_has_no_body_despite_its_length() -> None:
    events = drain(ClientConnection(head_only=True), b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    assert isinstance(events[0], Response) and events[0].content_length is None
    assert events[1:] == [EndOfMessage()]


def test_continue_then_final_response() -> None:
    events = drain(ClientConnection(), b"HTTP/1.1 100 Continue\r\n\r\n" + RESP)
    assert isinstance(events[0], InformationalResponse) and events[0].status == 100
    assert isinstance(events[1], Response) and events[1].status == 201


def test_response_until_close() -> None:
    conn = ClientConnection()
    events = drain(conn, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome body")
    assert isinstance(events[0], Response) and events[0].until_close and not events[0].keep_alive
    conn.receive_data(b"")
    assert conn.next_event() == EndOfMessage()


def test_chunked_response_and_truncation() -> None:
    events = merge_data(drain(ClientConnection(), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"))
    assert isinstance(events[0], Response) and events[0].chunked
    assert events[1:] == [Data(b"abcd"), EndOfMessage()]
    conn = ClientConnection()
    drain(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn.receive_data(b"")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.status_hint == 502


def test_writers() -> None:
    assert request_head(b"GET", b"/x", [(b"Host", b"h")]) == b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    assert response_head(404, None, []) == b"HTTP/1.1 404 Not Found\r\n\r\n"
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert simple_response(204, close=True) == b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_hop_by_hop_headers_are_dropped_including_those_named_by_connection() -> None:
    headers = ((b"Host", b"h"), (b"Connection", b"keep-alive, X-Secret"), (b"X-Secret", b"1"),
               (b"Keep-Alive", b"timeout=5"), (b"TE", b"trailers"), (b"Content-Length", b"3"), (b"Expect", b"100-continue"))
    assert end_to_end_headers(headers) == [(b"Host", b"h"), (b"Content-Length", b"3"), (b"Expect", b"100-continue")]


def test_a_request_line_still_arriving_is_kept_until_its_end() -> None:
    """What the idle timeout finds: the start of a request line (Go parses it as the whole
    line), nothing once the line ended, nothing between requests."""
    from weedpy.http1._parse import go_parses_request_line

    conn = ServerConnection()
    assert conn.partial_request_line() is None
    conn.receive_data(b"GET /st")
    conn.receive_data(b"a")
    assert conn.partial_request_line() == b"GET /sta"
    assert not go_parses_request_line(b"GET /sta")
    conn.receive_data(b"tus HTTP/1.1\r\nHost: a\r\n")
    assert conn.partial_request_line() is None  # the line is whole: headers follow
    conn.receive_data(b"\r\n")
    while conn.next_event() is not NEED_DATA:
        pass
    conn.receive_data(b"GET /status HTTP/1.1")
    assert conn.partial_request_line() == b"GET /status HTTP/1.1"
    assert go_parses_request_line(b"GET /status HTTP/1.1")
    for line in (b"GET /status HTTP/1.", b"GET sta HTTP/1.1", b"G@T / HTTP/1.1", b"GET /a HTTP/1.1\r", b"GET /a"):
        assert not go_parses_request_line(line), line
    for line in (b"GET * HTTP/1.1", b"POST http://h/x?y HTTP/1.0", b"DELETE /3,01637037d6 HTTP/2.0"):
        assert go_parses_request_line(line), line
