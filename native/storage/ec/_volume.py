"""A mounted EC volume on one disk location: its `.ecx`/`.ecj`/`.vif` and the shards held there
(Go's ec_volume.go, ec_shard.go, ec_volume_delete.go). Blocking; thread-safe.

Needle lookups binary-search `.ecx` with pread (the file is sealed while mounted), masked by
the ids journalled in `.ecj` (loaded into a set at mount, as Go does). `locate` turns a needle
into shard intervals; reading the intervals, locally or from peers, is the caller's job.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

from weedpy.filelocks import lock_range, unlock_range

from .._errors import NotFound, StorageError
from .._fileio import NOT_SUPPORTED, open_without_atime
from .._errors import WouldBlock
from .._idx import IdxCodec
from .._names import volume_base_name
from .._types import CURRENT_VERSION, actual_size
from .._vif import load_volume_info
from ._index import search_ecx
from ._layout import DATA_SHARDS, MAX_SHARDS, PARITY_SHARDS, EcLayout, Interval, shard_ext

__all__ = ["EcShard", "EcVolume", "NeedleLocation", "layout_from_info"]

log = logging.getLogger("weedpy.storage.ec")


def layout_from_info(info) -> EcLayout:
    """The ratio a `.vif` records (Go falls back to 10+4 on an invalid one)."""
    cfg = info.ec_shard_config if info is not None else None
    if cfg:
        ds = int(cfg.get("dataShards", cfg.get("data_shards", 0)) or 0)
        ps = int(cfg.get("parityShards", cfg.get("parity_shards", 0)) or 0)
        if ds > 0 and ps > 0 and ds + ps <= MAX_SHARDS:
            return EcLayout(ds, ps)
        log.warning("invalid EC config in .vif (data=%d, parity=%d), using defaults", ds, ps)
    return EcLayout(DATA_SHARDS, PARITY_SHARDS)


def _encode_ts(info) -> int:
    cfg = info.ec_shard_config if info is not None else None
    if not cfg:
        return 0
    try:
        return int(cfg.get("encodeTsNs", cfg.get("encode_ts_ns", 0)) or 0)
    except (TypeError, ValueError):
        return 0


@dataclasses.dataclass(frozen=True, slots=True)
class NeedleLocation:
    offset: int  # bytes in the original .dat
    size: int  # the needle's Size (negative: deleted)
    intervals: tuple[Interval, ...]


class EcShard:
    """One `.ecNN` file, opened read-only."""

    __slots__ = ("vid", "shard_id", "collection", "directory", "fd", "size", "disk_type")

    def __init__(self, directory: str, collection: str, vid: int, shard_id: int, disk_type: str = "") -> None:
        self.vid, self.shard_id, self.collection, self.directory = vid, shard_id, collection, directory
        self.disk_type = disk_type
        self.fd = open_without_atime(self.path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    @property
    def path(self) -> str:
        return os.path.join(self.directory, volume_base_name(self.collection, self.vid) + shard_ext(self.shard_id))

    def read_at(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


class EcVolume:
    """Go's EcVolume: index, journal, configuration and the shards mounted on one location."""

    def __init__(self, directory: str, idx_directory: str, collection: str, vid: int, *,
                 offset_bytes: int, disk_type: str = "", create_journal: bool = True) -> None:
        """`create_journal` off: another process of the server mounted it (and made the `.ecj`)."""
        self.vid, self.collection = vid, collection
        self.directory, self.idx_directory = directory, idx_directory
        self.disk_type = disk_type
        self.codec = IdxCodec.for_width(offset_bytes)
        self.shards: dict[int, EcShard] = {}
        self.shard_locations: dict[int, list[str]] = {}  # peers per shard id, from the master
        self.shard_locations_at = 0.0
        self._lock = threading.RLock()
        base = volume_base_name(collection, vid)
        local, shared = os.path.join(directory, base), os.path.join(idx_directory, base)
        sizes = {b: _ecx_size(b + ".ecx") for b in dict.fromkeys((local, shared))}
        index_base = next((b for b in sizes if sizes[b] > 0), None) or next((b for b in sizes if sizes[b] >= 0), None)
        if index_base is None:
            raise FileNotFoundError(f"cannot open ec volume index {local}.ecx (or {shared}.ecx)")
        self.index_base = index_base
        self.ecx_fd = open_without_atime(index_base + ".ecx", os.O_RDWR)
        st = os.fstat(self.ecx_fd)
        self.ecx_size, self.created_at = st.st_size, st.st_mtime
        self.ecj_fd = open_without_atime(index_base + ".ecj", os.O_RDWR | (os.O_CREAT if create_journal else 0), 0o644)
        raw = os.pread(self.ecj_fd, os.fstat(self.ecj_fd).st_size, 0)
        self.ecj_size = len(raw) - len(raw) % 8
        self.deleted = {int.from_bytes(raw[i:i + 8], "big") for i in range(0, self.ecj_size, 8)}
        vif = local + ".vif"
        if not os.path.exists(vif) and os.path.exists(shared + ".vif"):
            vif = shared + ".vif"
        try:
            info = load_volume_info(vif)
        except ValueError:
            info = None
        self.vif_path = local + ".vif"
        if info is None:
            log.warning("vif file not found, using defaults, volumeId:%d, filename:%s", vid, vif)
        self.version = (info.version if info is not None and info.version else CURRENT_VERSION)
        self.dat_file_size = info.dat_file_size if info is not None else 0
        self.expire_at_sec = info.expire_at_sec if info is not None else 0
        self.layout = layout_from_info(info)
        self.encode_ts_ns = _encode_ts(info)

    # shards ------------------------------------------------------------------------------------

    def add_shard(self, shard: EcShard) -> bool:
        with self._lock:
            if shard.shard_id in self.shards:
                return False
            self.shards[shard.shard_id] = shard
            return True

    def remove_shard(self, shard_id: int) -> EcShard | None:
        with self._lock:
            s = self.shards.pop(shard_id, None)
        if s is not None:
            s.close()
        return s

    def shard(self, shard_id: int) -> EcShard | None:
        return self.shards.get(shard_id)  # one dict lookup: no lock (the event loop calls it)

    def shard_ids(self) -> list[int]:
        with self._lock:
            return sorted(self.shards)

    def shard_list(self) -> list[EcShard]:
        with self._lock:
            return [self.shards[i] for i in sorted(self.shards)]

    def shards_in_mount_order(self) -> list[EcShard]:
        """The shards in the order they were mounted: Go's EcVolume.Shards, whose sort compares
        shard ids by unsigned subtraction (never "less"), so nothing moves."""
        with self._lock:
            return list(self.shards.values())

    @property
    def shard_size(self) -> int:
        # no lock (the event loop locates needles): a snapshot of the ids, then one lookup; a
        # shard unmounted in between counts as none
        first = min(list(self.shards), default=None)
        shard = self.shards.get(first) if first is not None else None
        return shard.size if shard is not None else 0

    # index ---------------------------------------------------------------------------------------

    def _follow_journal(self, blocking: bool = True) -> None:
        """Take the ids other processes of this server journalled since (the `.ecj` grows only).
        Not `blocking` (the event loop): WouldBlock rather than wait for `_lock`, which a delete
        holds through the journal's fsync."""
        fd = self.ecj_fd
        if fd < 0:
            return
        size = os.fstat(fd).st_size
        size -= size % 8
        if size > self.ecj_size:
            if not self._lock.acquire(blocking=blocking):
                raise WouldBlock(f"ec volume {self.vid}: its journal is being written")
            try:
                if size > self.ecj_size:
                    raw = os.pread(fd, size - self.ecj_size, self.ecj_size)
                    self.deleted.update(int.from_bytes(raw[i:i + 8], "big") for i in range(0, len(raw) - 7, 8))
                    self.ecj_size += len(raw) - len(raw) % 8
            finally:
                self._lock.release()

    def file_and_delete_count(self) -> tuple[int, int]:
        self._follow_journal()
        return self.ecx_size // self.codec.entry_size, len(self.deleted)

    def find_needle(self, needle_id: int, *, blocking: bool = True) -> tuple[int, int]:
        """(offset in 8-byte units, size) from `.ecx`; size is -1 once deleted. NotFound if absent.
        Not `blocking`: WouldBlock instead of waiting for a delete's journal fsync or for the disk
        (`.ecx` rows not in the page cache)."""
        try:
            found = search_ecx(self.ecx_fd, self.ecx_size, needle_id, self.codec, cached_only=not blocking)
        except BlockingIOError:
            raise WouldBlock(f"ec volume {self.vid}: its index is not in the page cache") from None
        except OSError as exc:
            if blocking or exc.errno not in NOT_SUPPORTED:
                raise
            found = search_ecx(self.ecx_fd, self.ecx_size, needle_id, self.codec)  # a file system without the flag
        if found is None:
            raise NotFound(f"needle {needle_id:x} not found in ec volume {self.vid}")
        _, (_, offset, size) = found
        self._follow_journal(blocking)
        if needle_id in self.deleted:
            size = -1
        return offset, size

    def large_rows(self) -> int:
        if self.dat_file_size > 0:
            return self.layout.large_rows_for_dat(self.dat_file_size)
        return self.layout.large_rows_for_shard(self.shard_size)

    def locate(self, needle_id: int, *, blocking: bool = True) -> NeedleLocation:
        offset, size = self.find_needle(needle_id, blocking=blocking)
        at = offset * 8
        if size < 0:
            return NeedleLocation(at, size, ())
        ivs = self.layout.locate(self.large_rows(), at, actual_size(size, self.version))
        return NeedleLocation(at, size, tuple(ivs))

    def delete_needle(self, needle_id: int) -> None:
        """Go's DeleteNeedleFromEcx: journal the id (fsynced) unless absent or already deleted."""
        found = search_ecx(self.ecx_fd, self.ecx_size, needle_id, self.codec)
        if found is None:
            return
        if found[1][2] < 0:
            self.deleted.add(needle_id)
            return
        self._follow_journal()
        with self._lock:
            if needle_id in self.deleted:
                return
            if self.ecj_fd < 0:
                raise StorageError(f"ec volume {self.vid} closed")
            # other processes of this server journal here too: one append at a time, at the end
            lock_range(self.ecj_fd, 0, 0)  # the whole file (see weedpy.filelocks: no false EDEADLK)
            try:
                self._follow_journal()
                if needle_id in self.deleted:
                    return
                prev = self.ecj_size
                try:
                    os.pwrite(self.ecj_fd, needle_id.to_bytes(8, "big"), prev)
                    os.fsync(self.ecj_fd)
                except OSError as exc:
                    try:
                        os.ftruncate(self.ecj_fd, prev)
                    except OSError:
                        pass
                    raise StorageError(f"write ecj: {exc}") from exc
                self.ecj_size = prev + 8
                self.deleted.add(needle_id)
            finally:
                unlock_range(self.ecj_fd, 0, 0)

    def is_deleted(self, needle_id: int) -> bool:
        self._follow_journal()
        return needle_id in self.deleted

    def expired(self, now: float | None = None) -> bool:
        return self.expire_at_sec > 0 and (now or time.time()) > self.expire_at_sec

    # lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            shards = list(self.shards.values())
            self.shards.clear()
            for fd in (self.ecj_fd, self.ecx_fd):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.ecj_fd = self.ecx_fd = -1
        for s in shards:
            s.close()

    def __repr__(self) -> str:
        return f"<EcVolume {self.vid} shards={self.shard_ids()} at {self.directory}>"


def _ecx_size(path: str) -> int:
    """Size of an `.ecx`, or -1 when absent (or a directory)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return -1
    if not os.path.isfile(path):
        return -1
    return st.st_size
