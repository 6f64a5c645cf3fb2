"""gRPC metadata on HTTP/2 headers: `-bin` base64 values, grpc-timeout, percent-encoded grpc-message.

Wire headers stay `(bytes, bytes)` pairs end to end; `Metadata` is the decoded, user-facing view
(`-bin` keys carry `bytes`, every other key `str`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Sequence

from ._status import ProtocolError, Status

__all__ = [
    "Headers",
    "Metadata",
    "RESERVED_HEADERS",
    "decode_metadata",
    "encode_metadata",
    "format_timeout",
    "header_value",
    "parse_timeout",
    "percent_decode",
    "percent_encode",
]

Headers = Sequence[tuple[bytes, bytes]]
Metadata = tuple[tuple[str, "str | bytes"], ...]

# Headers that belong to the gRPC/HTTP/2 framing, never to user metadata (grpc-go's isReservedHeader).
RESERVED_HEADERS = frozenset(
    {
        b"content-type",
        b"te",
        b"grpc-timeout",
        b"grpc-encoding",
        b"grpc-accept-encoding",
        b"grpc-status",
        b"grpc-message",
        b"grpc-message-type",
    }
)

_KEY_RE = re.compile(rb"^[0-9a-z_.\-]+$")
_TIMEOUT_RE = re.compile(rb"^([0-9]{1,8})([HMSmun])$")
_UNIT_SECONDS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# Finest unit first: the smallest unit whose count fits in eight digits, like grpc-go.
_ENCODE_UNITS = ((b"n", 1e-9), (b"u", 1e-6), (b"m", 1e-3), (b"S", 1.0), (b"M", 60.0), (b"H", 3600.0))
_MAX_DIGITS = 99_999_999


def header_value(headers: Headers, name: bytes) -> bytes | None:
    """The first value of `name` (lower-case) or None."""
    for k, v in headers:
        if k == name:
            return v
    return None


def encode_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> list[tuple[bytes, bytes]]:
    """User metadata to wire headers; `-bin` values are base64 without padding (as grpc-go sends)."""
    out: list[tuple[bytes, bytes]] = []
    for key, value in metadata:
        k = key.lower().encode("ascii")
        if not _KEY_RE.match(k) or k in RESERVED_HEADERS:
            raise ValueError(f"invalid metadata key {key!r}")
        if k.endswith(b"-bin"):
            raw = value if isinstance(value, bytes) else value.encode()
            out.append((k, base64.b64encode(raw).rstrip(b"=")))
        else:
            v = value.encode("ascii") if isinstance(value, str) else bytes(value)
            if any(c < 0x20 or c > 0x7E for c in v):
                raise ValueError(f"metadata value for {key!r} must be printable ASCII")
            out.append((k, v))
    return out


def decode_metadata(headers: Headers) -> Metadata:
    """Wire headers to user metadata: pseudo-headers and reserved gRPC headers left out."""
    out: list[tuple[str, str | bytes]] = []
    for k, v in headers:
        if k.startswith(b":") or k in RESERVED_HEADERS:
            continue
        key = k.decode("ascii", "replace")
        if k.endswith(b"-bin"):
            try:
                out.append((key, base64.b64decode(v + b"=" * (-len(v) % 4), validate=True)))
            except (binascii.Error, ValueError) as exc:
                raise ProtocolError(f"malformed binary metadata {key!r}") from exc
        else:
            out.append((key, v.decode("latin-1")))
    return tuple(out)


def parse_timeout(value: bytes) -> float:
    """grpc-timeout ("100m", "5S", ...) in seconds."""
    m = _TIMEOUT_RE.match(value.strip())
    if m is None:
        raise ProtocolError(f"malformed grpc-timeout {value!r}", Status.INTERNAL)
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def format_timeout(seconds: float) -> bytes:
    """Seconds to grpc-timeout, rounding up in the finest unit that fits eight digits."""
    if seconds <= 0:
        return b"0n"
    for unit, size in _ENCODE_UNITS:
        if seconds / size <= _MAX_DIGITS:
            return b"%d%s" % (math.ceil(seconds / size - 1e-9), unit)
    return b"%dH" % _MAX_DIGITS


def _unreserved(c: int) -> bool:
    return 0x20 <= c <= 0x7E and c != 0x25  # printable ASCII except '%'


def percent_encode(message: str) -> bytes:
    """grpc-message encoding: UTF-8, then %XX for every byte outside printable ASCII and '%'."""
    raw = message.encode("utf-8")
    if all(_unreserved(c) for c in raw):
        return raw
    return b"".join(bytes((c,)) if _unreserved(c) else b"%%%02X" % c for c in raw)


def percent_decode(value: bytes) -> str:
    """Inverse of percent_encode; malformed escapes pass through unchanged (as the spec asks)."""
    if b"%" not in value:
        return value.decode("utf-8", "replace")
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == 0x25 and i + 2 < len(value) and _is_hex(value[i + 1 : i + 3]):
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)
