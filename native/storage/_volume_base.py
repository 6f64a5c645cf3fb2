"""What every part of a `Volume` shares: its fields, names and counters, the read gate, and
the primitives on its files (pread, `.vif` save, closing the descriptors).

The concurrency rules are in `_volume.py`; the fields they name are set up here.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple

from ._errors import StorageError, VolumeClosed
from ._fileio import CACHED_ONLY, OS_FILES, FileOps
from ._idx import IdxCodec
from ._idx_rows import IdxRows
from ._map_types import MapPolicy
from ._names import MAP_FILE_EXT, volume_base_name
from ._needle import NeedleHeader
from ._needle_map import MapCounters, NeedleMap
from ._replica import ReplicaPlacement
from ._superblock import SuperBlock
from ._ttl import TTL
from ._types import DEFAULT_OFFSET_BYTES, SUPER_BLOCK_SIZE
from ._vif import VolumeInfo, save_volume_info

__all__ = ["VolumeBase", "VolumeStats", "WriteResult", "ReadOnlyReasons", "RecordInfo"]

log = logging.getLogger("weedpy.storage")


class WriteResult(NamedTuple):
    """A write's outcome (a NamedTuple: one is made per upload, and a frozen dataclass's
    `__init__` sets each field through `object.__setattr__`)."""

    offset: int  # byte offset of the record in .dat (of the existing one when unchanged)
    size: int  # data size, as Go's write returns it
    unchanged: bool  # an identical needle was already stored; nothing was appended


@dataclasses.dataclass(frozen=True, slots=True)
class ReadOnlyReasons:
    no_write_or_delete: bool
    no_write_can_delete: bool
    disk_space_low: bool

    @property
    def read_only(self) -> bool:
        return self.no_write_or_delete or self.no_write_can_delete or self.disk_space_low


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeStats:
    """What `/status`, heartbeats and VolumeStatus report about one volume."""

    id: int
    collection: str
    file_count: int
    delete_count: int
    deleted_bytes: int
    content_size: int  # Go's "Size" in /status: bytes of every live put applied
    max_file_key: int
    dat_size: int
    idx_size: int
    modified_at_second: int
    version: int
    replica_placement: ReplicaPlacement
    ttl: TTL
    compaction_revision: int
    read_only: bool
    read_only_reasons: ReadOnlyReasons


@dataclasses.dataclass(frozen=True, slots=True)
class RecordInfo:
    """One record found walking `.dat` (see `Volume.iter_records`)."""

    offset: int
    header: NeedleHeader
    length: int  # whole record, padding included


class VolumeBase:
    """The fields and primitives the loading, read, write and state parts build on."""

    def __init__(self) -> None:  # use load()/create()
        self.id = 0
        self.collection = ""
        self.directory = ""
        self.idx_directory = ""
        self.super_block = SuperBlock()
        self.info = VolumeInfo()
        self.codec = IdxCodec.for_width(DEFAULT_OFFSET_BYTES)
        self.nm = NeedleMap()
        self.map_policy = MapPolicy()
        self.no_write_or_delete = False
        self.no_write_can_delete = False
        self.integrity_error: str | None = None
        self.warnings: list[str] = []
        self.last_append_at_ns = 0
        self.last_modified_ts = 0
        self.size_limit: int | None = None
        self.disk_space_low: Callable[[], bool] = lambda: False
        self.files: FileOps = OS_FILES  # every write, sync, truncate and rename of the files
        self._clock_ns: Callable[[], int] = time.time_ns  # called on every append: the C function itself
        self._dat_fd = -1
        self._idx_fd = -1
        self._dat_size = 0
        self._idx_size = 0
        self._has_vif = False
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._synced_upto = 0
        # a sync of the files is running (in a worker thread): the event loop appends elsewhere,
        # since an append waits while the file's pages are written back (see `_sync_dat`)
        self._syncing = False
        # `preadv`'s flag for the event loop's reads (page cache only; 0 once the file system
        # turned it down: then the loop reads as any reader)
        self._cached_only = CACHED_ONLY
        self._files_epoch = 0  # counts swaps of the descriptors (`_adopt`): a sync knows what it synced
        self._sync_error: OSError | None = None  # an fsync failed: read-only, never retried
        self._io = threading.Condition(threading.Lock())
        self._gate = _ReadGate(self)
        self._readers = 0
        self._closed = False
        self._view = False  # read_only_view: another process owns the files
        self._swapping = False  # a compaction commit is replacing the files: new reads wait
        # vacuum (see _vacuum.py): held while compacting or committing, like Go's
        # isCompactionInProgress; the .idx size and revision when the last compaction began
        self.compaction_lock = threading.Lock()
        self.compact_idx_offset = 0
        self.compact_revision = 0

    # properties --------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.super_block.version

    @property
    def ttl(self) -> TTL:
        return self.super_block.ttl

    @property
    def replica_placement(self) -> ReplicaPlacement:
        return self.super_block.replica_placement

    @property
    def offset_bytes(self) -> int:
        return self.codec.offsets.width

    # What the volume holds now, with the appends of the server's other processes (`_follow`).

    @property
    def dat_size(self) -> int:
        self._follow()
        return self._dat_size

    @property
    def idx_size(self) -> int:
        self._follow()
        return self._idx_size

    @property
    def content_size(self) -> int:
        self._follow()
        return self.nm.file_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    def file_name(self, ext: str) -> str:
        """Path of one of this volume's files (index kinds live in the index directory)."""
        directory = self.idx_directory if ext in (".idx", ".cpx", ".ldb", ".cpldb", ".rdb", ".sdx", MAP_FILE_EXT) else self.directory
        return os.path.join(directory, volume_base_name(self.collection, self.id) + ext)

    @property
    def dat_path(self) -> str:
        return self.file_name(".dat")

    @property
    def idx_path(self) -> str:
        return self.file_name(".idx")

    @property
    def vif_path(self) -> str:
        return self.file_name(".vif")

    def read_only_reasons(self) -> ReadOnlyReasons:
        return ReadOnlyReasons(self.no_write_or_delete, self.no_write_can_delete, bool(self.disk_space_low()))

    @property
    def read_only(self) -> bool:
        return self.read_only_reasons().read_only

    def counters(self) -> MapCounters:
        self._follow()
        return self.nm.counters()

    def is_empty(self) -> bool:
        self._follow()
        return self._dat_size <= SUPER_BLOCK_SIZE and self.nm.file_bytes == 0

    def _follow(self, blocking: bool = True) -> None:
        """Catch up with the other processes serving this volume (`_volume_shared`); alone, nothing."""

    def _catch_ups_held(self) -> AbstractContextManager[object]:
        """Held around a change a read catching up must not see half done (`_volume_shared`: its
        follow lock); alone, nothing."""
        return nullcontext()

    def _set_marks(self, no_write_or_delete: bool, no_write_can_delete: bool) -> None:
        """`_write_lock` held: this view's read-only marks. A read catching up takes the slot's
        marks when the write lock is free; one that found it free just before this thread took it
        must not put the slot's old marks back after these are set (they would be published as
        they are then: the mark lost)."""
        with self._catch_ups_held():
            self.no_write_or_delete, self.no_write_can_delete = no_write_or_delete, no_write_can_delete

    def stats(self, *, blocking: bool = True) -> VolumeStats:
        """Not `blocking` (the event loop): WouldBlock instead of waiting to catch up with the
        server's other processes (a reopen, another thread's catch-up)."""
        self._follow(blocking)
        c = self.nm.counters()
        reasons = self.read_only_reasons()
        try:
            mtime = int(os.fstat(self._dat_fd).st_mtime) if self._dat_fd >= 0 else 0
        except OSError:
            mtime = 0
        return VolumeStats(
            id=self.id,
            collection=self.collection,
            file_count=c.file_count,
            delete_count=c.deletion_count,
            deleted_bytes=c.deletion_bytes,
            content_size=c.file_bytes,
            max_file_key=c.max_file_key,
            dat_size=self._dat_size,
            idx_size=self._idx_size,
            modified_at_second=mtime,
            version=self.version,
            replica_placement=self.replica_placement,
            ttl=self.ttl,
            compaction_revision=self.super_block.compaction_revision,
            read_only=reasons.read_only,
            read_only_reasons=reasons,
        )

    def garbage_level(self) -> float:
        """Go's garbageLevel: deleted bytes / content bytes; a map that counted deletions but
        not their sizes (one rebuilt from `.sdx`) falls back to the `.dat` size."""
        self._follow()
        c = self.nm.counters()
        if c.file_bytes == 0:
            return 0.0
        deleted, content = c.deletion_bytes, c.file_bytes
        if c.deletion_count > 0 and deleted == 0:
            deleted = self._dat_size - content - SUPER_BLOCK_SIZE
            content = self._dat_size
        return deleted / content

    def expired(self, volume_size_limit: int, now_s: int | None = None) -> bool:
        """Go's Volume.expired: a TTL volume untouched for longer than its TTL."""
        self._follow()
        if volume_size_limit == 0 or self._dat_size <= SUPER_BLOCK_SIZE or self.ttl.minutes == 0:
            return False
        now_s = int(time.time()) if now_s is None else now_s
        return self.ttl.minutes < (now_s - self.last_modified_ts) // 60

    def expired_long_enough(self, max_delay_minutes: int, now_s: int | None = None) -> bool:
        if self.ttl.minutes == 0:
            return False
        delay = min(self.ttl.minutes // 10, max_delay_minutes)
        now_s = int(time.time()) if now_s is None else now_s
        return (self.ttl.minutes + delay) * 60 + self.last_modified_ts < now_s

    # low-level I/O -----------------------------------------------------------------------------

    def _pread_raw(self, length: int, offset: int) -> bytes:
        return self.files.pread(self._dat_fd, length, offset)

    def _reading(self) -> "_ReadGate":
        """Hold the files steady for a map lookup and the reads it leads to: a compaction
        commit swapping in new files waits for these, and new ones wait for the swap."""
        return self._gate

    def _pread(self, length: int, offset: int) -> bytes:
        with self._io:
            if self._closed:
                raise StorageError(f"volume {self.id} is closed")
            self._readers += 1
        try:
            return self.files.pread(self._dat_fd, length, offset)
        finally:
            with self._io:
                self._readers -= 1
                if not self._readers:
                    self._io.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise VolumeClosed(f"volume {self.id} is closed")

    # the files ---------------------------------------------------------------------------------

    def _save_info(self, info: VolumeInfo) -> None:
        if self.ttl.seconds > 0:
            info = info.replace(expire_at_sec=int(time.time()) + self.ttl.seconds)
        try:
            save_volume_info(self.vif_path, info)
        except OSError as exc:
            self.warnings.append(f"cannot write {self.vif_path}: {exc}")
            log.warning("volume %s: cannot write %s: %s", self.id, self.vif_path, exc)
            return
        self.info = info

    def _index_rows(self, raw: bytes) -> IdxRows:
        """A whole `.idx` read as rows for the integrity check and the map."""
        return IdxRows(raw, self.codec.offsets.width)

    def _build_map(self, rows: IdxRows, *, sorted_semantics: bool | None = None) -> NeedleMap:
        """The map of `rows` (the whole `.idx`), through the map file when the policy says so;
        read-only semantics when the volume is read-only (unless told)."""
        from ._map_load import load_needle_map  # numpy: loaded with the first volume's map, not at start-up

        if sorted_semantics is None:
            sorted_semantics = self.no_write_or_delete or self.no_write_can_delete
        return load_needle_map(
            rows, self.version, sorted_semantics=sorted_semantics, map_path=self.file_name(MAP_FILE_EXT),
            may_write=not self._view, policy=self.map_policy,
        )

    def _close_fds(self) -> None:
        for name in ("_dat_fd", "_idx_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                try:
                    self.files.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)


class _ReadGate:
    """`with volume._reading():` as a plain class (no generator per read: reads are hot)."""

    __slots__ = ("_v",)

    def __init__(self, v: VolumeBase) -> None:
        self._v = v

    def __enter__(self) -> None:
        v = self._v
        with v._io:
            while v._swapping:
                v._io.wait()
            if v._closed:
                raise StorageError(f"volume {v.id} is closed")
            v._readers += 1

    def enter_nowait(self) -> bool:
        """`__enter__` for the event loop: False instead of waiting (a swap, a busy lock)."""
        v = self._v
        if not v._io.acquire(blocking=False):
            return False
        try:
            if v._swapping:
                return False
            if v._closed:
                raise StorageError(f"volume {v.id} is closed")
            v._readers += 1
            return True
        finally:
            v._io.release()

    def __exit__(self, *exc: object) -> None:
        v = self._v
        io = v._io
        io.acquire()  # not `with io:` (Condition.__enter__/__exit__ are Python calls; every read exits here)
        try:
            v._readers -= 1
            # Only a swap or a close waits for the readers to drain (both flag it first).
            if not v._readers and (v._swapping or v._closed):
                io.notify_all()
        finally:
            io.release()


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks = []
    pos = 0
    while pos < size:
        chunk = os.pread(fd, min(size - pos, 64 << 20), pos)
        if not chunk:
            break
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)


def _fd_writable(fd: int) -> bool:
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return False
    return (flags & os.O_ACCMODE) in (os.O_RDWR, os.O_WRONLY)
