"""A volume whose `.dat` lives in remote storage (Go: a volume with remote `files` in its `.vif`).

Go serves such a volume read-only with deletes allowed: the `.idx` stays local, each read is a
ranged GET of the record from the remote object, a delete appends an offset-0 tombstone row to
`.idx` (nothing is written remotely), and deleting the volume deletes the object unless asked
to keep it. `TieredVolume` is that, on top of `Volume`: everything that reads `.dat` goes
through the backend named by the first remote file, looked up when used, so a volume loaded
before the master has sent the backend configuration starts serving once it arrives (Go
refuses to load it instead). The super block is read from the remote object when the backend
is first reachable; until then the version and replication come from the `.vif`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .._errors import Corrupted, StorageError
from .._fileio import open_without_atime
from .._idx import IdxCodec
from .._needle import Needle, decode_needle
from .._needle_map import NeedleMap
from .._errors import WouldBlock
from .._replica import ReplicaPlacement
from .._stream import NeedleStream
from .._superblock import SuperBlock
from .._types import CURRENT_VERSION, DEFAULT_OFFSET_BYTES, SUPER_BLOCK_SIZE, actual_size
from .._vif import VolumeInfo, load_volume_info
from .._volume import Volume, VolumeStats
from .._volume_base import _read_all
from ._backends import BackendRegistry, TierError
from ._metrics import go_sorted_counters

__all__ = ["TieredVolume", "RemoteFile", "remote_files"]

log = logging.getLogger("weedpy.storage.tier")


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteFile:
    """One `.vif` `files` entry (Go's volume_server_pb.RemoteFile)."""

    backend_type: str
    backend_id: str
    key: str
    offset: int = 0
    file_size: int = 0
    modified_time: int = 0
    extension: str = ".dat"

    @property
    def backend_name(self) -> str:
        return f"{self.backend_type}.{self.backend_id}"

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> "RemoteFile":
        def pick(camel: str, snake: str, default: Any) -> Any:
            return d.get(camel, d.get(snake, default))

        return cls(
            backend_type=str(pick("backendType", "backend_type", "")),
            backend_id=str(pick("backendId", "backend_id", "")),
            key=str(pick("key", "key", "")),
            offset=int(pick("offset", "offset", 0) or 0),
            file_size=int(pick("fileSize", "file_size", 0) or 0),
            modified_time=int(pick("modifiedTime", "modified_time", 0) or 0),
            extension=str(pick("extension", "extension", "")),
        )

    def to_json(self) -> dict[str, Any]:
        """protojson, as Go writes it (64-bit integers as strings)."""
        return {
            "backendType": self.backend_type, "backendId": self.backend_id, "key": self.key,
            "offset": str(self.offset), "fileSize": str(self.file_size),
            "modifiedTime": str(self.modified_time), "extension": self.extension,
        }


def remote_files(info: VolumeInfo | None) -> list[RemoteFile]:
    return [RemoteFile.parse(f) for f in info.files] if info is not None else []


class TieredVolume(Volume):
    """Open with `TieredVolume.open(directory, vid, backends=..., ...)`."""

    is_remote = True

    def __init__(self) -> None:
        super().__init__()
        self.backends = BackendRegistry()
        self.remote = RemoteFile("", "", "")
        self._sb_loaded = False
        self.keep_remote_data = False

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        vid: int,
        *,
        backends: BackendRegistry,
        collection: str = "",
        idx_directory: str | os.PathLike[str] | None = None,
        offset_bytes: int | None = None,
        clock_ns: Callable[[], int] | None = None,
    ) -> "TieredVolume":
        v = cls()
        v.backends = backends
        v.id, v.collection = vid, collection
        v.directory = os.fspath(directory)
        v.idx_directory = os.fspath(idx_directory) if idx_directory else v.directory
        if clock_ns is not None:
            v._clock_ns = clock_ns
        try:
            v._load_tiered(offset_bytes)
        except BaseException:
            v._close_fds()
            raise
        return v

    def _load_tiered(self, offset_bytes: int | None) -> None:
        base_idx = os.path.join(self.directory, os.path.basename(self.file_name(".idx")))
        if self.idx_directory != self.directory and os.path.exists(base_idx):
            self.idx_directory = self.directory
        info = load_volume_info(self.vif_path)
        files = remote_files(info)
        if info is None or not files:
            raise StorageError(f"volume {self.id} has no remote file to load")
        self._has_vif = True
        self.remote = files[0]
        width = self._resolve_width(info, offset_bytes, DEFAULT_OFFSET_BYTES)
        self.codec = IdxCodec.for_width(width)
        self.no_write_can_delete, self.no_write_or_delete = True, False  # Go: tiered volumes take deletes
        self._dat_size = self.remote.file_size
        self.last_modified_ts = self.remote.modified_time or int(os.path.getmtime(self.vif_path))
        sb = SuperBlock(version=info.version or CURRENT_VERSION)
        if info.replication:
            try:
                sb = dataclasses.replace(sb, replica_placement=ReplicaPlacement.parse(info.replication))
            except ValueError:
                pass
        self.super_block = sb
        self.info = info.replace(version=sb.version, bytes_offset=width)
        idx_path = self.file_name(".idx")
        if not os.path.exists(idx_path):
            raise Corrupted(f"check volume idx file {idx_path}: idx file {idx_path} does not exists")
        self._idx_fd = open_without_atime(idx_path, os.O_RDWR)
        raw_idx = _read_all(self._idx_fd)
        self._idx_size = len(raw_idx)
        cols = self.codec.columns(raw_idx)
        self.nm = NeedleMap.from_columns(cols, self.version, sorted_semantics=True)
        # Go's counts, Bloom-filter false positives included (see _metrics)
        nm = self.nm
        nm.file_count, nm.file_bytes, nm.deletion_count, nm.deletion_bytes = go_sorted_counters(cols.keys, cols.sizes)
        self.refresh_super_block()

    # the remote object ---------------------------------------------------------------------------

    @property
    def remote_storage(self) -> tuple[str, str]:
        """(backend name, key): Go's RemoteStorageNameKey, reported in heartbeats."""
        return self.remote.backend_name, self.remote.key

    def _backend(self):
        b = self.backends.get(self.remote.backend_name)
        if b is None:
            raise TierError(f"backend storage {self.remote.backend_name} not found")
        return b

    def refresh_super_block(self) -> bool:
        """Read the super block from the remote object once its backend is known (Go reads it
        at load and carries on without it when the remote cannot be reached)."""
        if self._sb_loaded or self.backends.get(self.remote.backend_name) is None:
            return self._sb_loaded
        try:
            head = self._pread_raw(SUPER_BLOCK_SIZE, 0)
            extra = SuperBlock.extra_size_of(head) if len(head) == SUPER_BLOCK_SIZE else 0
            if extra:
                head = self._pread_raw(SUPER_BLOCK_SIZE + extra, 0)
            sb = SuperBlock.decode(head)
        except (StorageError, ValueError, OSError) as exc:
            log.warning("volume %s: read super block from remote: %s", self.id, exc)
            return False
        if self.info.replication:
            try:
                sb = dataclasses.replace(sb, replica_placement=ReplicaPlacement.parse(self.info.replication))
            except ValueError:
                pass
        self.super_block = sb
        self.info = self.info.replace(version=sb.version)
        self._sb_loaded = True
        return True

    def _pread_raw(self, length: int, offset: int) -> bytes:
        """Go's S3BackendStorageFile.ReadAt: nothing at or past the end, else one ranged GET."""
        if length <= 0 or (self._dat_size > 0 and offset >= self._dat_size):
            return b""
        return self._backend().read_at(self.remote.key, length, offset)

    def _pread(self, length: int, offset: int) -> bytes:
        with self._io:
            if self._closed:
                raise StorageError(f"volume {self.id} is closed")
        return self._pread_raw(length, offset)

    def pinned_dat(self, *, blocking: bool = True) -> tuple[int, int]:
        raise StorageError(f"volume {self.id} is tiered to {self.remote.backend_name}: its .dat is not local")

    # reads ------------------------------------------------------------------------------------

    def read_needle(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False,
                    verify_crc: bool = True, blocking: bool = True) -> Needle:
        if not blocking:  # a remote read: never on the event loop
            raise WouldBlock(f"volume {self.id} reads from remote storage")
        self._follow()
        with self._reading():
            loc = self._locate(needle_id, read_deleted)
        if loc is None:
            return Needle(id=needle_id, cookie=cookie or 0, checksum=0)
        offset, size = loc
        if not self._sb_loaded:  # the remote was unreachable when the backend was configured
            self.refresh_super_block()
        raw = self._pread(actual_size(size, self.version), offset)
        try:
            n = decode_needle(raw, self.version, expected_size=size, verify_crc=verify_crc)
        except Corrupted as exc:
            raise Corrupted(f"volume {self.id} offset {offset}: {exc}") from None
        self._check_ttl_and_cookie(n, cookie)
        return n

    def read_needle_meta(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> tuple[Needle, int]:
        self._follow()
        with self._reading():
            loc = self._locate(needle_id, read_deleted)
        if loc is None:
            return Needle(id=needle_id, cookie=cookie or 0, checksum=0), 0
        n, data_size = self._read_meta_at(*loc)
        self._check_ttl_and_cookie(n, cookie)
        return n, data_size

    def open_needle_stream(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False,
                           blocking: bool = True) -> NeedleStream:
        """The whole needle fetched once, served from memory (there is no local file to send)."""
        n = self.read_needle(needle_id, cookie, read_deleted=read_deleted, blocking=blocking)
        return _MemoryNeedleStream(n)

    # writes -----------------------------------------------------------------------------------

    def delete_needle(self, needle_id: int, cookie: int | None = None, *, checksum: int | None = None,
                      blocking: bool = True) -> int:
        """Go's delete on a tiered volume: an offset-0 tombstone row in `.idx`, nothing remote.
        With a cookie, the stored one must match (the record is read from the remote)."""
        if not blocking:  # it may read from remote storage: never on the event loop
            raise WouldBlock(f"volume {self.id} reads from remote storage")
        self._follow()
        nv = self.nm.get(needle_id)
        if nv is None or nv.size < 0:
            return 0
        if cookie is not None and checksum is None and nv.size > 0:
            self.read_needle(needle_id, cookie)
        with self._appending():
            nv2 = self.nm.get(needle_id)
            if nv2 is None or nv2.size < 0:
                return 0
            self.last_append_at_ns = self._next_append_ns()
            self._append_idx(self.codec.tombstone(needle_id, 0), undo_dat=None)  # the row first, then the map
            self.nm.delete(needle_id)
            return nv2.size

    def apply_tombstone(self, needle_id: int, cookie: int, checksum: int) -> int:
        return self.delete_needle(needle_id)

    def mark_writable(self) -> None:
        """Go's MarkVolumeWritable: clears a read-only mark, but a tiered volume keeps taking
        deletes only (there is no local file to write to)."""
        with self._write_lock:
            self._check_open()
            self._set_marks(False, self.no_write_can_delete)  # (a read catching up finishes first)
            self.publish_flags()
            self._save_info(self.info.replace(read_only=False, read_only_can_delete=False))

    def mark_readonly(self, *, can_delete: bool = False, persist: bool = False) -> None:
        with self._write_lock:
            self._set_marks(not can_delete, self.no_write_can_delete)  # (a read catching up finishes first)
            self.publish_flags()
            if persist:
                self._save_info(self.info.replace(read_only=True, read_only_can_delete=can_delete))

    # state ------------------------------------------------------------------------------------

    def stats(self, *, blocking: bool = True) -> VolumeStats:
        s = super().stats(blocking=blocking)
        return dataclasses.replace(s, modified_at_second=self.remote.modified_time or s.modified_at_second)

    def sync(self) -> None:
        with self._write_lock:
            if not self._closed:
                os.fsync(self._idx_fd)

    def destroy(self, *, keep_remote_data: bool = False) -> None:
        """Close, delete the remote object (unless kept: a move hands it to another server; Go
        ignores a failed delete), then remove the local files."""
        keep = keep_remote_data or self.keep_remote_data
        self.close()
        if not keep:
            b = self.backends.get(self.remote.backend_name)
            if b is not None and self.remote.key:
                try:
                    b.delete_file(self.remote.key)
                except StorageError as exc:
                    log.warning("volume %s: delete remote %s: %s", self.id, self.remote.key, exc)
        super().destroy()

    def is_empty(self) -> bool:
        return self._dat_size <= SUPER_BLOCK_SIZE and self.nm.file_bytes == 0

    def __repr__(self) -> str:
        return f"<TieredVolume {self.id} {self.collection!r} on {self.remote.backend_name}:{self.remote.key}>"


class _MemoryNeedleStream:
    """NeedleStream's reading interface over a needle already in memory (no `fd`)."""

    __slots__ = ("needle", "data_offset", "data_size", "_data")

    def __init__(self, n: Needle) -> None:
        self._data = n.data
        self.needle = n.replace(data=b"")
        self.data_offset = 0
        self.data_size = len(n.data)

    @property
    def fd(self) -> int:
        raise StorageError("a tiered volume's needle has no local file")

    def read(self, start: int = 0, length: int | None = None) -> bytes:
        end = self.data_size if length is None else min(self.data_size, start + length)
        return self._data[start:end]

    def iter_chunks(self, start: int = 0, length: int | None = None, chunk_size: int = 4 << 20) -> Iterator[bytes]:
        end = self.data_size if length is None else min(self.data_size, start + length)
        for pos in range(start, end, chunk_size):
            yield self._data[pos:min(end, pos + chunk_size)]

    def close(self) -> None:
        self._data = b""

    def __enter__(self) -> "_MemoryNeedleStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
