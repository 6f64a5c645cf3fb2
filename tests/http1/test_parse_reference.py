"""ServerConnection against a plain reading of llhttp's callbacks: the same events and refusals.

ServerConnection skips work per header line (a table of name spellings instead of lower-casing
each name, the head-size count only when the head could reach the limit, the version from the
request line); `Reference` is the reader it replaces, which lower-cases and counts every line
and asks llhttp for every field. Heads mixing the headers the shortcuts depend on, in odd
spellings, repeated, with small head limits and cut anywhere, must read the same.
"""

from __future__ import annotations

import collections
import re
from datetime import timedelta

import httptools
from hypothesis import HealthCheck, example, given, seed, settings, strategies as st

from weedpy.http1 import (
    END_OF_MESSAGE, HOP_BY_HOP, NEED_DATA, ConnectionClosed, Data, ProtocolError, Request, ServerConnection,
)


class Reference:
    """Every header line lower-cased and counted, every field asked of llhttp."""

    def __init__(self, max_head: int) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_version=True)  # any single digits, as Go reads them
        self.events: collections.deque[object] = collections.deque()
        self.max_head = max_head
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.size = 0
        self.chunk: bytes | None = None
        self.head_chunk: bytes | None = None
        self.in_message = False
        self.error: ProtocolError | None = None
        self.ended = False  # Go ended the connection after the last message (llhttp read on)

    def on_message_begin(self) -> None:
        if self.ended:
            raise ProtocolError("Data after `Connection: close`")
        self.parser.set_dangerous_leniencies(lenient_keep_alive=False)
        self.in_message = True
        self.url, self.headers, self.size = b"", [], 0
        self.head_chunk, self.chunk = self.chunk, None

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.size += len(url)
        if self.size > self.max_head:
            raise ProtocolError("request head too large", 431)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.size += len(name) + len(value) + 4
        if self.size > self.max_head:
            raise ProtocolError("request head too large", 431)
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        p = self.parser
        length, chunked, expects, hosts, codings, wire = None, False, [], [], 0, self.head_chunk
        for name, value in self.headers:
            lname = name.lower()
            if lname in HOP_BY_HOP:
                wire = None
            if lname == b"content-length":
                length = int(value.strip())
            elif lname == b"transfer-encoding":
                chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
                codings += 1 if value.strip(b" \t").lower() == b"chunked" else 2
            elif lname == b"expect":
                expects.append(value.strip(b" \t"))
            elif lname == b"host":
                hosts.append(value.strip(b" \t"))
        version = p.get_http_version()
        if version != "1.1":
            # Go: a line without a version is malformed; any other major version than 1 is a 505
            line = (self.head_chunk or b"").split(b"\r\n", 1)[0]
            if version == "0.9" and not (self.head_chunk is not None and line.endswith(b" HTTP/0.9")):
                raise ProtocolError("malformed HTTP request", 400)
            if not version.startswith("1."):
                raise ProtocolError("unsupported protocol version", 505)
            if codings and version == "1.0":
                raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)
            wire = None
        # Go: a second Host header, then the framing, then Host again (HTTP/1.1 wants one, of valid bytes), then an Expect that is not 100-continue
        if len(hosts) > 1:
            raise ProtocolError("too many Host headers", 400)
        if codings > 1:
            raise ProtocolError("unsupported transfer encoding", 501)
        if not hosts and version != "1.0" and p.get_method() != b"CONNECT":
            raise ProtocolError("missing required Host header", 400)
        if hosts and not re.fullmatch(rb"[0-9A-Za-z!$%&'()*+,\-.:;=\[\]_~]*", hosts[0]):
            raise ProtocolError("malformed Host header", 400)
        if expects and expects[0] and not _go_token(expects[0], b"100-continue"):
            raise ProtocolError("unsupported Expect header", 417)
        expect = bool(expects) and _go_token(expects[0], b"100-continue") and version != "1.0" and bool(chunked or length)
        if p.should_upgrade() and (length or chunked or p.get_method() == b"CONNECT"):
            raise ProtocolError("upgrade request with a body", 400)
        # Go's server: the Connection headers alone (llhttp reads Proxy-Connection too); on
        # HTTP/1.0 the first one's keep-alive token (wants10KeepAlive); on HTTP/1.1 a close
        # token in the first (wantsClose's hasToken) or in any one's list (shouldClose)
        conns = [value for name, value in self.headers if name.lower() == b"connection"]
        first = conns[0] if conns else b""
        if version == "1.0":
            keep_alive = _go_token(first, b"keep-alive")
        else:
            tokens = {token.strip(b" \t").lower() for value in conns for token in value.split(b",")}
            keep_alive = not _go_token(first, b"close") and b"close" not in tokens
        if keep_alive and not p.should_keep_alive():
            p.set_dangerous_leniencies(lenient_keep_alive=True)  # llhttp reads on where Go does
        self.ended = not keep_alive and p.should_keep_alive()  # and not where Go does not
        self.events.append(Request(p.get_method(), self.url, tuple(self.headers), version.encode(),
                                   keep_alive, length, chunked, expect, wire))

    def on_body(self, body: bytes) -> None:
        self.events.append(Data(body))

    def on_message_complete(self) -> None:
        self.in_message = False
        self.events.append(END_OF_MESSAGE)

    def receive_data(self, data: bytes) -> None:
        if self.error is not None:
            return
        self.head_chunk = None  # a head that began in earlier reads keeps no wire
        try:
            while True:
                if not self.in_message:
                    self.chunk = data
                try:
                    self.parser.feed_data(data)
                    break
                except httptools.HttpParserUpgrade as exc:
                    data = data[exc.args[0]:]
                    self.parser = httptools.HttpRequestParser(self)
                    self.parser.set_dangerous_leniencies(lenient_version=True)
                    if not data:
                        break
                finally:
                    self.chunk = None
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                self.error = cause
            else:
                text = str(exc).lower()
                coding = "invalid `transfer-encoding`" in text or "empty transfer-encoding" in text
                if "can't be present with" in text:  # Go: a coding other than "chunked" is a 501 first
                    codings = [v.strip(b" \t").lower() for n, v in self.headers if n.lower() == b"transfer-encoding"]
                    hosts = sum(n.lower() == b"host" for n, _ in self.headers)
                    coding = hosts < 2 and bool(codings) and codings != [b"chunked"]
                self.error = ProtocolError(str(exc), 501 if coding else 400)

    def next_event(self) -> object:
        if self.events:
            return self.events.popleft()
        if self.error is not None:
            raise self.error
        return NEED_DATA


