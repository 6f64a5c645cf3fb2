"""Switching a mounted volume between its local `.dat` and a copy in remote storage (the file
side of Go's VolumeTierMoveDatToRemote / FromRemote). Blocking.

The switch replaces the `Volume` object in its disk location: the new one is opened from the
files (with the `.vif` already rewritten) while the old one's writers are held off and it is
marked read-only, so no write lands in files the new object does not see; reads still in
flight finish on the old object, which is then closed.
"""

from __future__ import annotations

import os
import time

from .._errors import StorageError
from .._vif import save_volume_info
from .._volume import Volume
from ._volume import RemoteFile, TieredVolume, remote_files

__all__ = ["swap_to_remote", "swap_to_local", "drop_first_remote_file", "fsync_dir"]


def _location_of(store, v: Volume):
    for loc in store.locations:
        if loc.find_volume(v.id) is v:
            return loc
    raise StorageError(f"volume {v.id} is not mounted any more")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_to_remote(store, v: Volume, remote: RemoteFile) -> TieredVolume:
    """Record `remote` as the volume's first remote file and serve it from there (Go appends the
    file to `.vif` files, saves, then LoadRemoteFile)."""
    loc = _location_of(store, v)
    with v._write_lock:
        files = tuple(v.info.files) + (remote.to_json(),)
        v._save_info(v.info.replace(files=files))
        if tuple(v.info.files) != files:
            raise StorageError(f"cannot write {v.vif_path}")
        new = TieredVolume.open(v.directory, v.id, backends=store.tier_backends, collection=v.collection,
                                idx_directory=v.idx_directory, offset_bytes=v.offset_bytes, clock_ns=v._clock_ns)
        v.no_write_or_delete = True  # writers waiting for the lock must not land in the old files
        loc.attach(new)
    v.close()
    return new


def drop_first_remote_file(v: TieredVolume) -> None:
    """Trim the remote reference from `.vif` (fsynced) before the remote object goes away."""
    with v._write_lock:
        rest = tuple(f for f in remote_files(v.info)[1:])
        info = v.info.replace(files=tuple(f.to_json() for f in rest))
        if v.ttl.seconds > 0:
            info = info.replace(expire_at_sec=int(time.time()) + v.ttl.seconds)
        save_volume_info(v.vif_path, info)
        v.info = info


def swap_to_local(store, v: TieredVolume) -> Volume:
    """Serve the downloaded `.dat`. As in Go, which only swaps the data backend, the volume stays
    read-only with deletes allowed until it is marked writable or reloaded."""
    loc = _location_of(store, v)
    with v._write_lock:
        new = Volume.load(v.directory, v.id, collection=v.collection, idx_directory=v.idx_directory,
                          offset_bytes=v.offset_bytes, clock_ns=v._clock_ns)
        if not new.no_write_or_delete:
            new.no_write_can_delete = True
        v.no_write_or_delete = True
        loc.attach(new)
    v.close()
    return new
