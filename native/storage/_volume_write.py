"""A volume's writes: needle appends (with Go's unchanged-rewrite and cookie rules), group
fsync, deletes and replayed tombstones, and raw records copied from another server.

Every append happens under `_write_lock` (and, when other processes serve the volume too, its
shared lock: see `_volume_shared`): the `.dat` record goes first, then the map and the `.idx`
row, so a reader never finds a map entry whose record is not yet on disk.
"""

from __future__ import annotations

import errno

from ._errors import CookieMismatch, Corrupted, ReadOnly, StorageError, VolumeClosed, VolumeFull
from ._needle import FLAG_HAS_TTL, Needle, NeedleHeader, decode_needle, encode_appended, encode_needle, parse_header
from ._needle_map import NeedleValue
from ._ttl import EMPTY_TTL
from ._types import NEEDLE_HEADER_SIZE, PADDING_SIZE, VERSION3, OffsetCodec, actual_size
from ._volume_base import WriteResult
from ._volume_read import VolumeReads
from ._errors import WouldBlock

__all__ = ["VolumeWrites"]

# What an append refuses with before it writes a byte (each is raised before the record's
# pwrite): the writer mark it set comes off again, the next writer has nothing to cut. WouldBlock:
# the event loop's append hands over to a worker thread (an overwrite, which reads the record first).
REFUSALS = (ReadOnly, CookieMismatch, VolumeFull, WouldBlock)

_new_result = tuple.__new__  # a NamedTuple's own __new__ is Python code
_SMALLEST_MAX_SIZE = OffsetCodec(4).max_volume_size  # below it, no offset width's limit is near


class _Appending:
    """`with self._appending(blocking):` around an append (a class: cheaper than a generator;
    `write_needle`, the hot path, takes the same hold inline).
    Not blocking: WouldBlock instead of waiting for a thread or process that holds a lock."""

    __slots__ = ("_v", "_blocking")

    def __init__(self, v: "VolumeWrites", blocking: bool) -> None:
        self._v = v
        self._blocking = blocking

    def __enter__(self) -> None:
        v = self._v
        if not self._blocking and v._syncing:
            raise WouldBlock(f"volume {v.id} is being synced to disk")
        if not v._write_lock.acquire(blocking=self._blocking):
            raise WouldBlock(f"volume {v.id} is being written by another thread")
        try:
            v._check_open()
            v._begin_append(blocking=self._blocking)
        except BaseException:
            v._write_lock.release()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        v = self._v
        try:
            v._end_append(exc_type is None, refused=exc_type is not None and issubclass(exc_type, REFUSALS))
        finally:
            v._write_lock.release()


