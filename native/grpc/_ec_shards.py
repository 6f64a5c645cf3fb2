"""Erasure-coding rpcs that move, serve and account for shards (Go's
volume_grpc_erasure_coding.go, as weed 4.48 answers them).

VolumeEcShardsCopy pulls shards and index files from a peer with CopyFile (after the peer-trust
check); Mount/Unmount/Delete manage shard files; VolumeEcShardRead streams shard bytes to peers;
VolumeEcBlobDelete journals a needle delete; VolumeEcShardsInfo reports. Errors are Go's texts
as plain errors (Unknown).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping

import trio

from native.grpc._common import check_admin, go_error, negative_offset, write_all
from native.grpc._ec_files import ec_file_status, encode_generation, remove_stale_ec_files
from native.grpc._guards import check_maintenance, check_peer, grpc_target, wrap_peer_error
from native.grpc._services import Handler, Services
from native.storage import TOMBSTONE_SIZE, StorageError, remove_file, volume_base_name
from native.storage.ec import SIDECAR_EXT, EcMountError, remove_sidecars, shard_ext
from native.offload import storage_call
from proto import volume_server_pb2 as vs
from weedpy.grpc import Channel, Context, GrpcError

__all__ = [
    "HANDLERS", "volume_ec_shards_copy", "volume_ec_shards_delete", "volume_ec_shards_mount",
    "volume_ec_shards_unmount", "volume_ec_shard_read", "volume_ec_blob_delete", "volume_ec_shards_info",
]

P = "/volume_server_pb.VolumeServer/"
BUFFER = 2 * 1024 * 1024  # Go's BufferSizeLimit
ANY_REVISION = 0xFFFFFFFF
MAX_INT64 = (1 << 63) - 1


# copy -------------------------------------------------------------------------------------------

async def _pull(ch: Channel, req: vs.VolumeEcShardsCopyRequest, dest: str, ext: str, *, append: bool,
                ignore: bool) -> None:
    """One file of the volume from the peer's CopyFile into `dest + ext`, keeping its mtime."""
    creq = vs.CopyFileRequest(volume_id=req.volume_id, ext=ext, compaction_revision=ANY_REVISION, stop_offset=MAX_INT64,
                              collection=req.collection, is_ec_volume=True, ignore_source_file_not_found=ignore)
    path = dest + ext
    fd, mtime, ok = -1, 0, False
    try:
        async with ch.unary_stream(P + "CopyFile", creq, vs.CopyFileResponse) as responses:
            async for resp in responses:
                if fd < 0:
                    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
                    fd = os.open(path, flags, 0o644)
                if resp.modified_ts_ns:
                    mtime = resp.modified_ts_ns
                if resp.file_content:
                    await trio.to_thread.run_sync(write_all, fd, resp.file_content)
        ok = True
    except GrpcError as exc:
        raise go_error(f"receiving {path}: {wrap_peer_error(exc, '').message}") from None
    except OSError as exc:
        raise go_error(f"write file {path}: {exc.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)
            if not ok and not append:
                remove_file(path)
    if ok and mtime and os.path.exists(path):
        os.utime(path, ns=(mtime, mtime))


async def volume_ec_shards_copy(
    svc: Services, req: vs.VolumeEcShardsCopyRequest, ctx: Context,
) -> vs.VolumeEcShardsCopyResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    await check_peer(svc.peers, req.source_data_node, "source data node")  # before disk_id, as Go 4.48
    store = svc.store
    vid = req.volume_id
    locs = store.locations
    if req.disk_id > 0:
        if req.disk_id >= len(locs):
            raise go_error(f"invalid disk_id {req.disk_id}: only have {len(locs)} disks")
        loc = locs[req.disk_id]
    else:
        disk = store.ec.target_location(req.collection, vid)
        if disk is None:
            raise go_error("no space left")
        loc = locs[disk]
    name = volume_base_name(req.collection, vid)
    data_base, index_base = os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name)
    host, port = grpc_target(req.source_data_node)
    try:
        async with Channel(host, port, options=svc.ctx.peer_grpc) as ch:
            for sid in req.shard_ids:
                await _pull(ch, req, data_base, shard_ext(sid), append=False, ignore=False)
            if req.copy_ecx_file:
                await _pull(ch, req, index_base, ".ecx", append=False, ignore=False)
                path = index_base + ".ecx"
                if not os.path.isfile(path):
                    raise go_error(f"VolumeEcShardsCopy volume {vid}: stat copied .ecx {path}: no such file or directory")
                if os.path.getsize(path) == 0:
                    remove_file(path)
                    raise go_error(f"VolumeEcShardsCopy volume {vid}: source .ecx is 0 bytes")
            if req.copy_ecj_file:
                await _pull(ch, req, index_base, ".ecj", append=True, ignore=True)
            if req.copy_vif_file:
                await _pull(ch, req, data_base, ".vif", append=False, ignore=True)
            if req.copy_ecsum_file:
                await _pull(ch, req, data_base, SIDECAR_EXT, append=False, ignore=True)
    except BaseException as exc:  # the channel's task group may wrap what was raised
        leaf = _leaf(exc)
        if isinstance(leaf, GrpcError):
            if leaf.message.startswith(f"VolumeEcShardsCopy volume {vid}:"):
                raise leaf from None
            raise go_error(f"VolumeEcShardsCopy volume {vid}: {leaf.message}") from None
        if isinstance(leaf, OSError):
            raise go_error(f"VolumeEcShardsCopy volume {vid}: {leaf}") from None
        raise
    return vs.VolumeEcShardsCopyResponse()


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# delete -----------------------------------------------------------------------------------------

