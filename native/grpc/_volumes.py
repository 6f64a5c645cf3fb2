"""Volume lifecycle and status rpcs, as weed 4.48's volume_grpc_admin.go / copy.go answer them.

Each handler checks what Go checks, in Go's order (admin whitelist, then maintenance mode), calls
the store in a worker thread, and reports failures with Go's status code and message. Adding or
removing a volume pokes the heartbeat, which sends the master a delta.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import trio
from google.protobuf import json_format

from native.ec_net import read_ec_record
from native.grpc._common import check_admin, go_error, go_proto_text
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services
from native.master_client import MasterCallError
from native.storage import (
    TTL,
    Deleted,
    NotFound,
    ReplicaPlacement,
    StorageError,
    VolumeNotFound,
    decode_needle,
    legacy_crc_value,
)
from native.storage.tier import remote_files
from native.offload import storage_call
from proto import master_pb2
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context, Status

__all__ = [
    "HANDLERS", "allocate_volume", "volume_mount", "volume_unmount", "volume_delete", "delete_collection",
    "volume_configure", "volume_mark_readonly", "volume_mark_writable", "volume_status", "read_volume_file_status",
    "volume_needle_status",
]


async def _run(fn: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(fn)


def _volume_info_proto(info: Any) -> vs.VolumeInfo:
    out = vs.VolumeInfo(
        version=info.version, replication=info.replication, bytes_offset=info.bytes_offset,
        dat_file_size=info.dat_file_size, expire_at_sec=info.expire_at_sec, read_only=info.read_only,
        read_only_can_delete=info.read_only_can_delete,
    )
    if info.ec_shard_config:  # the .vif an EC encode wrote, once a reload read it (Go: commit, mount)
        json_format.ParseDict(dict(info.ec_shard_config), out.ec_shard_config, ignore_unknown_fields=True)
    if info.files:  # a tiered volume: where its .dat lives (VolumeCopy then pulls .idx/.vif only)
        for f in remote_files(info):
            out.files.add(backend_type=f.backend_type, backend_id=f.backend_id, key=f.key, offset=f.offset,
                          file_size=f.file_size, modified_time=f.modified_time, extension=f.extension)
    return out


async def allocate_volume(svc: Services, req: vs.AllocateVolumeRequest, ctx: Context) -> vs.AllocateVolumeResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    try:
        rp = ReplicaPlacement.parse(req.replication)
        ttl = TTL.parse(req.ttl)
    except ValueError as exc:
        raise go_error(str(exc)) from None

    def allocate() -> None:
        svc.store.allocate_volume(
            req.volume_id, collection=req.collection, replication=rp, ttl=ttl,
            disk_type=req.disk_type, version=req.version,
        )

    try:
        await _run(allocate)
    except (StorageError, OSError, ValueError) as exc:
        raise go_error(str(exc)) from None
    finally:
        svc.master.notify_changed()
    return vs.AllocateVolumeResponse()


async def volume_mount(svc: Services, req: vs.VolumeMountRequest, ctx: Context) -> vs.VolumeMountResponse:
    check_admin(svc.guard, ctx)
    try:
        await _run(lambda: svc.store.mount_volume(req.volume_id))
    except (VolumeNotFound, NotFound):
        raise go_error(f"volume {req.volume_id} not found on disk") from None
    except (StorageError, OSError, ValueError) as exc:
        raise go_error(str(exc)) from None
    svc.master.notify_changed()
    return vs.VolumeMountResponse()


async def volume_unmount(svc: Services, req: vs.VolumeUnmountRequest, ctx: Context) -> vs.VolumeUnmountResponse:
    check_admin(svc.guard, ctx)
    try:
        await _run(lambda: svc.store.unmount_volume(req.volume_id))
    except (StorageError, OSError) as exc:
        raise go_error(str(exc)) from None
    svc.master.notify_changed()
    return vs.VolumeUnmountResponse()


async def volume_delete(svc: Services, req: vs.VolumeDeleteRequest, ctx: Context) -> vs.VolumeDeleteResponse:
    check_admin(svc.guard, ctx)
    store = svc.store
    vid = req.volume_id
    if store.find_volume(vid) is None:
        raise go_error(f"delete volume {vid} not found on disk: volume not found", Status.NOT_FOUND)
    # weed 4.48 no longer refuses VolumeDelete in maintenance mode (the 4.44 source did)
    if req.only_empty:
        v = store.find_volume(vid)
        if v is not None and not v.is_empty():
            raise go_error(f"DeleteVolume {vid}: volume not empty", Status.FAILED_PRECONDITION)
    if req.keep_remote_data:  # a tiered volume whose object another server takes over
        for loc in store.locations:
            held = loc.find_volume(vid)
            if held is not None and hasattr(held, "keep_remote_data"):
                held.keep_remote_data = True
    try:
        await _run(lambda: store.delete_volume(vid, only_empty=req.only_empty))
    except VolumeNotFound:
        raise go_error(f"delete volume {vid} not found on disk: volume not found", Status.NOT_FOUND) from None
    except (StorageError, OSError) as exc:
        raise go_error(f"DeleteVolume {vid}: {exc}") from None
    finally:
        svc.master.notify_changed()
    return vs.VolumeDeleteResponse()


async def delete_collection(
    svc: Services, req: vs.DeleteCollectionRequest, ctx: Context,
) -> vs.DeleteCollectionResponse:
    check_admin(svc.guard, ctx)
    try:
        await _run(lambda: svc.store.delete_collection(req.collection))
    except (StorageError, OSError) as exc:
        raise go_error(str(exc)) from None
    finally:
        svc.master.notify_changed()
    return vs.DeleteCollectionResponse()


async def volume_configure(svc: Services, req: vs.VolumeConfigureRequest, ctx: Context) -> vs.VolumeConfigureResponse:
    """Unmount, rewrite the replication, mount again; failures are the response's `error`, not a status."""
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    store = svc.store
    text = go_proto_text(req)
    try:
        ReplicaPlacement.parse(req.replication)
    except ValueError as exc:
        return vs.VolumeConfigureResponse(error=f"volume configure replication {text}: {exc}")
    vid = req.volume_id
    try:
        await _run(lambda: store.unmount_volume(vid))
    except (StorageError, OSError) as exc:
        return vs.VolumeConfigureResponse(error=f"volume configure unmount {text}: {exc}")
    svc.master.notify_changed()
    try:
        await _run(lambda: store.configure_volume(vid, req.replication))
    except (StorageError, OSError, ValueError) as exc:
        message = f"volume configure {text}: {_not_found_on_disk(vid, exc)}"
        try:
            await _run(lambda: store.mount_volume(vid))
        except (StorageError, OSError, ValueError) as mount_exc:
            message += f". Also failed to restore mount: {_not_found_on_disk(vid, mount_exc)}"
        svc.master.notify_changed()
        return vs.VolumeConfigureResponse(error=message)
    try:
        await _run(lambda: store.mount_volume(vid))
    except (StorageError, OSError, ValueError) as exc:
        return vs.VolumeConfigureResponse(error=f"volume configure mount {text}: {_not_found_on_disk(vid, exc)}")
    finally:
        svc.master.notify_changed()
    return vs.VolumeConfigureResponse()


