"""A volume's state changes: read-only marks (at runtime and in `.vif`), the replication
setting, taking over the files a compaction commit reloaded, sync, close and destroy."""

from __future__ import annotations

import os

from ._fs import remove_path
from ._names import ALL_VOLUME_EXTS, volume_base_name
from ._replica import ReplicaPlacement
from ._volume_base import VolumeBase, _fd_writable, _read_all

__all__ = ["VolumeStateChanges"]


class VolumeStateChanges(VolumeBase):
    """Marks, compaction adoption and the end of a volume's life."""

    def mark_readonly(self, *, can_delete: bool = False, persist: bool = False) -> None:
        """Go's MarkVolumeReadonly: flip the flags now; `persist` records them in `.vif`. A mark
        that lets deletes in swaps a map loaded read-only for a writable one first (Go's
        reopenIdxForWrite: its counters become a writable load's, and deletes count)."""
        if can_delete and self.nm.sorted_semantics:
            with self._write_lock, self.replacing_files():
                self._check_open()
                self._reopen_idx_rw()
                self.nm = self._build_map(self._index_rows(_read_all(self._idx_fd)), sorted_semantics=False)
        with self._write_lock:
            if can_delete and self._idx_fd >= 0 and not _fd_writable(self._idx_fd):
                self._reopen_idx_rw()
            self._set_marks(not can_delete, can_delete)
            self.publish_flags()
            if persist:
                self._save_info(self.info.replace(read_only=True, read_only_can_delete=can_delete))

    def mark_writable(self) -> None:
        """Go's MarkVolumeWritable: clear every read-only flag (an integrity failure's too) and
        persist that; a map loaded read-only is rebuilt with writable semantics."""
        with self._write_lock, self.replacing_files():
            self._check_open()
            if self.nm.sorted_semantics or not _fd_writable(self._idx_fd):
                self._reopen_idx_rw()
                self.nm = self._build_map(self._index_rows(_read_all(self._idx_fd)), sorted_semantics=False)
            self.no_write_or_delete = False
            self.no_write_can_delete = False
            self._sync_error = None  # the operator's call: fsync writes are tried again
            self._save_info(self.info.replace(read_only=False, read_only_can_delete=False))

    def rebuild_map_as_loaded(self, loaded_idx_bytes: int, *, sorted_semantics: bool, extra_files: int = 0) -> None:
        """The needle map another process holds for this volume: loaded when the `.idx` was
        `loaded_idx_bytes` long (with `sorted_semantics`: Go's read-only map), the rows appended
        since applied as that process applied them at runtime, and `extra_files` more files
        counted (Go's commit adopts a map that counted every row as a file). For a read-only
        view of a volume Go owns (mixed mode's follower)."""
        from ._map_replay import load_only_deletions  # numpy: loaded with the first map built

        with self._write_lock:
            raw = _read_all(self._idx_fd)[:self._idx_size]  # what the view loaded, not rows since
            es = self.codec.entry_size
            whole = len(raw) // es * es
            cut = min(loaded_idx_bytes, len(raw)) // es * es
            nm = self.nm
            if sorted_semantics or extra_files or nm.sorted_semantics != sorted_semantics:
                nm = self._build_map(self._index_rows(raw[:cut]), sorted_semantics=sorted_semantics)
                rest = raw[cut:whole]
                if rest:
                    nm.catch_up(self._index_rows(rest), self.version)
                nm.file_count += extra_files
            # else: the map loaded with the view is the whole index, loader-counted
            if not sorted_semantics and cut < whole:  # the rows since Go's load, counted at runtime
                nm.deletion_count -= load_only_deletions(self._index_rows(raw[:whole]), cut // es)
            self.nm = nm

    def _adopt(self, new: VolumeBase) -> None:
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
            self.idx_directory = new.idx_directory  # where the load found the `.idx`
            self._synced_upto = 0
            self._files_epoch += 1
            new._dat_fd = new._idx_fd = -1
            new._closed = True
            self._swapping = False
            self._io.notify_all()
        for fd in old_fds:
            if fd >= 0:
                try:
                    self.files.close(fd)
                except OSError:
                    pass

    def _reopen_idx_rw(self) -> None:
        """The `.idx` opened for writing in place of a read-only descriptor; a read catching up
        that is reading rows from the old one finishes first."""
        fd = self.files.open(self.idx_path, os.O_RDWR | os.O_CREAT, 0o644)
        with self._catch_ups_held():
            old, self._idx_fd = self._idx_fd, fd
            self._files_epoch += 1
        if old >= 0:
            self.files.close(old)

    def set_replication(self, replication: ReplicaPlacement | str) -> None:
        """Record a replica placement in `.vif` (Go's ConfigureVolume; takes effect on reload).
        A text is kept as given (validated), as Go keeps it."""
        if isinstance(replication, str):
            ReplicaPlacement.parse(replication)
            text = replication
        else:
            text = str(replication)
        with self._write_lock:
            self._save_info(self.info.replace(replication=text))

    def sync(self) -> None:
        """fsync both files. A failure turns the volume read-only, as a failed `fsync` write
        does (`VolumeWrites._sync_failed`), and is raised."""
        with self._write_lock:
            if self._closed:
                return
            try:
                self.files.fsync(self._dat_fd)
                self.files.fsync(self._idx_fd)
            except OSError as exc:
                self._sync_error = exc
                self._set_marks(True, self.no_write_can_delete)
                self.publish_flags()
                raise

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
                    self.files.fsync(self._idx_fd)
                except OSError:
                    pass
            self._close_fds()

    def destroy(self) -> None:
        """Close and remove every file of this volume (Go's Destroy, without remote tiers)."""
        self.close()
        base = volume_base_name(self.collection, self.id)
        for directory in {self.directory, self.idx_directory}:
            for ext in ALL_VOLUME_EXTS:
                remove_path(os.path.join(directory, base + ext))

