"""Go's mime.ParseMediaType and mime.FormatMediaType (RFC 2045/2231 parameters).

Used for Content-Disposition (written on reads, parsed on raw uploads and multipart parts) and
for the multipart boundary. Strings are Go byte strings (latin-1 `str`).
"""

from __future__ import annotations

import functools
import re

__all__ = ["MediaTypeError", "parse_media_type", "format_media_type", "is_token"]

_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
_TOKEN = frozenset(chr(c) for c in range(0x21, 0x7F)) - _TSPECIALS
_HEX = frozenset("0123456789abcdefABCDEF")
# Go's unicode.IsSpace on a byte string walks runes; for latin-1 text the ASCII spaces plus
# U+0085 and U+00A0 would count only as valid UTF-8, which single bytes 0x85/0xA0 are not.
_SPACE = " \t\n\v\f\r"


class MediaTypeError(ValueError):
    pass


_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+\Z")


def is_token(s: str) -> bool:
    return _TOKEN_RE.match(s) is not None


def _consume_token(v: str) -> tuple[str, str]:
    for i, c in enumerate(v):
        if c not in _TOKEN:
            return v[:i], v[i:]
    return v, ""


def _consume_value(v: str) -> tuple[str, str]:
    if v == "":
        return "", ""
    if v[0] != '"':
        return _consume_token(v)
    buf = []
    i = 1
    n = len(v)
    while i < n:
        r = v[i]
        if r == '"':
            return "".join(buf), v[i + 1:]
        if r == "\\" and i + 1 < n and v[i + 1] in _TSPECIALS:
            buf.append(v[i + 1])
            i += 2
            continue
        if r in "\r\n":
            return "", v
        buf.append(r)
        i += 1
    return "", v


def _consume_param(v: str) -> tuple[str, str, str]:
    rest = v.lstrip(_SPACE)
    if not rest.startswith(";"):
        return "", "", v
    rest = rest[1:].lstrip(_SPACE)
    param, rest = _consume_token(rest)
    param = param.lower()
    if param == "":
        return "", "", v
    rest = rest.lstrip(_SPACE)
    if not rest.startswith("="):
        return "", "", v
    rest = rest[1:].lstrip(_SPACE)
    value, rest2 = _consume_value(rest)
    if value == "" and rest2 == rest:
        return "", "", v
    return param, value, rest2


def _percent_unescape(s: str) -> str | None:
    out = []
    i = 0
    n = len(s)
    while i < n:
        if s[i] == "%":
            if i + 2 >= n or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                return None
            out.append(chr(int(s[i + 1:i + 3], 16)))
            i += 3
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _decode_2231(v: str) -> str | None:
    charset, sep, v = v.partition("'")
    if not sep:
        return None
    _, sep, rest = v.partition("'")
    if not sep:
        return None
    if charset.lower() not in ("us-ascii", "utf-8"):
        return None
    return _percent_unescape(rest)


def _check_type(s: str) -> None:
    typ, rest = _consume_token(s)
    if typ == "":
        raise MediaTypeError("mime: no media type")
    if rest == "":
        return
    if not rest.startswith("/"):
        raise MediaTypeError("mime: expected slash after first token")
    sub, rest = _consume_token(rest[1:])
    if sub == "":
        raise MediaTypeError("mime: expected token after slash")
    if rest != "":
        raise MediaTypeError("mime: unexpected content after media subtype")


def parse_media_type(v: str) -> tuple[str, dict[str, str]]:
    """mime.ParseMediaType; raises MediaTypeError with Go's message."""
    mediatype, items = _parse_cached(v)
    return mediatype, dict(items)


@functools.lru_cache(maxsize=2048)
def _parse_cached(v: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    mediatype, params = _parse(v)
    return mediatype, tuple(params.items())


def _parse(v: str) -> tuple[str, dict[str, str]]:
    base = v.split(";", 1)[0]
    mediatype = base.lower().strip(_SPACE)
    _check_type(mediatype)
    params: dict[str, str] = {}
    continuation: dict[str, dict[str, str]] = {}
    v = v[len(base):]
    while v:
        v = v.lstrip(_SPACE)
        if not v:
            break
        key, value, rest = _consume_param(v)
        if key == "":
            if rest.strip(_SPACE) == ";":
                break
            raise MediaTypeError("mime: invalid media parameter")
        pmap = params
        if "*" in key:
            pmap = continuation.setdefault(key.split("*", 1)[0], {})
        if key in pmap and pmap[key] != value:
            raise MediaTypeError("mime: duplicate parameter name")
        pmap[key] = value
        v = rest
    for key, pieces in continuation.items():
        single = key + "*"
        if single in pieces:
            dec = _decode_2231(pieces[single])
            if dec is not None:
                params[key] = dec
            continue
        buf = []
        valid = False
        n = 0
        while True:
            simple = f"{key}*{n}"
            if simple in pieces:
                valid = True
                buf.append(pieces[simple])
                n += 1
                continue
            enc = simple + "*"
            if enc not in pieces:
                break
            valid = True
            if n == 0:
                dec = _decode_2231(pieces[enc])
                if dec is not None:
                    buf.append(dec)
            else:
                buf.append(_percent_unescape(pieces[enc]) or "")
            n += 1
        if valid:
            params[key] = "".join(buf)
    return mediatype, params


def _needs_encoding(s: str) -> bool:
    return any((c < " " or c > "~") and c != "\t" for c in s)


def format_media_type(t: str, params: dict[str, str]) -> str:
    major, sep, sub = t.partition("/")
    if not sep:
        if not is_token(t):
            return ""
        out = [t.lower()]
    else:
        if not is_token(major) or not is_token(sub):
            return ""
        out = [major.lower(), "/", sub.lower()]
    for attr in sorted(params):
        value = params[attr]
        out.append("; ")
        if not is_token(attr):
            return ""
        out.append(attr.lower())
        if _needs_encoding(value):
            out.append("*=utf-8''")
            for c in value:
                if c <= " " or c >= "\x7f" or c in "*'%" or c in _TSPECIALS:
                    out.append("%%%02X" % ord(c))
                else:
                    out.append(c)
            continue
        out.append("=")
        if is_token(value):
            out.append(value)
            continue
        out.append('"')
        for c in value:
            if c in '"\\':
                out.append("\\")
            out.append(c)
        out.append('"')
    return "".join(out)
