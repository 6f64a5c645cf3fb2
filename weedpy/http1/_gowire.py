"""Responses laid out on the wire exactly as Go's net/http server lays them out.

Native handlers build a `GoResponse` (status, a Go-style header map, a body) and `serialize_head`
turns it into the bytes Go would send, so a client (or the differ) cannot tell the two apart:

- handler headers sorted by canonical key (values of one key in insertion order), then the
  headers Go adds itself, in its order: Date, Content-Length, Content-Type, Connection,
  Transfer-Encoding;
- Content-Length is computed only when the handler set none and its whole body fits in Go's
  2048-byte buffer; a longer body without a length goes out chunked;
- Content-Type is sniffed (`sniff`) from the first 512 body bytes when the handler set neither
  Content-Type nor Content-Encoding and the body is not empty;
- no body, and no computed length, for HEAD, 1xx, 204 and 304.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Callable

from weedpy.http1._write import LAST_CHUNK, REASONS, chunk, http_date

__all__ = [
    "canonical_key",
    "GoHeader",
    "GoResponse",
    "WireHead",
    "serialize_head",
    "BUFFER_BEFORE_CHUNKING",
]

BUFFER_BEFORE_CHUNKING = 2048


@functools.lru_cache(maxsize=4096)
def canonical_key(key: str) -> str:
    """textproto.CanonicalMIMEHeaderKey: `content-md5` -> `Content-Md5`; invalid keys unchanged.

    Memoised: handlers set the same few keys on every response."""
    for ch in key:
        if not (ch.isalnum() or ch in "-!#$%&'*+.^_`|~") or ord(ch) > 127:
            return key
    out = []
    upper = True
    for ch in key:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


class GoHeader:
    """http.Header: canonical keys, ordered values per key."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def set(self, key: str, value: str) -> None:
        self._values[canonical_key(key)] = [value]

    def add(self, key: str, value: str) -> None:
        self._values.setdefault(canonical_key(key), []).append(value)

    def get(self, key: str) -> str | None:
        vs = self._values.get(canonical_key(key))
        return vs[0] if vs else None

    def has(self, key: str) -> bool:
        return canonical_key(key) in self._values

    def delete(self, key: str) -> None:
        self._values.pop(canonical_key(key), None)

    def items(self) -> list[tuple[str, list[str]]]:
        return sorted(self._values.items())

    def copy(self) -> "GoHeader":
        h = GoHeader()
        h._values = {k: list(v) for k, v in self._values.items()}
        return h


@dataclasses.dataclass(slots=True)
class GoResponse:
    """What a native handler returns: Go's view of a response before net/http frames it.

    `body` is the whole body; or `stream` yields it (with `stream_length` when the handler set a
    Content-Length, which it then also puts in `header`). A streamed body is sniffed from
    `sniff_prefix`, its first bytes (Go sniffs the first 512 bytes written).
    """

    status: int = 200
    header: GoHeader = dataclasses.field(default_factory=GoHeader)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    stream_length: int | None = None
    sniff_prefix: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class WireHead:
    head: bytes
    chunked: bool  # the body must be sent with chunked framing
    send_body: bool  # False for HEAD/204/304/1xx: the body is dropped


_REASON_TEXT = {k: v.decode("latin-1") for k, v in REASONS.items()}
_TRIM = " \t"  # textproto.TrimString after CR/LF became spaces (str.strip() would eat \xa0 bytes)


def _body_allowed(status: int) -> bool:
    return not (100 <= status < 200 or status in (204, 304))


def serialize_head(
    resp: GoResponse,
    *,
    method: bytes,
    keep_alive: bool,
    http10: bool = False,
    sniff: Callable[[bytes], str] | None = None,
    date: str | None = None,
) -> WireHead:
    """The status line and headers Go would write for `resp` to this request."""
    values = resp.header._values
    status = resp.status
    allowed = _body_allowed(status)
    is_head = method == b"HEAD"
    parts = [f"HTTP/1.1 {status} {_REASON_TEXT.get(status, '')}"]
    has_length = "Content-Length" in values
    has_te = "Transfer-Encoding" in values
    for key in sorted(values):
        if key == "Transfer-Encoding" and has_length:
            continue
        for v in values[key]:
            if "\r" in v or "\n" in v:
                v = v.replace("\r", " ").replace("\n", " ")
            parts.append(key + ": " + v.strip(_TRIM))
    if "Date" not in values:
        parts.append("Date: " + (date or http_date()))
    chunked = False
    body = resp.body
    if resp.stream is None:
        if allowed and not has_length and not has_te and (not is_head or body):
            if len(body) <= BUFFER_BEFORE_CHUNKING:
                parts.append(f"Content-Length: {len(body)}")
            elif not http10 and not is_head:  # Go never chunks a HEAD reply
                chunked = True
        first = body[:512]
    else:
        if allowed and not has_length and resp.stream_length is None:
            chunked = not http10 and not is_head
        first = resp.sniff_prefix[:512]
    if allowed and first and sniff is not None and "Content-Type" not in values and not has_te:
        ce = values.get("Content-Encoding")
        if not ce or not ce[0]:
            parts.append("Content-Type: " + sniff(first))
    if not keep_alive:
        if not http10:
            parts.append("Connection: close")  # Go never tells an HTTP/1.0 client it will close
    elif http10:
        parts.append("Connection: keep-alive")
    if chunked:
        parts.append("Transfer-Encoding: chunked")
    parts.append("\r\n")
    send_body = allowed and not is_head
    return WireHead("\r\n".join(parts).encode("latin-1", "replace"), chunked and send_body, send_body)


def go_response_bytes(
    resp: GoResponse, method: bytes, *, keep_alive: bool = True, http10: bool = False,
    sniff: Callable[[bytes], str] | None = None,
) -> bytes:
    """A whole in-memory response (no stream) as Go frames it: the head and the body it sends."""
    wire = serialize_head(resp, method=method, keep_alive=keep_alive, http10=http10, sniff=sniff)
    body = resp.body if wire.send_body else b""
    if wire.chunked:
        return wire.head + chunk(body) + LAST_CHUNK
    return wire.head + body
