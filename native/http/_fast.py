"""The common read, answered without building Go's full request/response model.

`fast_read` serves `GET|HEAD /<vid>,<fid>` with no query and only plain headers (Host,
User-Agent, Accept, Accept-Encoding, Connection) for a live, uncompressed, pair-less needle of
at most 1 MiB on a local volume, when no read JWT or download limit is in play. The bytes are
exactly what get_or_head + write_response_content + serialize_head produce for that request
(the differential suite runs through both paths); anything else returns None and takes the full
path, so this is purely a shortcut.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from native.http._common import request_id
from native.http._content import _disposition
from native.http._fid import filepath_ext
from native.http._read import PAGED_READ_LIMIT, _http_date
from native.http._sniff import detect_content_type
from native.storage import StorageError
from weedpy.http1 import Request, http_date

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["fast_read"]

_TARGET = re.compile(rb"/([0-9]{1,10}),([0-9a-f]{9,24})\Z")
_PLAIN = frozenset({b"host", b"user-agent", b"accept", b"accept-encoding", b"connection"})


def fast_read(app: "NativeHttp", req: Request) -> tuple[bytes, int] | None:
    """(response bytes, in-flight bytes the caller must release after sending) or None."""
    m = _TARGET.match(req.target)
    if m is None or not req.keep_alive or req.http_version != b"1.1" or req.has_body:
        return None
    for name, _ in req.headers:
        if name.lower() not in _PLAIN:
            return None
    if app.read_key or app.download.over:
        return None
    vid = int(m.group(1))
    if vid > 0xFFFFFFFF:
        return None
    fid = m.group(2)
    key = int(fid[:-8], 16)
    cookie = int(fid[-8:], 16)
    vol = app.ctx.store.find_volume(vid)
    if vol is None:
        return None
    nv = vol.needle_value(key)
    if nv is None or nv.offset == 0 or nv.size <= 0 or nv.size > PAGED_READ_LIMIT:
        return None
    try:
        n = vol.read_needle(key, None)
    except StorageError:
        return None
    if n.cookie != cookie or n.has_pairs or n.is_compressed or n.is_chunk_manifest:
        return None
    app.download.add(nv.size)  # released by the caller once the bytes are out
    lines = ["HTTP/1.1 200 OK", "Accept-Ranges: bytes"]
    filename = n.name.decode("latin-1") if n.name else ""
    if filename:
        lines.append("Content-Disposition: " + _disposition("inline", filename))
    data = n.data
    lines.append(f"Content-Length: {len(data)}")
    mtype = ""
    if n.mime:
        mt = n.mime.decode("latin-1")
        if not mt.startswith("application/octet-stream"):
            mtype = mt
    if mtype == "" and filename:
        ext = filepath_ext(filename)
        if ext:
            mtype = app.mimes.type_by_extension(ext)
    if mtype:
        lines.append("Content-Type: " + mtype)
    lines.append(f'Etag: "{n.etag}"')
    if n.last_modified:
        lines.append("Last-Modified: " + _http_date(n.last_modified))
    lines.append("Server: " + app.server)
    lines.append("X-Amz-Request-Id: " + request_id())
    lines.append("Date: " + http_date())
    if not mtype and data and req.method == b"GET":  # HEAD writes no body, so Go sniffs nothing
        lines.append("Content-Type: " + detect_content_type(data[:512]))
    lines.append("\r\n")
    head = "\r\n".join(lines).encode("latin-1", "replace")
    if req.method == b"HEAD":
        return head, nv.size
    return head + data, nv.size
