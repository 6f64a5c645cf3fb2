"""Body writing for reads: Go's writeResponseContent, streamWriteResponseContent and
ProcessRangeRequest over a content source (bytes in memory, a needle streamed from `.dat`, or a
chunked file assembled from other needles).

Go writes through a 128 KiB buffer: an error before that much has gone out still becomes a 500
`http.Error` (with whatever was buffered appended after the message); after it, the response is
already committed and the body just ends.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import trio

from native.fileid import filepath_ext
from native.gostrconv import NumError, parse_bool
from native.http._common import http_error
from native.http._mediatype import format_media_type
from native.http._mime import MimeTable
from native.http._range import NoOverlap, RangeError, content_range, multipart_layout, new_boundary, parse_range
from native.http._request import GoRequest
from weedpy.http1 import GoHeader, GoResponse

__all__ = ["Content", "BytesContent", "FileBody", "write_response_content", "PASSTHROUGH", "ContentError", "COMMIT_BUFFER"]

COMMIT_BUFFER = 128 * 1024

PASSTHROUGH = {
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
    "response-content-language": "Content-Language",
    "response-content-type": "Content-Type",
    "response-expires": "Expires",
}


class ContentError(Exception):
    """Reading the content failed; str() is the text Go would put in http.Error."""


class Content(Protocol):
    size: int

    def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """The bytes [offset, offset+length); raises ContentError on failure."""


class FileBody:
    """A response body that is a byte range of an open file: sent with sendfile(2) by the app,
    or iterated (pread in worker threads) where that is not possible. `cached`: its pages were
    just read (a verified needle), so sendfile cannot wait on the disk and runs on the event loop
    instead of a worker thread per socket buffer's worth."""

    __slots__ = ("fd", "offset", "count", "cached")

    def __init__(self, fd: int, offset: int, count: int, cached: bool = False) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
        self.cached = cached

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        pos, end = self.offset, self.offset + self.count
        while pos < end:
            piece = await trio.to_thread.run_sync(os.pread, self.fd, min(end - pos, 4 << 20), pos)
            if not piece:
                raise ContentError("unexpected EOF")
            pos += len(piece)
            yield piece


