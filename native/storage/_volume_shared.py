"""A volume several processes of one server serve at once (see `_shared.py` for the slot).

`share(slot)` ties a loaded volume to its slot. From then on:

- reads call `_follow()` first: when the slot's committed `.idx` end is past what this map has
  applied, the rows in between are read and applied as the process that wrote them applied them
  (a put or a delete), along with the `.dat` end and the append clock; when the generation
  changed, the volume's files were replaced and the volume reopens itself first;
- an append runs between `_begin_append()` and `_end_append()`: the slot lock (taken without
  waiting when the caller must not block: WouldBlock), the generation check, the repair of a
  tail a killed writer left (truncate both files to the committed ends), the catch-up, and the
  read-only flags the leader set; then the new ends are published and the lock released.

Without a slot (one process, the default) each of these is one attribute test.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext

from ._errors import ReadOnly, StorageError, VolumeClosed, VolumeGone, WouldBlock
from ._names import idx_home, volume_base_name
from ._shared import NO_WRITE_CAN_DELETE, NO_WRITE_OR_DELETE, SharedSlot
from ._types import TOMBSTONE_SIZE
from ._volume_base import VolumeBase

__all__ = ["VolumeSharing", "WouldBlock", "VolumeGone", "INLINE_CATCH_UP_BYTES"]

# Rows other processes appended that the event loop applies itself before a read (a few per
# request in steady state); more than this (a burst while this process was idle) is a thread's job.
INLINE_CATCH_UP_BYTES = 64 << 10


class VolumeSharing(VolumeBase):
    """The shared-volume half of `Volume` (class defaults: not shared)."""

    shared: SharedSlot | None = None
    _shared_gen = 0
    _pid = 0  # this process's, for the writer mark (os.getpid() is a syscall)
    _follow_lock: threading.Lock | None = None
    # This process is replacing the files (`_Replacing`): the slot still holds the old files' ends
    # until the publish, and this view is the truth (the slot lock keeps other processes out).
    _replacing = False
    _reopen = None  # callable(self) -> VolumeBase: the same volume loaded again from its files
    _reopen_idx_directory: str | None = None  # where `_reopen` looks for the `.idx` (see `share`)

    def share(self, slot: SharedSlot, reopen, idx_directory: str | None = None) -> None:
        """Serve this volume with the other processes of the server from now on. `reopen()` loads
        it again from its files (after the leader replaced them), from `idx_directory` (the
        location's index directory; an `.idx` next to the `.dat` wins, as in a load)."""
        self._follow_lock = threading.Lock()
        self._reopen = reopen
        self._reopen_idx_directory = idx_directory
        self._pid = os.getpid()
        self._shared_gen = slot.generation
        self.shared = slot
        self._sync(slot)

    def publish_flags(self) -> None:
        """`_write_lock` held: the read-only marks this process just set become every process's
        (an append in flight elsewhere finishes first; the next one sees them)."""
        s = self.shared
        if s is None:
            return
        s.lock()
        try:
            self._set_flags_locked(s)
        finally:
            s.unlock()

    def _set_flags_locked(self, s: SharedSlot) -> None:
        no_write, can_delete = self.no_write_or_delete, self.no_write_can_delete
        self._sync_locked(s)  # catch up first (it takes the slot's flags), then set ours
        self.no_write_or_delete, self.no_write_can_delete = no_write, can_delete
        s.set_flags((NO_WRITE_OR_DELETE if no_write else 0) | (NO_WRITE_CAN_DELETE if can_delete else 0))

    def _catch_ups_held(self) -> AbstractContextManager[object]:
        lock = self._follow_lock
        return nullcontext() if lock is None else lock

    def replacing_files(self) -> "_Replacing":
        """`with v.replacing_files():` (`_write_lock` held) around a change of the volume's files
        (compaction commit, index relocation, a map rebuilt): no other process appends meanwhile,
        and after it they all reopen the volume (a new generation) before using it again."""
        return _Replacing(self)

    # reads (call before entering the read gate: a reopen waits for the gate's readers) -----------

    def _follow(self, blocking: bool = True) -> None:
        """Apply what other processes committed. Not `blocking`: WouldBlock instead of a reopen
        or a wait for another thread that is catching up."""
        s = self.shared
        if s is None or self._replacing or s.current(self._idx_size, self._shared_gen):
            return
        idx_end, gen, vid_word = s.follow_state()
        if gen == self._shared_gen and vid_word == self.id + 1:
            if not blocking and idx_end - self._idx_size > INLINE_CATCH_UP_BYTES:
                raise WouldBlock(f"volume {self.id}: many rows to catch up with")
            lock = self._follow_lock
            assert lock is not None
            if not lock.acquire(blocking=blocking):
                raise WouldBlock(f"volume {self.id} is being caught up by another thread")
            try:
                if self._replacing:  # set under this lock: checked again now that we hold it
                    return
                committed = s.committed()
                # The generation again, after the ends: the files may have been replaced while
                # this read waited for the lock. A new generation is stored before the new
                # files' ends (`_Replacing.__exit__`, `VolumeTable.assign`), so ends read before
                # an unchanged generation are this view's files'.
                _, gen, vid_word = s.follow_state()
                if gen == self._shared_gen and vid_word == self.id + 1:
                    self._apply_committed(*committed, exact=False)
                    return
            finally:
                lock.release()
        if vid_word != self.id + 1:
            # removed: nothing to reopen, so no write lock to wait for (the caller may hold it:
            # a scrub, a compaction's start; the unmount's close then waited for them for good)
            raise VolumeGone(f"volume {self.id} was removed")
        if not blocking:
            raise WouldBlock(f"volume {self.id} must be reopened")
        self._sync(s)

    def _apply_committed(self, end: int, dat_end: int, append_ns: int, modified: int, flags: int, *,
                         exact: bool) -> None:
        """Follow lock held: the rows committed since (up to `.idx` end `end`), the committed
        `.dat` end, clocks and flags, as the caller read them from the slot.

        `exact` (`_sync_locked`: the write lock and the slot lock held) makes the view the committed
        state, ends and marks included. Otherwise (a read catching up, with neither lock) the view
        only moves forward: a local append may have written its record and row without publishing
        them yet (its ends are ahead of the slot's), and a local mark may be set and not yet
        published (the write lock is held then); taking the slot's older values would make those
        publish them, and the next append overwrite the record or the mark be lost."""
        if end > self._idx_size:
            raw = os.pread(self._idx_fd, end - self._idx_size, self._idx_size)
            if len(raw) != end - self._idx_size:
                raise StorageError(f"volume {self.id}: .idx ends at {self._idx_size + len(raw)}, the slot says {end}")
            nm = self.nm
            for key, offset, size in self.codec.iter_rows(raw):  # as the writer applied them to its map
                if size == TOMBSTONE_SIZE:
                    nm.delete(key)
                else:
                    nm.put(key, offset, size)
            self._idx_size = end
        if exact or dat_end > self._dat_size:
            self._dat_size = dat_end
        if append_ns > self.last_append_at_ns:
            self.last_append_at_ns = append_ns
        if modified > self.last_modified_ts:
            self.last_modified_ts = modified
        if exact or not self._write_lock.locked():  # a local change may be on its way to the slot
            self.no_write_or_delete = bool(flags & NO_WRITE_OR_DELETE)
            self.no_write_can_delete = bool(flags & NO_WRITE_CAN_DELETE)

    # appends -------------------------------------------------------------------------------------

    def _begin_append(self, *, blocking: bool = True) -> None:
        """With `_write_lock` held: the slot lock and a view of the volume as committed."""
        s = self.shared
        if s is None:
            return
        if not s.lock(blocking):
            raise WouldBlock(f"volume {self.id} is being appended to by another process")
        try:
            words = s.words()
            _, gen, dat_end, idx_end, append_ns, modified, flags, writer, syncing = words
            if syncing & ~s.bit and not blocking:  # see `_sync_dat`: a thread's append waits instead
                raise WouldBlock(f"volume {self.id} is being synced to disk by another process")
            behind = idx_end - self._idx_size
            if writer or gen != self._shared_gen or words[0] != self.id + 1 or behind < 0 \
                    or behind > INLINE_CATCH_UP_BYTES:
                # a torn tail to cut, replaced or removed files, or a burst to catch up with
                if not blocking:
                    if gen != self._shared_gen or behind < 0:
                        raise WouldBlock(f"volume {self.id} must be reopened first")
                    if behind > INLINE_CATCH_UP_BYTES:  # as `_follow`: a burst is a thread's job
                        raise WouldBlock(f"volume {self.id}: many rows to catch up with")
                self._sync_locked(s, words)
            elif behind or dat_end != self._dat_size or append_ns > self.last_append_at_ns \
                    or modified > self.last_modified_ts or flags or self.no_write_or_delete \
                    or self.no_write_can_delete:
                # `_sync_locked`'s catch-up, the files being current (the common case of two
                # processes writing in turn: the other's row, or nothing but its ends)
                lock = self._follow_lock
                assert lock is not None
                with lock:
                    self._apply_committed(idx_end, dat_end, append_ns, modified, flags, exact=True)
            # else: nothing was committed since this view's own append (the view is exact)
            if self.no_write_or_delete:
                raise ReadOnly(f"volume {self.id} is read only")
            s.set_writer(self._pid)
        except BaseException:
            s.unlock()
            raise

    def _end_append(self, ok: bool, *, refused: bool = False) -> None:
        """Publish the append (when it completed) and let the next writer in. A failed one leaves
        the writer mark set: the next append cuts whatever it wrote; one `refused` before it
        wrote anything takes the mark off."""
        s = self.shared
        if s is None:
            return
        if ok:
            s.publish_and_unlock(self._dat_size, self._idx_size, self.last_append_at_ns, self.last_modified_ts)
        else:
            if refused:
                s.set_writer(0)
            s.unlock()

    def _sync(self, s: SharedSlot) -> None:
        """`_sync_locked` with the write lock and the slot lock taken for it."""
        with self._write_lock:
            s.lock()
            try:
                self._sync_locked(s)
            finally:
                s.unlock()

    def _sync_locked(self, s: SharedSlot, words: tuple[int, ...] | None = None) -> None:
        """`_write_lock` and the slot lock held: reopen if the files changed, cut a torn tail a
        killed writer left, then apply what was committed. `words`: `s.words()` read under
        this same hold of the slot lock, when the caller has them (the lock keeps them current)."""
        vid_word, gen, dat_end, idx_end, append_ns, modified, flags, writer, _ = words if words is not None else s.words()
        if vid_word != self.id + 1:
            raise VolumeGone(f"volume {self.id} was removed")
        if writer:  # the last writer died mid-append: nothing past the committed ends is real
            if gen == self._shared_gen:
                for fd, end in ((self._dat_fd, dat_end), (self._idx_fd, idx_end)):
                    if os.fstat(fd).st_size > end:
                        self.files.ftruncate(fd, end)
            else:  # the ends are those of the files that replaced ours (reads in flight finish on ours)
                self._cut_files(dat_end, idx_end)
            s.set_writer(0)
        new = None
        if gen != self._shared_gen or self._idx_size > idx_end:
            # replaced files, or opened while an append was in flight
            if self._closed:  # (set under the write lock) a reopen would adopt files no close ever closes
                raise VolumeClosed(f"volume {self.id} is closed")
            new = self._reopen()
        lock = self._follow_lock
        assert lock is not None
        with lock:  # a read of another thread catching up finishes on the view it began with
            if new is not None:
                self._adopt(new)
                self._shared_gen = gen
            self._apply_committed(idx_end, dat_end, append_ns, modified, flags, exact=True)

    def _cut_files(self, dat_end: int, idx_end: int) -> None:
        """Cut the volume's current files (by path: the ones the reopen loads next) back to the
        committed ends."""
        files = self.files
        for path, end in ((self.dat_path, dat_end), (self._reopened_idx_path(), idx_end)):
            try:
                fd = files.open(path, os.O_RDWR)
            except FileNotFoundError:  # not a local file any more (the reopen tells what it is now)
                continue
            try:
                if os.fstat(fd).st_size > end:
                    files.ftruncate(fd, end)
            finally:
                files.close(fd)

    def _reopened_idx_path(self) -> str:
        """The `.idx` `_reopen` loads. Not necessarily this view's: VolumeConsolidateIndex may
        have moved it since."""
        home = self._reopen_idx_directory
        if home is None:
            return self.idx_path
        base = volume_base_name(self.collection, self.id)
        return os.path.join(idx_home(self.directory, home, base), base + ".idx")


class _Replacing:
    __slots__ = ("_v",)

    def __init__(self, v: VolumeSharing) -> None:
        self._v = v

    def __enter__(self) -> None:
        v = self._v
        s = v.shared
        if s is not None:
            s.lock()
            try:
                v._sync_locked(s)
                lock = v._follow_lock
                assert lock is not None
                with lock:  # a read catching up now finishes first; later ones see the mark
                    v._replacing = True
            except BaseException:
                s.unlock()
                raise

    def __exit__(self, *exc: object) -> None:
        v = self._v
        s = v.shared
        if s is None:
            return
        try:  # whatever happened, the files may have changed: everyone else reopens
            # the generation first: a read elsewhere that finds the new ends finds it too (`_follow`)
            v._shared_gen = s.bump_generation()
            s.set_flags((NO_WRITE_OR_DELETE if v.no_write_or_delete else 0)
                        | (NO_WRITE_CAN_DELETE if v.no_write_can_delete else 0))
            s.publish(v._dat_size, v._idx_size, v.last_append_at_ns, v.last_modified_ts)
        finally:
            v._replacing = False
            s.unlock()
