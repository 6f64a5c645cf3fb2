"""Go's net/url as net/http applies it to a request: path unescaping, query parsing and encoding.

Go strings are byte strings; here they are `str` decoded as latin-1 (one char per byte) so byte
algorithms port directly and headers round-trip unchanged.
"""

from __future__ import annotations

import dataclasses
import re

from native.gostrconv import quote

__all__ = [
    "BadRequestURI",
    "RequestURL",
    "Query",
    "parse_request_target",
    "parse_query",
    "query_escape",
    "query_unescape",
    "path_escape",
    "encode_values",
    "MAX_QUERY_PARAMS",
]

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_PATH_SAFE = _ALNUM | frozenset("$&+,-./:;=@_~")
_QUERY_SAFE = _ALNUM | frozenset("-._~")
_VALID_ENCODED_EXTRA = frozenset("!$&'()*+,;=:@[]%")
_HEX = frozenset("0123456789abcdefABCDEF")
MAX_QUERY_PARAMS = 10000  # GODEBUG urlmaxqueryparams default


class BadRequestURI(ValueError):
    """Go's server refuses the request line itself (400 "Bad Request", then closes)."""


class EscapeError(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"invalid URL escape {_go_quote_ascii(text)}")


def _go_quote_ascii(s: str) -> str:
    # EscapeError uses strconv.Quote; the escape text is at most 3 bytes of the input.
    return quote(s)


def _unescape(s: str, query: bool) -> str:
    n = 0
    has_plus = False
    i = 0
    ln = len(s)
    while i < ln:
        c = s[i]
        if c == "%":
            n += 1
            if i + 2 >= ln or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise EscapeError(s[i:i + 3])
            i += 3
        else:
            if c == "+":
                has_plus = query
            i += 1
    if n == 0 and not has_plus:
        return s
    out = []
    i = 0
    while i < ln:
        c = s[i]
        if c == "%":
            out.append(chr(int(s[i + 1:i + 3], 16)))
            i += 3
            continue
        out.append(" " if (c == "+" and query) else c)
        i += 1
    return "".join(out)


def query_unescape(s: str) -> str:
    return _unescape(s, True)


def _escape(s: str, safe: frozenset[str], query: bool) -> str:
    out = []
    for c in s:
        if c in safe:
            out.append(c)
        elif c == " " and query:
            out.append("+")
        else:
            out.append("%%%02X" % ord(c))
    return "".join(out)


def query_escape(s: str) -> str:
    return _escape(s, _QUERY_SAFE, True)


def path_escape(s: str) -> str:
    """url.escape(s, encodePath): what URL.String() writes for a Path without a RawPath."""
    return _escape(s, _PATH_SAFE, False)


def _valid_encoded(s: str) -> bool:
    return all(c in _PATH_SAFE or c in _VALID_ENCODED_EXTRA for c in s)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestURL:
    path: str  # unescaped (r.URL.Path)
    escaped_path: str  # r.URL.EscapedPath()
    raw_query: str


_SIMPLE_TARGET = re.compile(rb"/[A-Za-z0-9,._~/-]*(?:\?[^\x00-\x1f\x7f#]*)?\Z")


def parse_request_target(target: bytes) -> RequestURL:
    """url.ParseRequestURI on the request target, as Go's server does before any handler runs."""
    if _SIMPLE_TARGET.match(target):
        # The common `/vid,fid?query` shape: nothing to unescape, already canonical.
        raw = target.decode("latin-1")
        path, _, query = raw.partition("?")
        return RequestURL(path, path, query)
    raw = target.decode("latin-1")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise BadRequestURI("net/url: invalid control character in URL")
    if raw == "":
        raise BadRequestURI("empty url")
    if raw == "*":
        return RequestURL("*", "*", "")
    rest = raw
    scheme = ""
    # getScheme: letters, then letters/digits/+-. up to ':'
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if i > 0 and (c.isascii() and c.isdigit() or c in "+-."):
            continue
        if c == ":" and i > 0:
            scheme, rest = raw[:i], raw[i + 1:]
        elif c == ":":
            raise BadRequestURI("missing protocol scheme")
        break
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return RequestURL("", "", query)  # opaque: no path
        raise BadRequestURI("invalid URI for request")
    if scheme and rest.startswith("//"):
        authority = rest[2:]
        slash = authority.find("/")
        rest = authority[slash:] if slash >= 0 else ""
    try:
        path = _unescape(rest, False)
    except EscapeError as exc:
        raise BadRequestURI(str(exc)) from None
    escaped = rest if (rest != path_escape(path) and _valid_encoded(rest)) else path_escape(path)
    return RequestURL(path, escaped, query)


class Query:
    """url.Values from url.ParseQuery: keys in first-seen order, the first parse error kept."""

    __slots__ = ("values", "error")

    def __init__(self, values: dict[str, list[str]], error: str | None) -> None:
        self.values = values
        self.error = error

    def get(self, key: str) -> str:
        vs = self.values.get(key)
        return vs[0] if vs else ""

    def has(self, key: str) -> bool:
        return key in self.values


def parse_query(raw: str) -> Query:
    values: dict[str, list[str]] = {}
    if raw == "":
        return Query(values, None)
    if raw.count("&") + 1 > MAX_QUERY_PARAMS:
        return Query(values, "number of URL query parameters exceeded limit")
    err: str | None = None
    for key in raw.split("&"):
        if ";" in key:
            err = "invalid semicolon separator in query"
            continue
        if key == "":
            continue
        k, _, v = key.partition("=")
        try:
            k = _unescape(k, True)
            v = _unescape(v, True)
        except EscapeError as exc:
            if err is None:
                err = str(exc)
            continue
        values.setdefault(k, []).append(v)
    return Query(values, err)


def encode_values(values: dict[str, list[str]]) -> str:
    """url.Values.Encode: sorted keys, each value query-escaped."""
    parts = []
    for k in sorted(values):
        ek = query_escape(k)
        for v in values[k]:
            parts.append(f"{ek}={query_escape(v)}")
    return "&".join(parts)
