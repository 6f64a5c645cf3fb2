"""File ids: Go's parseURLPath, NewVolumeId and Needle.ParsePath, with Go's error texts.

Shared by the native HTTP handlers (ids in URLs) and gRPC handlers (BatchDelete, Query). Strings
are Go byte strings (latin-1 `str`); `ext` keeps its case and leading dot.
"""

from __future__ import annotations

import dataclasses

from native.gostrconv import NumError, parse_uint

__all__ = [
    "UrlPath", "parse_url_path", "new_volume_id", "FidError", "parse_path", "parse_key_cookie", "write_fid", "filepath_ext",
]

_U64 = (1 << 64) - 1


@dataclasses.dataclass(frozen=True, slots=True)
class UrlPath:
    vid: str
    fid: str
    filename: str
    ext: str
    volume_only: bool


def filepath_ext(name: str) -> str:
    """filepath.Ext: from the last dot of the last element, including the dot."""
    i = len(name) - 1
    while i >= 0 and name[i] != "/":
        if name[i] == ".":
            return name[i:]
        i -= 1
    return ""


def parse_url_path(path: str) -> UrlPath:
    """parseURLPath. Go panics on some shapes (a dot before the comma with one slash, index games
    with four or more slashes); those raise ValueError here and the handler answers as Go's
    server does after a handler panic (the connection is dropped)."""
    n = path.count("/")
    if n == 3:
        parts = path.split("/")
        vid, fid, filename = parts[1], parts[2], parts[3]
        return UrlPath(vid, fid, filename, filepath_ext(filename), False)
    if n == 2:
        parts = path.split("/")
        vid, fid = parts[1], parts[2]
        ext = ""
        dot = fid.rfind(".")
        if dot > 0:
            ext, fid = fid[dot:], fid[:dot]
        return UrlPath(vid, fid, "", ext, False)
    sep = path.rfind("/")
    tail = path[sep:] if sep >= 0 else path
    comma = tail.rfind(",")
    if comma <= 0:
        return UrlPath(path[sep + 1:], "", "", "", True)
    dot = tail.rfind(".")
    # Go slices path[...] with indices found in path[sep:]; with sep == 0 (one slash) they agree.
    if sep != 0:
        return _shifted(path, sep, comma, dot)
    vid = path[sep + 1:comma]
    fid = path[comma + 1:]
    ext = ""
    if dot > 0:
        if dot < comma + 1:
            raise ValueError("slice bounds out of range")
        fid = path[comma + 1:dot]
        ext = path[dot:]
    return UrlPath(vid, fid, "", ext, False)


def _go_slice(s: str, lo: int, hi: int | None = None) -> str:
    hi = len(s) if hi is None else hi
    if lo < 0 or hi > len(s) or lo > hi:
        raise ValueError("slice bounds out of range")
    return s[lo:hi]


def _shifted(path: str, sep: int, comma: int, dot: int) -> UrlPath:
    vid = _go_slice(path, sep + 1, comma)
    fid = _go_slice(path, comma + 1)
    ext = ""
    if dot > 0:
        fid = _go_slice(path, comma + 1, dot)
        ext = _go_slice(path, dot)
    return UrlPath(vid, fid, "", ext, False)


def new_volume_id(vid: str) -> int:
    """needle.NewVolumeId: ParseUint base 10 into 64 bits, kept as uint32. Raises NumError."""
    return parse_uint(vid, 10, 64) & 0xFFFFFFFF


class FidError(ValueError):
    """ParsePath failed; str() is Go's message."""


def parse_key_cookie(s: str) -> tuple[int, int]:
    """(needle id, cookie) from `<key><cookie>` without a delta (Go's ParseNeedleIdCookie)."""
    if len(s) <= 8:
        raise FidError("KeyHash is too short.")
    if len(s) > 24:
        raise FidError("KeyHash is too long.")
    split = len(s) - 8
    try:
        key = parse_uint(s[:split], 16, 64)
    except NumError as exc:
        raise FidError(f"Parse needleId error: needle id {s[:split]} format error: {exc}") from None
    try:
        cookie = parse_uint(s[split:], 16, 32)
    except NumError as exc:
        raise FidError(f"Parse cookie error: needle cookie {s[split:]} format error: {exc}") from None
    return key, cookie


def parse_path(fid: str) -> tuple[int, int]:
    """Needle.ParsePath: (needle id, cookie) from `<key><cookie>[_<delta>]`."""
    if len(fid) <= 8:
        raise FidError(f"Invalid fid: {fid}")
    delta = ""
    i = fid.rfind("_")
    if i > 0:
        fid, delta = fid[:i], fid[i + 1:]
    key, cookie = parse_key_cookie(fid)
    if delta != "":
        try:
            d = parse_uint(delta, 10, 64)
        except NumError as exc:
            raise FidError(str(exc)) from None
        if d > _U64 - key:
            raise FidError(f"delta {d} overflows needle id {key:x}")
        key += d
    return key, cookie


def write_fid(path: str) -> str:
    """The fid CreateNeedleFromRequest parses: after the last comma, up to the last dot after it."""
    comma = path.rfind(",")
    dot = path.rfind(".")
    if dot > comma:
        return path[comma + 1:dot]
    return path[comma + 1:]
