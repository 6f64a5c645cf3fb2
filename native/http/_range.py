"""Range requests as Go's volume server answers them (a copy of net/http's old fs.go parser).

`parse_range` returns (start, length) pairs or raises RangeError (416, body "invalid range\\n");
`multipart_layout` gives the multipart/byteranges framing around each range, so the handler can
compute Content-Length up front and stream the data between the pieces.
"""

from __future__ import annotations

import os

from native.gostrconv import NumError, parse_int

__all__ = ["RangeError", "NoOverlap", "parse_range", "content_range", "multipart_layout", "new_boundary"]


class RangeError(ValueError):
    pass


class NoOverlap(RangeError):
    """Every range starts at or after the end: 416 with `Content-Range: bytes */size`."""

    def __init__(self) -> None:
        super().__init__("invalid range: failed to overlap")


def _int(s: str) -> int:
    return parse_int(s, 10, 64)


def parse_range(s: str, size: int) -> list[tuple[int, int]]:
    """weed 4.48's parser: Go's old fs.go rules (a negative suffix length is taken as is, giving
    a negative length), except that a start at or past the end is skipped as non-overlapping."""
    if s == "":
        return []
    if not s.startswith("bytes="):
        raise RangeError("invalid range")
    ranges: list[tuple[int, int]] = []
    no_overlap = False
    for ra in s[6:].split(","):
        ra = ra.strip(" \t\n\v\f\r")
        if ra == "":
            continue
        i = ra.find("-")
        if i < 0:
            raise RangeError("invalid range")
        start, end = ra[:i].strip(" \t\n\v\f\r"), ra[i + 1:].strip(" \t\n\v\f\r")
        if start == "":
            try:
                n = _int(end)
            except NumError:
                raise RangeError("invalid range") from None
            if n > size:
                n = size
            r_start = size - n
            ranges.append((r_start, size - r_start))
            continue
        try:
            st = _int(start)
        except NumError:
            raise RangeError("invalid range") from None
        if st < 0:
            raise RangeError("invalid range")
        if st >= size:
            no_overlap = True
            continue
        if end == "":
            ranges.append((st, size - st))
            continue
        try:
            e = _int(end)
        except NumError:
            raise RangeError("invalid range") from None
        if st > e:
            raise RangeError("invalid range")
        if e >= size:
            e = size - 1
        ranges.append((st, e - st + 1))
    if no_overlap and not ranges:
        raise NoOverlap
    return ranges


def content_range(start: int, length: int, size: int) -> str:
    return f"bytes {start}-{start + length - 1}/{size}"


def new_boundary() -> str:
    """multipart.Writer's random boundary: 30 random bytes in hex."""
    return os.urandom(30).hex()


def multipart_layout(
    ranges: list[tuple[int, int]], content_type: str, size: int, boundary: str,
) -> tuple[list[bytes], bytes, int]:
    """(part heads, closing delimiter, total length) of a multipart/byteranges body.

    Part i is `heads[i]` followed by that range's bytes; the body ends with `closing`.
    """
    heads = []
    total = 0
    for i, (start, length) in enumerate(ranges):
        lead = b"\r\n--" if i else b"--"
        head = (
            lead + boundary.encode() + b"\r\n"
            + b"Content-Range: " + content_range(start, length, size).encode() + b"\r\n"
            + b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        )
        heads.append(head)
        total += len(head) + length
    closing = b"\r\n--" + boundary.encode() + b"--\r\n"
    return heads, closing, total + len(closing)
