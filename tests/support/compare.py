"""Raw HTTP responses and the mask of values that legitimately differ between two servers.

The mask lives here, in one place, for every differential test:
- `Date` and `X-Amz-Request-Id` values (per response);
- the boundary of `multipart/byteranges` responses (random per response), in the header and body;
- the answering server's own `ip:port` (Go puts it in some error texts), when the response
  records it in `own_addr`: replaced by `<self>` in header values and the body.
"""

from __future__ import annotations

import dataclasses
import re

import httpx

__all__ = ["Raw", "fetch", "VARIABLE_HEADERS", "diff_text"]

VARIABLE_HEADERS = frozenset({b"date", b"x-amz-request-id"})
_BOUNDARY = re.compile(rb"boundary=([0-9A-Za-z'()+_,./:=?-]+)")


@dataclasses.dataclass
class Raw:
    """A response as it came off the wire: no content decoding."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    own_addr: bytes | None = None
    aliases: tuple[tuple[bytes, bytes], ...] = ()  # (value, placeholder), e.g. a peer's ip:port

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def masked(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = self.body
        headers = []
        subs = ([(self.own_addr, b"<self>")] if self.own_addr else []) + list(self.aliases)
        for old, new in subs:
            body = body.replace(old, new)
        for k, v in self.headers:
            for old, new in subs:
                v = v.replace(old, new)
            if k.lower() in VARIABLE_HEADERS:
                v = b"*"
            elif k.lower() == b"content-type" and (m := _BOUNDARY.search(v)):
                body = body.replace(m.group(1), b"BOUNDARY")
                v = v.replace(m.group(1), b"BOUNDARY")
            headers.append((k, v))
        return self.status, headers, body


def fetch(base_url: str, method: str, path: str, **kw: object) -> Raw:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        with c.stream(method, path, **kw) as r:  # type: ignore[arg-type]
            own = base_url.split("://", 1)[-1].rstrip("/").encode()
            return Raw(r.status_code, list(r.headers.raw), b"".join(r.iter_raw()), own_addr=own)


def diff_text(label: str, expected: Raw, actual: Raw, names: tuple[str, str] = ("go", "weedpy")) -> str:
    """A readable side-by-side of two masked responses."""
    (es, eh, eb), (as_, ah, ab) = expected.masked(), actual.masked()
    lines = [label, f"  status: {names[0]}={es} {names[1]}={as_}"]
    width = max((len(k) for k, _ in eh + ah), default=0)
    for i in range(max(len(eh), len(ah))):
        left = eh[i] if i < len(eh) else (b"", b"")
        right = ah[i] if i < len(ah) else (b"", b"")
        mark = " " if left == right else "!"
        lines.append(f" {mark} {left[0].decode():<{width}} {left[1].decode(errors='replace')!s:<40} | "
                     f"{right[0].decode()} {right[1].decode(errors='replace')}")
    if eb != ab:
        lines.append(f"  body {names[0]}: {eb[:300]!r}")
        lines.append(f"  body {names[1]}: {ab[:300]!r}")
    return "\n".join(lines)
