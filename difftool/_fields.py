"""Field paths: payloads parsed into `{path: canonical value}` so a mismatch names what differs.

Used only after the bytes differed (flattening costs ~1000x a bytes comparison). Paths read like
the data: `body.Volumes[0].Size`, `msg[2].volume_id`, `header:content-type`. A path's *key* has
every list index replaced by `[*]`, so the same field of different list items (or stream
messages) is counted, learned as noise and ignored as one.

Ignore patterns match keys or paths: `*` matches within one path segment, `[*]` any index, a
whole `.*` segment either a map key or a list index, and a pattern also covers everything below
it (`body.Volumes` covers `body.Volumes[3].Size`).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

__all__ = [
    "field_key",
    "flatten_json",
    "json_fields",
    "proto_fields",
    "gunzip",
    "FieldPattern",
    "short",
]

_INDEX = re.compile(r"\[\d+\]")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-@$]+$")
SHORT_LIMIT = 160


def field_key(path: str) -> str:
    """The path with list indices generalised: `msg[3].a[0]` -> `msg[*].a[*]`."""
    return _INDEX.sub("[*]", path) if "[" in path else path


def short(value: object, limit: int = SHORT_LIMIT) -> str:
    """A bounded printable rendering for reports."""
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _child(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if _PLAIN_KEY.match(key) else f"{prefix}[{json.dumps(key)}]"


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if not value:
            yield path, "{}"
        for k, v in value.items():
            yield from _walk(v, _child(path, str(k)))
    elif isinstance(value, list):
        if not value:
            yield path, "[]"
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, json.dumps(value, ensure_ascii=False)


def flatten_json(value: Any, prefix: str) -> dict[str, str]:
    """Leaves of a JSON value as `{path: canonical JSON text}` (key order does not matter)."""
    return dict(_walk(value, prefix))


def json_fields(body: bytes, prefix: str) -> dict[str, str] | None:
    """The body's JSON leaves, or None when it is not JSON."""
    stripped = body.strip()
    if not stripped or stripped[:1] not in b"{[\"-0123456789tfn":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return flatten_json(value, prefix)


def proto_fields(payload: bytes, cls: type[Message], prefix: str) -> dict[str, str] | None:
    """A protobuf message's fields through its descriptor, or None when it does not decode."""
    msg = cls()
    try:
        msg.ParseFromString(payload)
    except DecodeError:
        return None
    return flatten_json(json_format.MessageToDict(msg, preserving_proto_field_name=True), prefix)


def gunzip(data: bytes, limit: int = 64 << 20) -> bytes | None:
    """Decoded gzip content (at most `limit` bytes), or None when it is not gzip."""
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, limit)
        return out if d.eof else None
    except (zlib.error, gzip.BadGzipFile, EOFError):
        return None


class FieldPattern:
    """One ignore rule over field paths (see the module docstring)."""

    __slots__ = ("text", "_re")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("[*]", i):
                parts.append(r"\[(?:\d+|\*)\]")
                i += 3
            elif text.startswith(".*", i) and (i + 2 == len(text) or text[i + 2] in ".["):
                parts.append(r"(?:\.[^.\[]*|\[(?:\d+|\*)\])")
                i += 2
            elif text[i] == "*":
                parts.append(r"[^.\[]*")
                i += 1
            else:
                parts.append(re.escape(text[i]))
                i += 1
        self._re = re.compile("(" + "".join(parts) + r")(?:[.\[#~].*)?$", re.DOTALL)

    def matches(self, path: str) -> bool:
        return self._re.match(path) is not None

    def prefix_of(self, path: str) -> str | None:
        """The part of `path` the pattern itself matched (the root of the covered subtree)."""
        m = self._re.match(path)
        return m.group(1) if m else None

    def __repr__(self) -> str:
        return f"FieldPattern({self.text!r})"
