"""Whole-file and incremental copy rpcs: VolumeSyncStatus, VolumeIncrementalCopy, CopyFile,
ReceiveFile, VolumeCopy (Go's volume_grpc_copy.go and _copy_incremental.go, as 4.48 answers).

CopyFile serves any file of a volume by extension (`.dat .idx .vif`, or EC files by name),
checking the compaction revision unless it is 2^32-1, stopping at `stop_offset`, and sending
the file's mtime (ns) in the first message (alone, for an empty file or a zero stop offset). A
missing file ends the stream quietly when `ignore_source_file_not_found` or a zero stop offset
says so. VolumeCopy is the client side of the same: it asks the source (Go or weedpy) for
ReadVolumeFileStatus, pulls `.dat`, `.idx` and `.vif` with CopyFile under a `.note` marker,
checks the sizes, mounts the volume and answers with the last record's AppendAtNs, streaming a
progress message every 128 MiB of `.dat` on the way. The source address passes the project's
peer-trust rule first. Remote-tiered sources (a `.vif` listing remote files) have only their
`.idx` and `.vif` copied: the `.dat` stays in remote storage (Go).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping

import trio

from native.grpc._common import check_admin, go_error, write_all
from native.grpc._guards import check_maintenance, check_peer, grpc_target, wrap_peer_error
from native.grpc._services import Handler, Services
from native.storage import (
    IdxCodec,
    StorageError,
    last_append_at_ns,
    locate_since,
    normalize_disk_type,
    readable_disk_type,
    remove_file,
    volume_base_name,
)
from native.offload import storage_call
from proto import volume_server_pb2 as vs
from weedpy.grpc import Channel, Context, GrpcError

__all__ = [
    "HANDLERS", "volume_sync_status", "volume_incremental_copy", "copy_file", "receive_file", "volume_copy",
    "check_file_extension", "check_collection", "COPY_CHUNK",
]

P = "/volume_server_pb.VolumeServer/"
COPY_CHUNK = 2 * 1024 * 1024  # Go's BufferSizeLimit
REPORT_INTERVAL = 128 << 20
ANY_REVISION = 0xFFFFFFFF


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def check_file_extension(ext: str) -> None:
    """Go's checkVolumeFileExtension: a dot and alphanumerics only (no separators, no `..`)."""
    if len(ext) < 2 or ext[0] != "." or not all(c.isascii() and c.isalnum() for c in ext[1:]):
        raise ValueError(f"invalid file extension {_go_quote(ext)}")


def check_collection(collection: str) -> None:
    if collection in (".", "..") or "/" in collection or "\\" in collection:
        raise ValueError(f"invalid collection {_go_quote(collection)}")


def _os_error_text(exc: OSError, path: str) -> str:
    """Go's *PathError text: `open <path>: no such file or directory`."""
    reason = (exc.strerror or str(exc)).lower()
    return f"open {path}: {reason}"


class _RateLimit:
    """Go's WriteThrottler for copies (bytes per second; 0 = unlimited), sleeping in trio."""

    def __init__(self, bytes_per_second: int) -> None:
        self.limit = bytes_per_second
        self.count = 0
        self.since = trio.current_time()

    async def wrote(self, n: int) -> None:
        if self.limit <= 0:
            return
        self.count += n
        if self.count >= self.limit // 10:
            wanted = self.count / self.limit
            spent = trio.current_time() - self.since
            if wanted > spent:
                await trio.sleep(wanted - spent)
            self.count = 0
            self.since = trio.current_time()


async def _find(store, vid: int):
    v = await storage_call(store.find_volume, vid)
    if v is None:
        raise go_error(f"not found volume id {vid}")
    return v


# status and incremental copy ------------------------------------------------------------------

async def volume_sync_status(
    svc: Services, req: vs.VolumeSyncStatusRequest, ctx: Context,
) -> vs.VolumeSyncStatusResponse:
    v = await _find(svc.store, req.volume_id)
    s = await storage_call(v.stats)
    return vs.VolumeSyncStatusResponse(
        volume_id=v.id, collection=v.collection, replication=str(v.replica_placement), ttl=str(v.ttl),
        tail_offset=s.dat_size, compact_revision=v.super_block.compaction_revision, idx_file_size=s.idx_size,
        version=v.version,
    )


async def volume_incremental_copy(
    svc: Services, req: vs.VolumeIncrementalCopyRequest, ctx: Context,
) -> AsyncIterator[vs.VolumeIncrementalCopyResponse]:
    """The `.dat` bytes from the first record appended after `since_ns` to the end."""
    v = await _find(svc.store, req.volume_id)
    fd, stop = await storage_call(v.pinned_dat)
    try:
        try:
            start = await trio.to_thread.run_sync(locate_since, v, req.since_ns)
        except (StorageError, OSError) as exc:
            raise go_error(f"fail to locate by appendAtNs {req.since_ns}: {exc}") from None
        if start is None:
            return
        pos = start
        while pos < stop:
            chunk = await trio.to_thread.run_sync(os.pread, fd, min(COPY_CHUNK, stop - pos), pos)
            if not chunk:
                break
            yield vs.VolumeIncrementalCopyResponse(file_content=chunk)
            pos += len(chunk)
    finally:
        os.close(fd)


