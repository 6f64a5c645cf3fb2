"""Return a volume's index to the `-dir.idx` directory (Go's Store.ConsolidateVolumeIndex).

An EC decode leaves the rebuilt `.idx` next to the `.dat`; once the shards are gone, weed 4.48's
VolumeConsolidateIndex moves it back to the configured index directory. Nothing to do when no
separate index directory is configured or the index is already there. The move is a rename
(a copy, fsync and delete across filesystems), then the volume reloads its files in place, so
it never leaves the mounted set: reads in flight finish on the old descriptors.
"""

from __future__ import annotations

import errno
import os
import shutil

from ._errors import VolumeNotFound
from ._fs import remove_path
from ._names import MAP_FILE_EXT
from ._volume import Volume

__all__ = ["consolidate_volume_index", "rename_or_copy"]


def rename_or_copy(src: str, dst: str) -> None:
    """os.rename, falling back to copy + fsync + remove across filesystems (Go's RenameOrCopyFile)."""
    try:
        os.rename(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        os.remove(src)  # a failure here rolls the copy back: never two diverging indexes
    except BaseException:
        try:
            os.remove(dst)
        except OSError:
            pass
        raise


def consolidate_volume_index(store, vid: int) -> None:
    for loc in store.locations:
        v = loc.find_volume(vid)
        if v is None:
            continue
        if loc.idx_directory == loc.directory:
            return
        _relocate(v, loc.idx_directory)
        return
    raise VolumeNotFound(f"volume {vid} not found on disk")


def _relocate(v, new_dir: str) -> None:
    with v._write_lock, v.replacing_files():
        if v.idx_directory == new_dir or not os.path.exists(v.idx_path):
            return
        old_idx = v.idx_path
        old_map = v.file_name(MAP_FILE_EXT)
        os.fsync(v._idx_fd)
        rename_or_copy(old_idx, os.path.join(new_dir, os.path.basename(old_idx)))
        # the open descriptors follow a rename; after a copy they still hold the removed file,
        # so the reload below is what makes appends land in the new one
        v.idx_directory = new_dir
        fresh = Volume.load(v.directory, v.id, collection=v.collection, idx_directory=new_dir,
                            offset_bytes=v.offset_bytes, clock_ns=v._clock_ns, map_policy=v.map_policy)
        v._adopt(fresh)
        remove_path(old_map)  # the needle map file stays with the .idx it resolves
