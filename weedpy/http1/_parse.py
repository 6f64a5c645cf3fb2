"""Sans-IO HTTP/1.1 readers on httptools (llhttp): bytes in, events out, for both directions.

`ServerConnection` reads requests from a client; `ClientConnection` reads responses from a server
one request at a time. Neither does I/O: feed bytes with `receive_data` (b"" means EOF), then
drain `next_event()` until it returns NEED_DATA. llhttp already refuses the classic smuggling
shapes (Transfer-Encoding with Content-Length, duplicate Content-Length, obs-fold, bad chunk
sizes); we add a head-size limit and keep every header name and value as the peer sent it so a
relay can pass them on byte for byte.
"""

from __future__ import annotations

import collections
import re

import httptools

from weedpy.http1._events import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    ProtocolError,
    Request,
    Response,
    Sentinel,
)
from weedpy.http1._write import HOP_BY_HOP

__all__ = ["ServerConnection", "ClientConnection", "DEFAULT_MAX_HEAD", "go_parses_request_line", "canonical_head",
           "read_whole_response"]

# Go's http.DefaultMaxHeaderBytes (1 MiB) plus its 4 KiB slack.
DEFAULT_MAX_HEAD = (1 << 20) + 4096

ServerEvent = Request | Data | EndOfMessage | ConnectionClosed | Sentinel
ClientEvent = Response | InformationalResponse | Data | EndOfMessage | ConnectionClosed | Sentinel


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """Content-Length (validated by llhttp) and whether the body is chunked."""
    length: int | None = None
    chunked = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding":
            chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
    return length, chunked


# What on_header notes of a header, by its lower-cased name: nothing (_OTHER), the framing
# headers, and the hop-by-hop ones (which keep a relay from forwarding the head as received;
# Connection and Proxy-Connection also tell llhttp whether the connection ends).
_OTHER, _HOST, _LENGTH, _EXPECT, _CODING, _CONNECTION, _HOP, _PROXY_CONNECTION = range(8)
_FRAMING_KINDS = {b"host": _HOST, b"content-length": _LENGTH, b"expect": _EXPECT, b"transfer-encoding": _CODING,
                  b"connection": _CONNECTION, b"proxy-connection": _PROXY_CONNECTION}
_KINDS: dict[bytes, int] = {name: _FRAMING_KINDS.get(name, _HOP) for name in HOP_BY_HOP} | _FRAMING_KINDS
# The spellings clients send, so that most names are found without lower-casing them: lower
# case and Go's canonical form of the names above, and of common ones that are none of them.
_COMMON = (b"accept", b"accept-charset", b"accept-encoding", b"accept-language", b"authorization",
           b"cache-control", b"content-disposition", b"content-encoding", b"content-md5", b"content-type",
           b"cookie", b"date", b"from", b"if-match", b"if-modified-since", b"if-none-match", b"if-range",
           b"if-unmodified-since", b"origin", b"pragma", b"range", b"referer", b"user-agent", b"via",
           b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip", b"x-request-id")
_KINDS |= {name: _OTHER for name in _COMMON}
_KINDS |= {b"-".join(part.capitalize() for part in name.split(b"-")): kind for name, kind in _KINDS.items()}
_kind = _KINDS.get
_new_record = tuple.__new__


def _go_has_token(value: bytes, token: bytes) -> bool:
    """Go's net/http hasToken: `token` (lower case) in `value`, any ASCII case, between the
    ends, spaces, commas or tabs (`x close` has it; a comma-separated list need not be)."""
    value = value.lower()
    n = len(token)
    at = value.find(token)
    while at >= 0:
        end = at + n
        if (at == 0 or value[at - 1] in b" ,\t") and (end == len(value) or value[end] in b" ,\t"):
            return True
        at = value.find(token, at + 1)
    return False


def _go_keeps_alive(noted: list[tuple[int, bytes]], http10: bool) -> bool:
    """Whether Go's server keeps the connection after the request (its answers have a length),
    from the Connection headers alone (not Proxy-Connection): on HTTP/1.0 iff the first one has
    keep-alive (`wants10KeepAlive`: a close beside it does not count); on HTTP/1.1 iff none
    lists a close (`shouldClose`) and the first has no close token (`wantsClose`'s hasToken)."""
    values = [value for kind, value in noted if kind == _CONNECTION]
    first = values[0] if values else b""
    if http10:
        return _go_has_token(first, b"keep-alive")
    if _go_has_token(first, b"close"):
        return False
    return b"close" not in {token.strip(b" \t").lower() for value in values for token in value.split(b",")}


def _check_version(version: str, codings: int, named: bool) -> None:
    """Refuse what Go's server refuses and llhttp (reading any single-digit version, as Go's
    ParseHTTPVersion does) lets through: a request line without a version (llhttp's 0.9; `named`:
    the line does name one), another major version than 1 (505; Go serves every 1.x as 1.1), and
    Transfer-Encoding on HTTP/1.0, which Go ignores (its body would be read as the next request),
    so neither framing could be the client's."""
    if version == "0.9" and not named:
        raise ProtocolError("malformed HTTP request", 400)
    if not version.startswith("1."):
        raise ProtocolError("unsupported protocol version", 505, "unsupported protocol version")
    if codings and version == "1.0":
        raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)


