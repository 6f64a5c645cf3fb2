"""The common upload, answered without Go's full request model.

`fast_write` serves `POST /<vid>,<fid>` on the admin port as Go's http.Client and weed's
uploader (`weed upload`, `weed benchmark`, the filer) send it: no query but `?fsync=true` (the
append is made on the event loop, and the wait for its fsync in a worker thread), only Host, User-Agent,
Content-Length, Content-Type, Accept-Encoding and X-Amz-Request-Id headers, a
`multipart/form-data` body of at most 1 MiB holding one part with a plain file name and
optionally a plain Content-Type (see _PART_HEAD), for a local volume without replication, when no write JWT, whitelist or upload
limit is in play, and the whole body has already arrived. It reuses the full path's pieces (the
same upload rules, Needle, store write and response helpers), so the reply is byte for byte what
post() answers; the differential suite runs uploads through both. Anything else goes to the full
path, with the body handed back (`Exchange.unread`) when it was taken.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import trio

from native.http._common import json_error, set_etag, storage_call
from native.http._gojson import encode_string
from native.http._gzip import gzip_data
from native.http._request import GoRequest
from native.http._sniff import detect_content_type
from native.http._upload import is_compressable
from native.storage import BEFORE_WRITING, Needle, StorageError, WouldBlock
from weedpy.http1 import Exchange, GoHeader, GoResponse, Request, go_response_bytes, http_date
from weedpy.serve.replies import request_id

if TYPE_CHECKING:
    from native.http.app import NativeHttp
    from native.storage import Volume

__all__ = ["fast_write", "FAST_WRITE_LIMIT", "Upload", "UploadTarget", "upload_volume", "plan_upload", "store_upload",
           "append_unsynced", "sync_upload", "write_timer", "stop_timer", "upload_reply"]

FAST_WRITE_LIMIT = 1 << 20  # body bytes; the full path writes larger needles from a thread
_new_record = tuple.__new__  # builds the NamedTuples below: their own __new__ is Python code
_TARGET = re.compile(rb"/([0-9]{1,10}),([0-9a-f]{1,16})([0-9a-f]{8})(\?fsync=true)?\Z")
# X-Amz-Request-Id: weed's uploader always sends it (often empty); the handlers ignore it.
_PLAIN = frozenset({b"host", b"user-agent", b"content-length", b"content-type", b"accept-encoding", b"x-amz-request-id"})
# Each of them, lower-case and as Go's client spells it -> whether it is Content-Type.
_PLAIN_SPELLED = {spelled: name == b"content-type" for name in _PLAIN
                  for spelled in (name, b"-".join(w.capitalize() for w in name.split(b"-")))}
# What Go's multipart.Writer announces (its boundaries are 30 random bytes in hex; RFC 2046
# allows more, and quoting, which the full path handles).
_CONTENT_TYPE = re.compile(rb"multipart/form-data; boundary=([0-9A-Za-z_.-]{1,70})\Z")
_CT_PREFIX = b"multipart/form-data; boundary="
_CT_PREFIX_LEN = len(_CT_PREFIX)
_BCHARS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.-"  # _CONTENT_TYPE's boundary characters
# One part with the headers Go writes (CreatePart sorts them): Content-Disposition as
# multipart.CreateFormFile (`name="file"; filename="x"`) or weed's uploader (mime.FormatMediaType:
# `filename=x; name=file`) write it, an optional plain Content-Type and weed's Idempotency-Key.
# File names are limited to characters that neither quoting nor path cleaning changes.
_NAME = rb'(?:[0-9A-Za-z_.-]+|"[0-9A-Za-z_.-]*")'
_FILE = rb'(?:([0-9A-Za-z_.-]{1,255})|"([0-9A-Za-z_.-]{1,255})")'
_PART_HEAD = re.compile(
    rb"Content-Disposition: form-data; (?:name=" + _NAME + rb"; filename=" + _FILE
    + rb"|filename=" + _FILE + rb"; name=" + _NAME + rb")\r\n"
    rb"(?:Content-Type: ([0-9A-Za-z!#$&^_.+-]{1,127}/[0-9A-Za-z!#$&^_.+-]{1,127})\r\n)?"
    rb"(?:Idempotency-Key: [\x20-\x7e]*\r\n)?"
    rb"\r\n"
)


class Upload(NamedTuple):
    """A plain upload taken apart, ready to store (see `plan_upload`)."""

    vid: int
    needle: Needle
    file_name: str
    original_size: int
    mime_type: str
    length: int  # the request's Content-Length, counted in flight until the reply is out
    fsync: bool = False  # `?fsync=true`: the append is synced before the reply (in a worker thread)
    volume: "Volume | None" = None  # the volume `upload_volume` found (None: the store finds it)


class UploadTarget(NamedTuple):
    """Where a plain upload goes, read from its head (see `upload_volume`)."""

    vid: int
    key: int
    cookie: int
    boundary: bytes
    fsync: bool = False
    volume: "Volume | None" = None  # the store's volume `vid` when the head was read


def upload_volume(app: "NativeHttp", req: Request, port_kind: str) -> UploadTarget | None:
    """The file id and multipart boundary when the request's head qualifies for the fast path
    and its volume is a local one without replicas; None: the full path serves it. Never waits."""
    m = _TARGET.match(req.target)
    if (
        m is None or port_kind != "admin" or not req.keep_alive or req.http_version != b"1.1"
        or req.chunked or req.expect_continue or not req.content_length or req.content_length > FAST_WRITE_LIMIT
    ):
        return None
    boundary = None
    for name, value in req.headers:
        is_type = _PLAIN_SPELLED.get(name)  # the name as Go's client spells it, or lower-case
        if is_type is None:
            is_type = _PLAIN_SPELLED.get(name.lower())
            if is_type is None:
                return None
        if is_type:
            boundary = _boundary(value)
            if boundary is None:
                return None
    guard = app.guard
    if boundary is None or app.write_key or guard.ips or guard.networks or app.fix_jpg_orientation:
        return None  # (the guard's `restricts` without a property call)
    lim = app.upload
    if lim.limit != 0 and lim.inflight > lim.limit:
        return None  # the full path waits for room
    vid_text, key, cookie, fsync = m.groups()
    vid = int(vid_text)
    if vid > 0xFFFFFFFF:
        return None
    try:
        vol = app.ctx.store.find_volume(vid, blocking=False)
    except StorageError:  # WouldBlock: the full path looks it up in a thread
        return None
    if vol is None or vol.replica_placement.copy_count != 1:
        return None
    return _new_record(UploadTarget, (vid, int(key, 16), int(cookie, 16), boundary, fsync is not None, vol))


def plan_upload(app: "NativeHttp", req: Request, target: UploadTarget, body: bytes) -> Upload | None:
    """The needle a whole body of one plain part makes (Go's ParseUpload for it); None: the
    full path serves it."""
    # the body is exactly one plain part (the full reader's view of it, checked here in one pass)
    dash_boundary = b"--" + target.boundary
    opening = dash_boundary + b"\r\n"
    closing = b"\r\n" + dash_boundary + b"--\r\n"
    if not body.startswith(opening) or not body.endswith(closing):
        return None
    head = _PART_HEAD.match(body, len(opening))
    if head is None:
        return None
    start = head.end()
    end = len(body) - len(closing)
    if start > end or body.find(b"\r\n" + dash_boundary, start) != end:
        return None  # the boundary shows up inside: the full reader would end the part there
    if end - start > app.file_size_limit:
        return None
    name1, name2, name3, name4, ct = head.groups()
    name = name1 or name2 or name3 or name4
    file_name = name.decode("latin-1")
    content_type = ct.decode("latin-1") if ct else ""
    data = body[start:end]
    mime_type = ""
    dot = file_name.rfind(".")
    mtype = app.mimes.type_by_extension(file_name[dot:].lower()) if dot > 0 else ""
    if content_type != "" and content_type != "application/octet-stream" and mtype != content_type:
        mime_type = content_type
    elif mtype != "" and mtype != "application/octet-stream":
        mime_type = mtype
    original_size = len(data)
    gzipped = False
    sniffed = mime_type or detect_content_type(data)
    # (Go passes path.Base of the name: a name _FILE takes has no slash and is its own base)
    should, sure = is_compressable(file_name, "" if sniffed == "application/octet-stream" else sniffed)
    if should and sure:
        compressed = gzip_data(data)
        if len(compressed) * 10 < len(data) * 9:
            data, gzipped = compressed, True
    n = Needle.uploaded(target.key, target.cookie, data, name, mime_type.encode("latin-1"), int(time.time()), gzipped)
    return _new_record(Upload, (target.vid, n, file_name, original_size, mime_type, req.content_length or 0, target.fsync,
                                target.volume))


def store_upload(app: "NativeHttp", up: Upload, blocking: bool = True) -> bool:
    """Append the needle (True: the same needle was there already and nothing was appended).
    Raises StorageError; WouldBlock when not `blocking` and a lock is held elsewhere, or when
    the upload asks for an fsync (that waits for the disk: a worker thread's job)."""
    if up.fsync and not blocking:
        raise WouldBlock(f"volume {up.vid}: an fsync write")
    return app.ctx.store.write_needle(up.vid, up.needle, check_cookie=True, fsync=up.fsync, blocking=blocking,
                                      volume=up.volume).unchanged


def append_unsynced(app: "NativeHttp", up: Upload) -> bool:
    """The event loop's half of an `?fsync=true` upload: the append, whose sync `sync_upload`
    then waits for in a worker thread (the append's Python work stays on the loop instead of
    taking the GIL from a thread, which can keep the loop waiting up to a switch interval).
    True: the same needle was there already. WouldBlock wherever `store_upload` in a thread
    could answer otherwise: no volume found by the head, a lock held elsewhere, or a volume
    unmounted, removed or replaced since the head came (it refuses before it writes anything;
    the store answers). Any other StorageError is the answer, as `store_upload` gives it: a
    failed append is tried once, as Go tries it (a second try could store what Go refuses)."""
    vol = up.volume
    if vol is None:
        raise WouldBlock(f"volume {up.vid}: looked up by the store")
    try:
        return vol.write_needle(up.needle, check_cookie=True, blocking=False).unchanged
    except BEFORE_WRITING as exc:  # as Store.write_needle retries: nothing else (it may have written)
        if app.ctx.store.find_volume(up.vid, blocking=False) is vol:
            raise
        raise WouldBlock(f"volume {up.vid}: {exc}") from exc


def sync_upload(up: Upload, unchanged: bool) -> bool:
    """The worker thread's half of an `?fsync=true` upload appended by `append_unsynced`: the
    group commit that makes it durable (an unchanged needle too: its record may have been written
    without a sync); `unchanged` passes through, as `store_upload` returns it."""
    assert up.volume is not None
    up.volume.sync_appended()
    return unchanged


def write_timer(app: "NativeHttp") -> Callable[[], None]:
    """Starts Go's writeToLocalDisk timer (in flight and seconds); call what it returns when the
    write is over (its gauge and histogram looked up once, inline)."""
    timer = app.ctx.metrics.timer("writeToLocalDisk")
    timer[0].value += 1
    return functools.partial(stop_timer, timer, time.perf_counter())


def stop_timer(timer: tuple[Any, Any], t0: float) -> None:
    """The end of a writeToLocalDisk timer begun at `t0` (`timer`: `NativeMetrics.timer`'s pair)."""
    timer[0].value -= 1
    timer[1].observe(time.perf_counter() - t0)


def upload_reply(app: "NativeHttp", up: Upload, outcome: bool | StorageError, req: Request, client_host: str) -> tuple[bytes, int]:
    """(the reply's bytes, its status) for a stored upload (`outcome`: `store_upload`'s answer)
    or a failed one (the StorageError), with the metrics Go counts for it."""
    rid = request_id()
    metrics = app.ctx.metrics
    if isinstance(outcome, StorageError):
        metrics.handler("errorWriteToLocalDisk")
        metrics.storage_error(outcome.__cause__ or outcome)
        metrics.write_failures.value += 1
        resp = json_error(_handler_header(app, rid), GoRequest(req, client_host), 500, f"failed to write to local disk: {outcome}")
        return go_response_bytes(resp, req.method, sniff=detect_content_type), 500
    metrics.replication_targets.observe(0)  # a volume with no replicas (the full path counts the rest)
    if not outcome:
        # (Needle.etag without its property and function calls: the CRC as %08x)
        return _created(app.server, rid, up.file_name, up.original_size, "%08x" % (up.needle.checksum or 0), up.mime_type), 201
    h = _handler_header(app, rid)
    set_etag(h, up.needle.etag)
    h.set("Content-MD5", "")
    return go_response_bytes(GoResponse(204, h), req.method, sniff=detect_content_type), 204


async def fast_write(app: "NativeHttp", exch: Exchange) -> bool:
    """True when the request was answered here; False when the full path must serve it."""
    req = exch.request
    target = upload_volume(app, req, exch.port_kind)
    if target is None:
        return False
    body = exch.buffered_body()
    if body is None:
        return False  # not all here yet: the full path streams it
    up = plan_upload(app, req, target, body)
    if up is None:
        exch.unread(body)
        return False
    lim = app.upload
    lim.add(up.length)  # as the full path counts an upload in flight until its reply is out
    try:
        outcome: bool | StorageError
        stop = write_timer(app)
        try:
            if up.fsync:  # the append here, the wait for the disk in a worker thread
                try:
                    unchanged = append_unsynced(app, up)
                except WouldBlock:
                    outcome = await trio.to_thread.run_sync(store_upload, app, up)
                else:
                    outcome = await trio.to_thread.run_sync(sync_upload, up, unchanged)
            else:
                outcome = await storage_call(store_upload, app, up)
        except StorageError as exc:
            outcome = exc
        finally:
            stop()
        wire, status = upload_reply(app, up, outcome, req, exch.client_host)
        exch.started = True
        exch.status = status
        await exch.send(wire)
    finally:
        lim.release(up.length)
    return True


def _boundary(content_type: bytes) -> bytes | None:
    """The boundary `_CONTENT_TYPE` takes from a Content-Type value, or None, without the regex
    (its match cost more than the rest of the header checks together)."""
    boundary = content_type[_CT_PREFIX_LEN:]
    if content_type.startswith(_CT_PREFIX) and 0 < len(boundary) <= 70 and not boundary.translate(None, _BCHARS):
        return boundary
    return None


def _handler_header(app: "NativeHttp", rid: str) -> GoHeader:
    h = GoHeader()
    h.set("X-Amz-Request-Id", rid)
    h.set("Server", app.server)
    return h


def _created(server: str, rid: str, file_name: str, size: int, etag: str, mime_type: str) -> bytes:
    """The 201 of a stored upload, byte for byte what json_response + send_go_response write for
    it (headers sorted by key, then Date and Content-Length; the body is Go's writeJson of
    UploadResult with its omitempty fields), without building the header map and the JSON
    value for every upload. The file name needs no JSON escaping (see _FILE); a type may hold `&`."""
    size &= 0xFFFFFFFF
    body = '{"name":"' + file_name + (('","size":%d,"eTag":"' % size) if size else '","eTag":"') + etag
    body += ('","mime":' + encode_string(mime_type) + "}") if mime_type else '"}'
    return (
        'HTTP/1.1 201 Created\r\nContent-Md5: \r\nContent-Type: application/json\r\nEtag: "' + etag
        + '"\r\nServer: ' + server + "\r\nX-Amz-Request-Id: " + rid
        + "\r\nX-Content-Type-Options: nosniff\r\nDate: " + http_date()
        + "\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    ).encode("latin-1", "replace")
