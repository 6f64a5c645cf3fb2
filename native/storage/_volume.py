"""A volume: one `.dat` of needle records, its `.idx` of map rows, its `.vif`, and the map.

Concurrency: any number of readers alongside one writer. Writes, deletes and map updates are
serialised by `_write_lock`; reads look the needle up in the map (its own short lock) and
`os.pread` the record with no volume lock at all. That is safe because `.dat` is append-only:
a record the map points at is never rewritten. Closing waits for in-flight preads so a
descriptor is never reused under a reader.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator

from ._errors import (
    ChecksumMismatch,
    CookieMismatch,
    Corrupted,
    Deleted,
    NotFound,
    OffsetWidthMismatch,
    ReadOnly,
    StorageError,
    UnsupportedVolume,
    VolumeFull,
)
from ._fs import remove_path
from ._idx import IdxCodec, IdxColumns
from ._integrity import check_volume_tail
from ._names import ALL_VOLUME_EXTS, volume_base_name
from ._crc import crc32c, crc_matches
from ._needle import (
    FLAG_HAS_LAST_MODIFIED,
    FLAG_HAS_MIME,
    FLAG_HAS_NAME,
    FLAG_HAS_TTL,
    LAST_MODIFIED_BYTES,
    Needle,
    NeedleHeader,
    data_start,
    decode_meta,
    decode_needle,
    encode_needle,
    meta_span,
    parse_header,
    record_size,
)
from ._needle_map import MapCounters, NeedleMap, NeedleValue
from ._replica import ReplicaPlacement
from ._stream import NeedleStream
from ._superblock import SuperBlock
from ._ttl import EMPTY_TTL, TTL
from ._types import (
    CURRENT_VERSION,
    DATA_SIZE_SIZE,
    DEFAULT_OFFSET_BYTES,
    NEEDLE_HEADER_SIZE,
    PADDING_SIZE,
    SUPER_BLOCK_SIZE,
    SUPPORTED_VERSIONS,
    VERSION1,
    VERSION3,
    actual_size,
)
from ._vif import VolumeInfo, load_volume_info, save_volume_info

__all__ = ["Volume", "VolumeStats", "WriteResult", "ReadOnlyReasons", "RecordInfo"]

log = logging.getLogger("weedpy.storage")

_HEAD_AND_DATA_SIZE = struct.Struct(">IQiI")  # cookie, id, Size, DataSize (versions 2 and 3)

# What `Volume.read_plain` returns: (cookie, data, flags, name, mime, last_modified, crc, Size).
PlainRead = tuple[int, bytes, int, bytes, bytes, int, int, int]


@dataclasses.dataclass(frozen=True, slots=True)
class WriteResult:
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


def _now_ns() -> int:
    return time.time_ns()


class Volume:
    """Open with `Volume.load(...)` (existing) or `Volume.create(...)` (new)."""

    def __init__(self) -> None:  # use load()/create()
        self.id = 0
        self.collection = ""
        self.directory = ""
        self.idx_directory = ""
        self.super_block = SuperBlock()
        self.info = VolumeInfo()
        self.codec = IdxCodec.for_width(DEFAULT_OFFSET_BYTES)
        self.nm = NeedleMap()
        self.no_write_or_delete = False
        self.no_write_can_delete = False
        self.integrity_error: str | None = None
        self.warnings: list[str] = []
        self.last_append_at_ns = 0
        self.last_modified_ts = 0
        self.size_limit: int | None = None
        self.disk_space_low: Callable[[], bool] = lambda: False
        self._clock_ns: Callable[[], int] = _now_ns
        self._dat_fd = -1
        self._idx_fd = -1
        self._dat_size = 0
        self._idx_size = 0
        self._has_vif = False
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._synced_upto = 0
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

    # construction ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        vid: int,
        *,
        collection: str = "",
        idx_directory: str | os.PathLike[str] | None = None,
        replica_placement: ReplicaPlacement | str = ReplicaPlacement(),
        ttl: TTL | str = EMPTY_TTL,
        version: int = CURRENT_VERSION,
        offset_bytes: int = DEFAULT_OFFSET_BYTES,
        clock_ns: Callable[[], int] | None = None,
    ) -> "Volume":
        """Allocate a new volume (Go's NewVolume on a missing `.dat`): super block and `.vif`."""
        if isinstance(replica_placement, str):
            replica_placement = ReplicaPlacement.parse(replica_placement)
        if isinstance(ttl, str):
            ttl = TTL.parse(ttl)
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVolume(f"volume super block version {version} is not supported")
        sb = SuperBlock(version=version, replica_placement=replica_placement, ttl=ttl)
        return cls._open(directory, vid, collection, idx_directory, offset_bytes, new_super_block=sb, clock_ns=clock_ns)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        vid: int,
        *,
        collection: str = "",
        idx_directory: str | os.PathLike[str] | None = None,
        offset_bytes: int | None = None,
        default_offset_bytes: int = DEFAULT_OFFSET_BYTES,
        clock_ns: Callable[[], int] | None = None,
        read_only_view: bool = False,
    ) -> "Volume":
        """Open an existing volume as Go's loader does (integrity check included).

        `offset_bytes` None takes the width from the `.vif` (else `default_offset_bytes`); an
        explicit width that the `.vif` contradicts raises OffsetWidthMismatch.
        `read_only_view` opens every file read-only and writes nothing (not even a missing
        `.vif`): a view of a volume another process owns. Its flags are still the files' own.
        """
        return cls._open(
            directory, vid, collection, idx_directory, offset_bytes,
            default_offset_bytes=default_offset_bytes, clock_ns=clock_ns, read_only_view=read_only_view,
        )

    @classmethod
    def _open(
        cls,
        directory: str | os.PathLike[str],
        vid: int,
        collection: str,
        idx_directory: str | os.PathLike[str] | None,
        offset_bytes: int | None,
        *,
        new_super_block: SuperBlock | None = None,
        default_offset_bytes: int = DEFAULT_OFFSET_BYTES,
        clock_ns: Callable[[], int] | None = None,
        read_only_view: bool = False,
    ) -> "Volume":
        v = cls()
        v._view = read_only_view
        v.id = vid
        v.collection = collection
        v.directory = os.fspath(directory)
        v.idx_directory = os.fspath(idx_directory) if idx_directory else v.directory
        if clock_ns is not None:
            v._clock_ns = clock_ns
        try:
            v._load(offset_bytes, default_offset_bytes, new_super_block)
        except BaseException:
            v._close_fds()
            raise
        return v

    def _load(self, offset_bytes: int | None, default_offset_bytes: int, new_sb: SuperBlock | None) -> None:
        base = volume_base_name(self.collection, self.id)
        # an .idx next to the .dat wins over -dir.idx (volumes moved in from elsewhere)
        if self.idx_directory != self.directory and os.path.exists(os.path.join(self.directory, base + ".idx")):
            self.idx_directory = self.directory
        info: VolumeInfo | None
        try:
            info = load_volume_info(self.file_name(".vif"))
        except ValueError as exc:
            self.warnings.append(f"{self.file_name('.vif')}: {exc}")
            info, self._has_vif = None, True  # Go keeps going with defaults and keeps the file
        else:
            self._has_vif = info is not None
        info = info or VolumeInfo()
        if info.has_remote_file:
            raise UnsupportedVolume(f"volume {self.id} is tiered to remote storage, which weedpy does not serve")
        width = self._resolve_width(info, offset_bytes, default_offset_bytes)
        self.codec = IdxCodec.for_width(width)
        if info.read_only:
            if info.read_only_can_delete:
                self.no_write_can_delete = True
            else:
                self.no_write_or_delete = True

        dat_path = self.file_name(".dat")
        if os.path.exists(dat_path):
            writable = os.access(dat_path, os.W_OK)
            self._dat_fd = os.open(dat_path, os.O_RDWR if writable and not self._view else os.O_RDONLY)
            if not writable:
                self.no_write_or_delete = True
            st = os.fstat(self._dat_fd)
            self.last_modified_ts = int(st.st_mtime)
        elif new_sb is not None:
            os.makedirs(self.directory, exist_ok=True)
            self._dat_fd = os.open(dat_path, os.O_RDWR | os.O_CREAT, 0o644)
            self.last_modified_ts = int(time.time())
        else:
            raise NotFound(f"volume data file {dat_path} does not exist")
        self._dat_size = os.fstat(self._dat_fd).st_size

        if self._dat_size >= SUPER_BLOCK_SIZE:
            head = os.pread(self._dat_fd, SUPER_BLOCK_SIZE, 0)
            extra = SuperBlock.extra_size_of(head)
            if extra:
                head = os.pread(self._dat_fd, SUPER_BLOCK_SIZE + extra, 0)
            sb = SuperBlock.decode(head)
            if sb.version not in SUPPORTED_VERSIONS:
                raise UnsupportedVolume(f"volume {self.id} has unsupported version {sb.version}")
        else:
            if new_sb is None:
                raise Corrupted(f"volume {dat_path} not initialized (no super block)")
            sb = new_sb
            raw = sb.encode()
            os.pwrite(self._dat_fd, raw, 0)
            self._dat_size = len(raw)
        if info.replication:
            try:
                sb = dataclasses.replace(sb, replica_placement=ReplicaPlacement.parse(info.replication))
            except ValueError as exc:
                raise Corrupted(f"volume {self.id} replication {info.replication!r} in .vif: {exc}") from None
        self.super_block = sb
        self.info = info.replace(version=sb.version, bytes_offset=width)

        idx_path = self.file_name(".idx")
        if not os.path.exists(idx_path) and self._dat_size > SUPER_BLOCK_SIZE:
            raise Corrupted(f"idx file {idx_path} does not exist")
        if (self.no_write_or_delete or self._view) and os.path.exists(idx_path):
            self._idx_fd = os.open(idx_path, os.O_RDONLY)
        elif self._view:
            raise NotFound(f"idx file {idx_path} does not exist")
        else:
            os.makedirs(self.idx_directory, exist_ok=True)
            self._idx_fd = os.open(idx_path, os.O_RDWR | os.O_CREAT, 0o644)
        raw_idx = _read_all(self._idx_fd)
        self._idx_size = len(raw_idx)
        self._check_width_plausible(len(raw_idx), info)
        cols = self.codec.columns(raw_idx)
        del raw_idx

        result = check_volume_tail(cols, self.codec, self._dat_size, self.version, self._pread_raw)
        self.last_append_at_ns = result.last_append_at_ns
        if not result.ok:
            self.integrity_error = result.error
            self.no_write_or_delete = True
            log.warning("volume %s: integrity check failed, serving read-only: %s", self.id, result.error)

        self.nm = self._build_map(cols)
        if self.nm.max_needle_end > self._dat_size and self._dat_size > 0:
            self.no_write_or_delete = True
            msg = f"index references bytes up to {self.nm.max_needle_end} but .dat has {self._dat_size}"
            self.integrity_error = self.integrity_error or msg
            log.warning("volume %s: %s; marking read-only", self.id, msg)
        if not self._has_vif and not self._view:
            self._save_info(self.info)
            self._has_vif = True

    def _build_map(self, cols: IdxColumns) -> NeedleMap:
        sorted_semantics = self.no_write_or_delete or self.no_write_can_delete
        return NeedleMap.from_columns(cols, self.version, sorted_semantics=sorted_semantics)

    def _resolve_width(self, info: VolumeInfo, offset_bytes: int | None, default: int) -> int:
        recorded = info.bytes_offset
        if recorded not in (0, 4, 5):
            raise OffsetWidthMismatch(f"{self.file_name('.vif')}: bytesOffset {recorded} is neither 4 nor 5")
        if recorded and offset_bytes is not None and recorded != offset_bytes:
            raise OffsetWidthMismatch(
                f"volume {self.id} was written with {recorded}-byte offsets ({self.file_name('.vif')}), "
                f"but this store uses {offset_bytes}-byte offsets; start with -offsetBytes={recorded} "
                f"(Go: the {'8000GB/5BytesOffset' if recorded == 5 else 'default 30GB'} build)"
            )
        return recorded or offset_bytes or default

    def _check_width_plausible(self, idx_size: int, info: VolumeInfo) -> None:
        """Without a `.vif` width, refuse an index that only makes sense at the other width."""
        if info.bytes_offset or idx_size == 0:
            return
        mine = self.codec.entry_size
        other_width = 4 if self.codec.offsets.width == 5 else 5
        other = IdxCodec.for_width(other_width)
        if idx_size % mine == 0 and idx_size % other.entry_size != 0:
            return
        if idx_size % mine != 0 and idx_size % other.entry_size == 0 and self._tail_fits(other, idx_size):
            raise OffsetWidthMismatch(
                f"volume {self.id}: {self.file_name('.idx')} has {idx_size} bytes, a whole number of "
                f"{other.entry_size}-byte rows ({other_width}-byte offsets), not {mine}-byte rows; "
                f"open it with offset width {other_width}"
            )
        if idx_size % mine == 0 and idx_size % other.entry_size == 0:
            if not self._tail_fits(self.codec, idx_size) and self._tail_fits(other, idx_size):
                raise OffsetWidthMismatch(
                    f"volume {self.id}: the last row of {self.file_name('.idx')} only points at its "
                    f"record when read with {other_width}-byte offsets"
                )

    def _tail_fits(self, codec: IdxCodec, idx_size: int) -> bool:
        raw = os.pread(self._idx_fd, codec.entry_size, idx_size - codec.entry_size)
        e = codec.decode(raw)
        if e.offset == 0:
            return False
        head = self._pread_raw(NEEDLE_HEADER_SIZE, e.actual_offset)
        if len(head) < NEEDLE_HEADER_SIZE:
            return False
        h = parse_header(head)
        return h.id == e.key and (h.size == e.size or (e.size < 0 and h.size == 0))

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

    @property
    def dat_size(self) -> int:
        return self._dat_size

    @property
    def idx_size(self) -> int:
        return self._idx_size

    @property
    def content_size(self) -> int:
        return self.nm.file_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    def file_name(self, ext: str) -> str:
        """Path of one of this volume's files (index kinds live in the index directory)."""
        directory = self.idx_directory if ext in (".idx", ".cpx", ".ldb", ".cpldb", ".rdb", ".sdx") else self.directory
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
        return self.nm.counters()

    def stats(self) -> VolumeStats:
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
        return os.pread(self._dat_fd, length, offset)

    def _reading(self) -> "_ReadGate":
        """Hold the files steady for a map lookup and the reads it leads to: a compaction
        commit swapping in new files waits for these, and new ones wait for the swap."""
        return self._gate

    def pinned_dat(self) -> tuple[int, int]:
        """(a private duplicate of the `.dat` fd, its size now): for long scans that must not
        see a compaction commit swap the files underneath. The caller closes the fd."""
        with self._reading():
            return os.dup(self._dat_fd), self._dat_size

    def _pread(self, length: int, offset: int) -> bytes:
        with self._io:
            if self._closed:
                raise StorageError(f"volume {self.id} is closed")
            self._readers += 1
        try:
            return os.pread(self._dat_fd, length, offset)
        finally:
            with self._io:
                self._readers -= 1
                if not self._readers:
                    self._io.notify_all()

    def read_at(self, length: int, offset: int) -> bytes:
        """Raw `.dat` bytes (short at the end of the file), for the gRPC readers that take
        offsets from the caller (ReadNeedleBlob, ReadNeedleMeta)."""
        return self._pread(length, offset)

    def read_record(self, offset: int, size: int) -> bytes:
        """The raw record at a byte offset whose header Size is `size` (ReadNeedleBlob)."""
        length = actual_size(max(size, 0), self.version)
        raw = self._pread(length, offset)
        if len(raw) < length:
            raise Corrupted(f"volume {self.id}: record at {offset} is cut short by the end of .dat")
        return raw

    # reads -------------------------------------------------------------------------------------

    def needle_value(self, needle_id: int) -> NeedleValue | None:
        return self.nm.get(needle_id)

    def _locate(self, needle_id: int, read_deleted: bool) -> tuple[int, int] | None:
        """(byte offset, size) of the live (or, if asked, deleted) record; None for size 0."""
        nv = self.nm.get(needle_id)
        if nv is None or nv.offset == 0:
            raise NotFound(f"needle {needle_id:x} not found in volume {self.id}")
        size = nv.size
        if size < 0:
            if read_deleted and size != -1:
                size = -size
            else:
                raise Deleted(f"needle {needle_id:x} in volume {self.id} is deleted")
        if size == 0:
            return None
        return nv.offset * PADDING_SIZE, size

    def read_needle(
        self,
        needle_id: int,
        cookie: int | None = None,
        *,
        read_deleted: bool = False,
        verify_crc: bool = True,
    ) -> Needle:
        """The whole needle, CRC-checked. `cookie` None skips the cookie check.

        Like Go: an entry of size 0 returns an empty needle without reading (or checking the
        cookie); a TTL-expired needle is NotFound; a wrong cookie is CookieMismatch.
        """
        with self._reading():
            loc = self._locate(needle_id, read_deleted)
            if loc is None:
                return Needle(id=needle_id, cookie=cookie or 0, checksum=0)
            offset, size = loc
            raw = os.pread(self._dat_fd, actual_size(size, self.version), offset)  # the gate keeps the fd
            n = self._decode_at(raw, offset, size, verify_crc)
        self._check_ttl_and_cookie(n, cookie)
        return n

    def read_plain(self, needle_id: int, limit: int) -> PlainRead | None:
        """The common read, for a caller with a full path to fall back on.

        A live needle of 1..`limit` record bytes with data, no TTL and a record that decodes
        cleanly comes back as (cookie, data, flags, name, mime, last_modified, crc, Size), read
        and CRC-checked as `read_needle` does (Size: the record's, as the index has it).
        Anything else (absent, deleted, empty, too large, a TTL, version 1, a `.dat` that is not
        a local file, a short or inconsistent record, a CRC mismatch) is None: `read_needle`
        then reports it with Go's error. No cookie check: the caller compares.
        """
        version = self.super_block.version
        if version == VERSION1:
            return None
        loc = self.nm.locate(needle_id)
        if loc is None:
            return None
        units, size = loc
        if units == 0 or size <= DATA_SIZE_SIZE or size > limit:
            return None
        length = actual_size(size, version)
        with self._gate:
            fd = self._dat_fd  # -1 when the .dat is not a local file (tiered): not this path's job
            raw = os.pread(fd, length, units * PADDING_SIZE) if fd >= 0 else b""
        if len(raw) < length:
            return None
        cookie, _, head_size, data_size = _HEAD_AND_DATA_SIZE.unpack_from(raw)
        if head_size != size or data_size == 0 or data_size + DATA_SIZE_SIZE > size:
            return None
        i = NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE + data_size
        n = NEEDLE_HEADER_SIZE + size
        data = raw[NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE:i]
        crc = crc32c(data)
        if not crc_matches(int.from_bytes(raw[n:n + 4], "big"), crc):
            return None
        # The optional fields, each read only while bytes remain (as decode_needle does).
        flags, name, mime, last_modified = 0, b"", b"", 0
        if i < n:
            flags = raw[i]
            i += 1
            if flags & FLAG_HAS_TTL:
                return None
            if i < n and flags & FLAG_HAS_NAME:
                end = i + 1 + raw[i]
                if end > n:
                    return None
                name = raw[i + 1:end]
                i = end
            if i < n and flags & FLAG_HAS_MIME:
                end = i + 1 + raw[i]
                if end > n:
                    return None
                mime = raw[i + 1:end]
                i = end
            if i < n and flags & FLAG_HAS_LAST_MODIFIED:
                if i + LAST_MODIFIED_BYTES > n:
                    return None
                last_modified = int.from_bytes(raw[i:i + LAST_MODIFIED_BYTES], "big")
        return cookie, data, flags, name, mime, last_modified, crc, size

    def _decode_at(self, raw: bytes, offset: int, size: int, verify_crc: bool) -> Needle:
        try:
            return decode_needle(raw, self.version, expected_size=size, verify_crc=verify_crc)
        except ChecksumMismatch:
            raise
        except Corrupted as exc:
            alt = offset + self.codec.offsets.max_volume_size
            if self.codec.offsets.width == 4 and self._dat_size > alt:
                raw = self._pread(actual_size(size, self.version), alt)
                return decode_needle(raw, self.version, expected_size=size, verify_crc=verify_crc)
            raise Corrupted(f"volume {self.id} offset {offset}: {exc}") from None

    def _check_ttl_and_cookie(self, n: Needle, cookie: int | None) -> None:
        if n.is_expired(self._clock_ns()):
            raise NotFound(f"needle {n.id:x} in volume {self.id} has expired")
        if cookie is not None and n.cookie != cookie:
            raise CookieMismatch(f"needle {n.id:x} in volume {self.id}: cookie {cookie:08x} does not match")

    def read_needle_meta(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> tuple[Needle, int]:
        """(needle without data, data size), reading only the header and the metadata tail."""
        with self._reading():
            loc = self._locate(needle_id, read_deleted)
            if loc is None:
                return Needle(id=needle_id, cookie=cookie or 0, checksum=0), 0
            offset, size = loc
            n, data_size = self._read_meta_at(offset, size)
        self._check_ttl_and_cookie(n, cookie)
        return n, data_size

    def _read_meta_at(self, offset: int, size: int) -> tuple[Needle, int]:
        head = self._pread(NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE, offset)
        if len(head) < NEEDLE_HEADER_SIZE + (DATA_SIZE_SIZE if size > 0 else 0):
            raise Corrupted(f"volume {self.id}: record at {offset} is cut short by the end of .dat")
        h = parse_header(head)
        if h.size != size:
            raise Corrupted(f"volume {self.id} offset {offset}: header size {h.size}, index says {size}")
        data_size = int.from_bytes(head[16:20], "big") if self.version != 1 and size > 0 else size
        start, length = meta_span(size, data_size, self.version)
        if length < 0 or length > 128 * 1024:
            raise Corrupted(f"volume {self.id} offset {offset}: invalid needle meta size {length}")
        rest = self._pread(length, offset + start)
        if len(rest) < length:
            raise Corrupted(f"volume {self.id}: record at {offset} is cut short by the end of .dat")
        return decode_meta(head, rest, self.version)

    def open_needle_stream(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> NeedleStream:
        """Metadata now, data on demand: for needles too large to read whole (Go streams > 1 MiB)."""
        with self._reading():
            loc = self._locate(needle_id, read_deleted)
            if loc is None:
                return NeedleStream(Needle(id=needle_id, cookie=cookie or 0, checksum=0), self._dat_fd, 0, 0)
            offset, size = loc
            n, data_size = self._read_meta_at(offset, size)
            self._check_ttl_and_cookie(n, cookie)
            return NeedleStream(n, self._dat_fd, offset + data_start(size, self.version), data_size)

    def iter_records(self, start: int | None = None) -> Iterator[RecordInfo]:
        """Walk `.dat` record by record from `start` (default: after the super block) by
        hopping headers. Stops at the end, or raises Corrupted at a torn or impossible record."""
        pos = self.super_block.block_size if start is None else start
        end = self._dat_size
        while pos < end:
            head = self._pread(NEEDLE_HEADER_SIZE, pos)
            if len(head) < NEEDLE_HEADER_SIZE:
                raise Corrupted(f"volume {self.id}: torn record header at {pos}")
            h = parse_header(head)
            if h.size < 0:
                raise Corrupted(f"volume {self.id}: negative record size at {pos}")
            length = actual_size(h.size, self.version)
            if pos + length > end:
                raise Corrupted(f"volume {self.id}: record at {pos} needs {length} bytes, .dat ends at {end}")
            yield RecordInfo(pos, h, length)
            pos += length

    # writes ------------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if not (self.no_write_or_delete or self.no_write_can_delete or self.disk_space_low()):
            return  # the common case, without building ReadOnlyReasons
        r = self.read_only_reasons()
        if r.read_only:
            why = "read only" if not r.disk_space_low or r.no_write_or_delete or r.no_write_can_delete else "read only (disk space low)"
            raise ReadOnly(f"volume {self.id} is {why}")

    def _next_append_ns(self) -> int:
        return max(self._clock_ns(), self.last_append_at_ns + 1)

    def write_needle(self, n: Needle, *, check_cookie: bool = True, fsync: bool = False) -> WriteResult:
        """Append a needle (Go's writeNeedle2/doWriteRequest).

        A needle without a TTL inherits the volume's. Rewriting an identical needle (same
        cookie, CRC and data; non-TTL volumes only) appends nothing. An existing id with a
        different cookie is refused, unless `check_cookie` is False and the cookie is 0 (then
        the stored cookie is adopted, as Go does for replicated batch deletes).
        """
        self._check_writable()
        if n.ttl == EMPTY_TTL and self.ttl != EMPTY_TTL:
            n = n.replace(flags=n.flags | FLAG_HAS_TTL, ttl=self.ttl)
        with self._write_lock:
            self._check_open()
            nv = self.nm.get(n.id)
            if nv is not None:
                unchanged = self._unchanged(n, nv)
                if unchanged is not None:
                    return unchanged
                existing = self._read_header_at(nv.offset * PADDING_SIZE)
                if n.cookie == 0 and not check_cookie:
                    n = n.replace(cookie=existing.cookie)
                if existing.cookie != n.cookie:
                    raise CookieMismatch(f"mismatching cookie {n.cookie:x}")
            append_at_ns = self._next_append_ns()
            size = record_size(n, self.version)
            record = encode_needle(n, self.version, append_at_ns=append_at_ns, size=size)
            offset = self._dat_size
            if offset >= self.codec.offsets.max_volume_size and n.data:
                raise VolumeFull(f"volume size {offset} exceeded {self.codec.offsets.max_volume_size}")
            if self.size_limit is not None and offset + len(record) > self.size_limit and n.data:
                raise VolumeFull(f"volume {self.id} would exceed its size limit of {self.size_limit} bytes")
            self._append_dat(record, offset)
            self.last_append_at_ns = append_at_ns
            if nv is None or nv.offset * PADDING_SIZE < offset:
                self.nm.put(n.id, offset // PADDING_SIZE, size)
                self._append_idx(self.codec.encode(n.id, offset // PADDING_SIZE, size))
            if self.last_modified_ts < n.last_modified:
                self.last_modified_ts = n.last_modified
            end = self._dat_size
        if fsync:
            self._sync_dat(end)
        return WriteResult(offset, len(n.data), False)

    def _unchanged(self, n: Needle, nv: NeedleValue) -> WriteResult | None:
        if str(self.ttl) != "" or nv.offset == 0 or nv.size <= 0:
            return None
        try:
            old = self.read_needle(n.id)
        except StorageError:
            return None
        if old.cookie == n.cookie and old.checksum == n.checksum and old.data == n.data:
            return WriteResult(nv.offset * PADDING_SIZE, len(old.data), True)
        return None

    def _read_header_at(self, offset: int) -> NeedleHeader:
        head = self._pread(NEEDLE_HEADER_SIZE, offset)
        if len(head) < NEEDLE_HEADER_SIZE:
            raise Corrupted(f"reading existing needle: volume {self.id} has no record at {offset}")
        return parse_header(head)

    def _append_dat(self, record: bytes, offset: int) -> None:
        try:
            written = os.pwrite(self._dat_fd, record, offset)
            if written != len(record):
                raise OSError(errno.EIO, f"short write: {written} of {len(record)} bytes")
        except OSError as exc:
            try:
                os.ftruncate(self._dat_fd, offset)
            except OSError:
                pass
            raise StorageError(f"append to volume {self.id} at {offset}: {exc}") from exc
        self._dat_size = offset + len(record)

    def _append_idx(self, row: bytes) -> None:
        try:
            os.pwrite(self._idx_fd, row, self._idx_size)
        except OSError as exc:
            raise StorageError(f"append to {self.idx_path}: {exc}") from exc
        self._idx_size += len(row)

    def _sync_dat(self, upto: int) -> None:
        """fdatasync once for every writer waiting on it (group commit)."""
        with self._sync_lock:
            if self._synced_upto >= upto:
                return
            target = self._dat_size
            try:
                os.fdatasync(self._dat_fd)
            except OSError as exc:
                raise StorageError(f"fsync volume {self.id}: {exc}") from exc
            self._synced_upto = target

    def delete_needle(self, needle_id: int, cookie: int | None = None, *, checksum: int | None = None) -> int:
        """Append a tombstone; returns the deleted record's Size (0 if nothing was live).

        With a cookie: the stored cookie must match, and the tombstone carries the deleted
        data's CRC (pass `checksum` when the needle was already read, to skip a second read).
        With `cookie=None` (skip-cookie batch deletes) the tombstone has cookie 0 and CRC 0.
        Raises NotFound for an expired needle, like Go's read-before-delete.
        """
        if self.no_write_or_delete:
            raise ReadOnly(f"volume {self.id} is read only")
        nv = self.nm.get(needle_id)
        if nv is None or nv.size < 0:
            return 0
        tomb_cookie, tomb_crc = 0, checksum or 0
        if cookie is not None:
            tomb_cookie = cookie
            if checksum is None and nv.size > 0:
                n = self.read_needle(needle_id, cookie)
                tomb_crc = n.checksum or 0
        with self._write_lock:
            self._check_open()
            nv2 = self.nm.get(needle_id)
            if nv2 is None or nv2.size < 0:
                return 0
            if cookie is not None:
                if nv2 != nv and nv2.size > 0:
                    tomb_crc = self.read_needle(needle_id, cookie).checksum or 0
                elif nv2.size > 0 or checksum is not None:
                    h = self._read_header_at(nv2.offset * PADDING_SIZE)
                    if h.cookie != cookie:
                        raise CookieMismatch(f"needle {needle_id:x} in volume {self.id}: cookie {cookie:08x} does not match")
            tomb = Needle(id=needle_id, cookie=tomb_cookie, checksum=tomb_crc, append_at_ns=self._next_append_ns())
            record = encode_needle(tomb, self.version)
            offset = self._dat_size
            self._append_dat(record, offset)
            self.last_append_at_ns = tomb.append_at_ns
            self.nm.delete(needle_id)
            self._append_idx(self.codec.tombstone(needle_id, offset // PADDING_SIZE))
            return nv2.size

    def apply_tombstone(self, needle_id: int, cookie: int, checksum: int) -> int:
        """Replay a deletion read from another server's `.dat` (VolumeTailReceiver): append a
        tombstone carrying that record's cookie and CRC if the needle is live here. Returns the
        deleted record's Size, 0 when nothing was live (nothing appended)."""
        if self.no_write_or_delete:
            raise ReadOnly(f"volume {self.id} is read only")
        with self._write_lock:
            self._check_open()
            nv = self.nm.get(needle_id)
            if nv is None or nv.size < 0:
                return 0
            tomb = Needle(id=needle_id, cookie=cookie, checksum=checksum, append_at_ns=self._next_append_ns())
            offset = self._dat_size
            self._append_dat(encode_needle(tomb, self.version), offset)
            self.last_append_at_ns = tomb.append_at_ns
            self.nm.delete(needle_id)
            self._append_idx(self.codec.tombstone(needle_id, offset // PADDING_SIZE))
            return nv.size

    def write_needle_blob(self, needle_id: int, blob: bytes, size: int) -> bool:
        """Append a raw record copied from another server (Go's WriteNeedleBlob).

        The v3 timestamp is replaced with a fresh one. Returns False when the identical
        needle is already stored (nothing appended).
        """
        self._check_writable()
        if len(blob) < NEEDLE_HEADER_SIZE:
            raise Corrupted(f"needle {needle_id} blob of {len(blob)} bytes is shorter than a needle header")
        h = parse_header(blob)
        if h.size != size:
            raise Corrupted(f"needle {needle_id} size {size} does not match its blob header size {h.size}")
        need = actual_size(max(size, 0), self.version)
        if len(blob) < need:
            raise Corrupted(f"needle blob buffer too small: need {need} bytes, have {len(blob)}")
        with self._write_lock:
            self._check_open()
            if self.nm.file_bytes + len(blob) > self.codec.offsets.max_volume_size:
                raise VolumeFull(f"volume size limit {self.codec.offsets.max_volume_size} exceeded")
            nv = self.nm.get(needle_id)
            if nv is not None and nv.size == size and size > 0:
                try:
                    old = self.read_needle(needle_id)
                    new = decode_needle(blob, self.version, expected_size=size)
                    if old.cookie == new.cookie and old.checksum == new.checksum and old.data == new.data:
                        return False
                except StorageError:
                    pass
            ts = self._next_append_ns()
            record = bytearray(blob[:need])
            if self.version == VERSION3:
                at = NEEDLE_HEADER_SIZE + max(size, 0) + 4
                record[at:at + 8] = ts.to_bytes(8, "big")
            offset = self._dat_size
            self._append_dat(bytes(record), offset)
            self.last_append_at_ns = ts
            self.nm.put(needle_id, offset // PADDING_SIZE, size)
            self._append_idx(self.codec.encode(needle_id, offset // PADDING_SIZE, size))
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"volume {self.id} is closed")

    # state changes -----------------------------------------------------------------------------

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

    def mark_readonly(self, *, can_delete: bool = False, persist: bool = False) -> None:
        """Go's MarkVolumeReadonly: flip the flags now; `persist` records them in `.vif`."""
        with self._write_lock:
            if can_delete and self._idx_fd >= 0 and not _fd_writable(self._idx_fd):
                self._reopen_idx_rw()
            self.no_write_or_delete = not can_delete
            self.no_write_can_delete = can_delete
            if persist:
                self._save_info(self.info.replace(read_only=True, read_only_can_delete=can_delete))

    def mark_writable(self) -> None:
        """Go's MarkVolumeWritable: clear every read-only flag (an integrity failure's too) and
        persist that; a map loaded read-only is rebuilt with writable semantics."""
        with self._write_lock:
            self._check_open()
            if self.nm.sorted_semantics or not _fd_writable(self._idx_fd):
                self._reopen_idx_rw()
                cols = self.codec.columns(_read_all(self._idx_fd))
                self.nm = NeedleMap.from_columns(cols, self.version)
            self.no_write_or_delete = False
            self.no_write_can_delete = False
            self._save_info(self.info.replace(read_only=False, read_only_can_delete=False))

    def _adopt(self, new: "Volume") -> None:
        """Take over the files and state `new` loaded (a compaction commit's reload), with the
        write lock held. Reads in progress finish on the old files first; read-only marks made
        at runtime survive. `new` is left closed."""
        with self._io:
            self._swapping = True
            while self._readers:
                self._io.wait()
            old_fds = (self._dat_fd, self._idx_fd)
            self.super_block = new.super_block
            self.info = new.info
            self.codec = new.codec
            self.nm = new.nm
            self.no_write_or_delete = self.no_write_or_delete or new.no_write_or_delete
            self.no_write_can_delete = self.no_write_can_delete or new.no_write_can_delete
            self.integrity_error = new.integrity_error
            self.warnings.extend(new.warnings)
            self.last_append_at_ns = new.last_append_at_ns
            self.last_modified_ts = max(self.last_modified_ts, new.last_modified_ts)
            self._dat_fd, self._idx_fd = new._dat_fd, new._idx_fd
            self._dat_size, self._idx_size = new._dat_size, new._idx_size
            self._has_vif = new._has_vif
            self._synced_upto = 0
            new._dat_fd = new._idx_fd = -1
            new._closed = True
            self._swapping = False
            self._io.notify_all()
        for fd in old_fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _reopen_idx_rw(self) -> None:
        fd = os.open(self.idx_path, os.O_RDWR | os.O_CREAT, 0o644)
        if self._idx_fd >= 0:
            os.close(self._idx_fd)
        self._idx_fd = fd

    def set_replication(self, replication: ReplicaPlacement | str) -> None:
        """Record a replica placement in `.vif` (Go's ConfigureVolume; takes effect on reload)."""
        rp = ReplicaPlacement.parse(replication) if isinstance(replication, str) else replication
        with self._write_lock:
            self._save_info(self.info.replace(replication=str(rp)))

    def sync(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            os.fsync(self._idx_fd)
            os.fsync(self._dat_fd)

    def close(self) -> None:
        """Flush the index, wait for in-flight reads, close the files. Idempotent."""
        with self._write_lock:
            with self._io:
                if self._closed:
                    return
                self._closed = True
                while self._readers:
                    self._io.wait()
            if self._idx_fd >= 0 and _fd_writable(self._idx_fd):
                try:
                    os.fsync(self._idx_fd)
                except OSError:
                    pass
            self._close_fds()

    def _close_fds(self) -> None:
        for name in ("_dat_fd", "_idx_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)

    def destroy(self) -> None:
        """Close and remove every file of this volume (Go's Destroy, without remote tiers)."""
        self.close()
        base = volume_base_name(self.collection, self.id)
        for directory in {self.directory, self.idx_directory}:
            for ext in ALL_VOLUME_EXTS:
                remove_path(os.path.join(directory, base + ext))

    def is_empty(self) -> bool:
        return self._dat_size <= SUPER_BLOCK_SIZE and self.nm.file_bytes == 0

    def __repr__(self) -> str:
        return f"<Volume {self.id} {self.collection!r} {self.directory} ro={self.read_only}>"


class _ReadGate:
    """`with volume._reading():` as a plain class (no generator per read: reads are hot)."""

    __slots__ = ("_v",)

    def __init__(self, v: Volume) -> None:
        self._v = v

    def __enter__(self) -> None:
        v = self._v
        with v._io:
            while v._swapping:
                v._io.wait()
            if v._closed:
                raise StorageError(f"volume {v.id} is closed")
            v._readers += 1

    def __exit__(self, *exc: object) -> None:
        v = self._v
        with v._io:
            v._readers -= 1
            # Only a swap or a close waits for the readers to drain (both flag it first).
            if not v._readers and (v._swapping or v._closed):
                v._io.notify_all()


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
    import fcntl

    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return False
    return (flags & os.O_ACCMODE) in (os.O_RDWR, os.O_WRONLY)


