"""HTTP/1.1 serialisation: heads, chunk framing, hop-by-hop filtering and Go's canned replies."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable

from weedpy.http1._events import Headers

__all__ = [
    "HOP_BY_HOP",
    "REASONS",
    "request_head",
    "response_head",
    "chunk",
    "LAST_CHUNK",
    "CONTINUE_100",
    "end_to_end_headers",
    "simple_response",
    "go_bad_request",
    "format_http_date",
    "http_date",
]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

REASONS: dict[int, bytes] = {
    100: b"Continue", 200: b"OK", 201: b"Created", 202: b"Accepted", 204: b"No Content",
    206: b"Partial Content", 301: b"Moved Permanently", 302: b"Found", 304: b"Not Modified",
    400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 408: b"Request Timeout", 411: b"Length Required",
    413: b"Request Entity Too Large", 416: b"Requested Range Not Satisfiable",
    417: b"Expectation Failed", 429: b"Too Many Requests",
    431: b"Request Header Fields Too Large", 499: b"", 500: b"Internal Server Error",
    501: b"Not Implemented", 502: b"Bad Gateway", 503: b"Service Unavailable",
    504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}

LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


def end_to_end_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Drop hop-by-hop headers and any header the Connection header names."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(tok.strip().lower() for tok in value.split(b","))
    return [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP and n.lower() not in named]


def _head_lines(first: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    parts = [first]
    for name, value in headers:
        parts.append(name + b": " + value)
    parts.append(b"\r\n")
    return b"\r\n".join(parts)


def request_head(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    return _head_lines(method + b" " + target + b" HTTP/1.1", headers)


def response_head(status: int, reason: bytes | None, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    if reason is None:
        reason = REASONS.get(status, b"")
    return _head_lines(b"HTTP/1.1 %d %s" % (status, reason), headers)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def simple_response(
    status: int,
    body: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    close: bool = False,
) -> bytes:
    """A complete response with a Content-Length body."""
    hs = list(headers)
    hs.append((b"Content-Length", b"%d" % len(body)))
    if close:
        hs.append((b"Connection", b"close"))
    return response_head(status, None, hs) + body


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_http_date(second: int) -> str:
    """RFC 7231's IMF-fixdate, as Go's http.TimeFormat (email.utils.formatdate's output, without
    loading the email package at start-up)."""
    t = time.gmtime(second)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


_format_date = functools.lru_cache(maxsize=4)(format_http_date)


def http_date() -> str:
    """The Date header for now (formatted once per second)."""
    return _format_date(int(time.time()))


def go_bad_request(status: int = 400, message: str = "") -> bytes:
    """What Go's net/http writes for a request it cannot parse (and then closes); for 417 (an
    Expect header it does not know) what its server writes instead of calling the handler, with
    `message` the protocol of the status line."""
    if status == 417:
        return b"%s 417 Expectation Failed\r\nConnection: close\r\nDate: %s\r\nContent-Length: 0\r\n\r\n" % (
            (message or "HTTP/1.1").encode(), http_date().encode())
    reason = REASONS.get(status, b"").decode()
    if status == 501:  # Go's one 501 at this stage, with a text of its own
        line, text = reason, "Unsupported transfer encoding"
    elif message:  # net/http's statusError: the detail in the status line and in the body
        line = text = f"{reason}: {message}"
        text = f"{status} {text}"
    else:
        line, text = reason, f"{status} {reason}"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%s"
        % (status, line.encode(), text.encode())
    )