# The bytes Go's httpguts.ValidHostHeader accepts in a Host header (validHostByte).
_GO_HOST_BYTES = b"!$%&'()*+,-.0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"


def _check_host(host: bytes) -> None:
    """Refuse a value Go's ValidHostHeader refuses (which textproto trims of spaces and tabs;
    llhttp keeps the trailing ones)."""
    if host.strip(b" \t").translate(None, _GO_HOST_BYTES):
        raise ProtocolError("malformed Host header", 400, "malformed Host header")


def _go_head_rules(hosts: int, host: bytes, codings: int, expect: bytes | None, version: bytes, method: bytes,
                   length: int | None) -> bool:
    """Go's refusals of a parsed head, in Go's order, for a head with other than one Host
    header, a Transfer-Encoding or an Expect header (the others only need their Host checked);
    returns whether the client waits for `100 Continue`. readRequest refuses a second Host
    header (a plain 400) before it reads the framing; readTransfer takes exactly one
    Transfer-Encoding saying "chunked" (501 otherwise; llhttp also takes "gzip, chunked" or a
    second header, which Go would frame otherwise. Go then ignores a Content-Length beside it,
    which llhttp refuses, as a relay in front of Go must: a front end reading the Content-Length
    would frame the body otherwise); the server then wants a Host header from HTTP/1.1 on (but
    for CONNECT), a valid one, and answers an Expect header whose first value is neither empty
    nor names `100-continue` with 417 (and closes)."""
    if hosts > 1:
        raise ProtocolError("too many Host headers", 400)
    if codings > 1:
        raise ProtocolError("unsupported transfer encoding", 501)
    if not hosts:
        if version != b"1.0" and method != b"CONNECT":
            raise ProtocolError("missing required Host header", 400, "missing required Host header")
    else:
        _check_host(host)
    if expect is None:
        return False
    value = expect.strip(b" \t")
    if not _go_has_token(value, b"100-continue"):
        if value:
            raise ProtocolError("unsupported Expect header", 417, "HTTP/1.0" if version == b"1.0" else "HTTP/1.1")
        return False
    # Go sends `100 Continue` only to HTTP/1.1 and a request with a body (ContentLength != 0)
    return version != b"1.0" and (codings == 1 or bool(length))


