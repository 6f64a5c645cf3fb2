"""GET/HEAD of a file id: Go's GetOrHeadHandler, step for step.

Order: JWT (read key) -> vid/fid parse -> not local (404 / proxy / redirect) -> index lookup
(in-flight bytes counted from here) -> read (metadata only for records > 1 MiB that need no
transformation) -> cookie -> Last-Modified / If-Modified-Since / If-None-Match -> ETag -> pairs
-> chunk manifest -> name, MIME, gzip handling -> crop, resize -> body with ranges.
"""

from __future__ import annotations

import functools
import json
import time
from typing import TYPE_CHECKING

import trio

from native.fileid import FidError, filepath_ext, new_volume_id, parse_path, parse_url_path
from native.gostrconv import NumError
from native.http._common import empty, json_error, set_etag, storage_call
from native.http._content import BytesContent, ContentError, FileBody, write_response_content
from native.http._gzip import GunzipError, gunzip_data, is_gzipped
from native.http._images import crop_params, cropped, resize_params, resized
from native.http._manifest import ChunkedContent, ManifestError, load_chunk_manifest
from native.http._request import GoRequest
from native.storage import PAGED_READ_LIMIT, NotFound, StorageError
from weedpy.http1 import GoHeader, GoResponse, format_http_date

if TYPE_CHECKING:
    from native.http.app import NativeHttp, Scope

__all__ = ["get_or_head", "respond", "DropConnection"]

_STREAM_CHUNK = 1 << 20


class DropConnection(Exception):
    """Go's handler panicked: the server closes the connection without a response."""


@functools.lru_cache(maxsize=1024)
def _http_date(ts: int) -> str:
    return format_http_date(ts)


def _parse_http_date(s: str) -> int | None:
    """time.Parse(http.TimeFormat, s).Unix(): exactly `Mon, 02 Jan 2006 15:04:05 GMT`."""
    try:
        t = time.strptime(s, "%a, %d %b %Y %H:%M:%S GMT")
    except ValueError:
        return None
    if len(s) != 29:
        return None
    import calendar  # loads with the first If-Modified-Since, as strptime's own modules do (start-up time)

    return calendar.timegm(t)


class _StreamContent:
    """A large needle's data on `.dat`, its CRC checked before (Go checks it only after sending
    a whole body, and not at all for a range): whole ranges go out with sendfile; multipart
    ranges are read in worker threads."""

    __slots__ = ("stream", "size", "chunk")

    def __init__(self, stream, chunk: int) -> None:
        self.stream = stream
        self.size = stream.data_size
        self.chunk = chunk

    def file_range(self, start: int, length: int) -> FileBody:
        return FileBody(self.stream.fd, self.stream.data_offset + start, length, cached=self.stream.verified)

    async def chunks(self, offset: int, length: int):
        it = self.stream.iter_chunks(offset, length, self.chunk)
        while True:
            try:
                piece = await trio.to_thread.run_sync(next, it, None)
            except StorageError as exc:
                raise ContentError(str(exc)) from None
            if piece is None:
                return
            yield piece


def _not_found(app: "NativeHttp", h: GoHeader, *, invalid: bool = False) -> GoResponse:
    """Go's NotFound(w), counted (`invalid`: the needle id is unknown, not deleted or mismatched)."""
    app.ctx.metrics.not_found(invalid=invalid)
    return empty(h, 404)


def _internal(app: "NativeHttp", h: GoHeader, exc: BaseException | None = None) -> GoResponse:
    """Go's InternalError(w), counted."""
    app.ctx.metrics.internal_error(exc)
    return empty(h, 500)


