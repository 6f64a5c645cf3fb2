"""Erasure-coding rpcs that produce shards (Go's volume_grpc_erasure_coding.go, as weed 4.48
answers them).

VolumeEcShardsGenerate encodes a mounted volume into shards next to it (`.ecx` first, then
`.ec00..`, the `.ecsum` sidecar, and a `.vif` recording the ratio, encode time and `.dat` size);
VolumeEcShardsRebuild regenerates missing shards from the disk with the most. Errors are Go's
texts as plain errors (Unknown).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

import trio

from native.grpc._common import check_admin, go_error
from native.grpc._ec_files import ec_file_status, remove_stale_ec_files
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services
from native.storage import IdxCodec, VolumeInfo, load_volume_info, remove_file, save_volume_info, volume_base_name
from native.storage.ec import (
    SIDECAR_EXT,
    SMALL_BLOCK,
    ChecksumBuilder,
    EcFileError,
    EcLayout,
    build_protection,
    encode_files,
    fold_journal,
    layout_from_info,
    rebuild_files,
    save_sidecar,
    shard_ext,
    write_ecx_from_idx,
)
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context

__all__ = ["HANDLERS", "volume_ec_shards_generate", "volume_ec_shards_rebuild"]

log = logging.getLogger("weedpy.native.ec")


# generate ---------------------------------------------------------------------------------------

def _generate(svc: Services, vid: int, collection: str) -> None:
    store, ec = svc.store, svc.store.ec
    v = store.find_volume(vid)
    if v is None:
        raise go_error(f"volume {vid} not found")
    if v.collection != collection:
        raise go_error(f"existing collection:{v.collection} unexpected input: {collection}")
    base = v.dat_path[:-4]
    idx_base = v.idx_path[:-4]
    layout = EcLayout()
    try:
        info = load_volume_info(base + ".vif")
    except ValueError:
        info = None
    if info is not None and info.ec_shard_config:
        layout = layout_from_info(info)
    ok = False
    try:
        ec.unload_volume(vid)
        for loc in store.locations:
            name = volume_base_name(collection, vid)
            remove_stale_ec_files(os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name))
        try:
            write_ecx_from_idx(v.idx_path, idx_base + ".ecx", store.offset_bytes)
        except (OSError, ValueError) as exc:
            raise go_error(f"WriteSortedFileFromIdx {idx_base}: readNeedleMap: {exc}") from None
        dat_size = v.dat_size
        try:
            prot = encode_files(v.dat_path, base, layout)
        except (OSError, EcFileError) as exc:
            raise go_error(f"WriteEcFiles {base}: {exc}") from None
        try:
            save_sidecar(base + SIDECAR_EXT, prot)
        except OSError as exc:
            log.warning("failed to write EC bitrot sidecar for volume %d: %s", vid, exc)
        expire = 0
        ttl_s = v.ttl.seconds
        if ttl_s > 0:
            expire = int(time.time()) + ttl_s
        save_volume_info(base + ".vif", VolumeInfo(
            version=v.version, dat_file_size=dat_size, expire_at_sec=expire,
            ec_shard_config={"dataShards": layout.data_shards, "parityShards": layout.parity_shards,
                             "encodeTsNs": str(time.time_ns()), "blockSize": str(SMALL_BLOCK)},
        ))
        ok = True
    finally:
        if not ok:
            for i in range(layout.total_shards):
                remove_file(base + shard_ext(i))
            remove_file(idx_base + ".ecx")
            remove_file(base + SIDECAR_EXT)


async def volume_ec_shards_generate(
    svc: Services, req: vs.VolumeEcShardsGenerateRequest, ctx: Context,
) -> vs.VolumeEcShardsGenerateResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    await trio.to_thread.run_sync(_generate, svc, req.volume_id, req.collection)
    return vs.VolumeEcShardsGenerateResponse()


# rebuild ----------------------------------------------------------------------------------------

def _rebuild(svc: Services, vid: int, collection: str, started: list[float] | None = None) -> list[int]:
    """`started` gets the time the rebuild itself began (Go times and counts from there)."""
    store = svc.store
    name = volume_base_name(collection, vid)
    target, target_count, others = None, 0, []
    for loc in store.locations:
        _, _, count = ec_file_status(name, loc)
        has_ecx = any(os.path.exists(os.path.join(d, name + ".ecx")) for d in (loc.idx_directory, loc.directory))
        if count == 0 and not has_ecx:
            continue
        if has_ecx and (target is None or count > target_count):
            if target is not None:
                others.append(target)
            target, target_count = loc, count
        else:
            others.append(loc)
    if target is None:
        return []
    if started is not None:
        started.append(time.perf_counter())
    data_base = os.path.join(target.directory, name)
    try:
        info = load_volume_info(data_base + ".vif")
    except ValueError as exc:
        raise go_error(f"RebuildEcFiles {data_base}: RebuildEcFiles {data_base}: cannot load .vif: {exc}") from None
    layout = layout_from_info(info)
    inputs: dict[int, str] = {}
    outputs: dict[int, str] = {}
    generated = []
    for sid in range(layout.total_shards):
        candidates = [data_base + shard_ext(sid)] + [os.path.join(o.directory, name + shard_ext(sid)) for o in others]
        path = next((p for p in candidates if os.path.isfile(p)), None)
        if path is None or os.path.getsize(path) == 0:
            generated.append(sid)
            outputs[sid] = path or data_base + shard_ext(sid)
            continue
        inputs[sid] = path
    if len(inputs) < layout.data_shards:
        raise go_error(f"RebuildEcFiles {data_base}: not enough shards to rebuild {data_base}: found {len(inputs)} shards, "
                       f"need at least {layout.data_shards} (data shards), missing shards: {_go_list(generated)}")
    if outputs:
        try:
            rebuild_files(inputs, outputs, layout)
        except (OSError, EcFileError, ValueError) as exc:
            raise go_error(f"RebuildEcFiles {data_base}: rebuildEcFiles: {exc}") from None
    index_base = os.path.join(target.idx_directory, name)
    if not os.path.exists(index_base + ".ecx") and target.idx_directory != target.directory:
        index_base = data_base
    try:
        fold_journal(index_base, IdxCodec.for_width(store.offset_bytes))
    except (OSError, ValueError) as exc:
        raise go_error(f"RebuildEcxFile {index_base}: {exc}") from None
    if not os.path.exists(data_base + SIDECAR_EXT):
        _backfill_sidecar(data_base, layout, [o.directory for o in others], name)
    return generated


def _backfill_sidecar(data_base: str, layout: EcLayout, dirs: list[str], name: str) -> None:
    """Write the `.ecsum` a volume encoded without one lacks, once every shard is on hand."""
    paths = []
    for sid in range(layout.total_shards):
        candidates = [data_base + shard_ext(sid)] + [os.path.join(d, name + shard_ext(sid)) for d in dirs]
        p = next((q for q in candidates if os.path.isfile(q)), None)
        if p is None:
            return
        paths.append(p)
    builders = []
    for p in paths:
        b = ChecksumBuilder()
        with open(p, "rb") as f:
            while chunk := f.read(4 << 20):
                b.write(chunk)
        builders.append(b)
    try:
        save_sidecar(data_base + SIDECAR_EXT, build_protection(layout.data_shards, layout.parity_shards, builders, SMALL_BLOCK))
    except OSError as exc:
        log.warning("bitrot backfill: write sidecar for %s: %s", data_base, exc)


async def volume_ec_shards_rebuild(
    svc: Services, req: vs.VolumeEcShardsRebuildRequest, ctx: Context,
) -> vs.VolumeEcShardsRebuildResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    started: list[float] = []
    result = "failure"
    try:
        ids = await trio.to_thread.run_sync(_rebuild, svc, req.volume_id, req.collection, started)
        result = "success"
    finally:
        if started:  # Go's recordEcRebuild: ec_rebuild_seconds{result} and ec_rebuild_total{result}
            m = svc.ctx.metrics
            m.family("ec_rebuild_seconds").labels(result).observe(time.perf_counter() - started[0])
            m.family("ec_rebuild_total").labels(result).inc()
    return vs.VolumeEcShardsRebuildResponse(rebuilt_shard_ids=ids)


def _go_list(ids: list[int]) -> str:
    return "[" + " ".join(str(i) for i in ids) + "]"


HANDLERS: Mapping[str, Handler] = {
    "VolumeEcShardsGenerate": volume_ec_shards_generate,
    "VolumeEcShardsRebuild": volume_ec_shards_rebuild,
}
