"""THE mask: values that legitimately differ between two servers answering the same request.

This is the one place that lists them; the differ's defaults and every differential test
(tests/support/compare.py) use it:

- the values of `Date` and `X-Amz-Request-Id` (per response; presence and position still count;
  Go also sends the request id as a gRPC response header and trailer);
- the boundary of `multipart/byteranges` responses (random per response), in header and body;
- the answering server's own `ip:port` (Go puts it in some error texts), replaced by `<self>`
  in header values and bodies when the caller knows it; likewise any other per-server value the
  caller names as an alias `(value, placeholder)` (e.g. a peer's `ip:port`).

Anything else that differs is either a real difference or noise the noise model must learn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["VARIABLE_HEADERS", "MASKED_VALUE", "SELF", "BOUNDARY", "mask_http", "mask_headers", "mask_text",
           "boundary_of"]

VARIABLE_HEADERS = frozenset({b"date", b"x-amz-request-id"})
MASKED_VALUE = b"*"
SELF = b"<self>"
BOUNDARY = b"BOUNDARY"
_BOUNDARY = re.compile(rb"boundary=([0-9A-Za-z'()+_,./:=?-]+)")


def boundary_of(content_type: bytes) -> bytes | None:
    m = _BOUNDARY.search(content_type)
    return m.group(1) if m else None


def mask_text(data: bytes, own_addrs: Iterable[bytes], aliases: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """Replace the server's own addresses by `<self>` and each alias value by its placeholder."""
    for own in own_addrs:
        if own:
            data = data.replace(own, SELF)
    for value, placeholder in aliases:
        if value:
            data = data.replace(value, placeholder)
    return data


def mask_http(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes, own_addrs: Iterable[bytes] = (),
    aliases: Iterable[tuple[bytes, bytes]] = (),
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) with the per-response values masked; names and order untouched."""
    owns = tuple(o for o in own_addrs if o)
    subs = tuple(aliases)
    body = mask_text(body, owns, subs)
    out: list[tuple[bytes, bytes]] = []
    for k, v in headers:
        v = mask_text(v, owns, subs)
        lk = k.lower()
        if lk in VARIABLE_HEADERS:
            v = MASKED_VALUE
        elif lk == b"content-type" and (b := boundary_of(v)) is not None:
            body = body.replace(b, BOUNDARY)
            v = v.replace(b, BOUNDARY)
        out.append((k, v))
    return status, out, body


def mask_headers(
    headers: Iterable[tuple[bytes, bytes]], own_addrs: Iterable[bytes] = (), aliases: Iterable[tuple[bytes, bytes]] = (),
) -> list[tuple[bytes, bytes]]:
    """Header or trailer values masked as in `mask_http` (gRPC metadata: no body, no boundary)."""
    owns = tuple(o for o in own_addrs if o)
    subs = tuple(aliases)
    return [(k, MASKED_VALUE if k.lower() in VARIABLE_HEADERS else mask_text(v, owns, subs)) for k, v in headers]
