"""Needle-level data rpcs: BatchDelete, ReadNeedleBlob, ReadNeedleMeta, WriteNeedleBlob,
ReadAllNeedles (Go's volume_grpc_batch_delete.go, _read_write.go, _read_all.go; texts as 4.48).

Go reports these failures as plain errors (codes.Unknown) with its own texts, which are kept:
`not found volume id N`, `read needle blob offset O size S: EOF`, the size-mismatch text of
ReadNeedleMeta (whose `found id %x` formats the id's hex string again as hex, as Go's does).
BatchDelete answers per file id with an HTTP status and never fails as a whole except in
maintenance mode or for a peer off the admin whitelist. CRCs in responses are Go's
`CRC.Value()`, the legacy masked form.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping

import trio

from native.grpc._common import check_admin, go_error, negative_offset
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services
from native.ec_net import EcReadError, delete_ec_needle, read_ec_needle
from native.grpc._threads import next_batch
from native.fileid import FidError, new_volume_id, parse_key_cookie, parse_path
from native.gostrconv import NumError
from native.storage import (
    DATA_SIZE_SIZE,
    FLAG_GZIP,
    NEEDLE_HEADER_SIZE,
    CookieMismatch,
    Deleted,
    NotFound,
    ReadOnly,
    StorageError,
    VolumeNotFound,
    actual_size,
    decode_meta,
    legacy_crc_value,
    read_body,
    scan_records,
)
from native.offload import storage_call
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context, GrpcError

__all__ = [
    "HANDLERS", "batch_delete", "read_needle_blob", "read_needle_meta", "write_needle_blob", "read_all_needles",
    "read_needle_meta_at",
]

_MAX_META = 128 * 1024


def _go_id_hex(needle_id: int) -> str:
    """Go's `%x` of a NeedleId: its String() (lower-case hex) formatted again as hex bytes."""
    return format(needle_id, "x").encode().hex()


def read_needle_meta_at(v, offset: int, size: int):
    """Go's Needle.ReadNeedleMeta at a caller-given offset and size (negative: a tombstone's
    metadata). Returns the needle without data; raises StorageError with Go's message."""
    if size < 0:
        size = 0
    version = v.version
    head = v.read_at(NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE, offset)
    if len(head) != NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE:
        raise StorageError("EOF")
    found_size = int.from_bytes(head[12:16], "big", signed=True)
    if found_size != size:
        if v.offset_bytes == 4 and offset < v.codec.offsets.max_volume_size:
            raise StorageError("size mismatch")
        found_id = int.from_bytes(head[4:12], "big")
        raise StorageError(
            f"size mismatch for entry at offset {offset}: found id {_go_id_hex(found_id)} size {found_size}, "
            f"expected size {size}"
        )
    data_size = int.from_bytes(head[16:20], "big")
    start = NEEDLE_HEADER_SIZE + (DATA_SIZE_SIZE + data_size if size > 0 else 0)
    meta_len = actual_size(size, version) - start
    if meta_len < 0 or meta_len > _MAX_META:
        raise StorageError(f"invalid needle meta size {meta_len}: DataSize={data_size}, size={size}, offset={offset}")
    rest = v.read_at(meta_len, offset + start)
    if len(rest) != meta_len:
        raise StorageError("EOF")
    n, _ = decode_meta(head, rest, version)
    return n


def _read_error_text(exc: StorageError) -> str:
    """What Go's ReadVolumeNeedle says for the same outcome."""
    if isinstance(exc, Deleted):
        return "already deleted"
    if isinstance(exc, NotFound):
        return "not found"
    return str(exc)


def _parse_fid(fid: str, skip_cookie: bool) -> tuple[int, int, int] | vs.DeleteResult:
    """(volume id, needle id, cookie) as Go's BatchDelete parses a file id, or its 400 answer."""
    comma = fid.find(",")
    if comma <= 0:
        return vs.DeleteResult(file_id=fid, status=400, error="Wrong fid format.")
    vid_text, key_cookie = fid[:comma], fid[comma + 1:]
    try:
        if skip_cookie:
            key, cookie = parse_key_cookie(key_cookie)
            cookie = 0  # Go keeps only the id
        else:
            key, cookie = parse_path(key_cookie)
    except FidError as exc:
        return vs.DeleteResult(file_id=fid, status=400, error=str(exc))
    try:
        vid = new_volume_id(vid_text)
    except NumError:
        vid = 0
    return vid, key, cookie


