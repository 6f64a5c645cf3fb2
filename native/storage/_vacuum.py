"""Vacuum: compact a volume into `.cpd`/`.cpx`, then commit (swap them in) or clean up.

The steps and file formats are Go's (`weed/storage/volume_vacuum.go`, `CompactByIndex`):

- **compact**: remember the `.idx` size and compaction revision; write `.cpd` = the super block
  with revision + 1, then every live needle of the `.idx` snapshot in ascending key order,
  decoded and re-encoded (AppendAtNs kept, padding regenerated; a needle with a TTL flag whose
  `LastModified + volume TTL` has passed, and records that no longer parse, are dropped);
  `.cpx` = one row per copied needle, by key. Reads and writes go on meanwhile.
- **commit**, writers held off: `makeupDiff` replays the `.idx` rows appended since compaction
  began onto `.cpd`/`.cpx` (a put copies the raw record; anything else becomes a tombstone
  with cookie 0x12345678), refusing if the volume's revision moved; fsync; write the `.cpc`
  marker; rename `.cpd -> .dat`, `.cpx -> .idx`; drop `.ldb`/`.rdb`; remove `.cpc`; reload.
  A crash after the marker is rolled forward at the next start (`DiskLocation`).
- **cleanup** removes `.cpd .cpx .cpldb .cpc`, refused while `.cpc` exists.

Like Go, a compact or commit asked for while another runs does nothing and reports success.

Deliberate differences: a failed commit leaves the volume serving its old files (Go leaves it
closed until restart) and removes a `.cpc` it wrote; `makeupDiff` applies changed keys in
ascending key order (Go: map order) and writes all five offset bytes of a copied row (Go keeps
the old high byte); `.cpx` sizes are those of the records as re-encoded. The closing sanity
check (live bytes must fit in `.cpd`) is 4.48's: the live content of the snapshot compacted,
less the needles dropped as unreadable or past their TTL.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
from collections.abc import Callable, Iterator

from ._errors import Corrupted, StorageError
from ._fileio import FileOps
from ._fs import remove_path
from ._needle import Needle, decode_needle, encode_needle, record_size
from ._types import PADDING_SIZE, SUPER_BLOCK_SIZE, actual_size
from ._volume import Volume

__all__ = [
    "CompactResult",
    "compact_steps",
    "compact",
    "copy_in_process",
    "copy_live",
    "begin_compaction",
    "next_super_block",
    "ttl_seconds",
    "commit_compact",
    "cleanup_compact",
    "VacuumError",
    "FAKE_TOMBSTONE_COOKIE",
]

log = logging.getLogger("weedpy.storage")

FAKE_TOMBSTONE_COOKIE = 0x12345678  # Go's cookie for deletions replayed by makeupDiff
_WRITE_CHUNK = 1 << 20  # joined with the GIL held: a serving thread of the process waits that long


class VacuumError(StorageError):
    """A compaction or commit step failed; the message is Go's where Go has one."""


@dataclasses.dataclass(frozen=True, slots=True)
class CompactResult:
    ran: bool  # False: another compaction or commit of this volume was in progress
    copied: int = 0  # needles written to .cpd
    skipped: int = 0  # unreadable records dropped
    expired: int = 0  # TTL-expired needles dropped
    dat_size: int = 0  # bytes of .cpd


class _Throttle:
    """Go's WriteThrottler: at most `bytes_per_second`, checked every tenth of that."""

    def __init__(self, bytes_per_second: int) -> None:
        self.limit = bytes_per_second
        self.count = 0
        self.since = time.monotonic()

    def wrote(self, n: int) -> None:
        if self.limit <= 0:
            return
        self.count += n
        if self.count >= self.limit // 10:
            spent = time.monotonic() - self.since
            wanted = self.count / self.limit
            if wanted > spent:
                time.sleep(wanted - spent)
            self.count = 0
            self.since = time.monotonic()


