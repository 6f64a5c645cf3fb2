"""POST/PUT of a file id: Go's PostHandler + CreateNeedleFromRequest + ReplicatedWrite.

Order: ParseForm -> vid -> JWT (write key) -> ParseUpload (body read) -> fid -> local write (if
the volume is here) -> fan-out to the other replicas -> 204 (identical rewrite) or 201 JSON.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from native.http._common import json_error, json_response, set_etag, storage_call
from native.fileid import FidError, new_volume_id, parse_path, parse_url_path, write_fid
from native.http._gojson import Struct, marshal
from native.gostrconv import NumError
from native.http._images import fix_jpg_orientation
from native.http._read import DropConnection
from native.http._replicate import (
    ReplicaWrite,
    ReplicationError,
    replicate_write,
    replication_failed,
    writable_remote_replicas,
)
from native.http._request import GoRequest
from native.http._upload import UploadError, parse_form, parse_upload
from native.storage import EMPTY_TTL, TTL, Needle, StorageError
from weedpy.http1 import GoHeader, GoResponse

if TYPE_CHECKING:
    from native.http.app import NativeHttp, Source

__all__ = ["post"]


async def post(app: "NativeHttp", req: GoRequest, h: GoHeader, source: "Source") -> GoResponse:
    try:
        await parse_form(req, source)
    except UploadError as exc:
        return json_error(h, req, 400, str(exc))
    try:
        up = parse_url_path(req.path)
    except ValueError:
        raise DropConnection from None
    metrics = app.ctx.metrics
    try:
        vid = new_volume_id(up.vid)
    except NumError as exc:
        metrics.write_failures.value += 1
        return json_error(h, req, 400, str(exc))
    if not app.jwt_ok(req, up.vid, up.fid, write=True):
        return json_error(h, req, 401, "wrong jwt")
    try:
        pu = await parse_upload(req, source, app.file_size_limit, app.mimes)
    except UploadError as exc:
        metrics.write_failures.value += 1
        return json_error(h, req, 400, str(exc))
    ttl = TTL.parse_lenient(pu.ttl)
    name = pu.file_name.encode("latin-1") if len(pu.file_name) < 256 else None
    mime = pu.mime_type.encode("latin-1") if len(pu.mime_type) < 256 else None
    pairs = None
    if pu.pair_map:
        encoded = marshal({k[len("Seaweed-"):]: v for k, v in pu.pair_map.items()})
        if len(encoded) < 65536:
            pairs = encoded
    data = pu.data
    if app.fix_jpg_orientation:
        lowered = pu.file_name.lower()
        if pu.mime_type == "image/jpeg" or lowered.endswith(".jpg") or lowered.endswith(".jpeg"):
            data = fix_jpg_orientation(data)
    try:
        key, cookie = parse_path(write_fid(req.path))
    except FidError as exc:
        return json_error(h, req, 400, str(exc))
    n = Needle.create(
        key, cookie, data,
        name=name, mime=mime,
        last_modified=pu.modified_time or int(time.time()),
        ttl=ttl if ttl != EMPTY_TTL else None,
        pairs=pairs,
        gzipped=pu.is_gzipped,
        chunk_manifest=pu.is_chunked,
    )
    unchanged, err = await _replicated_write(app, req, vid, n, pu.content_md5)
    if err is not None:
        metrics.write_failures.value += 1
        return json_error(h, req, 500, err)
    if unchanged:
        set_etag(h, n.etag)
        h.set("Content-MD5", pu.content_md5)
        return GoResponse(204, h)
    set_etag(h, n.etag)
    h.set("Content-MD5", pu.content_md5)
    result = Struct(
        ("name", pu.file_name if name is not None else "", True),
        ("size", pu.original_size & 0xFFFFFFFF, True),
        ("eTag", n.etag, True),
        ("mime", pu.mime_type if mime is not None else "", True),
        ("contentMd5", pu.content_md5, True),
    )
    return json_response(h, req, 201, result)


async def _replicated_write(app: "NativeHttp", req: GoRequest, vid: int, n: Needle, content_md5: str) -> tuple[bool, str | None]:
    """Go's topology.ReplicatedWrite, with its metrics: writeToLocalDisk and writeToReplicas in
    flight and timed, replica targets observed, replication operations counted."""
    store = app.ctx.store
    metrics = app.ctx.metrics
    vol = await storage_call(store.find_volume, vid)
    remotes: list[str] = []
    if req.form_value("type") != "replicate":
        try:
            remotes = await writable_remote_replicas(app, vid, vol)
        except ReplicationError as exc:
            return False, str(exc)
    fsync = req.form_value("fsync") == "true"
    unchanged = False
    if vol is None and not remotes:
        return False, f"volume {vid} not found on {app.ctx.self_url}"
    t0 = time.perf_counter()
    if vol is not None:
        try:
            with metrics.timed("writeToLocalDisk"):
                if fsync or len(n.data) > (1 << 20):
                    result = await trio.to_thread.run_sync(
                        lambda: store.write_needle(vid, n, check_cookie=True, fsync=fsync))
                else:
                    result = await storage_call(store.write_needle, vid, n, check_cookie=True, fsync=False)
        except StorageError as exc:
            metrics.handler("errorWriteToLocalDisk")
            metrics.storage_error(exc.__cause__ or exc)
            _replication_seconds(metrics, "write", remotes, t0)
            return False, f"failed to write to local disk: {exc}"
        unchanged = result.unchanged
    metrics.replication_targets.observe(len(remotes))
    if remotes:
        pairs = {}
        if n.has_pairs:
            try:
                pairs = {k: v for k, v in n.pairs_map().items()}
            except Exception:
                pairs = {}
        w = ReplicaWrite(
            path=req.url.escaped_path, name=n.name.decode("latin-1"), mime=n.mime.decode("latin-1"), data=n.data,
            compressed=n.is_compressed, ttl=str(n.ttl), fsync=fsync, last_modified=n.last_modified,
            chunk_manifest=n.is_chunk_manifest, pairs=pairs, jwt=app.request_jwt(req), content_md5=content_md5,
        )
        with metrics.timed("writeToReplicas"):
            err = await replicate_write(app, remotes, w)
        _replication_seconds(metrics, "write", remotes, t0)
        if err is not None:
            metrics.handler("errorWriteToReplicas")
            replication_failed(metrics, "write", err)
            return False, f"failed to write to replicas for volume {vid}: {err}"
        metrics.family("replication_operations_total").labels("write", "success").inc()
    return unchanged, None


def _replication_seconds(metrics, operation: str, remotes: list[str], t0: float) -> None:
    """replication_seconds{operation}: the whole replicated operation, when it has replicas."""
    if remotes:
        metrics.family("replication_seconds").labels(operation).observe(time.perf_counter() - t0)