def _delete_one(svc: Services, fid: str, vid: int, key: int, cookie: int, skip_cookie: bool) -> vs.DeleteResult:
    """One file id of a plain volume, answered with the HTTP status Go's BatchDelete gives."""
    store, cfg = svc.store, svc.ctx.cfg
    checksum = None
    tomb_cookie = None
    if not skip_cookie:
        v = store.find_volume(vid)
        if v is None:
            return vs.DeleteResult(file_id=fid, status=404, error=f"volume {vid} not found")
        try:
            n = v.read_needle(key, cookie)
        except CookieMismatch:
            return vs.DeleteResult(file_id=fid, status=400, error="File Random Cookie does not match.")
        except StorageError as exc:
            return vs.DeleteResult(file_id=fid, status=404, error=_read_error_text(exc))
        if n.is_chunk_manifest:
            return vs.DeleteResult(file_id=fid, status=406, error="ChunkManifest: not allowed in batch delete mode.")
        # Go's read fills the needle from the record, id included: a record written under
        # another id (WriteNeedleBlob takes any) makes the delete look for that id
        key, checksum, tomb_cookie = n.id, n.checksum or 0, n.cookie
    try:
        size = store.delete_needle(vid, key, tomb_cookie, checksum=checksum)
    except VolumeNotFound:
        return vs.DeleteResult(file_id=fid, status=500, error=f"volume {vid} not found on {cfg.ip}:{cfg.port}")
    except ReadOnly:
        return vs.DeleteResult(file_id=fid, status=500, error=f"volume {vid} is read only")
    except CookieMismatch:
        return vs.DeleteResult(file_id=fid, status=400, error="File Random Cookie does not match.")
    except (StorageError, OSError) as exc:
        return vs.DeleteResult(file_id=fid, status=500, error=str(exc))
    if size == 0:
        return vs.DeleteResult(file_id=fid, status=304)
    return vs.DeleteResult(file_id=fid, status=202, size=size)


def _ec_error_text(exc: Exception) -> str:
    """What Go's ReadEcShardNeedle says for the same outcome."""
    if isinstance(exc, Deleted):
        return "already deleted"
    if isinstance(exc, NotFound):
        return "locate in local ec volume: FindNeedleFromEcx: needle not found"
    if isinstance(exc, EcReadError):
        return f"ReadEcShardIntervals: {exc}"
    return str(exc)


async def _delete_ec_one(svc: Services, fid: str, vid: int, key: int, cookie: int,
                         skip_cookie: bool) -> vs.DeleteResult:
    """One file id of an EC volume mounted here (Go checks EC volumes before plain ones)."""
    if not skip_cookie:
        try:
            n = await read_ec_needle(svc.ctx, vid, key)
        except (StorageError, OSError) as exc:
            return vs.DeleteResult(file_id=fid, status=404, error=_ec_error_text(exc))
        if n.cookie != cookie:
            return vs.DeleteResult(file_id=fid, status=400, error="File Random Cookie does not match.")
        if n.is_chunk_manifest:
            return vs.DeleteResult(file_id=fid, status=406, error="ChunkManifest: not allowed in batch delete mode.")
        key, cookie = n.id, n.cookie
    try:
        count = await delete_ec_needle(svc.ctx, vid, key, cookie)
    except Deleted:  # deleted already: nothing to do (4.48), as for a plain volume
        return vs.DeleteResult(file_id=fid, status=304)
    except (StorageError, OSError) as exc:
        return vs.DeleteResult(file_id=fid, status=500, error=_ec_error_text(exc))
    return vs.DeleteResult(file_id=fid, status=202, size=count)


async def batch_delete(svc: Services, req: vs.BatchDeleteRequest, ctx: Context) -> vs.BatchDeleteResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    skip = req.skip_cookie_check
    results = []
    for fid in req.file_ids:
        parsed = _parse_fid(fid, skip)
        if isinstance(parsed, vs.DeleteResult):
            results.append(parsed)
            continue
        vid, key, cookie = parsed
        ec = getattr(svc.store, "ec", None)
        if ec is not None and ec.find_volume(vid) is not None:
            results.append(await _delete_ec_one(svc, fid, vid, key, cookie, skip))
        else:
            results.append(await trio.to_thread.run_sync(_delete_one, svc, fid, vid, key, cookie, skip))
    return vs.BatchDeleteResponse(results=results)


def _read_failure(svc: Services) -> None:
    """file_read_failures, as Go counts a failed ReadNeedleBlob, ReadNeedleMeta or ReadAllNeedles."""
    svc.ctx.metrics.read_failures.value += 1


async def read_needle_blob(svc: Services, req: vs.ReadNeedleBlobRequest, ctx: Context) -> vs.ReadNeedleBlobResponse:
    try:
        return await _read_needle_blob(svc, req)
    except GrpcError:
        _read_failure(svc)
        raise