def _mark_request(svc: Services, v: Any, read_only: bool) -> master_pb2.VolumeMarkReadonlyRequest:
    cfg = svc.ctx.cfg
    loc = svc.store.location_of(v.id)
    return master_pb2.VolumeMarkReadonlyRequest(
        ip=cfg.ip, port=cfg.port, volume_id=v.id, collection=v.collection,
        replica_placement=v.replica_placement.to_byte(), ttl=v.ttl.to_uint32(),
        disk_type=loc[1].disk_type if loc else "", is_readonly=read_only,
    )


async def _notify_master(svc: Services, v: Any, read_only: bool) -> None:
    try:
        await svc.master.mark_volume_readonly(_mark_request(svc, v, read_only))
    except MasterCallError as exc:
        raise go_error(str(exc)) from None


async def volume_mark_readonly(
    svc: Services, req: vs.VolumeMarkReadonlyRequest, ctx: Context,
) -> vs.VolumeMarkReadonlyResponse:
    """The master is told before and after the volume is marked (Go's makeVolumeReadonly)."""
    check_admin(svc.guard, ctx)
    store = svc.store
    v = store.find_volume(req.volume_id)
    if v is None:
        raise go_error(f"volume {req.volume_id} not found")
    # weed 4.48 marks read-only in maintenance mode too (the 4.44 source refused)
    await _notify_master(svc, v, True)
    try:
        await _run(lambda: store.mark_volume_readonly(v.id, can_delete=req.can_delete, persist=req.persist))
    except (StorageError, OSError) as exc:
        raise go_error(str(exc)) from None
    await _notify_master(svc, v, True)
    return vs.VolumeMarkReadonlyResponse()


async def volume_mark_writable(
    svc: Services, req: vs.VolumeMarkWritableRequest, ctx: Context,
) -> vs.VolumeMarkWritableResponse:
    check_admin(svc.guard, ctx)
    store = svc.store
    v = store.find_volume(req.volume_id)
    if v is None:
        raise go_error(f"volume {req.volume_id} not found")
    check_maintenance(svc)
    try:
        await _run(lambda: store.mark_volume_writable(v.id))
    except (StorageError, OSError) as exc:
        raise go_error(str(exc)) from None
    await _notify_master(svc, v, False)
    return vs.VolumeMarkWritableResponse()