# CopyFile -------------------------------------------------------------------------------------

async def _copy_source(store, req: vs.CopyFileRequest) -> str | None:
    """The file to send; None when an EC file is absent."""
    if not req.is_ec_volume:
        v = await _find(store, req.volume_id)
        if v.super_block.compaction_revision != req.compaction_revision and req.compaction_revision != ANY_REVISION:
            raise go_error(f"volume {req.volume_id} is compacted")
        return v.file_name(req.ext)
    name = volume_base_name(req.collection, req.volume_id) + req.ext
    found = None
    for loc in store.locations:
        for directory in (loc.directory, loc.idx_directory):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                found = path
    return found


async def copy_file(svc: Services, req: vs.CopyFileRequest, ctx: Context) -> AsyncIterator[vs.CopyFileResponse]:
    try:
        check_file_extension(req.ext)
        check_collection(req.collection)
    except ValueError as exc:
        raise go_error(str(exc)) from None
    path = await _copy_source(svc.store, req)
    if path is None:
        if req.ignore_source_file_not_found:
            return
        raise go_error(f"CopyFile not found ec volume id {req.volume_id}")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        if req.ignore_source_file_not_found or req.stop_offset == 0:
            return
        raise go_error(_os_error_text(exc, path)) from None
    except OSError as exc:
        raise go_error(_os_error_text(exc, path)) from None
    try:
        mtime_ns = os.fstat(fd).st_mtime_ns
        remaining, pos = req.stop_offset, 0
        while remaining > 0:
            chunk = await trio.to_thread.run_sync(os.pread, fd, min(COPY_CHUNK, remaining), pos)
            if not chunk:
                break
            yield vs.CopyFileResponse(file_content=chunk, modified_ts_ns=mtime_ns)
            mtime_ns = 0
            pos += len(chunk)
            remaining -= len(chunk)
        if mtime_ns:
            yield vs.CopyFileResponse(modified_ts_ns=mtime_ns)
    finally:
        os.close(fd)


# ReceiveFile ----------------------------------------------------------------------------------

def _receive_target(store, info: vs.ReceiveFileInfo) -> str:
    """Where a received file goes; ValueError(message) for Go's error responses."""
    check_file_extension(info.ext)
    check_collection(info.collection)
    base = volume_base_name(info.collection, info.volume_id)
    if info.is_ec_volume:
        mounted = [i for i, _ in store.ec.volumes_of(info.volume_id)]
        if mounted:  # writing would truncate a shard being served (Go refuses too)
            raise ValueError(f"ec volume {info.volume_id} is mounted on disk_ids:[{' '.join(map(str, mounted))}]; "
                             "unmount before ReceiveFile")
        locs = store.locations
        if info.disk_id > 0:
            if info.disk_id >= len(locs):
                raise ValueError(f"invalid disk_id {info.disk_id}: only have {len(locs)} disks")
            return os.path.join(locs[info.disk_id].directory, base + info.ext)
        holder = next((loc for loc in locs if os.path.exists(os.path.join(loc.idx_directory, base + ".ecx"))
                       or os.path.exists(os.path.join(loc.directory, base + ".ecx"))), None)
        target = holder or next((loc for loc in locs if loc.disk_type == ""), None) or (locs[0] if locs else None)
        if target is None:
            raise ValueError("no storage location available")
        return os.path.join(target.directory, base + info.ext)
    v = store.find_volume(info.volume_id)
    if v is not None:
        return v.file_name(info.ext)
    if info.disk_type == "":
        raise ValueError(f"volume {info.volume_id} not found")
    want = normalize_disk_type(info.disk_type)
    loc = _free_location(store, lambda l: l.disk_type == want)
    if loc is None:
        raise ValueError(f"no {info.disk_type} disk location with a free slot for volume {info.volume_id}")
    return os.path.join(loc.directory, base + info.ext + ".copying")