def canonical_head(req: Request) -> bytes | None:
    """The request's head exactly as received, if it is what a relay would write itself; else None.

    A relay rebuilds the head it forwards from the parsed fields (hop-by-hop headers dropped, the
    framing written from what was parsed). When the head had nothing to drop (`Request.wire` is
    set only then), every line ends in CRLF, its lines are the request line and one per parsed
    header (no bare LF a peer could read as another line), and the request line is
    `METHOD SP target SP HTTP/1.1`, the received bytes say exactly what the rebuilt head would:
    forwarding them spares the rebuilding, and the next server sees the same requests. (llhttp
    already refuses bare CR and LF and folded lines; the line count checks it does not rely on
    that. A bare CR inside a value would go on in a rebuilt head all the same.)
    """
    wire = req.wire
    if wire is None:
        return None
    end = wire.find(b"\r\n\r\n") + 4
    if end < 4:
        return None
    lines = len(req.headers) + 2
    if end == len(wire):
        # The read held the head alone (most requests without a body): one `replace` and a
        # memchr tell what the two `count`s below tell (as many CRLF pairs as lines, and no LF
        # outside one), for fewer instructions.
        bare = wire.replace(b"\r\n", b"")
        if 0x0A in bare or len(wire) - len(bare) != 2 * lines:
            return None
        head = wire
    else:
        head = wire[:end]
        if head.count(b"\n") != lines or head.count(b"\r\n") != lines:
            return None
    if not head.startswith(b"%s %s HTTP/1.1\r\n" % (req.method, req.target)):
        return None
    return head


def _request_parser(conn: "ServerConnection") -> httptools.HttpRequestParser:
    """llhttp reading any single-digit HTTP version, as Go's server does (llhttp alone refuses
    all but 0.9, 1.0, 1.1 and 2.0; `_check_version` then answers as Go)."""
    parser = httptools.HttpRequestParser(conn)
    parser.set_dangerous_leniencies(lenient_version=True)
    return parser


