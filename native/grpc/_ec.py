"""Erasure-coding rpcs (Go's volume_grpc_erasure_coding.go, as weed 4.48 answers them).

Generate encodes a mounted volume into shards next to it (`.ecx` first, then `.ec00..`, the
`.ecsum` sidecar, and a `.vif` recording the ratio, encode time and `.dat` size); Rebuild
regenerates missing shards from the disk with the most; Copy pulls shards and index files from
a peer with CopyFile (after the peer-trust check); Mount/Unmount/Delete manage shard files;
ShardRead streams shard bytes to peers; BlobDelete journals a needle delete; ShardsToVolume
decodes back to `.dat`/`.idx` (then compacts them offline, as Go does); ShardsInfo reports.
Errors are Go's texts as plain errors (Unknown) unless noted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator

import trio

from native.grpc._common import check_admin, go_error
from native.grpc._guards import check_maintenance, check_peer, grpc_target, peer_policy, wrap_peer_error
from native.grpc._services import Services
from native.storage import StorageError, Volume, VolumeInfo, load_volume_info, save_volume_info, volume_base_name
from native.storage._idx import IdxCodec
from native.storage._vacuum import commit_compact, compact
from native.storage.ec import MAX_SHARDS, SMALL_BLOCK, EcLayout, shard_ext
from native.storage.ec._files import EcFileError, encode_files, find_dat_size, rebuild_files, write_dat_file
from native.storage.ec._index import fold_journal, has_live_needles, write_ecx_from_idx, write_idx_from_ecx
from native.storage.ec._sidecar import SIDECAR_EXT, build_protection, remove_sidecars, save_sidecar, ChecksumBuilder
from native.storage.ec._store import SHARD_FILE, EcMountError
from native.storage.ec._volume import layout_from_info
from proto import volume_server_pb2 as vs
from proto.services import RPCS
from weedpy.grpc import Channel, Context, GrpcError, Router, Status
from native.storage._fs import remove_file

__all__ = ["register"]

log = logging.getLogger("weedpy.native.ec")

P = "/volume_server_pb.VolumeServer/"
BUFFER = 2 * 1024 * 1024  # Go's BufferSizeLimit
ANY_REVISION = 0xFFFFFFFF
MAX_INT64 = (1 << 63) - 1




def _shard_count(base: str, loc) -> tuple[bool, bool, int]:
    """Go's checkEcVolumeStatus: (.ecx/.ecj present, .idx present, shard files) in the location."""
    has_ecx = has_idx = False
    count = 0
    for d in dict.fromkeys((loc.directory, loc.idx_directory)):
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            if n in (base + ".ecx", base + ".ecj"):
                has_ecx = True
            elif n == base + ".idx":
                has_idx = True
            elif (m := SHARD_FILE.match(n)) and m.group(1) == base and int(m.group(2)) < MAX_SHARDS:
                count += 1
    return has_ecx, has_idx, count


def _remove_stale(data_base: str, idx_base: str) -> None:
    """Go's removeStaleEcArtifacts: shards, index, journal, sidecars; the `.vif` only where no
    `.idx` makes it a live normal volume's."""
    for i in range(MAX_SHARDS):
        remove_file(data_base + shard_ext(i))
    for b in dict.fromkeys((idx_base, data_base)):
        remove_file(b + ".ecx")
        remove_file(b + ".ecj")
        remove_sidecars(b)
    if not os.path.exists(idx_base + ".idx"):
        remove_file(idx_base + ".vif")
        if data_base != idx_base and not os.path.exists(data_base + ".idx"):
            remove_file(data_base + ".vif")


def _vif_layout(path: str) -> EcLayout:
    try:
        info = load_volume_info(path)
    except ValueError:
        info = None
    return layout_from_info(info)