def _live_entries(raw_idx: bytes, codec) -> dict[int, tuple[int, int]]:
    """Go's MemDb.LoadFromIdx: rows in order, last one wins; offset 0 or size < 0 deletes."""
    cols = codec.columns(raw_idx)
    live: dict[int, tuple[int, int]] = {}
    pop = live.pop
    for key, off, size, put in zip(cols.keys, cols.offsets, cols.sizes, cols.puts()):
        if put:
            live[key] = (off, size)
        else:
            pop(key, None)
    return live


def _free_bytes(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def compact_steps(
    v,
    *,
    preallocate: int = 0,
    bytes_per_second: int = 0,
    now_s: int | None = None,
    free_bytes: Callable[[str], int] = _free_bytes,
    copy: Callable[..., Iterator[int]] | None = None,
) -> Iterator[int]:
    """Compact `v` into `.cpd`/`.cpx`, yielding the source offset of each needle before copying
    it (Go's progress value). Closing the generator early abandons the compaction (the partial
    files stay until cleanup, as in Go). Returns a `CompactResult` (StopIteration.value).
    `copy(v, bytes_per_second, now_s)` does the copy (default: `copy_in_process`; the server's
    runs it in a child process, native/maintenance_child.py), under this function's checks and
    compaction lock."""
    dat_size, idx_size = v.dat_size, v.idx_size
    needed = max(preallocate, dat_size + idx_size)
    free = free_bytes(v.directory)
    if free < needed:
        raise VacuumError(
            f"insufficient free space for compaction: need {needed} bytes (volume: {dat_size}, "
            f"index: {idx_size}), but only {free} bytes available"
        )
    if not v.compaction_lock.acquire(blocking=False):
        log.info("volume %s is already compacting", v.id)
        return CompactResult(ran=False)
    try:
        return (yield from (copy or copy_in_process)(v, bytes_per_second, now_s))
    finally:
        v.compaction_lock.release()


def copy_in_process(v, bytes_per_second: int, now_s: int | None) -> Iterator[int]:
    """The compaction's copy in this process (`compact_steps`'s default `copy`)."""
    begin_compaction(v)
    raw_idx = os.pread(v._idx_fd, v.compact_idx_offset, 0)
    now = int(time.time()) if now_s is None else now_s
    return (yield from copy_live(
        v._pread, raw_idx, v.codec, v.version, next_super_block(v), ttl_seconds(v), now, bytes_per_second,
        v.files, v.file_name(".cpd"), v.file_name(".cpx"), volume_id=v.id))


def begin_compaction(v) -> None:
    """Go's compaction prelude: remember where the `.idx` ends (the rows the compacted copy is
    made of; the commit replays those after) and the revision, and sync."""
    v._follow()  # what other processes appended belongs to the compacted copy too
    with v._write_lock:  # (this view as it is: a catch-up that must reopen waits for this lock)
        v.compact_idx_offset = v._idx_size
        v.compact_revision = v.super_block.compaction_revision
    try:
        v.sync()
    except OSError as exc:
        log.info("compact: cannot sync volume %s: %s", v.id, exc)


def next_super_block(v):
    """The compacted copy's super block: the revision one up."""
    sb = v.super_block
    return dataclasses.replace(sb, compaction_revision=(sb.compaction_revision + 1) & 0xFFFF)


def ttl_seconds(v) -> int:
    """The volume TTL in whole minutes, as seconds (0: none; the closing size check applies)."""
    return v.super_block.ttl.minutes * 60


def copy_live(
    pread: Callable[[int, int], bytes], raw_idx: bytes, codec, version: int, new_sb, ttl_seconds: int, now: int,
    bytes_per_second: int, files: FileOps, cpd_path: str, cpx_path: str, *, volume_id: int,
) -> Iterator[int]:
    """The copy itself, from `pread` (the old `.dat`) and the `.idx` snapshot `raw_idx` into
    `.cpd`/`.cpx`, both fsynced; yields each needle's source offset before copying it. Needs
    no `Volume`: a compaction process runs it too (`_maintenance_child`)."""
    live = _live_entries(raw_idx, codec)
    del raw_idx
    throttle = _Throttle(bytes_per_second)
    rows: list[bytes] = []
    copied = skipped = expired = 0
    skipped_bytes = expired_bytes = 0
    fd = files.open(cpd_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        head = new_sb.encode()
        pending = [head]
        pending_len = len(head)
        new_offset = new_sb.block_size
        written = 0
        for key in sorted(live):
            off, size = live[key]
            offset = off * PADDING_SIZE
            yield offset
            length = actual_size(size, version)
            raw = pread(length, offset)
            try:
                if len(raw) < length:
                    raise Corrupted(f"record at {offset} cut short by the end of .dat")
                n = decode_needle(raw, version, expected_size=size)
            except Corrupted as exc:
                skipped += 1
                skipped_bytes += max(size, 0)
                log.warning("vacuum volume %s: dropping unreadable needle key=%d offset=%d size=%d: %s",
                            volume_id, key, offset, size, exc)
                continue
            if n.has_ttl and now >= n.last_modified + ttl_seconds:
                expired += 1
                expired_bytes += max(size, 0)
                continue
            record = encode_needle(n, new_sb.version)
            rows.append(codec.encode(n.id, new_offset // PADDING_SIZE, record_size(n, new_sb.version)))
            pending.append(record)
            pending_len += len(record)
            new_offset += len(record)
            copied += 1
            throttle.wrote(len(record))
            if pending_len >= _WRITE_CHUNK:
                written += _write_all(files, fd, b"".join(pending), written)
                pending, pending_len = [], 0
        if pending:
            written += _write_all(files, fd, b"".join(pending), written)
        files.fsync(fd)
        new_dat_size = os.fstat(fd).st_size
    finally:
        files.close(fd)
    if skipped:
        log.warning("vacuum volume %s: dropped %d unreadable index entries (%d data bytes) during compaction",
                    volume_id, skipped, skipped_bytes)
    if ttl_seconds == 0:
        # Go 4.48: the live content of the snapshot, less what was dropped (unreadable or past
        # its TTL), must have reached the new .dat (4.44 used the map's counters, which count a
        # TTL-dropped needle as content and so refused to compact a volume holding one)
        expected = sum(size for _, size in live.values() if size > 0) - skipped_bytes - expired_bytes
        if expected > new_dat_size:
            raise VacuumError(
                f"volume {volume_id} unexpected new data size: {new_dat_size} does not match expected live content "
                f"size {expected} from the pre-compaction snapshot"
            )
    rows_sorted = rows if _ascending_ids(rows) else sorted(rows, key=lambda r: r[:8])
    _write_file(files, cpx_path, b"".join(rows_sorted))
    return CompactResult(ran=True, copied=copied, skipped=skipped, expired=expired, dat_size=new_dat_size)


def _ascending_ids(rows: list[bytes]) -> bool:
    return all(rows[i][:8] <= rows[i + 1][:8] for i in range(len(rows) - 1))


def compact(v, *, progress: Callable[[int], bool] | None = None, **kwargs) -> CompactResult:
    """Run `compact_steps` to the end; `progress(offset)` returning False interrupts it."""
    steps = compact_steps(v, **kwargs)
    try:
        while True:
            offset = next(steps)
            if progress is not None and not progress(offset):
                raise VacuumError("interrupted")
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()


def _write_all(files: FileOps, fd: int, data: bytes, offset: int) -> int:
    view = memoryview(data)
    done = 0
    while done < len(view):
        n = files.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(errno.EIO, "short write")
        done += n
    return done


def _write_file(files: FileOps, path: str, data: bytes) -> None:
    fd = files.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(files, fd, data, 0)
        files.fsync(fd)
    finally:
        files.close(fd)


def _fsync_dir(files: FileOps, directory: str) -> None:
    try:
        files.fsync_dir(directory)
    except OSError as exc:
        raise VacuumError(f"sync dir {directory}: {exc}") from exc




# commit ------------------------------------------------------------------------------------


def commit_compact(v, *, clock_ns: Callable[[], int] = time.time_ns) -> bool:
    """Swap the compacted files in (Go's CommitCompact). False when a compaction of this
    volume is running (nothing done, as in Go); raises VacuumError when the commit fails."""
    if not v.compaction_lock.acquire(blocking=False):
        log.info("volume %s is already compacting", v.id)
        return False
    try:
        with v._write_lock, v.replacing_files():
            v._check_open()
            cpd, cpx, cpc = v.file_name(".cpd"), v.file_name(".cpx"), v.file_name(".cpc")
            try:
                _makeup_diff(v, cpd, cpx, clock_ns)
            except VacuumError:
                v.files.remove(cpd)
                v.files.remove(cpx)
                raise
            except (OSError, Corrupted) as exc:
                v.files.remove(cpd)
                v.files.remove(cpx)
                raise VacuumError(f"makeupDiff in CommitCompact volume {v.id} failed: {exc}") from exc
            _write_marker(v.files, cpc)
            if not (os.path.exists(cpd) and os.path.exists(cpx)):
                v.files.remove(cpc)
                raise VacuumError(f"volume {v.id} compact swap aborted: missing .cpd/.cpx")
            _swap(v, cpd, cpx, cpc)
            _reload(v)
        return True
    finally:
        v.compaction_lock.release()


def _makeup_diff(v, cpd: str, cpx: str, clock_ns: Callable[[], int]) -> None:
    es = v.codec.entry_size
    index_size = v.idx_size
    if index_size % es:
        raise VacuumError(f"verifyIndexFileIntegrity {v.idx_path} failed: index file's size is {index_size} bytes, maybe corrupted")
    since = v.compact_idx_offset
    if index_size == 0 or index_size <= since:
        return
    if since == 0:
        # Go walks the new rows backwards while the unsigned offset stays >= the start; from 0
        # it steps below the first row and fails (4.48 does this for a commit that no
        # compaction preceded, or one that began on an empty index)
        raise VacuumError(
            f"readIndexEntry {v.idx_path} at offset -{es} failed: offset -{es} for index file is invalid"
        )
    old_rev = int.from_bytes(v._pread_raw(SUPER_BLOCK_SIZE, 0)[4:6], "big")
    if old_rev != v.compact_revision:
        raise VacuumError(f"current old dat file's compact revision {old_rev} is not the expected one {v.compact_revision}")
    changed: dict[int, tuple[int, int]] = {}
    for e in v.codec.iter_entries(os.pread(v._idx_fd, index_size - since, since)):
        changed[e.key] = (e.offset, e.size)  # the last row of a key wins
    if not changed:
        return
    files = v.files
    try:
        dat = files.open(cpd, os.O_RDWR)
    except OSError as exc:
        raise VacuumError(f"open dat file {cpd} failed: open {cpd}: {exc.strerror.lower() if exc.strerror else exc}") from exc
    try:
        try:
            idx = files.open(cpx, os.O_RDWR)
        except OSError as exc:
            raise VacuumError(f"open idx file {cpx} failed: open {cpx}: {exc.strerror.lower() if exc.strerror else exc}") from exc
        try:
            new_rev = int.from_bytes(os.pread(dat, SUPER_BLOCK_SIZE, 0)[4:6], "big")
            if (old_rev + 1) & 0xFFFF != new_rev:
                raise VacuumError(
                    f"oldDatFile {v.dat_path} 's compact revision is {old_rev} while newDatFile {cpd} 's "
                    f"compact revision is {new_rev}"
                )
            end = os.fstat(dat).st_size
            idx_end = os.fstat(idx).st_size
            version = v.version
            for key in sorted(changed):
                off, size = changed[key]
                if end % PADDING_SIZE:
                    end += PADDING_SIZE - end % PADDING_SIZE
                if off != 0 and size > 0:
                    length = actual_size(size, version)
                    blob = v._pread_raw(length, off * PADDING_SIZE)
                    if len(blob) < length:
                        raise VacuumError(
                            f"ReadNeedleBlob {v.dat_path} key {key} offset {off * PADDING_SIZE} size {size} failed: EOF"
                        )
                    row = v.codec.encode(key, end // PADDING_SIZE, size)
                else:
                    blob = encode_needle(Needle(id=key, cookie=FAKE_TOMBSTONE_COOKIE, append_at_ns=clock_ns()), version)
                    row = v.codec.encode(key, end // PADDING_SIZE, size)
                end += _write_all(files, dat, blob, end)
                idx_end += _write_all(files, idx, row, idx_end)
            files.fsync(dat)
        finally:
            try:
                files.fsync(idx)
            finally:
                files.close(idx)
    finally:
        files.close(dat)


def _write_marker(files: FileOps, cpc: str) -> None:
    try:
        fd = files.open(cpc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise VacuumError(f"create commit marker {cpc}: {exc}") from exc
    try:
        files.fsync(fd)
    except OSError as exc:
        raise VacuumError(f"sync commit marker {cpc}: {exc}") from exc
    finally:
        files.close(fd)
    _fsync_dir(files, os.path.dirname(cpc))


def _swap(v, cpd: str, cpx: str, cpc: str) -> None:
    """Go's finishCompactSwap: the two renames, directory fsyncs, stale maps, marker last."""
    files = v.files
    try:
        files.replace(cpd, v.dat_path)
    except OSError as exc:
        raise VacuumError(f"rename {cpd}: {exc}") from exc
    try:
        files.replace(cpx, v.idx_path)
    except OSError as exc:
        raise VacuumError(f"rename {cpx}: {exc}") from exc
    _fsync_dir(files, v.directory)
    if v.idx_directory != v.directory:
        _fsync_dir(files, v.idx_directory)
    remove_path(v.file_name(".ldb"))
    remove_path(v.file_name(".rdb"))
    files.remove(cpc)
    _fsync_dir(files, os.path.dirname(cpc))


def _reload(v) -> None:
    try:
        new = Volume.load(
            v.directory, v.id, collection=v.collection, idx_directory=v.idx_directory,
            offset_bytes=v.offset_bytes, clock_ns=v._clock_ns, map_policy=v.map_policy,
            read_only_marks=(v.no_write_or_delete, v.no_write_can_delete), repair=False, files=v.files,
        )
    except (StorageError, OSError) as exc:
        # the swapped files do not load: stop writes to the old (now unlinked) ones
        v.no_write_or_delete = True
        raise VacuumError(f"volume {v.id}: reloading the compacted files failed: {exc}") from exc
    if not new.nm.sorted_semantics:
        # Go's commit keeps the map it built while compacting (DoOffsetLoading over the new
        # .idx), which counts every row as a file, deletions included; a fresh load (a later
        # mount) counts only the puts. A read-only volume gets the read-only map either way.
        with open(v.idx_path, "rb") as f:
            puts = v.codec.columns(f.read()).puts()
        new.nm.file_count += len(puts) - sum(puts)
    v._adopt(new)


# cleanup -----------------------------------------------------------------------------------


def cleanup_compact(v) -> None:
    """Go's cleanupCompact: remove the compaction files unless a commit marker is present."""
    with v._write_lock:
        if os.path.exists(v.file_name(".cpc")):
            raise VacuumError(f"volume {v.id}: refusing cleanup while commit marker present")
        for ext in (".cpd", ".cpx", ".cpldb", ".cpc"):
            try:
                remove_path(v.file_name(ext))
            except OSError as exc:
                raise VacuumError(str(exc)) from exc
