"""VolumeEcShardsToVolume: decode EC shards back to a normal volume (Go's
volume_grpc_erasure_coding.go, as weed 4.48 answers it).

The shards decode to `.dat`/`.idx` next to them (the `.ecj` journal folded into `.ecx` first),
which are then compacted offline, as Go does. With `from_staged`, a volume staged by ReceiveFile
as `.dat/.idx/.vif.copying` is adopted and mounted instead. Errors are Go's texts as plain
errors (Unknown) unless noted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import trio

from native.grpc._common import check_admin, go_error
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services
from native.storage import IdxCodec, StorageError, Volume, commit_compact, compact, remove_file, volume_base_name
from native.storage.ec import (
    EcFileError,
    find_dat_size,
    fold_journal,
    has_live_needles,
    remove_sidecars,
    write_dat_file,
    write_idx_from_ecx,
)
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context, Status

__all__ = ["HANDLERS", "volume_ec_shards_to_volume"]

log = logging.getLogger("weedpy.native.ec")


def _to_volume(svc: Services, req: vs.VolumeEcShardsToVolumeRequest) -> None:
    store, ec = svc.store, svc.store.ec
    vid = req.volume_id
    ev, paths = ec.collect_shards(vid)
    if ev is None:
        raise go_error(f"ec volume {vid} not found")
    if ev.collection != req.collection:
        raise go_error(f"existing collection:{ev.collection} unexpected input: {req.collection}")
    k = ev.layout.data_shards
    for sid in range(k):
        if sid not in paths:
            raise go_error(f"ec volume {vid} missing shard {sid}")
    name = volume_base_name(ev.collection, vid)
    data_base = os.path.join(ev.directory, name)
    index_base = os.path.join(ev.idx_directory, name)
    if not os.path.exists(index_base + ".ecx"):
        index_base = data_base
    codec = IdxCodec.for_width(store.offset_bytes)
    try:
        fold_journal(index_base, codec)
    except (OSError, ValueError) as exc:
        raise go_error(f"RebuildEcxFile {index_base}: {exc}") from None
    if not has_live_needles(index_base + ".ecx", codec):
        raise go_error(f"ec volume {vid} has no live entries", Status.FAILED_PRECONDITION)
    try:
        dat_size = find_dat_size(paths[0], index_base + ".ecx", codec)
    except (OSError, EcFileError) as exc:
        raise go_error(f"FindDatFileSize {paths[0]}: {exc}") from None
    try:
        write_dat_file(data_base + ".dat", dat_size, ev.dat_file_size, [paths[i] for i in range(k)], ev.layout)
    except (OSError, EcFileError) as exc:
        raise go_error(f"WriteDatFile {data_base}: {exc}") from None
    if os.path.getsize(data_base + ".dat") < dat_size:
        raise go_error(f"decoded {data_base}.dat is short of the {dat_size} its ec index references")
    try:
        write_idx_from_ecx(index_base, index_base + ".idx", codec)
    except OSError as exc:
        raise go_error(f"WriteIdxFileFromEcIndex {index_base}: {exc}") from None
    remove_sidecars(data_base)
    if index_base != data_base:
        remove_sidecars(index_base)
    disk = next((i for i, e in ec.volumes_of(vid) if e is ev), None)
    loc = store.locations[disk] if disk is not None else None
    if loc is None:
        raise go_error(f"ec volume {vid} location not found for offline compaction")
    try:
        v = Volume.load(loc.directory, vid, collection=ev.collection, idx_directory=loc.idx_directory,
                        offset_bytes=store.offset_bytes)
        try:
            compact(v)
            commit_compact(v)
        finally:
            v.close()
    except (StorageError, OSError, ValueError) as exc:
        log.error("CompactVolumeFiles %s: %s", data_base, exc)
    if loc.idx_directory != loc.directory:
        src = os.path.join(loc.idx_directory, name + ".idx")
        if os.path.exists(src):
            os.replace(src, os.path.join(loc.directory, name + ".idx"))


def _adopt_staged(svc: Services, req: vs.VolumeEcShardsToVolumeRequest) -> None:
    store = svc.store
    vid = req.volume_id
    if store.find_volume(vid) is not None:
        raise go_error(f"staged volume {vid} already exists on this server")
    want = "" if req.disk_type in ("", "hdd") else req.disk_type.lower()
    name = volume_base_name(req.collection, vid)
    base = next((os.path.join(l.directory, name) for l in store.locations
                 if l.disk_type == want and os.path.exists(os.path.join(l.directory, name) + ".dat.copying")), None)
    if base is None:
        raise go_error(f"staged volume {vid}: no .dat.copying found on a {req.disk_type} disk")
    for ext in (".dat", ".idx", ".vif"):
        if not os.path.exists(base + ext + ".copying"):
            raise go_error(f"staged volume {vid} missing {ext}.copying")
    with open(base + ".note", "w") as f:
        f.write(f"adopting decoded volume {vid}")
    for ext in (".vif", ".dat", ".idx"):
        os.replace(base + ext + ".copying", base + ext)
    remove_file(base + ".note")
    try:
        store.mount_volume(vid)
    except (StorageError, OSError) as exc:
        raise go_error(f"mount staged volume {vid}: {exc}") from None


async def volume_ec_shards_to_volume(
    svc: Services, req: vs.VolumeEcShardsToVolumeRequest, ctx: Context,
) -> vs.VolumeEcShardsToVolumeResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    await trio.to_thread.run_sync(_adopt_staged if req.from_staged else _to_volume, svc, req)
    if req.from_staged:
        svc.master.notify_changed()
    return vs.VolumeEcShardsToVolumeResponse()


HANDLERS: Mapping[str, Handler] = {"VolumeEcShardsToVolume": volume_ec_shards_to_volume}
