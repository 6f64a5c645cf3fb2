"""encoding/json's Marshal as Go's volume server uses it, byte for byte.

- map keys sorted (byte order), struct fields in declaration order (`Struct`), omitempty;
- strings are Go byte strings (latin-1 `str`): each invalid UTF-8 byte becomes a raw U+FFFD
  (Go 1.27's encoding/json runs on json/v2, unlike older Go's `\\ufffd` escape), `< > &` and
  U+2028/U+2029 are escaped, control bytes use `\\b \\f \\n \\r \\t` or `\\u00xx`;
- `pretty` is MarshalIndent(v, "", "  ").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from native.gostrconv import utf8_runes

__all__ = ["Struct", "Raw", "marshal", "encode_string"]


class Struct:
    """A Go struct value: fields in order; a field named with `omitempty` drops empty values."""

    __slots__ = ("fields",)

    def __init__(self, *fields: tuple[str, Any] | tuple[str, Any, bool]) -> None:
        self.fields = fields


class Raw:
    """Pre-encoded JSON (json.RawMessage)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_SHORT = {0x5C: "\\\\", 0x22: '\\"', 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_ASCII_SPECIAL = frozenset(range(0x20)) | {0x22, 0x5C, 0x3C, 0x3E, 0x26}


# Printable ASCII without `"`, `\\`, `<`, `>`, `&`: such a string is its own JSON text.
_VERBATIM = re.compile(r'[ !#-%\'-;=?-\[\]-~]*\Z')


def encode_string(s: str) -> str:
    """JSON string literal of a Go byte string (returned as real text)."""
    if _VERBATIM.match(s) is not None:
        return '"' + s + '"'
    return _encode_general(s)


def _encode_general(s: str) -> str:
    b = s.encode("latin-1") if s.isascii() or max(s) <= "\xff" else s.encode("utf-8")
    if b.isascii() and not any(c in _ASCII_SPECIAL for c in b):
        return '"' + b.decode("ascii") + '"'
    out = ['"']
    for r, _raw in utf8_runes(b):
        if r is None:
            out.append("\ufffd")
        elif r < 0x80:
            if r in _SHORT:
                out.append(_SHORT[r])
            elif r < 0x20 or r in (0x3C, 0x3E, 0x26):
                out.append("\\u%04x" % r)
            else:
                out.append(chr(r))
        elif r in (0x2028, 0x2029):
            out.append("\\u%04x" % r)
        else:
            out.append(chr(r))
    out.append('"')
    return "".join(out)


def _empty(v: Any) -> bool:
    t = type(v)
    if t is str:
        return not v
    if t is int:
        return v == 0
    if v is None or v is False:
        return True
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v == 0
    if isinstance(v, (str, bytes, list, tuple, dict)):
        return len(v) == 0
    return False


def _float(v: float) -> str:
    """Go's float64 encoding: shortest repr, 'e' form outside [1e-6, 1e21)."""
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"json: unsupported value: {v}")
    if v == 0:
        return "0" if math.copysign(1, v) > 0 else "-0"
    a = abs(v)
    if a < 1e-6 or a >= 1e21:
        text = repr(v)
        if "e" not in text:
            text = "%e" % v
        mant, exp = text.split("e")
        if mant.endswith(".0"):
            mant = mant[:-2]
        e = int(exp)
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    text = repr(v)
    if "e" in text:
        text = format(v, "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def _enc(v: Any, out: list[str], indent: str | None, level: int) -> None:
    t = type(v)  # the common exact types first; subclasses take the general chain below
    if t is str:
        out.append(encode_string(v))
        return
    if t is int:
        out.append(int.__repr__(v))
        return
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(_float(v))
    elif isinstance(v, str):
        out.append(encode_string(v))
    elif isinstance(v, Raw):
        out.append(v.data.decode("utf-8"))
    elif isinstance(v, Struct):
        items = []
        for f in v.fields:
            name, val = f[0], f[1]
            if len(f) > 2 and f[2] and _empty(val):
                continue
            items.append((name, val))
        _obj(items, out, indent, level)
    elif isinstance(v, Mapping):
        keys = sorted(v, key=lambda k: k.encode("latin-1") if max(k, default="\0") <= "\xff" else k.encode())
        _obj([(k, v[k]) for k in keys], out, indent, level)
    elif isinstance(v, Sequence) and not isinstance(v, (bytes, bytearray)):
        if not v:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            _enc(item, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type {type(v).__name__}")


def _obj(items: list[tuple[str, Any]], out: list[str], indent: str | None, level: int) -> None:
    if not items:
        out.append("{}")
        return
    out.append("{")
    for i, (k, val) in enumerate(items):
        if i:
            out.append(",")
        if indent is not None:
            out.append("\n" + indent * (level + 1))
        out.append(encode_string(k))
        out.append(": " if indent is not None else ":")
        _enc(val, out, indent, level + 1)
    if indent is not None:
        out.append("\n" + indent * level)
    out.append("}")


def marshal(v: Any, pretty: bool = False) -> bytes:
    out: list[str] = []
    _enc(v, out, "  " if pretty else None, 0)
    return "".join(out).encode("utf-8")