async def get_or_head(app: "NativeHttp", req: GoRequest, h: GoHeader, scope: "Scope") -> GoResponse:
    try:
        up = parse_url_path(req.path)
    except ValueError:
        raise DropConnection from None
    if not app.jwt_ok(req, up.vid, up.fid, write=False):
        return json_error(h, req, 401, "wrong jwt")
    try:
        vid = new_volume_id(up.vid)
        key, cookie = parse_path(up.fid)
    except (NumError, FidError):
        return empty(h, 400)
    store = app.ctx.store
    vol = await storage_call(store.find_volume, vid)
    if vol is None:
        if store.ec.has(vid):  # an EC volume held here (Go: hasEcVolume)
            return await ec_get_or_head(app, req, h, scope, vid, key, cookie, up)
        if app.read_mode == "local":
            return _not_found(app, h, invalid=True)
        return await app.proxy_or_redirect(req, h, scope, up.vid, up.fid)
    has_query = req.url.raw_query != ""
    read_deleted = has_query and req.form_value("readDeleted") == "true"
    ext = up.ext
    filename = up.filename
    lower_ext = ext.lower()
    image_op = has_query and _image_op(lower_ext, req)
    attempt_meta = req.method == "HEAD" or not image_op

    nv = await storage_call(vol.needle_value, key)
    if nv is None or nv.offset == 0:
        return _not_found(app, h, invalid=True)
    size = nv.size
    if size < 0:
        if read_deleted and size != -1:
            size = -size
        else:
            return _not_found(app, h)  # Go: ErrorDeleted
    stream = None
    if size == 0:  # empty: read_needle checks only that its record says so
        try:
            n = await storage_call(vol.read_needle, key, None, read_deleted=read_deleted)
        except NotFound:
            return _not_found(app, h, invalid=True)
        except (StorageError, OSError) as exc:
            return _internal(app, h, exc)
        n = n.replace(cookie=cookie)
    else:
        app.download.add(size)
        scope.on_done(lambda: app.download.release(size))
        try:
            if getattr(vol, "is_remote", False):  # tiered: ranged GETs from remote storage, never on the event loop
                n = await trio.to_thread.run_sync(lambda: vol.read_needle(key, None, read_deleted=read_deleted))
            elif attempt_meta and size > PAGED_READ_LIMIT:
                stream = await storage_call(vol.open_needle_stream, key, None, read_deleted=read_deleted)
                n = stream.needle
                if n.is_compressed or n.is_chunk_manifest:
                    stream.close()
                    stream = None
                    n = await trio.to_thread.run_sync(lambda: vol.read_needle(key, None, read_deleted=read_deleted))
                else:
                    scope.on_done(stream.close)
                    if req.method != "HEAD":  # no wrong byte goes out: the CRC before the first one
                        await trio.to_thread.run_sync(stream.verify)
            elif size > PAGED_READ_LIMIT:
                n = await trio.to_thread.run_sync(lambda: vol.read_needle(key, None, read_deleted=read_deleted))
            else:
                n = await storage_call(vol.read_needle, key, None, read_deleted=read_deleted)
        except NotFound:
            return _not_found(app, h, invalid=True)
        except (StorageError, OSError) as exc:
            return _internal(app, h, exc)
    return await respond(app, req, h, n, cookie, stream, filename=filename, ext=ext, has_query=has_query)


async def respond(app: "NativeHttp", req: GoRequest, h: GoHeader, n, cookie: int, stream, *, filename: str, ext: str,
                  has_query: bool) -> GoResponse:
    """Everything after the read: cookie, conditionals, headers, manifest, gzip, images, body."""
    if n.cookie != cookie:
        return _not_found(app, h)
    if n.last_modified != 0:
        h.set("Last-Modified", _http_date(n.last_modified))
        ims = req.header("If-Modified-Since")
        if ims != "":
            t = _parse_http_date(ims)
            if t is not None and t >= n.last_modified:
                return empty(h, 304)
    etag = n.etag
    if req.header("If-None-Match") == f'"{etag}"':
        return empty(h, 304)
    set_etag(h, etag)
    if n.has_pairs:
        try:
            pairs = json.loads(n.pairs)
        except (ValueError, UnicodeDecodeError):
            pairs = {}
        if isinstance(pairs, dict):
            for k, v in pairs.items():
                if isinstance(v, str):
                    h.set(k.encode("utf-8").decode("latin-1"), v.encode("utf-8").decode("latin-1"))

    data = n.data
    if n.is_chunk_manifest and req.query.get("cm") != "false":
        resp = await _chunked_file(app, req, h, data, n.is_compressed, filename, ext)
        if resp is not None:
            return resp
    if n.name and filename == "":
        filename = n.name.decode("latin-1")
        if ext == "":
            ext = filepath_ext(filename)
    mtype = ""
    if n.mime:
        mt = n.mime.decode("latin-1")
        if not mt.startswith("application/octet-stream"):
            mtype = mt
    lower_ext = ext.lower()
    if n.is_compressed:
        image_op = has_query and _image_op(lower_ext, req)
        if not image_op and "gzip" in req.header("Accept-Encoding") and is_gzipped(data):
            h.set("Content-Encoding", "gzip")
        else:
            data = _decompress(data)
    if stream is None:
        if has_query:
            data = _transform_images(data, lower_ext, req)
        return await write_response_content(h, req, filename, mtype, BytesContent(data), app.mimes)
    return await write_response_content(h, req, filename, mtype, _StreamContent(stream, app.read_buffer), app.mimes)


