"""The upload side of a POST/PUT, as Go's PostHandler sees it: ParseForm, then ParseUpload.

`parse_form` reproduces r.ParseForm (an x-www-form-urlencoded body is consumed into the form);
`parse_upload` reproduces needle.ParseUpload: multipart (first part, or the first later part with
a filename) or raw body, the size limit, file name and MIME rules, `Seaweed-*` pairs, gzip
detection and Go's auto-gzip policy, and the Content-MD5 check. Failures raise `UploadError`
with Go's message (the handler answers 400 `{"error": message}`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable

from native.gostrconv import NumError, parse_bool, parse_uint
from native.http._gourl import parse_query, Query
from native.http._gzip import GunzipError, gunzip_data, gzip_data
from native.http._mediatype import MediaTypeError, parse_media_type
from native.http._mime import MimeTable
from native.http._multipart import GoIOError, MultipartReader, path_base
from native.http._request import GoRequest
from native.http._sniff import detect_content_type

__all__ = ["UploadError", "ParsedUpload", "parse_form", "parse_upload", "is_compressable", "path_base"]

Source = Callable[[], Awaitable[bytes]]
MAX_FORM_SIZE = 10 << 20
PAIR_PREFIX = "Seaweed-"


class UploadError(Exception):
    """ParseForm / ParseUpload failed; str() is Go's error text."""


@dataclasses.dataclass(slots=True)
class ParsedUpload:
    file_name: str = ""
    data: bytes = b""
    mime_type: str = ""
    pair_map: dict[str, str] = dataclasses.field(default_factory=dict)
    is_gzipped: bool = False
    original_size: int = 0
    modified_time: int = 0
    ttl: str = ""
    is_chunked: bool = False
    content_md5: str = ""
    uncompressed: bytes = b""


async def _read_all(source: Source, limit: int) -> tuple[bytes, GoIOError | None]:
    """Up to `limit` bytes of the body (io.LimitReader + ReadFrom)."""
    out = bytearray()
    while len(out) < limit:
        try:
            chunk = await source()
        except GoIOError as exc:
            return bytes(out), exc
        if not chunk:
            break
        out += chunk
    if len(out) > limit:
        # The source handed us more than asked for; keep exactly `limit`, as a LimitReader would.
        return bytes(out[:limit]), None
    return bytes(out), None


async def parse_form(req: GoRequest, source: Source) -> None:
    """r.ParseForm(); sets req.form and raises UploadError with the first error, like Go."""
    err: str | None = None
    post: Query | None = None
    if req.method in ("POST", "PUT", "PATCH"):
        ct = req.header("Content-Type") or "application/octet-stream"
        try:
            mt, _ = parse_media_type(ct)
        except MediaTypeError as exc:
            mt, err = "", str(exc)
        if mt == "application/x-www-form-urlencoded":
            body, rerr = await _read_all(source, MAX_FORM_SIZE + 1)
            if rerr is not None:
                err = err or str(rerr)
            elif len(body) > MAX_FORM_SIZE:
                req.form = req.query
                raise UploadError("http: POST too large")
            else:
                post = parse_query(body.decode("latin-1"))
                err = err or post.error
    q = parse_query(req.url.raw_query)
    if post is not None and post.values:
        merged: dict[str, list[str]] = {k: list(v) for k, v in post.values.items()}
        for k, v in q.values.items():
            merged.setdefault(k, []).extend(v)
        req.form = Query(merged, None)
    else:
        req.form = Query(q.values, None)
    err = err or q.error
    if err is not None:
        raise UploadError(err)


def _clean_windows_base(name: str) -> str:
    return path_base(name.replace("\\", "/"))


def is_compressable(ext: str, mtype: str) -> tuple[bool, bool]:
    """util.IsCompressableFileType -> (should compress, sure)."""
    if mtype.startswith("text/"):
        return True, True
    if ext in (".svg", ".bmp", ".wav"):
        return True, True
    if mtype.startswith("image/"):
        return False, True
    if ext in (".zip", ".rar", ".gz", ".bz2", ".xz", ".zst", ".br"):
        return False, True
    if ext in (".pdf", ".txt", ".html", ".htm", ".css", ".js", ".json",
               ".php", ".java", ".go", ".rb", ".c", ".cpp", ".h", ".hpp"):
        return True, True
    if ext in (".png", ".jpg", ".jpeg"):
        return False, True
    if mtype.startswith("application/"):
        if mtype.endswith("zstd"):
            return False, True
        if mtype.endswith("xml") or mtype.endswith("script"):
            return True, True
        if mtype.endswith("vnd.rar"):
            return False, True
    if mtype.startswith("audio/") and mtype[6:] in ("wave", "wav", "x-wav", "x-pn-wav"):
        return True, True
    return False, False