class BytesContent:
    __slots__ = ("data", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        if length > 0:
            yield self.data[offset:offset + length]


@functools.lru_cache(maxsize=1024)
def _disposition(kind: str, filename: str) -> str:
    return format_media_type(kind, {"filename": filename})


def adjust_passthrough_headers(h: GoHeader, req: GoRequest, filename: str) -> None:
    if req.url.raw_query:
        for key, values in req.query.values.items():
            name = PASSTHROUGH.get(key.lower())
            if name is not None and values:
                h.set(name, values[0])
        if h.get("Content-Disposition"):
            return
    if filename != "":
        kind = "inline"
        dl = req.form_value("dl")
        if dl != "":
            try:
                if parse_bool(dl):
                    kind = "attachment"
            except NumError:
                pass
        h.set("Content-Disposition", _disposition(kind, filename))


async def _prime(it: AsyncIterator[bytes], want: int) -> tuple[bytes, AsyncIterator[bytes] | None, ContentError | None]:
    """Pull up to `want` bytes ahead of sending: (prefix, rest or None when exhausted, error)."""
    buf = bytearray()
    try:
        while len(buf) < want:
            piece = await it.__anext__()
            buf += piece
    except StopAsyncIteration:
        return bytes(buf), None, None
    except ContentError as exc:
        return bytes(buf), None, exc
    return bytes(buf), it, None


async def _chain(prefix: bytes, rest: AsyncIterator[bytes] | None, on_error: Callable[[ContentError], None]) -> AsyncIterator[bytes]:
    if prefix:
        yield prefix
    if rest is None:
        return
    try:
        async for piece in rest:
            yield piece
    except ContentError as exc:
        on_error(exc)
        raise


async def _stream_body(h: GoHeader, status: int, content: Content, offset: int, length: int,
                       length_header: bool) -> GoResponse:
    """A streamed 200/206 body, failing over to http.Error while nothing is committed."""
    it = content.chunks(offset, length).__aiter__()
    prefix, rest, err = await _prime(it, COMMIT_BUFFER)
    if err is not None:
        if status == 206:
            # WriteHeader(206) already ran in Go: the body just ends short.
            return GoResponse(status, h, stream=_chain(prefix, None, lambda e: None),
                              stream_length=length if length_header else None, sniff_prefix=prefix)
        h.delete("Content-Length")
        resp = http_error(h, 500, str(err))
        resp.body += prefix
        return resp
    return GoResponse(status, h, stream=_chain(prefix, rest, lambda e: None),
                      stream_length=length if length_header else None, sniff_prefix=prefix)


def _file_body(h: GoHeader, status: int, body: FileBody) -> GoResponse:
    prefix = b""
    if not h.has("Content-Type") and not h.get("Content-Encoding"):
        prefix = os.pread(body.fd, min(512, body.count), body.offset)
    return GoResponse(status, h, stream=body, stream_length=body.count, sniff_prefix=prefix)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


async def write_response_content(
    h: GoHeader, req: GoRequest, filename: str, mime_type: str, content: Content, mimes: MimeTable,
) -> GoResponse:
    total = content.size
    if mime_type == "":
        ext = filepath_ext(filename)
        if ext != "":
            mime_type = mimes.type_by_extension(ext)
    if mime_type != "":
        h.set("Content-Type", mime_type)
    h.set("Accept-Ranges", "bytes")
    adjust_passthrough_headers(h, req, filename)
    if req.method == "HEAD":
        h.set("Content-Length", str(total))
        return GoResponse(200, h)
    in_memory = isinstance(content, BytesContent)
    range_req = req.header("Range")
    file_range = getattr(content, "file_range", None)
    if range_req == "":
        h.set("Content-Length", str(total))
        if in_memory:
            return GoResponse(200, h, content.data)  # type: ignore[attr-defined]
        if file_range is not None:
            return _file_body(h, 200, file_range(0, total))
        return await _stream_body(h, 200, content, 0, total, True)
    try:
        ranges = parse_range(range_req, total)
    except NoOverlap as exc:
        h.set("Content-Range", f"bytes */{total}")
        return http_error(h, 416, str(exc))
    except RangeError as exc:
        return http_error(h, 416, str(exc))
    if sum(length for _, length in ranges) > total or not ranges:
        return GoResponse(200, h)
    if len(ranges) == 1:
        start, length = ranges[0]
        h.set("Content-Length", str(length))
        h.set("Content-Range", content_range(start, length, total))
        if length < 0:
            # A negative suffix length: net/http drops the invalid Content-Length and the
            # handler writes nothing, so the 206 goes out chunked and empty.
            h.delete("Content-Length")
            return GoResponse(206, h, stream=_nothing())
        if in_memory:
            return GoResponse(206, h, content.data[start:start + length])  # type: ignore[attr-defined]
        if file_range is not None:
            return _file_body(h, 206, file_range(start, length))
        return await _stream_body(h, 206, content, start, length, True)
    for start, _ in ranges:
        if start > total:
            return http_error(h, 416, "Out of Range")
    boundary = new_boundary()
    heads, closing, send_size = multipart_layout(ranges, mime_type, total, boundary)
    h.set("Content-Type", "multipart/byteranges; boundary=" + boundary)
    has_length = h.get("Content-Encoding") in (None, "")
    if has_length:
        h.set("Content-Length", str(send_size))
    if send_size < 0 and has_length:
        h.delete("Content-Length")
    if in_memory:
        data = content.data  # type: ignore[attr-defined]
        parts = []
        for head, (start, length) in zip(heads, ranges):
            parts.append(head)
            parts.append(data[start:start + max(length, 0)])
        parts.append(closing)
        body = b"".join(parts)
        if has_length:
            body = body[:max(send_size, 0)]
        return GoResponse(206, h, body)

    async def multipart_stream() -> AsyncIterator[bytes]:
        for head, (start, length) in zip(heads, ranges):
            yield head
            async for piece in content.chunks(start, length):
                yield piece
        yield closing

    return GoResponse(206, h, stream=multipart_stream(), stream_length=send_size if has_length else None)
