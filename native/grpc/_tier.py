"""VolumeTierMoveDatToRemote / VolumeTierMoveDatFromRemote and VolumeConsolidateIndex, as the
weed 4.48 binary answers them (volume_grpc_tier_upload.go, _download.go, volume_grpc_admin.go).

Upload: admin whitelist, maintenance mode, the volume, its collection, then (a volume already
tiered answers OK with nothing sent) the destination backend (`destination X not found,
supported: [...]`), and one already holding a copy there; the `.dat` is copied under a random
key, the remote file is recorded in `.vif`, the volume switches to serving from remote storage
(read-only, deletes allowed) and the local `.dat` is removed unless asked to keep it.

Download: admin whitelist (no maintenance check, as 4.48), the volume, its collection, `volume
N is already on local disk` when it is not tiered, the backend; the object is fetched to `.dat`
(its modification time restored), `.vif` is trimmed before anything remote is deleted, the
volume switches to the local file (still read-only until marked writable or reloaded, as Go
leaves it), and the object is deleted unless asked to keep it (other replicas may still use it).

Progress messages go out at most once a second, the first one a second after the start (Go's
throttle): small volumes move without any.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Generator, Mapping
from typing import Any

import trio

from native.grpc._common import check_admin, float32, go_error
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services
from native.storage import StorageError, VolumeNotFound, consolidate_volume_index
from native.storage.tier import (
    RemoteFile,
    TierError,
    backend_name_to_type_id,
    drop_first_remote_file,
    fsync_dir,
    remote_files,
    swap_to_local,
    swap_to_remote,
)
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context

__all__ = [
    "HANDLERS", "volume_tier_move_dat_to_remote", "volume_tier_move_dat_from_remote", "volume_consolidate_index",
    "PROGRESS_SECONDS",
]

PROGRESS_SECONDS = 1.0


def _go_list(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _advance(steps: Generator[int, None, Any], since: float) -> tuple[bool, int, Any]:
    """Run a transfer until a progress report is due or it ends: (done, processed, result)."""
    processed = 0
    try:
        while True:
            processed = next(steps)
            if time.monotonic() - since >= PROGRESS_SECONDS:
                return False, processed, None
    except StopIteration as stop:
        return True, processed, stop.value


async def _transfer(steps: Generator[int, None, Any], total: int, message: type) -> AsyncIterator[Any]:
    """Drive `steps` in worker threads, yielding progress messages; the last item is the
    transfer's result wrapped in a tuple."""
    since = time.monotonic()
    try:
        while True:
            done, processed, result = await trio.to_thread.run_sync(_advance, steps, since)
            if done:
                yield (result,)
                return
            since = time.monotonic()
            yield message(processed=processed, processedPercentage=float32(processed * 100 / total) if total else 0.0)
    finally:
        with trio.CancelScope(shield=True):  # an aborted upload cleans up remotely: not on the loop
            await trio.to_thread.run_sync(steps.close)


def _volume_of(store, vid: int, collection: str):
    v = store.find_volume(vid)
    if v is None:
        raise go_error(f"volume {vid} not found")
    if v.collection != collection:
        raise go_error(f"existing collection:{v.collection} unexpected input: {collection}")
    return v