async def volume_status(svc: Services, req: vs.VolumeStatusRequest, ctx: Context) -> vs.VolumeStatusResponse:
    v = await storage_call(svc.store.find_volume, req.volume_id)
    if v is None:
        raise go_error(f"not found volume id {req.volume_id}")
    s = await storage_call(v.stats)
    return vs.VolumeStatusResponse(
        is_read_only=s.read_only, volume_size=s.dat_size, file_count=s.file_count,
        file_deleted_count=s.delete_count,
    )


async def read_volume_file_status(
    svc: Services, req: vs.ReadVolumeFileStatusRequest, ctx: Context,
) -> vs.ReadVolumeFileStatusResponse:
    store = svc.store
    v = await storage_call(store.find_volume, req.volume_id)
    if v is None:
        raise go_error(f"not found volume id {req.volume_id}")
    s = await storage_call(v.stats)
    loc = store.location_of(v.id)
    return vs.ReadVolumeFileStatusResponse(
        volume_id=req.volume_id, idx_file_timestamp_seconds=s.modified_at_second, idx_file_size=s.idx_size,
        dat_file_timestamp_seconds=s.modified_at_second, dat_file_size=s.dat_size, file_count=s.file_count,
        compaction_revision=s.compaction_revision, collection=s.collection,
        disk_type=loc[1].disk_type if loc else "", volume_info=_volume_info_proto(v.info), version=s.version,
    )


async def volume_needle_status(
    svc: Services, req: vs.VolumeNeedleStatusRequest, ctx: Context,
) -> vs.VolumeNeedleStatusResponse:
    check_admin(svc.guard, ctx)
    store = svc.store
    v = await storage_call(store.find_volume, req.volume_id)
    ec = getattr(store, "ec", None)  # mixed mode's read-only view holds no EC volumes
    if v is None and ec is not None and ec.has(req.volume_id):
        return await _ec_needle_status(svc, req)
    if v is None:
        raise go_error(f"volume not found {req.volume_id}")
    nv = await storage_call(v.needle_value, req.needle_id)
    if nv is None:
        raise go_error(f"needle not found {req.needle_id}", Status.NOT_FOUND)
    if nv.is_deleted:
        raise go_error("already deleted")
    try:  # Go reads the whole needle (a CRC that does not match fails the call)
        n = await _run(lambda: v.read_needle(req.needle_id, None))
    except Deleted:
        raise go_error("already deleted") from None
    except NotFound:
        raise go_error(f"needle not found {req.needle_id}", Status.NOT_FOUND) from None
    except (StorageError, OSError) as exc:
        raise go_error(str(exc)) from None
    resp = vs.VolumeNeedleStatusResponse(
        needle_id=n.id, cookie=n.cookie, size=nv.size, last_modified=n.last_modified,
        crc=legacy_crc_value(n.checksum or 0),
    )
    if n.ttl:
        resp.ttl = str(n.ttl)
    return resp


async def _ec_needle_status(svc: Services, req: vs.VolumeNeedleStatusRequest) -> vs.VolumeNeedleStatusResponse:
    """Go reads the needle from the EC shards when only an EC volume is held."""
    try:
        ev, raw, size = await read_ec_record(svc.ctx, req.volume_id, req.needle_id)
        n = decode_needle(raw, ev.version, expected_size=size)
    except (StorageError, OSError, ValueError) as exc:
        raise go_error(str(exc)) from None
    resp = vs.VolumeNeedleStatusResponse(
        needle_id=n.id, cookie=n.cookie, size=size, last_modified=n.last_modified, crc=legacy_crc_value(n.checksum or 0),
    )
    if n.ttl:
        resp.ttl = str(n.ttl)
    return resp


def _not_found_on_disk(vid: int, exc: BaseException) -> str:
    if isinstance(exc, (VolumeNotFound, NotFound)):
        return f"volume {vid} not found on disk"
    return str(exc)


HANDLERS: Mapping[str, Handler] = {
    "AllocateVolume": allocate_volume,
    "VolumeMount": volume_mount,
    "VolumeUnmount": volume_unmount,
    "VolumeDelete": volume_delete,
    "DeleteCollection": delete_collection,
    "VolumeConfigure": volume_configure,
    "VolumeMarkReadonly": volume_mark_readonly,
    "VolumeMarkWritable": volume_mark_writable,
    "VolumeStatus": volume_status,
    "ReadVolumeFileStatus": read_volume_file_status,
    "VolumeNeedleStatus": volume_needle_status,
}