def _delete_shards(svc: Services, req: vs.VolumeEcShardsDeleteRequest) -> bool:
    """Go's DeleteEcShards; True when a full teardown was done."""
    store, ec = svc.store, svc.store.ec
    name = volume_base_name(req.collection, req.volume_id)
    if req.full_teardown:
        if req.encode_ts_ns == 0:
            ec.unload_volume(req.volume_id)
            for loc in store.locations:
                remove_stale_ec_files(os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name))
            return True
        for loc in store.locations:
            db, ib = os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name)
            gen, readable = encode_generation(db, ib)
            if not readable or gen == 0 or gen >= req.encode_ts_ns:
                continue
            ec.unload_volume(req.volume_id)
            remove_stale_ec_files(db, ib)
        return True
    for loc in store.locations:
        db = os.path.join(loc.directory, name)
        found = False
        for sid in req.shard_ids:
            if os.path.exists(db + shard_ext(sid)):
                found = True
                os.remove(db + shard_ext(sid))
        if found and ec_file_status(name, loc)[2] == 0:
            remove_sidecars(db)
    statuses = [(loc, *ec_file_status(name, loc)) for loc in store.locations]
    if sum(s[3] for s in statuses) == 0:
        for loc, has_ecx, has_idx, _ in statuses:
            db, ib = os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name)
            if has_ecx:
                for b in dict.fromkeys((ib, db)):
                    remove_file(b + ".ecx")
                    remove_file(b + ".ecj")
            if not has_idx:
                remove_file(db + ".vif")
    return False


async def volume_ec_shards_delete(
    svc: Services, req: vs.VolumeEcShardsDeleteRequest, ctx: Context,
) -> vs.VolumeEcShardsDeleteResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    try:
        done = await trio.to_thread.run_sync(_delete_shards, svc, req)
    except OSError as exc:
        raise go_error(str(exc)) from None
    return vs.VolumeEcShardsDeleteResponse(full_teardown_done=done)


# mount / unmount --------------------------------------------------------------------------------

async def volume_ec_shards_mount(
    svc: Services, req: vs.VolumeEcShardsMountRequest, ctx: Context,
) -> vs.VolumeEcShardsMountResponse:
    ec = svc.store.ec
    try:
        for sid in req.shard_ids:
            try:
                await trio.to_thread.run_sync(ec.mount_shard, req.collection, req.volume_id, sid, req.source_disk_type)
            except (EcMountError, OSError, StorageError, ValueError) as exc:
                raise go_error(f"mount {req.volume_id}.{sid}: {exc}") from None
    finally:
        svc.master.notify_changed()
    return vs.VolumeEcShardsMountResponse()


async def volume_ec_shards_unmount(
    svc: Services, req: vs.VolumeEcShardsUnmountRequest, ctx: Context,
) -> vs.VolumeEcShardsUnmountResponse:
    """With `encode_ts_ns`, only shards of an older encode run are unmounted."""
    check_admin(svc.guard, ctx)
    ec = svc.store.ec
    for sid in req.shard_ids:
        if req.encode_ts_ns > 0:
            ev = ec.find_volume(req.volume_id)
            if ev is None or not (0 < ev.encode_ts_ns < req.encode_ts_ns):
                continue
        # closing an EC volume waits for a delete's journal fsync: not on the event loop
        await trio.to_thread.run_sync(ec.unmount_shard, req.volume_id, sid)
    svc.master.notify_changed()
    return vs.VolumeEcShardsUnmountResponse()


# shard read -------------------------------------------------------------------------------------