async def _parse_body(req: GoRequest, source: Source, limit: int, pu: ParsedUpload, mimes: MimeTable) -> None:
    content_type = req.header("Content-Type")
    if req.method == "POST" and (content_type == "" or "form-data" in content_type):
        if content_type == "":
            raise UploadError("request Content-Type isn't multipart/form-data")
        try:
            d, params = parse_media_type(content_type)
        except MediaTypeError:
            raise UploadError("request Content-Type isn't multipart/form-data") from None
        if d not in ("multipart/form-data", "multipart/mixed"):
            raise UploadError("request Content-Type isn't multipart/form-data")
        if "boundary" not in params:
            raise UploadError("no multipart boundary param in Content-Type")
        mr = MultipartReader(source, params["boundary"])
        try:
            part = await mr.next_part()
        except GoIOError as exc:
            raise UploadError(str(exc)) from None
        pu.file_name = part.file_name()
        if pu.file_name:
            pu.file_name = _clean_windows_base(pu.file_name)
        data, err = await part.read(limit + 1)
        if err is not None:
            raise UploadError(str(err))
        if len(data) == limit + 1:
            raise UploadError(f"file over the limited {limit} bytes")
        pu.data = data
        content_type = part.get("Content-Type")
        pu.content_md5 = part.get("Content-Md5")
        while pu.file_name == "":
            try:
                part2 = await mr.next_part()
            except GoIOError:
                break
            fname = part2.file_name()
            if fname != "":
                data2, err2 = await part2.read(limit + 1)
                if err2 is not None:
                    raise UploadError(str(err2))
                if len(data2) == limit + 1:
                    raise UploadError(f"file over the limited {limit} bytes")
                pu.data = data2
                pu.file_name = _clean_windows_base(fname)
                content_type = part2.get("Content-Type")
                pu.content_md5 = part2.get("Content-Md5")
                part = part2
                break
        pu.is_gzipped = part.get("Content-Encoding") == "gzip"
    else:
        disposition = req.header("Content-Disposition")
        if "name=" in disposition:
            if not disposition.startswith("inline") and not disposition.startswith("attachment"):
                disposition = "attachment; " + disposition
            try:
                _, mparams = parse_media_type(disposition)
            except MediaTypeError:
                pass
            else:
                if "filename" in mparams:
                    pu.file_name = mparams["filename"]
                elif "name" in mparams:
                    pu.file_name = mparams["name"]
        if pu.file_name != "":
            pu.file_name = _clean_windows_base(pu.file_name)
        else:
            pu.file_name = path_base(req.path)
        data, err = await _read_all(source, limit + 1)
        if err is not None:
            raise UploadError(str(err))
        if len(data) == limit + 1:
            raise UploadError(f"file over the limited {limit} bytes")
        pu.data = data
        pu.mime_type = content_type
        pu.is_gzipped = req.header("Content-Encoding") == "gzip"
    try:
        pu.is_chunked = parse_bool(req.form_value("cm"))
    except NumError:
        pu.is_chunked = False
    if not pu.is_chunked:
        dot = pu.file_name.rfind(".")
        ext = mtype = ""
        if dot > 0:
            ext = pu.file_name[dot:].lower()
            mtype = mimes.type_by_extension(ext)
        if content_type != "" and content_type != "application/octet-stream" and mtype != content_type:
            pu.mime_type = content_type
        elif mtype != "" and pu.mime_type == "" and mtype != "application/octet-stream":
            pu.mime_type = mtype


async def parse_upload(req: GoRequest, source: Source, size_limit: int, mimes: MimeTable) -> ParsedUpload:
    pu = ParsedUpload()
    for k, vs in req.headers.items():
        if vs and k.startswith(PAIR_PREFIX):
            pu.pair_map[k] = vs[0]
    await _parse_body(req, source, size_limit, pu, mimes)
    try:
        pu.modified_time = parse_uint(req.form_value("ts"), 10, 64)
    except NumError:
        pu.modified_time = 0
    pu.ttl = req.form_value("ttl")
    pu.original_size = len(pu.data)
    pu.uncompressed = pu.data
    if pu.is_gzipped:
        if req.header("Content-Md5") != "" or pu.content_md5 != "":
            try:
                unzipped = gunzip_data(pu.data)
            except GunzipError:
                pass
            else:
                pu.original_size = len(unzipped)
                pu.uncompressed = unzipped
        else:
            try:
                pu.original_size = len(gunzip_data(pu.data))
            except GunzipError:
                pass
    elif req.query.get("type") != "replicate":
        ext = path_base(pu.file_name)
        mime_type = pu.mime_type or detect_content_type(pu.data)
        if mime_type == "application/octet-stream":
            mime_type = ""
        should, sure = is_compressable(ext, mime_type)
        if should and sure:
            compressed = gzip_data(pu.data)
            if len(compressed) * 10 < len(pu.data) * 9:
                pu.data = compressed
                pu.is_gzipped = True
    expected = req.header("Content-Md5") or pu.content_md5
    if expected != "":
        pu.content_md5 = base64.b64encode(hashlib.md5(pu.uncompressed).digest()).decode()
        if expected != pu.content_md5:
            raise UploadError(
                f"Content-MD5 did not match md5 of file data expected [{expected}] "
                f"received [{pu.content_md5}] size {len(pu.uncompressed)}"
            )
    return pu
