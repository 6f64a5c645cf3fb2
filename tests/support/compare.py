"""Raw HTTP responses for differential tests, masked with the differ's one mask.

The mask of values that legitimately differ between two servers (Date, X-Amz-Request-Id,
multipart boundaries, the server's own `ip:port`) lives in `difftool/_mask.py`, shared by these
tests and the dual-run differ; `own_addr` here is the address the mask replaces by `<self>`.
"""

from __future__ import annotations

import dataclasses
import re

import httpx

from difftool import VARIABLE_HEADERS, mask_http
from difftool._mask import MASKED_VALUE, GRPC_VARIABLE_FIELDS, HEARTBEAT_OMITTED_FIELDS, HEARTBEAT_VARIABLE_FIELDS

__all__ = ["Raw", "fetch", "VARIABLE_HEADERS", "diff_text", "mask_write_second"]


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
        return mask_http(self.status, self.headers, self.body, (self.own_addr,) if self.own_addr else (), self.aliases)


_HTTP_DATE = re.compile(rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT")


def mask_write_second(r: Raw) -> Raw:
    """`r` with its Last-Modified checked as an HTTP date and masked: a needle uploaded without
    `ts` carries the second each server stored it, and two servers given the same upload one
    after the other may straddle a second (the value is compared with Go's where the upload
    sets `ts`, tests/native_http/test_diff_basic.py)."""
    headers = []
    for k, v in r.headers:
        if k.lower() == b"last-modified":
            assert _HTTP_DATE.fullmatch(v), f"Last-Modified {v!r}"
            v = MASKED_VALUE
        headers.append((k, v))
    return dataclasses.replace(r, headers=headers)


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


# -- control plane: gRPC messages and heartbeats ------------------------------------------------------
#
# The control-plane differential tests (tests/native_core) compare protobuf messages field by field
# after replacing, with "*", the values that legitimately differ between two servers holding the
# same volumes. A masked field must still be present (or absent) on both sides. The lists
# (GRPC_VARIABLE_FIELDS, HEARTBEAT_VARIABLE_FIELDS, HEARTBEAT_OMITTED_FIELDS) are part of the one
# mask in difftool/_mask.py.

def mask_fields(doc: object, paths: tuple[str, ...]) -> object:
    """A JSON-like document (e.g. MessageToDict output) with each dotted path's value set to "*";
    `*` in a path stands for every list element or map value."""
    import copy

    out = copy.deepcopy(doc)
    for path in paths:
        _mask_path(out, path.split("."))
    return out


def _mask_path(node: object, parts: list[str]) -> None:
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        children = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
        if not rest:
            if isinstance(node, list):
                node[:] = ["*"] * len(node)
            elif isinstance(node, dict):
                for k in node:
                    node[k] = "*"
            return
        for child in children:
            _mask_path(child, rest)
        return
    if isinstance(node, dict) and head in node:
        if rest:
            _mask_path(node[head], rest)
        else:
            node[head] = "*"


def message_doc(msg: object, variable: tuple[str, ...] = (), omitted: tuple[str, ...] = ()) -> object:
    """A protobuf message as a dict (field names as in the .proto), variable fields masked and
    top-level `omitted` fields (deliberate differences) left out."""
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(msg, preserving_proto_field_name=True)  # type: ignore[arg-type]
    for name in omitted:
        doc.pop(name, None)
    return mask_fields(doc, variable)


__all__ += ["GRPC_VARIABLE_FIELDS", "HEARTBEAT_VARIABLE_FIELDS", "HEARTBEAT_OMITTED_FIELDS", "mask_fields", "message_doc"]