class VolumeWrites(VolumeReads):
    """The write half of `Volume` (it reads back: rewrites and deletes compare cookies)."""

    def _appending(self, blocking: bool = True) -> _Appending:
        return _Appending(self, blocking)

    def _check_writable(self) -> None:
        if not (self.no_write_or_delete or self.no_write_can_delete or self.disk_space_low()):
            return  # the common case, without building ReadOnlyReasons
        r = self.read_only_reasons()
        if r.read_only:
            why = "read only" if not r.disk_space_low or r.no_write_or_delete or r.no_write_can_delete else "read only (disk space low)"
            raise ReadOnly(f"volume {self.id} is {why}")

    def _next_append_ns(self) -> int:
        return max(self._clock_ns(), self.last_append_at_ns + 1)

    def write_needle(self, n: Needle, *, check_cookie: bool = True, fsync: bool = False,
                     blocking: bool = True) -> WriteResult:
        """Append a needle (Go's writeNeedle2/doWriteRequest).

        A needle without a TTL inherits the volume's. Rewriting an identical needle (same
        cookie, CRC and data; non-TTL volumes only) appends nothing. An existing id with a
        different cookie is refused, unless `check_cookie` is False and the cookie is 0 (then
        the stored cookie is adopted, as Go does for replicated batch deletes). With `blocking`
        off, WouldBlock instead of waiting for a lock (the event loop's fast path).
        """
        ttl = self.super_block.ttl
        if ttl is not EMPTY_TTL and ttl != EMPTY_TTL and (n.ttl is EMPTY_TTL or n.ttl == EMPTY_TTL):
            n = n.replace(flags=n.flags | FLAG_HAS_TTL, ttl=ttl)
        # the append's hold, as `_Appending` takes it, spelled out: every upload passes here
        if not blocking and self._syncing:
            raise WouldBlock(f"volume {self.id} is being synced to disk")
        lock = self._write_lock
        if not lock.acquire(blocking=blocking):
            raise WouldBlock(f"volume {self.id} is being written by another thread")
        try:
            if self._closed:
                raise VolumeClosed(f"volume {self.id} is closed")
            shared = self.shared
            if shared is not None:
                self._begin_append(blocking=blocking)
            ok = refused = False
            try:
                # checked once the append holds the volume: a shared volume has caught up with the
                # other processes' rows and read-only marks then (no separate `_follow` first)
                if self.no_write_or_delete or self.no_write_can_delete or self.disk_space_low():
                    self._check_writable()
                nv = self.nm.get(n.id)
                if nv is not None and not blocking:  # an overwrite reads the stored record first,
                    # which may come from the disk: a worker thread's job (the loop never waits on it)
                    raise WouldBlock(f"volume {self.id}: needle {n.id:x} is overwritten")
                unchanged = None if nv is None else self._unchanged(n, nv)
                if unchanged is None:
                    offset = self._append_needle(n, nv, check_cookie)
                end = self._dat_size
                ok = True
            except REFUSALS:
                refused = True
                raise
            finally:
                if shared is not None:
                    if ok:  # `_end_append`'s publish, inline: every upload passes here
                        shared.publish_and_unlock(end, self._idx_size, self.last_append_at_ns, self.last_modified_ts)
                    else:
                        self._end_append(False, refused=refused)
        finally:
            lock.release()
        if fsync:
            # an unchanged needle too: Go syncs the batch its request is part of, and the record
            # it points at may have been written without a sync
            self._sync_dat(end)
        if unchanged is not None:
            return unchanged
        return _new_result(WriteResult, (offset, len(n.data), False))  # the tuple's C `__new__`

    def _append_needle(self, n: Needle, nv: NeedleValue | None, check_cookie: bool) -> int:
        """Append `n` (the id's current entry `nv`) under the append's hold; its offset.

        `nv` was read under that hold, so it is still the id's entry: this thread holds the
        write lock, and on a shared volume the slot lock too, taken before `get` after the
        catch-up; no other process commits a row then, so a read's catch-up on another thread
        finds nothing to apply."""
        if nv is not None:
            existing = self._read_header_at(nv.offset * PADDING_SIZE)
            if n.cookie == 0 and not check_cookie:
                n = n.replace(cookie=existing.cookie)
            if existing.cookie != n.cookie:
                raise CookieMismatch(f"mismatching cookie {n.cookie:x}")
        append_at_ns = self._clock_ns()  # `_next_append_ns`, inline
        if append_at_ns <= self.last_append_at_ns:
            append_at_ns = self.last_append_at_ns + 1
        size, record = encode_appended(n, self.super_block.version, append_at_ns)
        offset = self._dat_size
        codec = self.codec
        limit = self.size_limit
        if n.data and (offset >= _SMALLEST_MAX_SIZE or (limit is not None and offset + len(record) > limit)):
            if offset >= codec.offsets.max_volume_size:
                raise VolumeFull(f"volume size {offset} exceeded {codec.offsets.max_volume_size}")
            if limit is not None and offset + len(record) > limit:
                raise VolumeFull(f"volume {self.id} would exceed its size limit of {limit} bytes")
        self._append_dat(record, offset)
        self.last_append_at_ns = append_at_ns
        if nv is None or nv.offset * PADDING_SIZE < offset:
            units = offset // PADDING_SIZE
            self._append_idx(codec.encode(n.id, units, size), undo_dat=offset)
            if nv is None:  # a new id that no one else can have added since `get` (see below)
                self.nm.put_absent(n.id, units, size)
            else:
                self.nm.put(n.id, units, size)
        if self.last_modified_ts < n.last_modified:
            self.last_modified_ts = n.last_modified
        return offset

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

    def _read_header_at(self, offset: int, blocking: bool = True) -> NeedleHeader:
        """Not `blocking` (the event loop, the volume held): from the page cache only."""
        head = self._pread(NEEDLE_HEADER_SIZE, offset) if blocking else self._pread_cached(NEEDLE_HEADER_SIZE, offset)
        if len(head) < NEEDLE_HEADER_SIZE:
            raise Corrupted(f"reading existing needle: volume {self.id} has no record at {offset}")
        return parse_header(head)

    def _append_dat(self, record: bytes, offset: int) -> None:
        try:
            written = self.files.pwrite(self._dat_fd, record, offset)
            if written != len(record):
                raise OSError(errno.EIO, f"short write: {written} of {len(record)} bytes")
        except OSError as exc:
            try:
                self.files.ftruncate(self._dat_fd, offset)
            except OSError:
                pass
            raise StorageError(f"append to volume {self.id} at {offset}: {exc}") from exc
        self._dat_size = offset + len(record)

    def _append_idx(self, row: bytes, undo_dat: int | None) -> None:
        """Write the row of the record just appended at `undo_dat`, before the map learns of it:
        a row that fails takes its record off `.dat` too, so the failed (unacknowledged) write
        is never served, not before a restart nor after. `undo_dat` None: a row with no record
        (a tiered volume's deletion)."""
        try:
            written = self.files.pwrite(self._idx_fd, row, self._idx_size)
            if written != len(row):
                raise OSError(errno.EIO, f"short write: {written} of {len(row)} bytes")
        except OSError as exc:
            try:  # no torn row left behind for the next append to build on
                self.files.ftruncate(self._idx_fd, self._idx_size)
            except OSError:
                pass
            if undo_dat is not None:
                try:
                    self.files.ftruncate(self._dat_fd, undo_dat)
                    self._dat_size = undo_dat
                except OSError:
                    pass
            raise StorageError(f"append to {self.idx_path}: {exc}") from exc
        self._idx_size += len(row)

    def sync_appended(self) -> None:
        """Make every append so far durable, as `write_needle(fsync=True)` does after its append
        (one group commit for all who wait): for an append made without `fsync` by a caller that
        syncs it apart, off the thread that appended (a worker thread waits for the disk, the
        event loop does the append)."""
        self._sync_dat(self._dat_size)

    def _sync_dat(self, upto: int) -> None:
        """fdatasync `.dat`, then `.idx`, once for every writer waiting on it (group commit):
        an acknowledged `fsync` write is on disk with its index row (Go syncs only `.dat`)."""
        with self._sync_lock:
            if self._synced_upto >= upto:
                return
            if self._sync_error is not None:  # never retried: the pages it lost may now look clean
                raise StorageError(f"fsync volume {self.id} failed earlier: {self._sync_error}")
            while True:
                # Until the sync is over the event loops append in a worker thread instead, this
                # process's and the others' (the slot's mark): on ext4 an append to a file waits
                # while the kernel writes the file's pages back (up to 60-130 ms at a time while
                # 1 GiB is synced, measured), a wait that on a loop would stall every connection.
                # The slot's mark is set and cleared through the same `shared` (this volume's slot
                # now), whatever the volume's slot is by the end.
                shared = self.shared
                with self._write_lock:  # an end no append is half-way past (its row written too)
                    if self._closed:  # unmounted or deleted since the append: not a disk's failure
                        raise StorageError(f"volume {self.id} is closed")
                    target, epoch = self._dat_size, self._files_epoch
                    dat_fd, idx_fd = self._dat_fd, self._idx_fd
                    if shared is not None:
                        shared.mark_sync(True)  # first: should it raise, `_syncing` is not left set
                    self._syncing = True
                try:
                    self.files.fdatasync(dat_fd)
                    self.files.fdatasync(idx_fd)
                except OSError as exc:
                    if exc.errno == errno.EBADF and (self._files_epoch != epoch or self._closed):
                        continue  # a descriptor was closed by a swap (sync the new files) or a close
                    self._sync_failed(exc)
                    raise StorageError(f"fsync volume {self.id}: {exc}") from exc
                finally:
                    with self._write_lock:
                        self._syncing = False
                        if shared is not None:
                            shared.mark_sync(False)
                if self._files_epoch == epoch and not self._closed:
                    self._synced_upto = target
                    return
                # a compaction commit swapped the files during the sync: `target` was the old
                # file's end and what was synced may be the old files; the new ones next (or a
                # close: its descriptors' numbers may have named other files by then)

    def _sync_failed(self, exc: OSError) -> None:
        """An fsync failed: what was written since the last good one may be lost although the
        page cache still serves it, and a later fsync could succeed over the lost pages. The
        volume turns read-only (at runtime, for every process serving it) and every later
        fsync fails, until an operator marks it writable."""
        self._sync_error = exc
        with self._write_lock:
            self._set_marks(True, self.no_write_can_delete)
            self.publish_flags()

    def delete_needle(self, needle_id: int, cookie: int | None = None, *, checksum: int | None = None,
                      blocking: bool = True) -> int:
        """Append a tombstone; returns the deleted record's Size (0 if nothing was live).

        With a cookie: the stored cookie must match, and the tombstone carries the deleted
        data's CRC (pass `checksum` when the needle was already read, to skip a second read).
        With `cookie=None` (skip-cookie batch deletes) the tombstone has cookie 0 and CRC 0.
        Raises NotFound for an expired needle, like Go's read-before-delete. Not `blocking`:
        WouldBlock instead of waiting for a lock.
        """
        self._follow(blocking)
        if self.no_write_or_delete:
            raise ReadOnly(f"volume {self.id} is read only")
        nv = self.nm.get(needle_id)
        if nv is None or nv.size < 0:
            return 0
        tomb_cookie, tomb_crc = 0, checksum or 0
        if cookie is not None:
            tomb_cookie = cookie
            if checksum is None and nv.size > 0:
                n = self.read_needle(needle_id, cookie, blocking=blocking)
                tomb_crc = n.checksum or 0
        with self._appending(blocking):
            nv2 = self.nm.get(needle_id)
            if nv2 is None or nv2.size < 0:
                return 0
            if cookie is not None:
                if nv2 != nv and nv2.size > 0:
                    tomb_crc = self.read_needle(needle_id, cookie, blocking=blocking).checksum or 0
                elif nv2.size > 0 or checksum is not None:
                    h = self._read_header_at(nv2.offset * PADDING_SIZE, blocking)
                    if h.cookie != cookie:
                        raise CookieMismatch(f"needle {needle_id:x} in volume {self.id}: cookie {cookie:08x} does not match")
            tomb = Needle(id=needle_id, cookie=tomb_cookie, checksum=tomb_crc, append_at_ns=self._next_append_ns())
            record = encode_needle(tomb, self.version)
            offset = self._dat_size
            self._append_dat(record, offset)
            self.last_append_at_ns = tomb.append_at_ns
            self._append_idx(self.codec.tombstone(needle_id, offset // PADDING_SIZE), undo_dat=offset)
            self.nm.delete(needle_id)
            return nv2.size

    def apply_tombstone(self, needle_id: int, cookie: int, checksum: int) -> int:
        """Replay a deletion read from another server's `.dat` (VolumeTailReceiver): append a
        tombstone carrying that record's cookie and CRC if the needle is live here. Returns the
        deleted record's Size, 0 when nothing was live (nothing appended)."""
        if self.no_write_or_delete:
            raise ReadOnly(f"volume {self.id} is read only")
        with self._appending():
            nv = self.nm.get(needle_id)
            if nv is None or nv.size < 0:
                return 0
            tomb = Needle(id=needle_id, cookie=cookie, checksum=checksum, append_at_ns=self._next_append_ns())
            offset = self._dat_size
            self._append_dat(encode_needle(tomb, self.version), offset)
            self.last_append_at_ns = tomb.append_at_ns
            self._append_idx(self.codec.tombstone(needle_id, offset // PADDING_SIZE), undo_dat=offset)
            self.nm.delete(needle_id)
            return nv.size

    def write_needle_blob(self, needle_id: int, blob: bytes, size: int) -> bool:
        """Append a raw record copied from another server (Go's WriteNeedleBlob).

        The v3 timestamp is replaced with a fresh one. Returns False when the identical
        needle is already stored (nothing appended).
        """
        self._follow()
        self._check_writable()
        # Go 4.48's checks, in its order: a blob must be exactly the record its size makes (a
        # longer one used to be cut to that length, so two replicas could hold different bytes)
        if size < 0:
            raise Corrupted(f"needle {needle_id} has invalid size {size}")
        if len(blob) < NEEDLE_HEADER_SIZE:
            raise Corrupted(f"needle {needle_id} blob of {len(blob)} bytes is shorter than a needle header")
        h = parse_header(blob)
        if h.size != size:
            raise Corrupted(f"needle {needle_id} size {size} does not match its blob header size {h.size}")
        need = actual_size(size, self.version)
        if len(blob) != need:
            raise Corrupted(f"needle {needle_id} blob of {len(blob)} bytes does not match the {need} bytes size {size} "
                            f"takes in a version {self.version} volume")
        with self._appending():
            if self.nm.file_bytes + len(blob) > self.codec.offsets.max_volume_size:
                raise VolumeFull(f"volume size limit {self.codec.offsets.max_volume_size} exceeded")
            nv = self.nm.get(needle_id)
            if nv is not None and nv.size == size:
                # Go compares the stored record as it reads it (an empty one included, no TTL
                # or id check) with the blob: same cookie, checksum and data write nothing
                try:
                    old = decode_needle(self._pread(need, nv.actual_offset), self.version, expected_size=size)
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
            self._append_idx(self.codec.encode(needle_id, offset // PADDING_SIZE, size), undo_dat=offset)
            self.nm.put(needle_id, offset // PADDING_SIZE, size)
        return True