class ServerConnection:
    """Reads pipelined requests from one client connection.

    Per header line llhttp makes one call into Python (`on_header`), which keeps the pair and
    notes the few headers the request's fields depend on (found by the name as sent, in a table
    of common spellings, before lower-casing it); the head-size limit is counted per line only
    when the head could reach it (see `on_message_begin`). Each of these costs about as much as
    the parsing itself in llhttp, so a request's fields are read from the noted headers alone.

    A keep-alive client sends most GETs with the same header lines as the last (a Go client:
    Host, User-Agent, Accept-Encoding): a lone head whose header lines are byte for byte those of
    an earlier request on the connection is read without llhttp, its request line checked here,
    its fields the earlier request's (a third of the instructions of a full parse). Such a request
    has the very `headers` tuple of the request it repeats, and its `wire` is the head alone: if
    that request's head was canonical (`canonical_head`), so is this one's (a relay skips the
    check)."""

    __slots__ = ("_parser", "_events", "_url", "_headers", "_noted", "_head_size", "_max_head", "_in_message",
                 "_in_head", "_count_head", "_eof", "_error", "_line", "_line_open", "_chunk", "_head_chunk",
                 "_last_fields", "_last_headers", "_last_wire", "_notes_left", "_lenient", "_ended", "_good_host")

    def __init__(self, max_head: int = DEFAULT_MAX_HEAD) -> None:
        self._parser = _request_parser(self)
        self._events: collections.deque[ServerEvent] = collections.deque()
        self._url = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._noted: list[tuple[int, bytes]] = []  # (kind, value) of the headers _KINDS tells apart
        self._head_size = 0
        self._max_head = max_head
        self._in_message = False
        self._in_head = False  # between a message's first byte and the end of its head
        self._count_head = True  # whether on_url and on_header count the head's size
        self._eof = False
        self._error: ProtocolError | None = None
        self._line = bytearray()  # a request line's bytes while its end has not arrived
        self._line_open = False
        # The bytes being fed when the parser was between messages (a message begins at their
        # first byte), and the same for the message being parsed if it began in them.
        self._chunk: bytes | None = None
        self._head_chunk: bytes | None = None
        # The header lines (from the request line's CRLF to the blank line) of the last request
        # that can be repeated without llhttp, and its parsed headers (see `receive_data`).
        self._last_fields = b""
        self._last_headers: tuple[tuple[bytes, bytes], ...] = ()
        self._last_wire = False  # whether it had no hop-by-hop header (a relay forwards it as received)
        # How many more GETs whose header lines differ from the last ones are noted: a client
        # whose heads keep changing (a Range per read) stops paying for notes it never reuses.
        # None are under a head limit a repeated head could reach (its size counts at most 5/4 of
        # its bytes, see `on_message_begin`): its target is not counted against the limit.
        self._notes_left = _NOTES if max_head * 4 >= _REPEAT_MAX * 5 else 0
        self._lenient = False  # llhttp reads on after a message it takes as the last (Go does not)
        self._ended = False  # Go ended the connection after a message llhttp reads on after
        self._good_host: bytes | None = None  # the last Host value found valid (Go's ValidHostHeader)

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._ended:  # as llhttp refuses what follows a message it takes as the last
            raise ProtocolError("Data after `Connection: close`")
        if self._lenient:  # what follows a request Go ends the connection after is refused again
            self._parser.set_dangerous_leniencies(lenient_keep_alive=False)
            self._lenient = False
        self._in_message = self._in_head = True
        self._url.clear()
        self._headers = []
        self._noted = []
        self._head_size = 0
        chunk = self._head_chunk = self._chunk
        self._chunk = None  # a second message in them starts elsewhere
        # The size the limit counts (the target, and each header's name and value plus 4) is at
        # most 5/4 of the bytes the head takes (a request line has 13 bytes besides its target,
        # a header line at least 3 besides its name and value, and is at least 4 bytes long).
        # While the head is in the bytes it began with and they are too few to reach the limit,
        # nothing is counted; if it goes on in the next bytes, receive_data counts what came.
        self._count_head = chunk is None or len(chunk) * 5 > self._max_head * 4

    def on_url(self, url: bytes) -> None:
        self._url += url
        if self._count_head:
            self._head_size += len(url)
            if self._head_size > self._max_head:
                raise ProtocolError("request head too large", 431)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        kind = _kind(name)
        if kind is None:
            kind = _kind(name.lower(), _OTHER)
        if kind:
            self._noted.append((kind, value))
        if self._count_head:
            self._head_size += len(name) + len(value) + 4
            if self._head_size > self._max_head:
                raise ProtocolError("request head too large", 431)

    def on_headers_complete(self) -> None:
        self._in_head = False
        p = self._parser
        length: int | None = None
        chunked = closes = False
        expect_value: bytes | None = None  # the first Expect header's value (Go's Header.get)
        hosts = codings = 0
        host = b""
        wire = self._head_chunk
        for kind, value in self._noted:
            if kind == _HOST:
                hosts += 1
                host = value
            elif kind == _LENGTH:
                length = int(value.strip())
            elif kind == _EXPECT:
                if expect_value is None:
                    expect_value = value
            else:  # hop by hop: a relay rebuilds the head
                wire = None
                if kind == _CODING:
                    chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
                    codings += 1 if value.strip(b" \t").lower() == b"chunked" else 2
                elif kind == _CONNECTION or kind == _PROXY_CONNECTION:
                    closes = True  # either may end the connection for llhttp
        # The version from the request line when the head began the bytes it came in (llhttp's
        # version numbers are formatted into a string, which costs more than finding the line).
        head = self._head_chunk
        end = head.find(b"\r\n") if head is not None else -1
        if end >= 9 and head[end - 9:end] == b" HTTP/1.1":  # type: ignore[index] (a slice: startswith costs twice)
            version = b"1.1"
        else:
            text = p.get_http_version()
            if text != "1.1":
                _check_version(text, codings, end >= 9 and head[end - 9:end] == b" HTTP/0.9")  # type: ignore[index]
                wire = None
                closes = True  # not HTTP/1.1: Go's rule decides (HTTP/1.0 is kept alive only if asked)
            version = text.encode()
        # Go's server ends an HTTP/1.1 connection only if a Connection header says so
        keep_alive = True
        if closes:
            # Go's rule (_go_keeps_alive) is not llhttp's: llhttp takes Proxy-Connection for
            # Connection, a keep-alive token of any Connection header on HTTP/1.0, and a close
            # token only in a comma-separated list. Where Go keeps the connection and llhttp
            # would not, llhttp is told to read on after this message (until the next message
            # begins: see on_message_begin); where Go ends it, the next message is refused.
            keep_alive = _go_keeps_alive(self._noted, version == b"1.0")
            if keep_alive != p.should_keep_alive():
                if keep_alive:
                    p.set_dangerous_leniencies(lenient_keep_alive=True)
                    self._lenient = True
                else:
                    self._ended = True
        method = p.get_method()
        if hosts != 1 or codings or expect_value is not None:
            expect = _go_head_rules(hosts, host, codings, expect_value, version, method, length)
        else:
            expect = False
            if host != self._good_host:  # (a connection's requests name the same host: checked once)
                _check_host(host)
                self._good_host = host
        if (length or chunked or method == b"CONNECT") and p.should_upgrade():
            # llhttp ends an upgrade request at its head, where Go reads a body (and a CONNECT's
            # body) as the request's own: no framing of ours could match Go's.
            raise ProtocolError("upgrade request with a body", 400)
        headers = tuple(self._headers)
        if not keep_alive:  # nothing may follow this request as if it had not ended the connection
            self._last_fields = b""
        elif self._notes_left and end >= 9 and version == b"1.1" and length is None and not chunked and not expect \
                and method in _REPEATABLE and len(head) <= _REPEAT_MAX \
                and head.find(b"\r\n\r\n") + 4 == len(head):  # type: ignore[union-attr]
            # an HTTP/1.1 request line began the head chunk, which holds this head alone (a small
            # one: a connection keeps at most _REPEAT_MAX bytes of notes; on HTTP/1.0 the same
            # lines can keep alive a connection HTTP/1.1 would end: `Connection: keep-alive, close`)
            self._notes_left -= 1
            self._last_fields = head[end:] if self._notes_left else b""  # type: ignore[index]
            self._last_headers = headers
            self._last_wire = wire is not None
        # method, target, headers, http_version, keep_alive, content_length, chunked,
        # expect_continue, wire (built as a plain tuple: a NamedTuple's __new__ is Python code)
        self._events.append(_new_record(Request, (
            method, bytes(self._url), headers, version, keep_alive, length, chunked, expect, wire,
        )))

    def on_body(self, body: bytes) -> None:
        self._events.append(_new_record(Data, (body,)))  # a plain tuple's __new__, as for Request

    def on_message_complete(self) -> None:
        self._in_message = False
        self._events.append(END_OF_MESSAGE)

    # -- public API ----------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if self._error is not None:
            return
        if not data:
            self._eof = True
            return
        if not self._in_message and not self._events:  # these bytes begin a request line
            line = self._line
            if line:
                line.clear()
            # (`int in bytes` is a memchr; bytes.find parses its argument the slow way)
            self._line_open = 0x0A not in data  # "\n": the line ends in these bytes
            if self._line_open:
                line += data
            elif self._last_fields and data.endswith(self._last_fields) and len(data) <= _REPEAT_MAX:
                # A lone head whose header lines are byte for byte the last request's: a
                # keep-alive client's next GET. Its fields are the last request's, and what llhttp
                # checks of the request line is checked here (_REPEATED_LINE: a method without
                # a body, an origin-form target of visible ASCII, HTTP/1.1); anything else is
                # parsed as usual.
                repeated = _REPEATED_LINE(data, 0, len(data) - len(self._last_fields))
                if repeated is not None:
                    self._notes_left = _NOTES
                    self._events.extend((_new_record(Request, (
                        repeated[1], repeated[2], self._last_headers, b"1.1", True, None, False, False,
                        data if self._last_wire else None,
                    )), END_OF_MESSAGE))
                    return
        elif self._line_open:
            if 0x0A in data:
                self._line_open = False
                self._line.clear()
            elif len(self._line) <= _MAX_LINE_KEPT:
                self._line += data
        self._head_chunk = None  # a head that began in earlier bytes
        if self._in_head and not self._count_head:
            # the head goes on past the bytes it began in: from now on its size is counted
            self._count_head = True
            self._head_size = len(self._url) + sum(len(name) + len(value) + 4 for name, value in self._headers)
        try:
            while True:
                if not self._in_message:
                    self._chunk = data
                try:
                    self._parser.feed_data(data)
                    break
                except httptools.HttpParserUpgrade as exc:
                    # Go's server upgrades nothing: it serves the request and reads the next one
                    # from the bytes after it (an upgrade request with a body is refused above).
                    data = data[exc.args[0]:]
                    self._parser = _request_parser(self)
                    if not data:
                        break
                finally:
                    self._chunk = None
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._error = cause if isinstance(cause, ProtocolError) else ProtocolError(str(exc))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                self._error = cause
            else:  # a transfer coding llhttp will not frame is one Go answers with 501
                # (an empty one too: Go reads it as a coding it does not know)
                text = str(exc).lower()
                coding = "invalid `transfer-encoding`" in text or "empty transfer-encoding" in text
                if "can't be present with" in text:
                    # Transfer-Encoding before a Content-Length (llhttp has read its value):
                    # Go refuses a coding other than one "chunked" (501) before it looks at the
                    # length; with "chunked" it would read the chunks, which stays refused (400:
                    # a front end reading the length would frame the body otherwise)
                    codings = [value.strip(b" \t").lower() for kind, value in self._noted if kind == _CODING]
                    hosts = sum(kind == _HOST for kind, _ in self._noted)
                    coding = hosts < 2 and bool(codings) and codings != [b"chunked"]
                self._error = ProtocolError(str(exc), 501 if coding else 400)

    def next_event(self) -> ServerEvent:
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            raise self._error
        if self._eof:
            if self._in_message:
                raise ProtocolError("connection closed in the middle of a request")
            return CONNECTION_CLOSED
        return NEED_DATA

    @property
    def pending_events(self) -> int:
        return len(self._events)

    def partial_request_line(self) -> bytes | None:
        """The start of a request line whose end has not arrived (None when there is none): at
        an idle timeout Go's net/http takes what it has as the whole line."""
        if self._line_open and self._line and self._error is None:
            return bytes(self._line)
        return None


