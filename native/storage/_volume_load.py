"""Opening a volume: creating a new one, loading an existing one as Go's loader does (the
`.vif`, the super block, the integrity check of the tail, the map), and working out the
`.idx` offset width (4 or 5 bytes) from the `.vif` or, without one, from the files themselves.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Self

from ._errors import Corrupted, NotFound, OffsetWidthMismatch, UnsupportedVolume
from ._fileio import FileOps
from ._idx import IdxCodec
from ._integrity import check_volume_tail
from ._map_types import MapPolicy
from ._names import idx_home, volume_base_name
from ._recover import plan_tail_repair
from ._needle import parse_header
from ._replica import ReplicaPlacement
from ._superblock import SuperBlock
from ._ttl import EMPTY_TTL, TTL
from ._types import CURRENT_VERSION, DEFAULT_OFFSET_BYTES, NEEDLE_HEADER_SIZE, SUPER_BLOCK_SIZE, SUPPORTED_VERSIONS
from ._vif import VolumeInfo, load_volume_info, width_mismatch
from ._volume_base import VolumeBase, _read_all

__all__ = ["VolumeLoading", "width_mismatch"]

log = logging.getLogger("weedpy.storage")


class VolumeLoading(VolumeBase):
    """`Volume.create` and `Volume.load`."""

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
        map_policy: MapPolicy | None = None,
        files: FileOps | None = None,
    ) -> Self:
        """Allocate a new volume (Go's NewVolume on a missing `.dat`): super block and `.vif`."""
        if isinstance(replica_placement, str):
            replica_placement = ReplicaPlacement.parse(replica_placement)
        if isinstance(ttl, str):
            ttl = TTL.parse(ttl)
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVolume(f"volume super block version {version} is not supported")
        sb = SuperBlock(version=version, replica_placement=replica_placement, ttl=ttl)
        return cls._open(
            directory, vid, collection, idx_directory, offset_bytes, new_super_block=sb, clock_ns=clock_ns,
            map_policy=map_policy, files=files,
        )

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
        map_policy: MapPolicy | None = None,
        read_only_marks: tuple[bool, bool] = (False, False),
        repair: bool = True,
        files: FileOps | None = None,
    ) -> Self:
        """Open an existing volume as Go's loader does (integrity check included).

        `offset_bytes` None takes the width from the `.vif` (else `default_offset_bytes`); an
        explicit width that the `.vif` contradicts raises OffsetWidthMismatch.
        `read_only_view` opens every file read-only and writes nothing (not even a missing
        `.vif`): a view of a volume another process owns. Its flags are still the files' own.
        `map_policy` says when the needle map goes through a map file (`_map_load`).
        `read_only_marks` (no write or delete, no write but delete) are marks the volume
        already carries at runtime: Go reloads a volume (a compaction commit) with them set, so
        they choose the read-only needle map as a `.vif` mark does.
        `repair` cuts the torn tail a crash left (`_recover`) off a writable volume's files
        before loading it; off for a process that does not own the files. `files` is the layer
        every write goes through (`_fileio`; the operating system's by default).
        """
        return cls._open(
            directory, vid, collection, idx_directory, offset_bytes,
            default_offset_bytes=default_offset_bytes, clock_ns=clock_ns, read_only_view=read_only_view,
            map_policy=map_policy, read_only_marks=read_only_marks, repair=repair, files=files,
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
        map_policy: MapPolicy | None = None,
        read_only_marks: tuple[bool, bool] = (False, False),
        repair: bool = False,
        files: FileOps | None = None,
    ) -> Self:
        v = cls()
        if files is not None:
            v.files = files
        v._view = read_only_view
        v.no_write_or_delete, v.no_write_can_delete = read_only_marks
        if map_policy is not None:
            v.map_policy = map_policy
        v.id = vid
        v.collection = collection
        v.directory = os.fspath(directory)
        v.idx_directory = os.fspath(idx_directory) if idx_directory else v.directory
        if clock_ns is not None:
            v._clock_ns = clock_ns
        try:
            v._load(offset_bytes, default_offset_bytes, new_super_block, repair)
        except BaseException:
            v._close_fds()
            raise
        return v

    def _load(self, offset_bytes: int | None, default_offset_bytes: int, new_sb: SuperBlock | None,
              repair: bool = False) -> None:
        base = volume_base_name(self.collection, self.id)
        self.idx_directory = idx_home(self.directory, self.idx_directory, base)
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
            self._dat_fd = self.files.open(dat_path, os.O_RDWR if writable and not self._view else os.O_RDONLY)
            if not writable:
                self.no_write_or_delete = True
            st = os.fstat(self._dat_fd)
            self.last_modified_ts = int(st.st_mtime)
        elif new_sb is not None:
            os.makedirs(self.directory, exist_ok=True)
            self._dat_fd = self.files.open(dat_path, os.O_RDWR | os.O_CREAT, 0o644)
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
            self.files.pwrite(self._dat_fd, raw, 0)
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
            self._idx_fd = self.files.open(idx_path, os.O_RDONLY)
        elif self._view:
            raise NotFound(f"idx file {idx_path} does not exist")
        else:
            os.makedirs(self.idx_directory, exist_ok=True)
            self._idx_fd = self.files.open(idx_path, os.O_RDWR | os.O_CREAT, 0o644)
        raw_idx = _read_all(self._idx_fd)
        if self._view:  # the owner appends meanwhile: `.dat` before its `.idx` row, so a size taken now covers every row read
            self._dat_size = os.fstat(self._dat_fd).st_size
        self._check_width_plausible(len(raw_idx), info)
        if repair and not self._view and not self.no_write_or_delete and self._dat_size >= sb.block_size:
            raw_idx = self._repair_tail(raw_idx, sb.block_size)
        self._idx_size = len(raw_idx)
        rows = self._index_rows(raw_idx)
        del raw_idx

        result = check_volume_tail(rows, self.codec, self._dat_size, self.version, self._pread_raw)
        self.last_append_at_ns = result.last_append_at_ns
        if not result.ok:
            self.integrity_error = result.error
            self.no_write_or_delete = True
            log.warning("volume %s: integrity check failed, serving read-only: %s", self.id, result.error)

        self.nm = self._build_map(rows)
        del rows
        if self.nm.max_needle_end > self._dat_size and self._dat_size > 0:
            self.no_write_or_delete = True
            msg = f"index references bytes up to {self.nm.max_needle_end} but .dat has {self._dat_size}"
            self.integrity_error = self.integrity_error or msg
            log.warning("volume %s: %s; marking read-only", self.id, msg)
        if not self._has_vif and not self._view:
            self._save_info(self.info)
            self._has_vif = True

    def _repair_tail(self, raw_idx: bytes, data_start: int) -> bytes:
        """Cut the torn tail a crash left (`_recover`), durably; the `.idx` bytes kept."""
        plan = plan_tail_repair(raw_idx, self.codec, self._dat_size, self.super_block.version, self._pread_raw, data_start)
        if plan is None:
            return raw_idx
        if plan.too_large:  # not what a crash leaves: left for an operator (the load check marks it read-only)
            log.warning("volume %s: not cutting a tail larger than a crash leaves: %s", self.id, plan.describe())
            self.warnings.append(f"not repaired: {plan.describe()}")
            return raw_idx
        log.warning("volume %s: recovering from a crash: %s", self.id, plan.describe())
        if plan.idx_size < len(raw_idx) or plan.rows:
            self.files.ftruncate(self._idx_fd, plan.idx_size)
            if plan.rows:
                self.files.pwrite(self._idx_fd, plan.rows, plan.idx_size)
            self.files.fsync(self._idx_fd)
        if plan.dat_size < self._dat_size:
            self.files.ftruncate(self._dat_fd, plan.dat_size)
            self.files.fsync(self._dat_fd)
            self._dat_size = plan.dat_size
        self.warnings.append(f"recovered from a crash: {plan.describe()}")
        return raw_idx[:plan.idx_size] + plan.rows

    def _resolve_width(self, info: VolumeInfo, offset_bytes: int | None, default: int) -> int:
        recorded = info.bytes_offset
        mismatch = width_mismatch(self.id, self.file_name(".vif"), recorded, offset_bytes)
        if mismatch is not None:
            raise mismatch
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