async def volume_ec_shard_read(
    svc: Services, req: vs.VolumeEcShardReadRequest, ctx: Context,
) -> AsyncIterator[vs.VolumeEcShardReadResponse]:
    """A byte range of one local shard, or a lone `is_deleted` when `file_key` names a deleted needle."""
    hit = svc.store.ec.find_shard(req.volume_id, req.shard_id)
    if hit is None:
        raise go_error(f"not found ec shard {req.volume_id}.{req.shard_id}")
    ev, shard = hit
    if req.encode_ts_ns != 0 and req.encode_ts_ns != ev.encode_ts_ns:
        raise go_error(f"ec shard {req.volume_id}.{req.shard_id} belongs to a different encode run")
    if req.file_key != 0:
        try:
            _, size = await storage_call(ev.find_needle, req.file_key)
        except StorageError:
            size = 0
        if size < 0:
            yield vs.VolumeEcShardReadResponse(is_deleted=True, encode_ts_ns=ev.encode_ts_ns)
            return
    pos, left = req.offset, req.size
    if pos < 0 and left > 0:  # os.File.ReadAt's refusal, which Go passes on
        raise go_error(negative_offset(shard.path))
    while left > 0:
        n = min(BUFFER, left)
        try:
            data = await trio.to_thread.run_sync(shard.read_at, n, pos)
        except OSError as exc:
            raise go_error(f"read {shard.path}: {exc.strerror}") from None
        if not data:
            return
        yield vs.VolumeEcShardReadResponse(data=data, encode_ts_ns=ev.encode_ts_ns)
        pos += len(data)
        left -= len(data)


# blob delete ------------------------------------------------------------------------------------

async def volume_ec_blob_delete(
    svc: Services, req: vs.VolumeEcBlobDeleteRequest, ctx: Context,
) -> vs.VolumeEcBlobDeleteResponse:
    """Journal the delete in the first local EC volume holding `volume_id` (nothing if none does)."""
    check_maintenance(svc)
    for _, ev in svc.store.ec.volumes_of(req.volume_id)[:1]:
        try:
            _, size = await storage_call(ev.find_needle, req.file_key)
        except StorageError:
            raise go_error("locate in local ec volume: FindNeedleFromEcx: needle not found") from None
        if size < 0:
            break
        try:
            await trio.to_thread.run_sync(ev.delete_needle, req.file_key)
        except (StorageError, OSError) as exc:
            raise go_error(str(exc)) from None
    return vs.VolumeEcBlobDeleteResponse()


# info -------------------------------------------------------------------------------------------

def _info(svc: Services, vid: int) -> vs.VolumeEcShardsInfoResponse:
    vols = svc.store.ec.volumes_of(vid)
    if not vols:
        raise go_error(f"VolumeEcShardsInfo: EC volume {vid} not found")
    primary = vols[0][1]
    out = vs.VolumeEcShardsInfoResponse()
    seen = set()
    for _, ev in vols:
        for s in ev.shards_in_mount_order():
            if s.shard_id not in seen:
                seen.add(s.shard_id)
                out.ec_shard_infos.add(shard_id=s.shard_id, size=s.size, collection=s.collection, volume_id=vid)
    files = deleted = total = 0
    raw = os.pread(primary.ecx_fd, primary.ecx_size, 0)
    for e in primary.codec.iter_entries(raw):
        total += _raw_size(e.size)
        if e.size < 0:
            deleted += 1
        else:
            files += 1
    out.file_count, out.file_deleted_count, out.volume_size = files, deleted, total
    out.ec_shard_config.data_shards = primary.layout.data_shards
    out.ec_shard_config.parity_shards = primary.layout.parity_shards
    out.ec_shard_config.block_size = primary.layout.small_block
    return out


def _raw_size(size: int) -> int:
    """Go's Size.Raw(): a tombstone counts 0, another negative (deleted) size its magnitude."""
    if size == TOMBSTONE_SIZE:
        return 0
    return -size if size < 0 else size


async def volume_ec_shards_info(
    svc: Services, req: vs.VolumeEcShardsInfoRequest, ctx: Context,
) -> vs.VolumeEcShardsInfoResponse:
    return await trio.to_thread.run_sync(_info, svc, req.volume_id)


HANDLERS: Mapping[str, Handler] = {
    "VolumeEcShardsCopy": volume_ec_shards_copy,
    "VolumeEcShardsDelete": volume_ec_shards_delete,
    "VolumeEcShardsMount": volume_ec_shards_mount,
    "VolumeEcShardsUnmount": volume_ec_shards_unmount,
    "VolumeEcShardRead": volume_ec_shard_read,
    "VolumeEcBlobDelete": volume_ec_blob_delete,
    "VolumeEcShardsInfo": volume_ec_shards_info,
}