def _image_op(lower_ext: str, req: GoRequest) -> bool:
    return resize_params(lower_ext, req.form_value)[3] or crop_params(lower_ext, req.form_value)[4]


def _decompress(data: bytes) -> bytes:
    """util.DecompressData: gunzip gzip data; a failure leaves nothing (Go assigns nil)."""
    if not is_gzipped(data):
        return data  # UnsupportedCompression: Go keeps the input
    try:
        return gunzip_data(data)
    except GunzipError:
        return b""


def _transform_images(data: bytes, lower_ext: str, req: GoRequest) -> bytes:
    x1, y1, x2, y2, crop = crop_params(lower_ext, req.form_value)
    if crop:
        data = cropped(lower_ext, data, x1, y1, x2, y2)
    w, hh, mode, resize = resize_params(lower_ext, req.form_value)
    if resize:
        data = resized(lower_ext, data, w, hh, mode)
    return data


async def _chunked_file(app: "NativeHttp", req: GoRequest, h: GoHeader, data: bytes, compressed: bool,
                        filename: str, ext: str) -> GoResponse | None:
    try:
        cm = load_chunk_manifest(data, compressed)
    except ManifestError:
        return None
    if filename == "" and cm.name != "":
        filename = cm.name
    if ext == "":
        ext = filepath_ext(filename)
    mtype = ""
    if cm.mime != "" and not cm.mime.startswith("application/octet-stream"):
        mtype = cm.mime
    h.set("X-File-Store", "chunked")
    content = ChunkedContent(cm.chunks, app.chunk_url, app.chunk_get)
    lower_ext = ext.lower()
    if crop_params(lower_ext, req.form_value)[4] or resize_params(lower_ext, req.form_value)[3]:
        buf = bytearray()
        try:
            async for piece in content.chunks(0, content.size):
                buf += piece
        except ContentError:
            buf = bytearray()
        transformed = _transform_images(bytes(buf), lower_ext, req)
        return await write_response_content(h, req, filename, mtype, BytesContent(transformed), app.mimes)
    return await write_response_content(h, req, filename, mtype, content, app.mimes)


async def ec_get_or_head(app: "NativeHttp", req: GoRequest, h: GoHeader, scope: "Scope", vid: int, key: int,
                         cookie: int, up) -> GoResponse:
    """Go's GetOrHeadHandler on an EC volume held here: the needle's shard intervals (locally, from
    peers, or rebuilt; see `native.ec_net`), then the same answer as for a normal volume (no
    streaming path and no `readDeleted`, as in Go)."""
    ctx = app.ctx
    ev = ctx.store.ec.find_volume(vid)
    if ev is None:
        return _not_found(app, h, invalid=True)
    try:
        _, size = await storage_call(ev.find_needle, key)
    except NotFound:
        return _not_found(app, h, invalid=True)
    except (StorageError, OSError) as exc:
        return _internal(app, h, exc)
    if size < 0:
        return _not_found(app, h)
    app.download.add(size)
    scope.on_done(lambda: app.download.release(size))
    from native.ec_net import read_ec_needle  # erasure coding loads with the first EC read (start-up time)

    try:
        n = await read_ec_needle(ctx, vid, key)
    except NotFound:
        return _not_found(app, h, invalid=True)
    except (StorageError, OSError, ValueError) as exc:
        return _internal(app, h, exc)
    return await respond(app, req, h, n, cookie, None, filename=up.filename, ext=up.ext,
                         has_query=req.url.raw_query != "")
