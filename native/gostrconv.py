"""Go's strconv as the volume server's error messages expose it: parse errors and Quote.

Errors carry Go's exact text (`strconv.ParseUint: parsing "x": invalid syntax`) because the
handlers put them in JSON bodies a client can compare. Strings are latin-1 `str` (bytes). Used
by the native HTTP handlers and by `native.fileid`.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["NumError", "parse_uint", "parse_int", "atoi", "parse_bool", "quote", "go_utf8", "utf8_runes"]

_U64 = (1 << 64) - 1
SYNTAX = "invalid syntax"
RANGE = "value out of range"


class NumError(ValueError):
    def __init__(self, func: str, num: str, err: str) -> None:
        self.func = func
        self.num = num
        self.err = err
        super().__init__(f"strconv.{func}: parsing {quote(num)}: {err}")


_DEC_OK = re.compile(r"[0-9]{1,19}\Z")
_HEX_OK = re.compile(r"[0-9a-fA-F]{1,15}\Z")


def parse_uint(s: str, base: int, bits: int, func: str = "ParseUint") -> int:
    """strconv.ParseUint for an explicit base (no prefixes, no underscores)."""
    if base == 10 and _DEC_OK.match(s) or base == 16 and _HEX_OK.match(s):
        n = int(s, base)
        if not n >> bits:
            return n
    if s == "":
        raise NumError(func, s, SYNTAX)
    cutoff = _U64 // base + 1
    max_val = (1 << bits) - 1
    n = 0
    for c in s:
        o = ord(c)
        if 0x30 <= o <= 0x39:
            d = o - 0x30
        elif 0x61 <= (o | 0x20) <= 0x7A:
            d = (o | 0x20) - 0x61 + 10
        else:
            raise NumError(func, s, SYNTAX)
        if d >= base:
            raise NumError(func, s, SYNTAX)
        if n >= cutoff:
            raise NumError(func, s, RANGE)
        n = n * base + d
        if n > max_val:
            raise NumError(func, s, RANGE)
    return n


def parse_int(s: str, base: int = 10, bits: int = 64, func: str = "ParseInt") -> int:
    if s == "":
        raise NumError(func, s, SYNTAX)
    neg = False
    body = s
    if s[0] in "+-":
        neg = s[0] == "-"
        body = s[1:]
    try:
        un = parse_uint(body, base, bits, func)
    except NumError as exc:
        if exc.err != RANGE:
            raise NumError(func, s, exc.err) from None
        raise NumError(func, s, RANGE) from None
    cutoff = 1 << (bits - 1)
    if (not neg and un >= cutoff) or (neg and un > cutoff):
        raise NumError(func, s, RANGE)
    return -un if neg else un


def atoi(s: str) -> int:
    """strconv.Atoi (64-bit int)."""
    return parse_int(s, 10, 64, "Atoi")


def parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if s in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise NumError("ParseBool", s, SYNTAX)


def utf8_runes(b: bytes):
    """Yield (rune or None for an invalid byte, raw bytes) as Go's utf8.DecodeRune walks `b`."""
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            yield c, b[i:i + 1]
            i += 1
            continue
        size = 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
        if size and i + size <= n:
            try:
                r = b[i:i + size].decode("utf-8")
            except UnicodeDecodeError:
                r = ""
            if len(r) == 1:
                yield ord(r), b[i:i + size]
                i += size
                continue
        yield None, b[i:i + 1]
        i += 1


def go_utf8(s: str | bytes) -> str:
    """A Go byte string as text, each invalid byte becoming U+FFFD (as encoding/json does)."""
    b = s.encode("latin-1") if isinstance(s, str) else s
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "".join("\ufffd" if r is None else chr(r) for r, _ in utf8_runes(b))


def _is_print(r: int) -> bool:
    if r < 0x80:
        return 0x20 <= r < 0x7F
    if r == 0xFFFD:
        return True
    cat = unicodedata.category(chr(r))
    # Go's IsPrint: letters, marks, numbers, punctuation, symbols and U+0020 only.
    return cat[0] in "LMNPS"


def quote(s: str) -> str:
    """strconv.Quote of a Go byte string, returned as latin-1 text of the UTF-8 result."""
    out = ['"']
    for r, raw in utf8_runes(s.encode("latin-1")):
        if r is None:
            out.append("\\x%02x" % raw[0])
        elif r == 0x22:
            out.append('\\"')
        elif r == 0x5C:
            out.append("\\\\")
        elif _is_print(r):
            out.append(raw.decode("latin-1"))
        elif r == 0x07:
            out.append("\\a")
        elif r == 0x08:
            out.append("\\b")
        elif r == 0x0C:
            out.append("\\f")
        elif r == 0x0A:
            out.append("\\n")
        elif r == 0x0D:
            out.append("\\r")
        elif r == 0x09:
            out.append("\\t")
        elif r == 0x0B:
            out.append("\\v")
        elif r < 0x20 or r == 0x7F:
            out.append("\\x%02x" % r)
        elif r < 0x10000:
            out.append("\\u%04x" % r)
        else:
            out.append("\\U%08x" % r)
    out.append('"')
    return "".join(out)