async def volume_tier_move_dat_to_remote(
    svc: Services, req: vs.VolumeTierMoveDatToRemoteRequest, ctx: Context,
) -> AsyncIterator[vs.VolumeTierMoveDatToRemoteResponse]:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    store = svc.store
    v = _volume_of(store, req.volume_id, req.collection)
    if getattr(v, "is_remote", False):
        return  # already copied to remote
    dat = v.dat_path
    try:
        mtime = int(os.stat(dat).st_mtime)
    except OSError as exc:
        raise go_error(f"stat data file {dat}: {exc}") from None
    name = req.destination_backend_name
    backend = store.tier_backends.get(name)
    if backend is None:
        raise go_error(f"destination {name} not found, supported: {_go_list(store.tier_backends.names())}")
    btype, bid = backend_name_to_type_id(name)
    if any(f.backend_type == btype and f.backend_id == bid for f in remote_files(v.info)):
        raise go_error(f"destination {name} already exists")
    size = os.path.getsize(dat)
    result = None
    try:
        async for item in _transfer(backend.copy_file(dat), size, vs.VolumeTierMoveDatToRemoteResponse):
            if isinstance(item, tuple):
                result = item[0]
            else:
                yield item
    except (StorageError, OSError) as exc:
        raise go_error(f"backend {name} copy file {dat}: {exc}") from None
    key, copied = result
    remote = RemoteFile(btype, bid, key, 0, copied, mtime, ".dat")
    try:
        await trio.to_thread.run_sync(swap_to_remote, store, v, remote)
    except (StorageError, OSError, ValueError) as exc:
        raise go_error(f"volume {v.id} failed to load remote file: {exc}") from None
    finally:
        svc.master.notify_changed()
    if not req.keep_local_dat_file:
        try:
            os.remove(dat)
        except OSError:
            pass


async def volume_tier_move_dat_from_remote(
    svc: Services, req: vs.VolumeTierMoveDatFromRemoteRequest, ctx: Context,
) -> AsyncIterator[vs.VolumeTierMoveDatFromRemoteResponse]:
    check_admin(svc.guard, ctx)
    store = svc.store
    v = _volume_of(store, req.volume_id, req.collection)
    name, key = getattr(v, "remote_storage", ("", ""))
    if not name or not key or not getattr(v, "is_remote", False):
        raise go_error(f"volume {v.id} is already on local disk")
    modified = v.remote.modified_time
    backend = store.tier_backends.get(name)
    if backend is None:
        raise go_error(f"remote storage {name} not found from supported: {_go_list(store.tier_backends.names())}")
    dat = v.dat_path
    try:
        async for item in _transfer(backend.download_file(dat, key), v.remote.file_size,
                                    vs.VolumeTierMoveDatFromRemoteResponse):
            if not isinstance(item, tuple):
                yield item
    except (StorageError, OSError) as exc:
        raise go_error(f"backend {name} copy file {dat}: {exc}") from None
    if modified > 0:
        try:
            os.utime(dat, (modified, modified))
        except OSError:
            pass  # cosmetic: Go only warns
    try:
        await trio.to_thread.run_sync(fsync_dir, v.directory)
    except OSError as exc:
        raise go_error(f"volume {v.id} fsync dir for {dat}: {exc}") from None
    try:
        await trio.to_thread.run_sync(drop_first_remote_file, v)
    except (StorageError, OSError) as exc:
        raise go_error(f"volume {v.id} failed to save remote file info: {exc}") from None
    try:
        await trio.to_thread.run_sync(swap_to_local, store, v)
    except (StorageError, OSError, ValueError) as exc:
        raise go_error(f"volume {v.id} failed to open local dat file {dat}: {exc}") from None
    finally:
        svc.master.notify_changed()
    if req.keep_remote_dat_file:
        return
    try:
        await trio.to_thread.run_sync(backend.delete_file, key)
    except TierError as exc:
        raise go_error(f"volume {v.id} failed to delete remote file {key}: {exc}") from None


async def volume_consolidate_index(
    svc: Services, req: vs.VolumeConsolidateIndexRequest, ctx: Context,
) -> vs.VolumeConsolidateIndexResponse:
    """Move a volume's `.idx` (left by its `.dat` after an EC decode) to the `-dir.idx` directory."""
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    try:
        await trio.to_thread.run_sync(consolidate_volume_index, svc.store, req.volume_id)
    except VolumeNotFound as exc:
        raise go_error(str(exc)) from None
    except (StorageError, OSError) as exc:
        raise go_error(f"relocate index for volume {req.volume_id}: move .idx: {exc}") from None
    return vs.VolumeConsolidateIndexResponse()


HANDLERS: Mapping[str, Handler] = {
    "VolumeTierMoveDatToRemote": volume_tier_move_dat_to_remote,
    "VolumeTierMoveDatFromRemote": volume_tier_move_dat_from_remote,
    "VolumeConsolidateIndex": volume_consolidate_index,
}