async def receive_file(
    svc: Services, requests: AsyncIterator[vs.ReceiveFileRequest], ctx: Context,
) -> vs.ReceiveFileResponse:
    """Failures after the maintenance check are the response's `error`, as Go answers them."""
    check_maintenance(svc)
    fd, path, written = -1, "", 0
    try:
        async for req in requests:
            kind = req.WhichOneof("data")
            if kind == "info":
                try:
                    path = _receive_target(svc.store, req.info)
                except ValueError as exc:
                    return vs.ReceiveFileResponse(error=str(exc))
                if fd >= 0:
                    os.close(fd)
                    fd = -1
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
                except OSError as exc:
                    return vs.ReceiveFileResponse(error=f"failed to create file: {_os_error_text(exc, path)}")
            elif kind == "file_content":
                if fd < 0:
                    return vs.ReceiveFileResponse(error="file info must be sent first")
                try:
                    await trio.to_thread.run_sync(write_all, fd, req.file_content)
                except OSError as exc:
                    os.close(fd)
                    fd = -1
                    remove_file(path)
                    return vs.ReceiveFileResponse(error=f"failed to write file: write {path}: {exc.strerror}")
                written += len(req.file_content)
            else:
                return vs.ReceiveFileResponse(error="unknown message type")
        if fd >= 0:
            await trio.to_thread.run_sync(os.fsync, fd)
        return vs.ReceiveFileResponse(bytes_written=written)
    finally:
        if fd >= 0:
            os.close(fd)


# VolumeCopy -----------------------------------------------------------------------------------

def _free_location(store, accept: Callable[[object], bool]):
    best, best_free = None, 0
    for loc in store.locations:
        if not accept(loc) or loc.is_disk_space_low:
            continue
        free = loc.max_volume_count - len(loc) if loc.max_volume_count else 1 << 30
        if free > best_free:
            best, best_free = loc, free
    return best


class _Progress:
    """VolumeCopy's progress messages: one each time the copied `.dat` bytes pass another interval."""

    def __init__(self) -> None:
        self.target = REPORT_INTERVAL

    def __call__(self, done: int) -> vs.VolumeCopyResponse | None:
        if done > self.target:
            self.target = done + REPORT_INTERVAL
            return vs.VolumeCopyResponse(processed_bytes=done)
        return None


def _file_request(
    req: vs.VolumeCopyRequest, status: vs.ReadVolumeFileStatusResponse, ext: str, stop: int, *, ignore: bool,
) -> vs.CopyFileRequest:
    return vs.CopyFileRequest(
        volume_id=req.volume_id, ext=ext, compaction_revision=status.compaction_revision, stop_offset=stop,
        collection=req.collection, ignore_source_file_not_found=ignore,
    )