async def _read_needle_blob(svc: Services, req: vs.ReadNeedleBlobRequest) -> vs.ReadNeedleBlobResponse:
    v = await storage_call(svc.store.find_volume, req.volume_id)
    if v is None:
        raise go_error(f"not found volume id {req.volume_id}")
    prefix = f"read needle blob offset {req.offset} size {req.size}: "
    if req.size < 0:
        raise go_error(f"{prefix}invalid needle size {req.size}")
    length = actual_size(req.size, v.version)
    if req.offset < 0:  # os.File.ReadAt's refusal, which Go passes on
        raise go_error(prefix + negative_offset(v.dat_path))
    if req.offset + length > (await storage_call(v.stats)).dat_size:
        raise go_error(prefix + "EOF")
    try:
        blob = await trio.to_thread.run_sync(v.read_at, length, req.offset)
    except (StorageError, OSError) as exc:
        raise go_error(prefix + str(exc)) from None
    if len(blob) != length:
        raise go_error(prefix + "EOF")
    return vs.ReadNeedleBlobResponse(needle_blob=blob)


async def read_needle_meta(svc: Services, req: vs.ReadNeedleMetaRequest, ctx: Context) -> vs.ReadNeedleMetaResponse:
    try:
        return await _read_needle_meta(svc, req)
    except GrpcError:
        _read_failure(svc)
        raise


async def _read_needle_meta(svc: Services, req: vs.ReadNeedleMetaRequest) -> vs.ReadNeedleMetaResponse:
    v = await storage_call(svc.store.find_volume, req.volume_id)
    if v is None:
        raise go_error(f"not found volume id {req.volume_id} and read needle metadata at ec shards is not supported")
    if req.offset < 0:
        raise go_error(negative_offset(v.dat_path))
    try:
        n = await trio.to_thread.run_sync(read_needle_meta_at, v, req.offset, req.size)
    except (StorageError, OSError) as exc:
        raise go_error(str(exc)) from None
    resp = vs.ReadNeedleMetaResponse(
        cookie=n.cookie, last_modified=n.last_modified, crc=legacy_crc_value(n.checksum or 0),
        append_at_ns=n.append_at_ns,
    )
    if n.has_ttl:
        resp.ttl = str(n.ttl)
    return resp


async def write_needle_blob(svc: Services, req: vs.WriteNeedleBlobRequest, ctx: Context) -> vs.WriteNeedleBlobResponse:
    check_maintenance(svc)
    v = svc.store.find_volume(req.volume_id)
    failed = None
    if v is None:
        failed = go_error(f"not found volume id {req.volume_id}")
    else:
        try:
            await trio.to_thread.run_sync(v.write_needle_blob, req.needle_id, req.needle_blob, req.size)
        except (StorageError, OSError) as exc:
            svc.ctx.metrics.storage_error(exc)
            failed = go_error(f"write blob needle {req.needle_id} size {req.size}: {exc}")
    if failed is not None:
        svc.ctx.metrics.write_failures.value += 1
        raise failed
    return vs.WriteNeedleBlobResponse()


def _read_all_messages(v, fd: int, end: int):
    """The live records of a pinned `.dat` (those its needle map points at), as messages. A
    record that does not parse is sent with the fields Go's scan read before the problem."""
    version = v.version
    for rec in scan_records(fd, version, v.super_block.block_size, end):
        nv = v.needle_value(rec.id)
        if nv is None or nv.offset * 8 != rec.offset:
            continue
        n = read_body(rec.id, rec.size, rec.body, version)
        yield vs.ReadAllNeedlesResponse(
            volume_id=v.id, needle_id=rec.id, cookie=rec.cookie, needle_blob=n.data,
            needle_blob_compressed=bool(n.flags & FLAG_GZIP), last_modified=n.last_modified,
            crc=legacy_crc_value(n.checksum), name=n.name, mime=n.mime,
        )


async def read_all_needles(
    svc: Services, req: vs.ReadAllNeedlesRequest, ctx: Context,
) -> AsyncIterator[vs.ReadAllNeedlesResponse]:
    check_admin(svc.guard, ctx)
    for vid in req.volume_ids:
        v = await storage_call(svc.store.find_volume, vid)
        if v is None:
            _read_failure(svc)
            raise go_error(f"not found volume id {vid}")
        fd, end = await storage_call(v.pinned_dat)
        try:
            messages = _read_all_messages(v, fd, end)
            while batch := await next_batch(messages, size=lambda m: len(m.needle_blob) + 64):
                for msg in batch:
                    yield msg
        except GrpcError:
            _read_failure(svc)
            raise
        finally:
            os.close(fd)


HANDLERS: Mapping[str, Handler] = {
    "BatchDelete": batch_delete,
    "ReadNeedleBlob": read_needle_blob,
    "ReadNeedleMeta": read_needle_meta,
    "WriteNeedleBlob": write_needle_blob,
    "ReadAllNeedles": read_all_needles,
}
