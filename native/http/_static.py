"""`/favicon.ico`, `/seaweedfsstatic/*`: Go's embedded `weed/static` files, served as Go's
http.FileServer serves them (type by extension, `Accept-Ranges: bytes`, directory listings, Go's
redirects, `404 page not found`). The bytes are read from the `weed` binary's embed table on first
use; without a binary these answer 501.
"""

from __future__ import annotations

import os
import posixpath
import struct
from collections.abc import Mapping
from pathlib import Path

import trio

from native.http._gourl import path_escape
from native.http._range import multipart_layout, new_boundary
from native.http._request import GoRequest
from native.http._sniff import detect_content_type
from weedpy.http1 import GoHeader, GoResponse
from weedpy.weedbin import find_weed_binary

__all__ = ["EmbeddedStatic", "read_embedded_static", "parse_serve_range", "RangeError"]

_EMBED_PREFIX = b"static/"
_ENTRY = struct.Struct("<QQQQ16s")  # embed.FS file: name (ptr, len), data (ptr, len), hash


def _load_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(file offset, virtual address, size) of an ELF64 little-endian file's loadable segments."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segs = []
    for i in range(phnum):
        p_type, _flags, off, vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            segs.append((off, vaddr, filesz))
    return segs


def read_embedded_static(binary: bytes) -> dict[str, bytes]:
    """Go's `//go:embed static` file table of a weed binary: {"favicon.ico": bytes, "images/": b""}.

    Go stores an embed.FS as an array of (name, data, hash) entries sorted by name, directories
    ending in "/". Find the string "static/favicon.ico", the entry that points at it, then walk
    the array both ways while the names stay under "static/".
    """
    segs = _load_segments(binary)

    def to_va(off: int) -> int | None:
        for o, v, n in segs:
            if o <= off < o + n:
                return v + off - o
        return None

    def to_off(va: int) -> int | None:
        for o, v, n in segs:
            if v <= va < v + n:
                return o + va - v
        return None

    def name_at(entry_off: int) -> bytes | None:
        if entry_off < 0 or entry_off + _ENTRY.size > len(binary):
            return None
        nptr, nlen, _dptr, _dlen, _h = _ENTRY.unpack_from(binary, entry_off)
        if not 0 < nlen < 4096:
            return None
        off = to_off(nptr)
        if off is None:
            return None
        name = binary[off:off + nlen]
        return name if name.startswith(_EMBED_PREFIX) else None

    needle = _EMBED_PREFIX + b"favicon.ico"
    pos = binary.find(needle)
    while pos >= 0:
        va = to_va(pos)
        if va is not None:
            ref = binary.find(struct.pack("<QQ", va, len(needle)))
            while ref >= 0:
                start = ref
                while name_at(start - _ENTRY.size) is not None:
                    start -= _ENTRY.size
                files: dict[str, bytes] = {}
                at = start
                while (name := name_at(at)) is not None:
                    _n, _l, dptr, dlen, _h = _ENTRY.unpack_from(binary, at)
                    doff = to_off(dptr) if dlen else 0
                    if doff is None:
                        break
                    files[name[len(_EMBED_PREFIX):].decode("utf-8", "replace")] = binary[doff:doff + dlen]
                    at += _ENTRY.size
                if files.get("favicon.ico"):
                    return files
                ref = binary.find(struct.pack("<QQ", va, len(needle)), ref + 1)
        pos = binary.find(needle, pos + 1)
    raise ValueError("no embedded static file table found")