async def _pull_file(
    ch: Channel, req: vs.CopyFileRequest, dest: str, *, staged: bool, rate: _RateLimit,
    progress: Callable[[int], vs.VolumeCopyResponse | None] | None = None,
) -> AsyncIterator[vs.VolumeCopyResponse | int]:
    """Go's doCopyFile + writeToFile. Yields progress responses, then the mtime (ns; 0 when
    the source had no such file)."""
    write_path = dest + ".copying" if staged else dest
    fd = os.open(write_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    mtime_ns = done = 0
    ok = False
    try:
        try:
            async with ch.unary_stream(P + "CopyFile", req, vs.CopyFileResponse) as responses:
                async for resp in responses:
                    if resp.modified_ts_ns:
                        mtime_ns = resp.modified_ts_ns
                    if resp.file_content:
                        await trio.to_thread.run_sync(write_all, fd, resp.file_content)
                        done += len(resp.file_content)
                        if progress is not None and (msg := progress(done)) is not None:
                            yield msg
                        await rate.wrote(len(resp.file_content))
        except GrpcError as exc:
            raise go_error(f"failed to copy {dest} file: receiving {dest}: {wrap_peer_error(exc, '').message}") from None
        except OSError as exc:
            raise go_error(f"failed to copy {dest} file: write file {dest}: {exc.strerror}") from None
        ok = True
    finally:
        os.close(fd)
        if not ok or mtime_ns == 0:
            remove_file(write_path)
    if mtime_ns and staged:
        os.replace(write_path, dest)
    if mtime_ns:
        os.utime(dest, ns=(mtime_ns, mtime_ns))
    yield mtime_ns


async def volume_copy(svc: Services, req: vs.VolumeCopyRequest, ctx: Context) -> AsyncIterator[vs.VolumeCopyResponse]:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    store = svc.store
    vid, source = req.volume_id, req.source_data_node
    await check_peer(svc.peers, source, "source data node")
    host, port = grpc_target(source)
    had_volume = store.find_volume(vid) is not None
    data_base = index_base = ""
    completed = False
    async with Channel(host, port, options=svc.ctx.peer_grpc) as ch:
        try:
            status = await ch.unary_unary(
                P + "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid),
                vs.ReadVolumeFileStatusResponse, timeout=60,
            )
        except GrpcError as exc:
            raise wrap_peer_error(exc, "read volume file status failed, ") from None
        remote_dat = len(status.volume_info.files) > 0  # tiered: only .idx and .vif land here
        if had_volume:
            try:
                await trio.to_thread.run_sync(lambda: _delete_keeping_remote(store, vid))
            except (StorageError, OSError) as exc:
                raise go_error(f"failed to delete existing volume {vid}: {exc}") from None
            finally:
                svc.master.notify_changed()
        disk_type = normalize_disk_type(req.disk_type or status.disk_type)
        for loc in store.locations:
            await trio.to_thread.run_sync(loc.check_disk_space)
        needed = status.idx_file_size if remote_dat else status.dat_file_size
        loc = _free_location(store, lambda l: l.disk_type == disk_type and l.available_space > needed)
        if loc is None:
            raise go_error(f"no space left for disk type {readable_disk_type(disk_type)}")
        base = volume_base_name(status.collection, vid)
        data_base = os.path.join(loc.directory, base)
        index_base = os.path.join(loc.idx_directory, base)
        try:
            with open(data_base + ".note", "w") as f:
                f.write(f"copying from {source}")
        except OSError as exc:
            raise go_error(f"write .note for volume {vid}: {exc}") from None
        try:
            rate = _RateLimit(
                req.io_byte_per_second if req.io_byte_per_second > 0 else int(svc.ctx.cfg["maintenanceMBps"] or 0) << 20
            )
            if not remote_dat:
                dat_req = _file_request(req, status, ".dat", status.dat_file_size, ignore=True)
                async for item in _pull_file(ch, dat_req, data_base + ".dat", staged=True, rate=rate,
                                             progress=_Progress()):
                    if isinstance(item, vs.VolumeCopyResponse):
                        yield item
            idx_req = _file_request(req, status, ".idx", status.idx_file_size, ignore=False)
            async for _ in _pull_file(ch, idx_req, index_base + ".idx", staged=False, rate=rate):
                pass
            vif_req = _file_request(req, status, ".vif", 1024 * 1024, ignore=True)
            async for _ in _pull_file(ch, vif_req, data_base + ".vif", staged=True, rate=rate):
                pass
            remove_file(data_base + ".note")
            _check_copied_files(status, index_base + ".idx", data_base + ".dat", remote_dat=remote_dat)
            last_ns = status.dat_file_timestamp_seconds * 1_000_000_000
            try:
                if remote_dat:
                    raise StorageError("the .dat is remote")
                codec = IdxCodec.for_width(store.offset_bytes)
                found = last_append_at_ns(index_base + ".idx", data_base + ".dat", status.version, codec)
                if found > 0:
                    last_ns = found
            except (StorageError, OSError):
                pass
            try:
                await trio.to_thread.run_sync(store.mount_volume, vid)
            except (StorageError, OSError, ValueError) as exc:
                raise go_error(f"failed to mount volume {vid}: {exc}") from None
            completed = True
        finally:
            if not completed:
                for path in (data_base + ".dat", index_base + ".idx", data_base + ".vif", data_base + ".note"):
                    remove_file(path)
    svc.master.notify_changed()
    yield vs.VolumeCopyResponse(last_append_at_ns=last_ns)


def _delete_keeping_remote(store, vid: int) -> None:
    """Drop the local replica before a copy; a tiered one keeps its remote object (Go: the copy's
    .vif may point at the same one)."""
    for loc in store.locations:
        held = loc.find_volume(vid)
        if held is not None and hasattr(held, "keep_remote_data"):
            held.keep_remote_data = True
    store.delete_volume(vid)


def _check_copied_files(status: vs.ReadVolumeFileStatusResponse, idx_path: str, dat_path: str, *,
                        remote_dat: bool = False) -> None:
    """Go's checkCopyFiles: the copied sizes are the source's (no `.dat` for a tiered volume)."""
    try:
        idx_size = os.stat(idx_path).st_size
    except FileNotFoundError as exc:
        if status.idx_file_size != 0:
            raise go_error(f"stat idx file {idx_path} failed: stat {idx_path}: {exc.strerror.lower()}") from None
    else:
        if idx_size != status.idx_file_size:
            raise go_error(f"idx file {idx_path} size [{idx_size}] is not same as origin file size [{status.idx_file_size}]")
    if remote_dat:
        return
    try:
        dat_size = os.stat(dat_path).st_size
    except OSError as exc:
        raise go_error(f"get dat file info failed, stat {dat_path}: {(exc.strerror or '').lower()}") from None
    if dat_size != status.dat_file_size:
        raise go_error(f"the dat file size [{dat_size}] is not same as origin file size [{status.dat_file_size}]")


HANDLERS: Mapping[str, Handler] = {
    "VolumeSyncStatus": volume_sync_status,
    "VolumeIncrementalCopy": volume_incremental_copy,
    "CopyFile": copy_file,
    "ReceiveFile": receive_file,
    "VolumeCopy": volume_copy,
}
