"""The common read, answered without building Go's full request/response model.

`fast_read` serves `GET|HEAD /<vid>,<fid>` with no query and only plain headers (Host,
User-Agent, Accept, Accept-Encoding, Connection) for a live, uncompressed, pair-less needle of
at most FAST_READ_LIMIT on a local volume, when no read JWT is required and the download limit
is not reached. Go streams a needle over 1 MiB from the file; here it is read from the page
cache and written whole (its CRC checked first, as the full path does): a read and a write of
the bytes, against the full path's thread hop and a wait per socket buffer. The bytes are
exactly what get_or_head + write_response_content + serialize_head produce for that request
(the differential suite runs through both paths); anything else returns None and takes the full
path, so this is purely a shortcut.
"""

from __future__ import annotations

import functools
import re
import time
from typing import TYPE_CHECKING

from native.http._content import _disposition
from native.fileid import filepath_ext
from native.http._read import _http_date
from native.http._sniff import detect_content_type
from native.storage import FLAG_CHUNK_MANIFEST, FLAG_GZIP, FLAG_HAS_PAIRS, PAGED_READ_LIMIT, StorageError
from weedpy.http1 import Request, format_http_date
from weedpy.serve.replies import request_id_bits as _rand32

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["fast_read", "FAST_READ_LIMIT"]

FAST_READ_LIMIT = 4 * 1024 * 1024
"""The largest record the fast read serves: what one answer may hold in memory while a slow
client reads it (a filer's default chunk is 4 MiB)."""

_TARGET = re.compile(rb"/([0-9]{1,10}),([0-9a-f]{9,24})\Z")
_PLAIN = frozenset({b"host", b"user-agent", b"accept", b"accept-encoding", b"connection"})
_PLAIN_SPELT = _PLAIN | {b"-".join(part.capitalize() for part in name.split(b"-")) for name in _PLAIN}
_time = time.time
_time_ns = time.time_ns
_http_date_at = functools.lru_cache(maxsize=4)(format_http_date)


def fast_read(app: "NativeHttp", req: Request) -> tuple[bytes, bytes | memoryview, int] | None:
    """(response head and body, the rest of the body, the record's size) or None: a large body
    is the rest (a view of the record, never joined to the head), a small one is in the first
    part with b"" after. The caller counts the size in the download's bytes in flight until the
    bytes are out (`app.download`), as Go does."""
    m = _TARGET.match(req.target)
    if m is None or not req.keep_alive or req.http_version != b"1.1" or req.chunked or req.content_length:
        return None
    for name, _ in req.headers:
        if name not in _PLAIN_SPELT and name.lower() not in _PLAIN:  # as clients spell them, first
            return None
    download = app.download
    if app.read_key or (download.limit and download.over):
        return None
    vid_text, fid = m.groups()
    vid = int(vid_text)
    if vid > 0xFFFFFFFF:
        return None
    try:
        vol = app.ctx.store.find_volume(vid, blocking=False)  # WouldBlock (a StorageError): the full path
        if vol is None:
            return None
        # a HEAD of a large needle is the full path's: it reads the record's head only
        found = vol.read_plain(int(fid[:-8], 16), FAST_READ_LIMIT if req.method == b"GET" else PAGED_READ_LIMIT)
    except StorageError:
        return None
    if found is None:
        return None
    cookie, data, flags, name, mime, last_modified, crc, record_size = found
    if cookie != int(fid[-8:], 16) or flags & _DECLINED_FLAGS:
        return None
    # Go's headers in its order (sorted by name, then Date and the sniffed type of an untyped GET)
    if name:
        filename = name.decode("latin-1")
        if _TOKEN.match(filename) is not None:  # a token needs no quoting (_inline_disposition, inline)
            disposition = "Content-Disposition: inline; filename=" + filename + "\r\n"
        else:
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
        + "Content-Length: %d\r\n%sEtag: \"%08x\"\r\n%sServer: %s\r\nX-Amz-Request-Id: %X%08X\r\nDate: %s\r\n%s" % (
            len(data), ("Content-Type: " + mtype + "\r\n") if mtype else "", crc,
            ("Last-Modified: " + _last_modified(last_modified) + "\r\n") if last_modified else "",
            app.server, _time_ns(), _rand32(32), _http_date_at(int(_time())), tail)
    ).encode("latin-1", "replace")  # the request id is request_id()'s, the date http_date()'s, inline
    if req.method == b"HEAD":
        return wire, b"", record_size
    if type(data) is bytes:
        return wire + data, b"", record_size
    return wire, data, record_size


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