_MAX_LINE_KEPT = 1 << 16
# What a repeated head may be (see ServerConnection.receive_data): methods whose request has no
# body without a Content-Length; the request line llhttp and Go both accept; a size far below
# any head limit.
_REPEATABLE = frozenset((b"GET", b"HEAD", b"DELETE"))
_REPEATED_LINE = re.compile(rb"(%s) (/[!-~]*) HTTP/1\.1" % b"|".join(sorted(_REPEATABLE))).fullmatch
_REPEAT_MAX = 1 << 14
_NOTES = 8
_GO_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]\Z")
_GO_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_GO_TARGET = re.compile(rb"(/|\*\Z|[A-Za-z][A-Za-z0-9+.\-]*:)[^\x00-\x20\x7f]*\Z")


def go_parses_request_line(line: bytes) -> bool:
    """Whether Go's readRequest accepts `line` as a request line (parseRequestLine, the version,
    the method, url.ParseRequestURI, approximately): what it refuses it answers 400."""
    method, sep1, rest = line.partition(b" ")
    target, sep2, proto = rest.partition(b" ")
    return bool(sep1 and sep2 and _GO_METHOD.match(method) and _GO_VERSION.match(proto) and _GO_TARGET.match(target))


class ClientConnection:
    """Reads the response to one request; make a new one per request (see `start`).

    The head-size limit is counted per header line only once the bytes fed could hold a head
    that reaches it: a line adds its name and value plus 4 to the count and takes at least its
    name and value plus 2 bytes (a colon and a line end), so the count is at most twice the bytes
    a head took; until half the limit is fed, nothing is counted."""

    __slots__ = ("_parser", "_events", "_reason", "_headers", "_head_size", "_max_head", "_head_only",
                 "_final", "_done", "_eof", "_error", "_until_close", "_fed", "_count_head")

    def __init__(self, head_only: bool = False, max_head: int = DEFAULT_MAX_HEAD) -> None:
        """`head_only`: the request was HEAD, so the response has no body whatever it says."""
        self._parser = httptools.HttpResponseParser(self)
        self._events: collections.deque[ClientEvent] = collections.deque()
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._max_head = max_head
        self._head_only = head_only
        self._final = False
        self._done = False
        self._eof = False
        self._error: ProtocolError | None = None
        self._until_close = False
        self._fed = 0  # bytes fed so far
        self._count_head = False  # whether on_header counts the head's size (see the class docstring)

    def on_message_begin(self) -> None:
        self._reason = b""
        self._headers = []
        self._head_size = 0

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count_head:
            self._head_size += len(name) + len(value) + 4
            if self._head_size > self._max_head:
                raise ProtocolError("response head too large", 502)
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._done:
            return
        p = self._parser
        status = p.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("protocol switch is not supported", 502)
            self._events.append(_new_record(InformationalResponse, (status, self._reason, tuple(self._headers))))
            return
        length, chunked = _framing(self._headers)
        no_body = self._head_only or status in (204, 304)
        until_close = not no_body and length is None and not chunked
        self._until_close = until_close
        self._final = True
        # status, reason, headers, http_version, keep_alive, content_length, chunked, until_close
        # (a plain tuple's __new__, as for Request: a NamedTuple's own is Python code)
        self._events.append(_new_record(Response, (
            status, self._reason, tuple(self._headers), p.get_http_version().encode(),
            p.should_keep_alive() and not until_close, None if no_body else length, chunked and not no_body,
            until_close,
        )))
        if self._head_only:
            self._finish()

    def on_body(self, body: bytes) -> None:
        if not self._done:
            self._events.append(_new_record(Data, (body,)))

    def on_message_complete(self) -> None:
        if self._final and not self._done:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._events.append(END_OF_MESSAGE)

    def receive_data(self, data: bytes) -> None:
        if self._error is not None or self._done:
            return
        if not data:
            self._eof = True
            if self._until_close and self._final:
                self._finish()
            return
        if not self._count_head:
            self._fed += len(data)
            if self._fed * 2 > self._max_head:  # from now on a head could reach the limit: count it
                self._count_head = True
                self._head_size = sum(len(name) + len(value) + 4 for name, value in self._headers)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserCallbackError, httptools.HttpParserError) as exc:
            cause = exc.__context__
            self._error = cause if isinstance(cause, ProtocolError) else ProtocolError(str(exc), 502)

    def next_event(self) -> ClientEvent:
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            raise self._error
        if self._eof and not self._done:
            raise ProtocolError("upstream closed the connection before the response ended", 502)
        if self._done:
            return CONNECTION_CLOSED
        return NEED_DATA

    @property
    def done(self) -> bool:
        return self._done and not self._events


def read_whole_response(raw: bytes, head_only: bool = False) -> tuple[Response, bytes] | None:
    """A whole response already in hand (the bytes a client got, an answer buffered to be
    rewritten): its final head and body, or None if it is malformed or has no final head."""
    parser = ClientConnection(head_only=head_only)
    parser.receive_data(raw)
    parser.receive_data(b"")
    head: Response | None = None
    body = bytearray()
    try:
        while True:
            ev = parser.next_event()
            if isinstance(ev, Response):
                head = ev
            elif isinstance(ev, Data):
                body += ev.data
            elif isinstance(ev, EndOfMessage) or ev is NEED_DATA or head is not None:
                break
    except ProtocolError:
        return None
    return None if head is None else (head, bytes(body))