def read_all(conn: ServerConnection | Reference, pieces: list[bytes]) -> list[object]:
    out: list[object] = []
    for piece in pieces:
        conn.receive_data(piece)
        try:
            while (ev := conn.next_event()) is not NEED_DATA:
                if isinstance(ev, ConnectionClosed):
                    return out
                out.append(ev)
        except ProtocolError as exc:
            out.append(("error", exc.status_hint, exc.args[0]))
            return out
    return out


def cut(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(raw)})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)])]


def _go_token(value: bytes, token: bytes) -> bool:
    """Go's net/http hasToken: `token` in any case between the ends, spaces, commas or tabs."""
    return re.search(rb"(?:^|[ ,\t])" + re.escape(token) + rb"(?=$|[ ,\t])", value, re.IGNORECASE) is not None


_NAMES = [b"Host", b"host", b"HOST", b"Content-Length", b"content-LENGTH", b"Transfer-Encoding", b"transfer-encoding",
          b"Expect", b"EXPECT", b"Connection", b"connection", b"CONNECTION", b"Proxy-Connection", b"Keep-Alive",
          b"TE", b"Te", b"Trailer", b"Upgrade", b"upgrade", b"Proxy-Authorization", b"User-Agent", b"user-agent",
          b"USER-AGENT", b"Accept", b"X-Request-Id", b"X-Foo", b"Cookie"]
_VALUES = [b"", b"v", b" 5", b"3", b"0", b"chunked", b"gzip, chunked", b"close", b"keep-alive", b"Keep-Alive, Upgrade",
           b"x close", b"keep-alive, Close", b"x\tkeep-alive", b"xclose",
           b"upgrade", b"websocket", b"100-continue", b"x 100-continue", b"a@b", b"a\tb", b"100-Continue ", b"  spaced  ", b"a:b", b"127.0.0.1:8080"]
_header = st.builds(lambda n, sep, v: n + sep + v + b"\r\n", st.sampled_from(_NAMES),
                    st.sampled_from([b":", b": ", b":\t", b":  "]), st.sampled_from(_VALUES))
_request = st.builds(
    lambda lead, method, target, version, host, headers, body: lead + method + b" " + target + version + b"\r\n"
    + host + b"".join(headers) + b"\r\n" + body,
    st.sampled_from([b"", b"", b"\r\n"]),
    st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"CONNECT", b"OPTIONS"]),
    st.sampled_from([b"/3,01637037d6", b"/", b"/a?b=c", b"*", b"127.0.0.1:8080"]),
    st.sampled_from([b" HTTP/1.1", b" HTTP/1.1", b" HTTP/1.0", b" HTTP/2.0", b"", b" HTTP/1.2", b" HTTP/0.9",
                     b" HTTP/3.1", b" HTTP/1.10"]),
    st.sampled_from([b"Host: x\r\n", b"Host: x\r\n", b""]),  # HTTP/1.1 wants one (and no second)
    st.lists(_header, max_size=6),
    st.sampled_from([b"", b"hello", b"3\r\nabc\r\n0\r\n\r\n", b"abc"]),
)


@seed(11)
@settings(max_examples=1500, deadline=timedelta(seconds=5), database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_request, min_size=1, max_size=3).map(b"".join), st.lists(st.integers(0, 300), max_size=4),
       st.sampled_from([40, 64, 100, 160, 1 << 20]))
@example(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", [], 1 << 20)
@example(b"GET / HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
         b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [], 1 << 20)
@example(b"GET / HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\nHOST: a\r\nHost: b\r\n\r\n", [], 1 << 20)
@example(b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", [], 1 << 20)
@example(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", [], 1 << 20)
@example(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\nProxy-Connection: close\r\n\r\n"
         b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [], 1 << 20)
@example(b"GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nX: " + b"a" * 40 + b"\r\nY: b\r\n\r\n", [30], 64)
def test_events_and_refusals_match_the_plain_reading(raw: bytes, cuts: list[int], max_head: int) -> None:
    pieces = cut(raw, cuts)
    assert read_all(ServerConnection(max_head=max_head), pieces) == read_all(Reference(max_head), pieces)


def test_the_shortcuts_are_taken_and_give_the_same_request() -> None:
    """A Go client's head, whole: found by spelling, not counted, version from the line."""
    head = b"GET /3,01637037d6 HTTP/1.1\r\nHost: v\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
    conn = ServerConnection()
    conn.receive_data(head)
    req = conn.next_event()
    assert isinstance(req, Request) and type(req) is Request
    assert req == read_all(Reference(1 << 20), [head])[0]
    assert (req.http_version, req.keep_alive, req.wire, req.header(b"host")) == (b"1.1", True, head, b"v")
