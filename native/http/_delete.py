"""DELETE of a file id: Go's DeleteHandler + ReplicatedDelete (and a manifest's chunks first)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from native.fileid import FidError, new_volume_id, parse_path, parse_url_path
from native.gostrconv import NumError
from native.http._common import json_error, json_response, storage_call
from native.http._manifest import ManifestError, load_chunk_manifest
from native.http._read import DropConnection
from native.http._replicate import ReplicationError, replicate_delete, replication_failed, writable_remote_replicas
from native.http._request import GoRequest
from native.storage import Needle, StorageError
from weedpy.http1 import GoHeader, GoResponse

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["delete"]


async def delete(app: "NativeHttp", req: GoRequest, h: GoHeader) -> GoResponse:
    try:
        up = parse_url_path(req.path)
    except ValueError:
        raise DropConnection from None
    try:
        vid = new_volume_id(up.vid)
    except NumError:
        vid = 0
    try:
        key, cookie = parse_path(up.fid)
    except FidError as exc:
        return json_error(h, req, 400, str(exc))
    if not app.jwt_ok(req, up.vid, up.fid, write=True):
        return json_error(h, req, 401, "wrong jwt")
    store = app.ctx.store
    if store.ec.has(vid):  # Go serves the EC copy first
        return await ec_delete(app, req, h, vid, key, cookie)
    vol = await storage_call(store.find_volume, vid)
    try:
        if vol is None:
            raise StorageError(f"volume {vid} not found")
        nv = await storage_call(vol.needle_value, key)
        if nv is not None and nv.size == 0 and nv.offset != 0:
            # Go returns before reading an empty needle: no cookie check, CRC 0.
            n = Needle(id=key, cookie=cookie, checksum=0)
        elif nv is not None and (nv.size > (1 << 20) or getattr(vol, "is_remote", False)):  # tiered: a remote read
            n = await trio.to_thread.run_sync(lambda: vol.read_needle(key, None))
        else:
            n = await storage_call(vol.read_needle, key, None)
    except (StorageError, OSError):
        return json_response(h, req, 404, {"size": 0})
    if n.cookie != cookie:
        return json_error(h, req, 400, "File Random Cookie does not match.")
    count = nv.size if nv is not None else 0
    if n.is_chunk_manifest:
        try:
            cm = load_chunk_manifest(n.data, n.is_compressed)
        except ManifestError as exc:
            app.ctx.metrics.write_failures.value += 1
            return json_error(h, req, 500, f"Load chunks manifest error: {exc}")
        err = await app.delete_chunks([c.fid for c in cm.chunks])
        if err is not None:
            app.ctx.metrics.write_failures.value += 1
            return json_error(h, req, 500, f"Delete chunks error: {err}")
        count = cm.size
    crc = None if (nv is not None and nv.size == 0) else (n.checksum or 0)
    err = await _replicated_delete(app, req, vid, vol, key, cookie, crc)
    if err is not None:
        app.ctx.metrics.write_failures.value += 1
        return json_error(h, req, 500, f"Deletion Failed: {err}")
    return json_response(h, req, 202, {"size": count})


async def _replicated_delete(app: "NativeHttp", req: GoRequest, vid: int, vol, key: int, cookie: int, crc: int | None) -> str | None:
    """Go's topology.ReplicatedDelete, with its metrics: replica targets observed once the local
    delete is done; with replicas, the whole operation timed and counted by its result."""
    remotes: list[str] = []
    if req.form_value("type") != "replicate":
        try:
            remotes = await writable_remote_replicas(app, vid, vol)
        except ReplicationError as exc:
            return str(exc)
    metrics = app.ctx.metrics
    t0 = time.perf_counter()
    err = None
    try:
        await storage_call(app.ctx.store.delete_needle, vid, key, cookie, checksum=crc)
    except StorageError as exc:
        metrics.storage_error(exc.__cause__ or exc)
        err = str(exc)
    else:
        metrics.replication_targets.observe(len(remotes))
        if remotes:
            err = await replicate_delete(app, remotes, req.url.escaped_path, app.request_jwt(req))
            if err is not None:
                replication_failed(metrics, "delete", err)
    if remotes:
        metrics.family("replication_seconds").labels("delete").observe(time.perf_counter() - t0)
        metrics.family("replication_operations_total").labels("delete", "failure" if err else "success").inc()
    return err


async def ec_delete(app: "NativeHttp", req: GoRequest, h: GoHeader, vid: int, key: int, cookie: int) -> GoResponse:
    """Go's DeleteHandler on an EC volume held here: journal the delete (see `native.ec_net`)."""
    from native.ec_net import delete_ec_needle  # erasure coding loads with the first EC delete (start-up time)

    try:
        count = await delete_ec_needle(app.ctx, vid, key, cookie)
    except (StorageError, OSError, ValueError) as exc:
        app.ctx.metrics.write_failures.value += 1
        return json_error(h, req, 500, f"Deletion Failed: {exc}")
    return json_response(h, req, 202, {"size": count})
