"""The common read, answered without building Go's full request/response model.

`fast_read` serves `GET|HEAD /<vid>,<fid>` with no query and only plain headers (Host,
User-Agent, Accept, Accept-Encoding, Connection) for a live, uncompressed, pair-less needle of
at most 1 MiB on a local volume, when no read JWT or download limit is in play. The bytes are
exactly what get_or_head + write_response_content + serialize_head produce for that request
(the differential suite runs through both paths); anything else returns None and takes the full
path, so this is purely a shortcut.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from native.http._content import _disposition
from native.fileid import filepath_ext
from native.http._read import PAGED_READ_LIMIT, _http_date
from native.http._sniff import detect_content_type
from native.storage import FLAG_CHUNK_MANIFEST, FLAG_GZIP, FLAG_HAS_PAIRS, StorageError
from weedpy.http1 import Request, http_date
from weedpy.serve.replies import request_id

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["fast_read"]

_TARGET = re.compile(rb"/([0-9]{1,10}),([0-9a-f]{9,24})\Z")
_PLAIN = frozenset({b"host", b"user-agent", b"accept", b"accept-encoding", b"connection"})


def fast_read(app: "NativeHttp", req: Request) -> tuple[bytes, int] | None:
    """(response bytes, in-flight bytes the caller must release after sending) or None."""
    m = _TARGET.match(req.target)
    if m is None or not req.keep_alive or req.http_version != b"1.1" or req.chunked or req.content_length:
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
    try:
        vol = app.ctx.store.find_volume(vid, blocking=False)  # WouldBlock (a StorageError): the full path
        if vol is None:
            return None
        found = vol.read_plain(int(fid[:-8], 16), PAGED_READ_LIMIT)
    except StorageError:
        return None
    if found is None:
        return None
    cookie, data, flags, name, mime, last_modified, crc, record_size = found
    if cookie != int(fid[-8:], 16) or flags & _DECLINED_FLAGS:
        return None
    app.download.add(record_size)  # released by the caller once the bytes are out
    # Go's headers in its order (sorted by name, then Date and the sniffed type of an untyped GET)
    if name:
        filename = name.decode("latin-1")
        disposition = "Content-Disposition: " + _inline_disposition(filename) + "\r\n"
    else:
        filename = disposition = ""
    mtype = ""
    if mime:
        mtype = mime.decode("latin-1")
        if mtype.startswith("application/octet-stream"):
            mtype = ""
    if not mtype and filename:
        ext = filepath_ext(filename)
        if ext:
            mtype = app.mimes.type_by_extension(ext)
    tail = "\r\n"
    if not mtype and req.method == b"GET":  # HEAD writes no body, so Go sniffs nothing
        tail = "Content-Type: " + detect_content_type(data[:512]) + "\r\n\r\n"
    wire = (
        "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\n" + disposition
        + "Content-Length: %d\r\n%sEtag: \"%08x\"\r\n%sServer: %s\r\nX-Amz-Request-Id: %s\r\nDate: %s\r\n%s" % (
            len(data), ("Content-Type: " + mtype + "\r\n") if mtype else "", crc,
            ("Last-Modified: " + _last_modified(last_modified) + "\r\n") if last_modified else "",
            app.server, request_id(), http_date(), tail)
    ).encode("latin-1", "replace")
    if req.method == b"HEAD":
        return wire, record_size
    return wire + data, record_size


_DECLINED_FLAGS = FLAG_HAS_PAIRS | FLAG_GZIP | FLAG_CHUNK_MANIFEST
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+\Z")


def _inline_disposition(filename: str) -> str:
    """`inline; filename=...` as mime.FormatMediaType writes it; a token needs no quoting."""
    if _TOKEN.match(filename) is not None:
        return "inline; filename=" + filename
    return _disposition("inline", filename)


@functools.lru_cache(maxsize=64)
def _last_modified(ts: int) -> str:
    return _http_date(ts)
