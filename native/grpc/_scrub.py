"""ScrubVolume and ScrubEcVolume, as the weed 4.48 binary answers them (volume_grpc_scrub.go).

Modes (probed against 4.48): plain volumes take INDEX, and FULL, LOCAL and READS (all three a
full read of every record); EC volumes take INDEX, LOCAL, FULL, CHECKSUM (shards against the
`.ecsum` sidecar) and READS. Volumes are looked up before the mode is checked, so an unknown
volume wins over an unknown mode. No volumes named means every volume (EC volume) held here.

`mark_broken_volumes_readonly` marks each broken volume read-only the way VolumeMarkReadonly
does (master told before and after, the mark persisted in `.vif`). 4.48 does this in
maintenance mode too (the upstream test that expects a refusal there fails against 4.48 as
well). Failed marks are returned together as one error, Go's errors.Join.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import trio

from native.ec_scrub import scrub_ec_distributed
from native.grpc._common import check_admin, go_error
from native.grpc._services import Handler, Services
from native.master_client import MasterCallError
from native.storage import StorageError, scrub_index
from native.storage import scrub_volume as scrub_volume_records
from native.storage.ec import checksum_scrub, scrub_ec_index, scrub_ec_local
from native.maintenance_child import in_child, scrub_in_child
from native.offload import maintenance_thread, storage_call
from proto import master_pb2
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context

__all__ = ["HANDLERS", "scrub_volume", "scrub_ec_volume"]

INDEX, FULL, LOCAL, CHECKSUM, READS = vs.INDEX, vs.FULL, vs.LOCAL, vs.CHECKSUM, vs.READS

_VOLUME_MODES: dict[int, Callable[[Any], tuple[int, list[str]]]] = {
    INDEX: scrub_index, FULL: scrub_volume_records, LOCAL: scrub_volume_records, READS: scrub_volume_records,
}


async def scrub_volume(svc: Services, req: vs.ScrubVolumeRequest, ctx: Context) -> vs.ScrubVolumeResponse:
    check_admin(svc.guard, ctx)
    store = svc.store
    # every volume: in a thread (mixed mode's follower loads the views it lists)
    vids = list(req.volume_ids) or await trio.to_thread.run_sync(
        lambda: [vid for loc in store.locations for vid in loc.volume_ids()])
    resp = vs.ScrubVolumeResponse()
    broken = []
    for vid in vids:
        v = await storage_call(store.find_volume, vid)
        if v is None:
            raise go_error(f"volume id {vid} not found")
        scrub = _VOLUME_MODES.get(req.mode)
        if scrub is None:
            raise go_error(f"unsupported volume scrub mode {req.mode}")
        if scrub is scrub_volume_records and in_child():
            scrub = scrub_in_child
        files, errs = await maintenance_thread(scrub, v)
        resp.total_volumes += 1
        resp.total_files += files
        if errs:
            broken.append(v)
            resp.broken_volume_ids.append(v.id)
            resp.details.extend(errs)
    failures = []
    if req.mark_broken_volumes_readonly:
        for v in broken:
            try:
                await _make_readonly(svc, v)
            except _MarkFailed as exc:
                failures.append(str(exc))
                resp.details.append(str(exc))
            else:
                resp.details.append(f"volume {v.id} is now read-only")
    _count_scrub(svc, req.mode, len(broken))
    if failures:
        raise go_error("\n".join(failures))
    return resp


def _count_scrub(svc: Services, mode: int, volumes: int, shards: int | None = None) -> None:
    """Go's scrub metrics once a scrub went through every volume: when, and what was broken."""
    m = svc.ctx.metrics
    label = vs.VolumeScrubMode.Name(mode) if mode in vs.VolumeScrubMode.values() else str(mode)
    m.family("scrub_last_time_seconds").labels(label).set(int(time.time()))
    m.family("scrub_volume_failures").labels(label).inc(volumes)
    if shards is not None:
        m.family("scrub_shard_failures").labels(label).inc(shards)


async def scrub_ec_volume(svc: Services, req: vs.ScrubEcVolumeRequest, ctx: Context) -> vs.ScrubEcVolumeResponse:
    check_admin(svc.guard, ctx)
    store = svc.store
    if req.force_deleted_needles_check and req.mode not in (FULL, READS):
        raise go_error("deleted needle checks are only supported for FULL and READS scrubs")
    vids = list(req.volume_ids) or await trio.to_thread.run_sync(_ec_volume_ids, store)
    resp = vs.ScrubEcVolumeResponse()
    for vid in vids:
        ev = store.ec.find_volume(vid)
        if ev is None:
            raise go_error(f"EC volume id {vid} not found")
        infos: list = []
        if req.mode == INDEX:
            files, errs = await maintenance_thread(scrub_ec_index, ev)
        elif req.mode == LOCAL:
            files, infos, errs = await maintenance_thread(scrub_ec_local, ev)
        elif req.mode in (FULL, READS):
            files, infos, errs = await scrub_ec_distributed(
                svc.ctx, ev, recover=req.mode == READS, force_deleted_check=req.force_deleted_needles_check)
        elif req.mode == CHECKSUM:
            _, infos, errs = await maintenance_thread(checksum_scrub, ev)
            files = 0  # blocks were scanned, not files
        else:
            raise go_error(f"unsupported EC volume scrub mode {req.mode}")
        resp.total_volumes += 1
        resp.total_files += files
        if errs or infos:
            resp.broken_volume_ids.append(vid)
            resp.broken_shard_infos.extend(infos)
            resp.details.extend(errs)
    _count_scrub(svc, req.mode, len(resp.broken_volume_ids), len(resp.broken_shard_infos))
    return resp


def _ec_volume_ids(store: Any) -> list[int]:
    """Per disk location, in id order (Go walks each location's EC volumes)."""
    out: list[int] = []
    for disk_id, _ in enumerate(store.locations):
        out.extend(sorted(ev.vid for d, ev in store.ec.all() if d == disk_id))
    return out


class _MarkFailed(Exception):
    pass


async def _make_readonly(svc: Services, v: Any) -> None:
    """Go's makeVolumeReadonly(ctx, v, canDelete=false, persist=true)."""
    cfg, store = svc.ctx.cfg, svc.ctx.store
    loc = store.location_of(v.id)
    req = master_pb2.VolumeMarkReadonlyRequest(
        ip=cfg.ip, port=cfg.port, volume_id=v.id, collection=v.collection,
        replica_placement=v.replica_placement.to_byte(), ttl=v.ttl.to_uint32(),
        disk_type=loc[1].disk_type if loc else "", is_readonly=True,
    )
    try:
        await svc.master.mark_volume_readonly(req)
        await trio.to_thread.run_sync(lambda: store.mark_volume_readonly(v.id, can_delete=False, persist=True))
        await svc.master.mark_volume_readonly(req)
    except (MasterCallError, StorageError, OSError) as exc:
        raise _MarkFailed(str(exc)) from None
    finally:
        svc.master.notify_changed()


HANDLERS: Mapping[str, Handler] = {
    "ScrubVolume": scrub_volume,
    "ScrubEcVolume": scrub_ec_volume,
}