class EmbeddedStatic:
    """http.FileServer over Go's embedded static files (`/favicon.ico` and `/seaweedfsstatic/*`)."""

    def __init__(self, weed_binary: str | os.PathLike[str] | None, mimes: object, files: Mapping[str, bytes] | None = None) -> None:
        self._binary = weed_binary
        self._mimes = mimes
        self._files: Mapping[str, bytes] | None = files
        self._failed = False

    def _table(self) -> Mapping[str, bytes] | None:
        if self._files is None and not self._failed:
            try:
                if self._binary is None:
                    self._binary = find_weed_binary()
                self._files = read_embedded_static(Path(self._binary).read_bytes())
            except Exception:  # no binary, or not one we can read: static files are unavailable
                self._failed = True
        return self._files

    async def handle(self, req: GoRequest) -> GoResponse:
        files = await trio.to_thread.run_sync(self._table)
        if files is None:
            return GoResponse(501, GoHeader(), b"static assets are not available: no readable weed binary\n")
        path = req.path
        if path == "/seaweedfsstatic":
            return _redirect(req, "/seaweedfsstatic/")
        if path.startswith("/seaweedfsstatic/"):
            path = path[len("/seaweedfsstatic"):]
        return self._serve(req, files, path)

    def _serve(self, req: GoRequest, files: Mapping[str, bytes], url_path: str) -> GoResponse:
        name = posixpath.normpath(url_path if url_path.startswith("/") else "/" + url_path)
        if url_path.endswith("/index.html"):
            return _redirect(req, "./")
        rel = name.lstrip("/")
        is_dir = rel == "" or (rel + "/") in files
        if not is_dir and rel not in files:
            return _not_found()
        if is_dir:
            if not url_path.endswith("/"):
                return _redirect(req, posixpath.basename(url_path) + "/")
            index = (rel + "/" if rel else "") + "index.html"
            if index in files:
                return self._file(req, index, files[index])
            return _dir_list(req, files, rel)
        if url_path.endswith("/"):
            return _redirect(req, "../" + posixpath.basename(url_path.rstrip("/")))
        return self._file(req, rel, files[rel])

    def _file(self, req: GoRequest, name: str, data: bytes) -> GoResponse:
        """http.ServeContent: type by extension (else sniffed), then Go 1.27's Range handling."""
        ext = posixpath.splitext(name)[1]
        ctype = self._mimes.type_by_extension(ext) if ext else ""  # type: ignore[attr-defined]
        if not ctype:
            ctype = detect_content_type(data[:512])
        size = len(data)
        status, body = 200, data
        h = GoHeader()
        h.set("Content-Type", ctype)
        spec = req.header("Range")
        if spec:
            try:
                ranges = parse_serve_range(spec, size)
            except RangeError as exc:
                if exc.no_overlap:
                    h.set("Content-Range", f"bytes */{size}")
                return _plain_error(h, 416, str(exc))
            if sum(length for _, length in ranges) > size:
                ranges = []
            if len(ranges) == 1:
                start, length = ranges[0]
                status, body = 206, data[start:start + length]
                h.set("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
            elif ranges:
                boundary = new_boundary()
                heads, closing, _total = multipart_layout(ranges, ctype, size, boundary)
                body = b"".join(head + data[start:start + length] for head, (start, length) in zip(heads, ranges)) + closing
                status = 206
                h.set("Content-Type", "multipart/byteranges; boundary=" + boundary)
        h.set("Accept-Ranges", "bytes")
        h.set("Content-Length", str(len(body)))
        return GoResponse(status, h, body)


class RangeError(ValueError):
    def __init__(self, message: str, no_overlap: bool = False) -> None:
        super().__init__(message)
        self.no_overlap = no_overlap


def _go_int(text: str) -> int:
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        raise RangeError("invalid range")
    return int(text)


def parse_serve_range(spec: str, size: int) -> list[tuple[int, int]]:
    """net/http's parseRange (Go 1.27): [(start, length)]; RangeError as ServeContent reports it."""
    if not spec.startswith("bytes="):
        raise RangeError("invalid range")
    ranges: list[tuple[int, int]] = []
    no_overlap = False
    for part in spec[len("bytes="):].split(","):
        part = part.strip(" \t")
        if not part:
            continue
        start_s, sep, end_s = part.partition("-")
        if not sep:
            raise RangeError("invalid range")
        start_s, end_s = start_s.strip(" \t"), end_s.strip(" \t")
        if start_s == "":
            if end_s == "" or end_s[0] == "-":
                raise RangeError("invalid range")
            n = _go_int(end_s)
            if n < 0:
                raise RangeError("invalid range")
            n = min(n, size)
            ranges.append((size - n, n))
            continue
        start = _go_int(start_s)
        if start < 0:
            raise RangeError("invalid range")
        if start >= size:
            no_overlap = True
            continue
        if end_s == "":
            ranges.append((start, size - start))
            continue
        end = _go_int(end_s)
        if start > end:
            raise RangeError("invalid range")
        end = min(end, size - 1)
        ranges.append((start, end - start + 1))
    if no_overlap and not ranges:
        raise RangeError("invalid range: failed to overlap", no_overlap=True)
    return ranges


def _plain_error(h: GoHeader, status: int, text: str) -> GoResponse:
    """http.Error: text/plain, nosniff, the message and a newline."""
    h.delete("Content-Length")
    h.set("Content-Type", "text/plain; charset=utf-8")
    h.set("X-Content-Type-Options", "nosniff")
    return GoResponse(status, h, text.encode() + b"\n")


def _redirect(req: GoRequest, location: str) -> GoResponse:
    h = GoHeader()
    if req.url.raw_query:
        location += "?" + req.url.raw_query
    h.set("Location", location)
    return GoResponse(301, h)


def _not_found() -> GoResponse:
    h = GoHeader()
    h.set("Content-Type", "text/plain; charset=utf-8")
    h.set("X-Content-Type-Options", "nosniff")
    return GoResponse(404, h, b"404 page not found\n")


def _dir_list(req: GoRequest, files: Mapping[str, bytes], rel: str) -> GoResponse:
    prefix = rel + "/" if rel else ""
    names = set()
    for full in files:
        if not full.startswith(prefix) or full == prefix:
            continue
        rest = full[len(prefix):]
        head, slash, _ = rest.partition("/")
        names.add(head + slash)
    lines = ["<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n"]
    for n in sorted(names):
        lines.append(f"<a href=\"{path_escape(n)}\">{_html_replace(n)}</a>\n")
    lines.append("</pre>\n")
    h = GoHeader()
    h.set("Content-Type", "text/html; charset=utf-8")
    return GoResponse(200, h, "".join(lines).encode("utf-8"))


def _html_replace(s: str) -> str:
    """net/http's htmlReplacer."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;")
