"""The native server's control-plane HTTP endpoints, installed into `NativeHttp` by the server.

    install(app, weed_binary=path)

- `/healthz`, `/readyz`: 200 once the master connection is up; 503 before it, once stopping, and
  after VolumeServerLeave (Go: the port only opens after the master answered, and 503 when
  stopping or not heartbeating).
- `/ui/index.html`: the status page (our own template, with Go's title, links and tables).
- `/favicon.ico`, `/seaweedfsstatic/*`: Go's embedded `weed/static` files, served as Go's
  http.FileServer serves them (type by extension, `Accept-Ranges: bytes`, directory listings,
  Go's redirects, `404 page not found`). The bytes are read from the `weed` binary's embed table
  on first use; without a binary these answer 501.
- `/status` stays with `native/http/_admin.py`. `/stats/counter|memory|disk` are commented out
  in Go 4.48, so they reach the read handler there and here alike (400, or 401 under a read JWT).
"""

from __future__ import annotations

import html
import os
import posixpath
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from native.http._common import empty
from native.http._gourl import path_escape
from native.http._range import multipart_layout, new_boundary
from native.http._request import GoRequest
from native.http._sniff import detect_content_type
from weedpy.http1 import GoHeader, GoResponse
from weedpy.weedbin import find_weed_binary

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["install", "healthz", "EmbeddedStatic", "read_embedded_static", "render_ui", "parse_serve_range", "RangeError"]

_START = time.monotonic()


def install(app: "NativeHttp", *, weed_binary: str | os.PathLike[str] | None = None) -> None:
    """Route the control-plane endpoints of a native server to this module."""

    async def health(req: GoRequest, h: GoHeader) -> GoResponse:
        return healthz(app, h)

    async def ui(req: GoRequest, h: GoHeader) -> GoResponse:
        return GoResponse(200, h, render_ui(app).encode("utf-8"))

    app.admin_extra["/healthz"] = health
    app.admin_extra["/readyz"] = health
    app.admin_extra["/ui/index.html"] = ui
    static = EmbeddedStatic(weed_binary, app.mimes)
    app.static_files = static.handle


def healthz(app: "NativeHttp", h: GoHeader) -> GoResponse:
    st = app.ctx.state
    ok = st.master_connected and not st.stopping and not st.heartbeat_stopped
    return empty(h, 200 if ok else 503)


# -- the status page ------------------------------------------------------------------------------


def _human(n: int) -> str:
    """Go's util.BytesToHumanReadable: 1024-based, two decimals."""
    unit = 1024
    if n < unit:
        return f"{n} B"
    div, exp = unit, 0
    m = n // unit
    while m >= unit:
        div *= unit
        exp += 1
        m //= unit
    return f"{n / div:.2f} {'KMGTPE'[exp]}iB"


def _uptime() -> str:
    secs = int(time.monotonic() - _START)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"


def render_ui(app: "NativeHttp") -> str:
    ctx = app.ctx
    e = html.escape
    version = ctx.full_version or ctx.version
    masters = ", ".join(e(m) for m in ctx.cfg.masters)
    disks = []
    volumes = []
    for disk_id, loc in enumerate(ctx.store.locations):
        try:
            st = loc.status()
        except OSError:
            continue
        pct = st.used / st.all * 100 if st.all else 0.0
        disks.append(
            f"<tr><td>{e(os.path.abspath(loc.directory))}</td><td>{e(loc.disk_type or 'hdd')}</td>"
            f"<td>{_human(st.all)}</td><td>{_human(st.free)}</td><td>{pct:.2f}%</td></tr>"
        )
        for v in loc.volumes():
            s = v.stats()
            volumes.append((s.id, (
                f"<tr><td><code>{s.id}</code></td><td>{e(s.collection)}</td><td>{e(loc.disk_type or 'hdd')}</td>"
                f"<td>{_human(s.content_size)}</td><td>{s.file_count}</td><td>{s.delete_count} / {_human(s.deleted_bytes)}</td>"
                f"<td>{e(str(s.ttl))}</td><td>{'yes' if s.read_only else ''}</td><td>{disk_id}</td></tr>"
            )))
    rows = "\n".join(r for _, r in sorted(volumes))
    return f"""<!DOCTYPE html>
<html>

<head>
    <title>SeaweedFS {e(version)}</title>
    <link rel="stylesheet" href="/seaweedfsstatic/bootstrap/3.3.1/css/bootstrap.min.css">
    <script type="text/javascript" src="/seaweedfsstatic/javascript/jquery-3.6.0.min.js"></script>
    <script type="text/javascript"
        src="/seaweedfsstatic/javascript/jquery-sparklines/2.1.2/jquery.sparkline.min.js"></script>
    <style>
        #jumbotron {{ margin-top: 10px; }}
        .table-condensed td, .table-condensed th {{ padding: 2px 6px; }}
        td code {{ white-space: nowrap; }}
    </style>
</head>

<body>
    <div class="container">
        <div class="page-header">
            <h1><a href="https://github.com/seaweedfs/seaweedfs"><img src="/seaweedfsstatic/seaweed50x50.png"></img></a>
                SeaweedFS <small>{e(version)}</small></h1>
        </div>
        <div class="row">
            <div class="col-sm-6">
                <h2>Disk Stats</h2>
                <table class="table table-striped">
                    <thead><tr><th>Path</th><th>Disk</th><th>Total</th><th>Free</th><th>Usage</th></tr></thead>
                    <tbody>
{chr(10).join(disks)}
                    </tbody>
                </table>
            </div>
            <div class="col-sm-6">
                <h2>System Stats</h2>
                <table class="table table-condensed table-striped">
                    <tr><th>Masters</th><td>{masters}</td></tr>
                    <tr><th>Up Time</th><td>{_uptime()}</td></tr>
                </table>
            </div>
        </div>
        <div class="row">
            <h2>Volumes</h2>
            <table class="table table-striped">
                <thead><tr><th>Id</th><th>Collection</th><th>Disk</th><th>Data Size</th><th>Files</th><th>Trash</th><th>TTL</th><th>ReadOnly</th><th>Disk Id</th></tr></thead>
                <tbody>
{rows}
                </tbody>
            </table>
        </div>
        <div class="row">
            <h2>Remote Volumes</h2>
            <table class="table table-striped">
                <thead><tr><th>Id</th><th>Collection</th><th>Size</th><th>Files</th><th>Trash</th><th>Remote</th><th>Key</th></tr></thead>
                <tbody>
                </tbody>
            </table>
        </div>
        <div class="row">
            <h2>Erasure Coding Shards</h2>
            <table class="table table-striped">
                <thead><tr><th>Id</th><th>Collection</th><th>Total Size</th><th>Shard Details</th><th>CreatedAt</th></tr></thead>
                <tbody>
                </tbody>
            </table>
        </div>
    </div>
</body>

</html>
"""


# -- embedded static files ------------------------------------------------------------------------

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