def _generation(data_base: str, idx_base: str) -> tuple[int, bool]:
    for b in dict.fromkeys((data_base, idx_base)):
        try:
            info = load_volume_info(b + ".vif")
        except ValueError:
            return 0, True
        if info is not None:
            cfg = info.ec_shard_config or {}
            try:
                return int(cfg.get("encodeTsNs", cfg.get("encode_ts_ns", 0)) or 0), True
            except (TypeError, ValueError):
                return 0, True
    return 0, False


def register(router: Router, svc: Services) -> None:
    store = svc.ctx.store
    guard = svc.guard
    policy = peer_policy(svc)
    ec = getattr(store, "ec", None)
    if ec is None:  # mixed mode's read-only follower holds no EC volumes of its own
        return

    def add(name: str, fn) -> None:
        router.add(RPCS[P + name], fn)

    # generate -------------------------------------------------------------------------------

    def generate(vid: int, collection: str) -> None:
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
                _remove_stale(os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name))
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

    async def shards_generate(req: vs.VolumeEcShardsGenerateRequest, ctx: Context) -> vs.VolumeEcShardsGenerateResponse:
        check_admin(guard, ctx)
        check_maintenance(svc)
        await trio.to_thread.run_sync(generate, req.volume_id, req.collection)
        return vs.VolumeEcShardsGenerateResponse()

    # rebuild --------------------------------------------------------------------------------

    def rebuild(vid: int, collection: str) -> list[int]:
        name = volume_base_name(collection, vid)
        target, target_count, others = None, 0, []
        for loc in store.locations:
            _, _, count = _shard_count(name, loc)
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
            path = next((p for p in [data_base + shard_ext(sid)] + [os.path.join(o.directory, name + shard_ext(sid)) for o in others]
                         if os.path.isfile(p)), None)
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
        paths = []
        for sid in range(layout.total_shards):
            p = next((q for q in [data_base + shard_ext(sid)] + [os.path.join(d, name + shard_ext(sid)) for d in dirs]
                      if os.path.isfile(q)), None)
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

    async def shards_rebuild(req: vs.VolumeEcShardsRebuildRequest, ctx: Context) -> vs.VolumeEcShardsRebuildResponse:
        check_admin(guard, ctx)
        check_maintenance(svc)
        ids = await trio.to_thread.run_sync(rebuild, req.volume_id, req.collection)
        return vs.VolumeEcShardsRebuildResponse(rebuilt_shard_ids=ids)

    # copy -----------------------------------------------------------------------------------

    async def pull(ch: Channel, req: vs.VolumeEcShardsCopyRequest, dest: str, ext: str, *, append: bool, ignore: bool) -> None:
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
                        await trio.to_thread.run_sync(_write_all, fd, resp.file_content)
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

    async def shards_copy(req: vs.VolumeEcShardsCopyRequest, ctx: Context) -> vs.VolumeEcShardsCopyResponse:
        check_admin(guard, ctx)
        check_maintenance(svc)
        vid = req.volume_id
        locs = store.locations
        if req.disk_id > 0:
            if req.disk_id >= len(locs):
                raise go_error(f"invalid disk_id {req.disk_id}: only have {len(locs)} disks")
            loc = locs[req.disk_id]
        else:
            disk = ec.target_location(req.collection, vid)
            if disk is None:
                raise go_error("no space left")
            loc = locs[disk]
        await check_peer(policy, req.source_data_node, "source data node")
        name = volume_base_name(req.collection, vid)
        data_base, index_base = os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name)
        host, port = grpc_target(req.source_data_node)
        try:
            async with Channel(host, port) as ch:
                for sid in req.shard_ids:
                    await pull(ch, req, data_base, shard_ext(sid), append=False, ignore=False)
                if req.copy_ecx_file:
                    await pull(ch, req, index_base, ".ecx", append=False, ignore=False)
                    path = index_base + ".ecx"
                    if not os.path.isfile(path):
                        raise go_error(f"VolumeEcShardsCopy volume {vid}: stat copied .ecx {path}: no such file or directory")
                    if os.path.getsize(path) == 0:
                        remove_file(path)
                        raise go_error(f"VolumeEcShardsCopy volume {vid}: source .ecx is 0 bytes")
                if req.copy_ecj_file:
                    await pull(ch, req, index_base, ".ecj", append=True, ignore=True)
                if req.copy_vif_file:
                    await pull(ch, req, data_base, ".vif", append=False, ignore=True)
                if req.copy_ecsum_file:
                    await pull(ch, req, data_base, SIDECAR_EXT, append=False, ignore=True)
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

    # delete ---------------------------------------------------------------------------------

    def delete_shards(req: vs.VolumeEcShardsDeleteRequest) -> bool:
        name = volume_base_name(req.collection, req.volume_id)
        if req.full_teardown:
            if req.encode_ts_ns == 0:
                ec.unload_volume(req.volume_id)
                for loc in store.locations:
                    _remove_stale(os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name))
                return True
            for loc in store.locations:
                db, ib = os.path.join(loc.directory, name), os.path.join(loc.idx_directory, name)
                gen, readable = _generation(db, ib)
                if not readable or gen == 0 or gen >= req.encode_ts_ns:
                    continue
                ec.unload_volume(req.volume_id)
                _remove_stale(db, ib)
            return True
        for loc in store.locations:
            db = os.path.join(loc.directory, name)
            found = False
            for sid in req.shard_ids:
                if os.path.exists(db + shard_ext(sid)):
                    found = True
                    os.remove(db + shard_ext(sid))
            if found and _shard_count(name, loc)[2] == 0:
                remove_sidecars(db)
        statuses = [(loc, *_shard_count(name, loc)) for loc in store.locations]
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

    async def shards_delete(req: vs.VolumeEcShardsDeleteRequest, ctx: Context) -> vs.VolumeEcShardsDeleteResponse:
        check_admin(guard, ctx)
        check_maintenance(svc)
        try:
            done = await trio.to_thread.run_sync(delete_shards, req)
        except OSError as exc:
            raise go_error(str(exc)) from None
        return vs.VolumeEcShardsDeleteResponse(full_teardown_done=done)

    # mount / unmount ------------------------------------------------------------------------

    async def shards_mount(req: vs.VolumeEcShardsMountRequest, ctx: Context) -> vs.VolumeEcShardsMountResponse:
        try:
            for sid in req.shard_ids:
                try:
                    await trio.to_thread.run_sync(ec.mount_shard, req.collection, req.volume_id, sid, req.source_disk_type)
                except (EcMountError, OSError, StorageError, ValueError) as exc:
                    raise go_error(f"mount {req.volume_id}.{sid}: {exc}") from None
        finally:
            svc.master.notify_changed()
        return vs.VolumeEcShardsMountResponse()

    async def shards_unmount(req: vs.VolumeEcShardsUnmountRequest, ctx: Context) -> vs.VolumeEcShardsUnmountResponse:
        check_admin(guard, ctx)
        for sid in req.shard_ids:
            if req.encode_ts_ns > 0:
                ev = ec.find_volume(req.volume_id)
                if ev is None or not (0 < ev.encode_ts_ns < req.encode_ts_ns):
                    continue
            ec.unmount_shard(req.volume_id, sid)
        svc.master.notify_changed()
        return vs.VolumeEcShardsUnmountResponse()

    # shard read -----------------------------------------------------------------------------

    async def shard_read(req: vs.VolumeEcShardReadRequest, ctx: Context) -> AsyncIterator[vs.VolumeEcShardReadResponse]:
        hit = ec.find_shard(req.volume_id, req.shard_id)
        if hit is None:
            raise go_error(f"not found ec shard {req.volume_id}.{req.shard_id}")
        ev, shard = hit
        if req.encode_ts_ns != 0 and req.encode_ts_ns != ev.encode_ts_ns:
            raise go_error(f"ec shard {req.volume_id}.{req.shard_id} belongs to a different encode run")
        if req.file_key != 0:
            try:
                _, size = ev.find_needle(req.file_key)
            except StorageError:
                size = 0
            if size < 0:
                yield vs.VolumeEcShardReadResponse(is_deleted=True, encode_ts_ns=ev.encode_ts_ns)
                return
        pos, left = req.offset, req.size
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

    # blob delete ----------------------------------------------------------------------------

    async def blob_delete(req: vs.VolumeEcBlobDeleteRequest, ctx: Context) -> vs.VolumeEcBlobDeleteResponse:
        check_maintenance(svc)
        for _, ev in ec.volumes_of(req.volume_id)[:1]:
            try:
                _, size = ev.find_needle(req.file_key)
            except StorageError:
                raise go_error("locate in local ec volume: FindNeedleFromEcx: needle not found") from None
            if size < 0:
                break
            try:
                await trio.to_thread.run_sync(ev.delete_needle, req.file_key)
            except (StorageError, OSError) as exc:
                raise go_error(str(exc)) from None
        return vs.VolumeEcBlobDeleteResponse()

    # decode ---------------------------------------------------------------------------------

    def to_volume(req: vs.VolumeEcShardsToVolumeRequest) -> None:
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

    def adopt_staged(req: vs.VolumeEcShardsToVolumeRequest) -> None:
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

    async def shards_to_volume(req: vs.VolumeEcShardsToVolumeRequest, ctx: Context) -> vs.VolumeEcShardsToVolumeResponse:
        check_admin(guard, ctx)
        check_maintenance(svc)
        await trio.to_thread.run_sync(adopt_staged if req.from_staged else to_volume, req)
        if req.from_staged:
            svc.master.notify_changed()
        return vs.VolumeEcShardsToVolumeResponse()

    # info -----------------------------------------------------------------------------------

    def info(vid: int) -> vs.VolumeEcShardsInfoResponse:
        vols = ec.volumes_of(vid)
        if not vols:
            raise go_error(f"VolumeEcShardsInfo: EC volume {vid} not found")
        primary = vols[0][1]
        out = vs.VolumeEcShardsInfoResponse()
        seen = set()
        for _, ev in vols:
            for s in ev.shard_list():
                if s.shard_id not in seen:
                    seen.add(s.shard_id)
                    out.ec_shard_infos.add(shard_id=s.shard_id, size=s.size, collection=s.collection, volume_id=vid)
        files = deleted = total = 0
        raw = os.pread(primary.ecx_fd, primary.ecx_size, 0)
        for e in primary.codec.iter_entries(raw):
            total += e.size & 0xFFFFFFFF
            if e.size < 0:
                deleted += 1
            else:
                files += 1
        out.file_count, out.file_deleted_count, out.volume_size = files, deleted, total
        out.ec_shard_config.data_shards = primary.layout.data_shards
        out.ec_shard_config.parity_shards = primary.layout.parity_shards
        return out

    async def shards_info(req: vs.VolumeEcShardsInfoRequest, ctx: Context) -> vs.VolumeEcShardsInfoResponse:
        return await trio.to_thread.run_sync(info, req.volume_id)

    add("VolumeEcShardsGenerate", shards_generate)
    add("VolumeEcShardsRebuild", shards_rebuild)
    add("VolumeEcShardsCopy", shards_copy)
    add("VolumeEcShardsDelete", shards_delete)
    add("VolumeEcShardsMount", shards_mount)
    add("VolumeEcShardsUnmount", shards_unmount)
    add("VolumeEcShardRead", shard_read)
    add("VolumeEcBlobDelete", blob_delete)
    add("VolumeEcShardsToVolume", shards_to_volume)
    add("VolumeEcShardsInfo", shards_info)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _go_list(ids: list[int]) -> str:
    return "[" + " ".join(str(i) for i in ids) + "]"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
