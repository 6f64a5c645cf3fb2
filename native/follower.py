"""A read-only view of data directories that another process (mixed mode's Go backend) writes.

Mixed mode keeps one writer per volume: the Go backend owns every `.dat`, `.idx`, `.vif` and
`state.pb`, and native handlers only read. `FollowerStore` offers the read half of
`native.storage.Store` over the same directories and sees Go's writes this way:

- a volume is opened with `Volume.load(read_only_view=True)`: read-only descriptors, nothing
  written, not even a missing `.vif`;
- on every lookup the volume's files are stat'ed (`.dat` and `.idx` inode and size, `.vif`
  mtime and size); when any of them changed (an append, a delete, a compaction's rename, a
  persisted read-only mark) the volume is loaded again and swapped in, so a reader always
  sees a state Go had written out, at most one request old;
- volumes that appear or vanish (allocate, delete, unmount, mount) are found by listing the
  directory: on every full listing (`volumes()`) and on every lookup miss (a listing costs
  well under a millisecond; a miss in the read path costs a master lookup anyway).

What Go holds only in memory (read-only marks it did not persist, the kind of needle map it
loaded and the counters that follow from it, the volume info it read at its last load, the
volumes it unmounted while their files stay) the gateway tells the view: mixed mode passes every
call Go answered that changes it to `FollowerStore.go_state` (native/go_state.py), and views are
built to match (the map as Go loaded it, plus the rows appended since as runtime changes). Still
not seen: Go's low-disk-space flag. Writes are refused (`ReadOnly`): the route table never sends
them here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from native.go_state import GoStateBook, VolumeFiles
from native.storage import (
    DEFAULT_OFFSET_BYTES,
    DiskStatus,
    IdxCodec,
    InvalidFileId,
    MinFreeSpace,
    ReadOnly,
    StorageError,
    Volume,
    VolumeLookup,
    WouldBlock,
    disk_status,
    normalize_disk_type,
    parse_min_free_spaces,
    parse_volume_base,
    load_volume_info,
)

__all__ = ["FollowerStore", "FollowerLocation", "RESCAN_SECONDS"]

log = logging.getLogger("weedpy.follower")

RESCAN_SECONDS = 0.0  # a miss lists the directory again at most this often (0: every miss)
RETIRE_SECONDS = 5.0  # a replaced view stays open this long for readers that still hold it
RETIRE_MAX = 16  # ... unless this many newer ones are waiting (bounds memory under write load)
_SKIP_MARKERS = (".note", ".cpc")  # a volume Go is removing or committing a compaction of


def _stat_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class _Entry:
    __slots__ = ("volume", "key")

    def __init__(self, volume: Volume, key: tuple) -> None:
        self.volume = volume
        self.key = key


class FollowerLocation:
    """One `-dir` as the owner lays it out; the DiskLocation attributes handlers read."""

    def __init__(
        self, directory: str, *, idx_directory: str | None = None, disk_type: str = "", max_volume_count: int = 8,
        tags: tuple[str, ...] = (), min_free_space: MinFreeSpace | None = None, offset_bytes: int = 5,
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.idx_directory = os.path.abspath(idx_directory) if idx_directory else self.directory
        self.disk_type = normalize_disk_type(disk_type)
        self.max_volume_count = self.original_max_volume_count = max_volume_count
        self.tags = tuple(tags)
        self.min_free_space = min_free_space or MinFreeSpace(percent=1.0, raw="1")
        self.offset_bytes = offset_bytes
        self._entries: dict[int, _Entry] = {}
        self._bases: dict[int, tuple[str, str]] = {}  # vid -> (collection, base name)
        self._scanned_at = -1e9
        self._retired: list[tuple[float, Volume]] = []
        self._lock = threading.RLock()
        self.go_state: GoStateBook | None = None  # set by FollowerStore

    # -- what DiskLocation offers -------------------------------------------------------------

    @property
    def uuid(self) -> str:
        try:
            with open(os.path.join(self.directory, "vol_dir.uuid")) as f:
                return f.read()
        except OSError:
            return ""

    @property
    def is_disk_space_low(self) -> bool:
        try:
            s = self.status()
        except OSError:
            return False
        return self.min_free_space.is_low(s.free, s.percent_free)

    def status(self) -> DiskStatus:
        return disk_status(self.directory, self.disk_type)

    def __len__(self) -> int:
        return len(self.volumes())

    def volume_ids(self) -> list[int]:
        return [v.id for v in self.volumes()]

    def volume_ids_on_disk(self) -> list[int]:
        with self._lock:
            self._scan()
            return sorted(self._bases)

    def volumes(self) -> list[Volume]:
        if self.go_state is not None:
            self.go_state.settle()  # before the lock: following a call takes it
        with self._lock:
            self._scan()
            out = []
            for vid in sorted(self._bases):
                if self.go_state is not None and self.go_state.unmounted(vid):
                    continue
                v = self._fresh(vid)
                if v is not None:
                    out.append(v)
            return out

    def find_volume(self, vid: int, *, blocking: bool = True) -> Volume | None:
        """Not `blocking` (the event loop): the view when it is current, else WouldBlock (a
        directory listing or a reload of the volume, O(needles), is a worker thread's job; so is
        waiting for another thread that holds the location doing one, or for a call Go answered
        that changes the volume to be followed)."""
        book = self.go_state
        if book is not None and book.settling(vid):
            if not blocking:
                raise WouldBlock(f"volume {vid}: following a call Go answered")
            book.settle(vid)  # before the lock: following the call takes it
        if not self._lock.acquire(blocking=blocking):
            raise WouldBlock(f"volume {vid}: another thread is loading this location's views")
        try:
            if vid not in self._bases and time.monotonic() - self._scanned_at >= RESCAN_SECONDS:
                if not blocking:
                    raise WouldBlock(f"volume {vid}: the directory must be listed again")
                self._scan()
            if vid not in self._bases:
                return None
            return self._fresh(vid, blocking=blocking)
        finally:
            self._lock.release()

    def files_of(self, vid: int) -> VolumeFiles | None:
        """What the files of `vid` say now (for the Go state book)."""
        with self._lock:
            if vid not in self._bases:
                self._scan()
            found = self._bases.get(vid)
        if found is None:
            return None
        base = found[1]
        idx = os.path.join(self.idx_directory, base + ".idx")
        if not os.path.exists(idx):
            idx = os.path.join(self.directory, base + ".idx")
        try:
            info = load_volume_info(os.path.join(self.directory, base + ".vif"))
        except (OSError, ValueError):
            info = None
        try:
            with open(idx, "rb") as f:
                raw = f.read()
        except OSError:
            return None
        codec = IdxCodec.for_width((info.bytes_offset if info is not None else 0) or self.offset_bytes)
        puts = codec.columns(raw).puts() if raw else b""
        return VolumeFiles(len(raw), info, len(puts) - sum(puts))

    def forget(self, vid: int) -> None:
        """Drop the view of `vid`: what Go holds for it changed."""
        with self._lock:
            self._drop(vid)

    def close(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            retired, self._retired = self._retired, []
        for e in entries:
            e.volume.close()
        for _, v in retired:
            v.close()

    # -- following ------------------------------------------------------------------------------

    def _scan(self) -> None:
        bases: dict[int, tuple[str, str]] = {}
        names: set[str] = set()
        for d in dict.fromkeys((self.directory, self.idx_directory)):
            try:
                names.update(os.listdir(d))
            except FileNotFoundError:
                continue
        for name in names:
            if not name.endswith(".idx"):
                continue
            base = name[:-4]
            if any(base + m in names for m in _SKIP_MARKERS) or base + ".dat" not in names:
                continue
            try:
                collection, vid = parse_volume_base(base)
            except InvalidFileId:
                continue
            bases[vid] = (collection, base)
        for gone in set(self._entries) - set(bases):
            self._drop(gone)
        self._bases = bases
        self._scanned_at = time.monotonic()

    def _key(self, base: str) -> tuple:
        return (
            _stat_key(os.path.join(self.directory, base + ".dat")),
            _stat_key(os.path.join(self.idx_directory, base + ".idx"))
            or _stat_key(os.path.join(self.directory, base + ".idx")),
            _stat_key(os.path.join(self.directory, base + ".vif")),
        )

    def _fresh(self, vid: int, *, blocking: bool = True) -> Volume | None:
        if self.go_state is not None and self.go_state.unmounted(vid):
            return None  # Go unmounted it; its files may stay
        collection, base = self._bases[vid]
        key = self._key(base)
        entry = self._entries.get(vid)
        if entry is not None and entry.key == key and not entry.volume.closed:
            return entry.volume
        if not blocking:
            raise WouldBlock(f"volume {vid} changed on disk: its view must be loaded again")
        if key[0] is None or key[1] is None:
            self._drop(vid)
            self._bases.pop(vid, None)
            return None
        try:
            v = Volume.load(
                self.directory, vid, collection=collection, idx_directory=self.idx_directory,
                offset_bytes=None, default_offset_bytes=self.offset_bytes, read_only_view=True,
            )
        except (StorageError, OSError, ValueError) as exc:
            # mid-write (a torn tail, a file being created): keep the last good view if any
            log.debug("volume %s not loadable right now: %s", vid, exc)
            return entry.volume if entry is not None and not entry.volume.closed else None
        v.disk_space_low = lambda: self.is_disk_space_low
        state = self.go_state.state(vid) if self.go_state is not None else None
        if state is not None:
            self._as_go_holds_it(v, state)
        self._entries[vid] = _Entry(v, key)
        if entry is not None:
            self._retire(entry.volume)
        return v

    @staticmethod
    def _as_go_holds_it(v: Volume, state) -> None:
        """The view as Go holds the volume in memory (see native/go_state.py)."""
        v.rebuild_map_as_loaded(state.loaded_idx_bytes, sorted_semantics=state.sorted_map, extra_files=state.extra_files)
        v.no_write_or_delete, v.no_write_can_delete = state.no_write_or_delete, state.no_write_can_delete
        if state.info is not None:
            v.info = state.info.replace(version=v.info.version, bytes_offset=v.info.bytes_offset)

    def _drop(self, vid: int) -> None:
        entry = self._entries.pop(vid, None)
        if entry is not None:
            self._retire(entry.volume)

    def _retire(self, v: Volume) -> None:
        """Close replaced views only later: a request may have looked one up a moment ago."""
        now = time.monotonic()
        self._retired.append((now, v))
        while self._retired and (now - self._retired[0][0] > RETIRE_SECONDS or len(self._retired) > RETIRE_MAX):
            self._retired.pop(0)[1].close()


class _NoEcVolumes:
    """The view's erasure-coded volumes: none. Go serves those (a read the view cannot find goes
    on as for a volume this server does not hold: proxied, redirected or 404 by -readMode)."""

    def has(self, vid: int) -> bool:
        return False

    def find_volume(self, vid: int) -> None:
        return None


class FollowerStore(VolumeLookup):
    """The reading half of `native.storage.Store` over directories another process owns."""

    def __init__(self, locations: Sequence[FollowerLocation], *, offset_bytes: int = 5) -> None:
        self.locations = list(locations)
        self.ec = _NoEcVolumes()
        self.offset_bytes = offset_bytes
        self.volume_size_limit = 0
        # what Go holds in memory, from the calls mixed mode sees it answer; the volumes Go loads
        # at start-up are as their files say now
        self.go_state = GoStateBook(self._files_of)
        for loc in self.locations:
            loc.go_state = self.go_state
        self.go_state.remember_startup([v for loc in self.locations for v in loc.volume_ids_on_disk()])

    def _files_of(self, vid: int) -> VolumeFiles | None:
        for loc in self.locations:
            files = loc.files_of(vid)
            if files is not None:
                return files
        return None

    def go_answering(self, method: str, request: bytes) -> list[int]:
        """Go answered `method` successfully (cheap, on the event loop): the volumes it changes
        wait for `go_answered(..., settling=...)` before they are served again."""
        return self.go_state.begin(method, request)

    def go_answered(self, method: str, request: bytes, response: bytes | None, *, settling: list[int] = ()) -> None:
        """Go answered `method` successfully: follow what it changed in Go's memory (blocking: it
        reads the volume's files; `settling`, what `go_answering` returned, is released after)."""
        try:
            for vid in self.go_state.observe(method, request, response):
                for loc in self.locations:
                    loc.forget(vid)
        finally:
            self.go_state.end(list(settling))

    def expired_volumes(self, now_s: int | None = None) -> list[int]:
        return []  # the owner expires volumes

    def check_disk_space(self) -> None:
        pass

    # reads ------------------------------------------------------------------------------------

    def read_needle(self, vid: int, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False):
        return self.volume(vid).read_needle(needle_id, cookie, read_deleted=read_deleted)

    def read_needle_meta(self, vid: int, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False):
        return self.volume(vid).read_needle_meta(needle_id, cookie, read_deleted=read_deleted)

    def open_needle_stream(self, vid: int, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False):
        return self.volume(vid).open_needle_stream(needle_id, cookie, read_deleted=read_deleted)

    # writes are the owner's -------------------------------------------------------------------

    def _refuse(self, *_a, **_k):
        raise ReadOnly("the volume files belong to the Go backend in mixed mode")

    write_needle = delete_needle = allocate_volume = mount_volume = unmount_volume = _refuse
    delete_volume = delete_collection = mark_volume_readonly = mark_volume_writable = configure_volume = _refuse

    def close(self) -> None:
        for loc in self.locations:
            loc.close()

    @classmethod
    def for_config(cls, cfg) -> "FollowerStore":
        """The locations `weed volume -dir -max -disk -tags -minFreeSpace -dir.idx` describes."""
        n = len(cfg.dirs)
        frees = parse_min_free_spaces(cfg["minFreeSpace"], cfg["minFreeSpacePercent"], n)
        disks = cfg["disk"].split(",") if cfg["disk"] else [""]
        if len(disks) == 1:
            disks = disks * n
        tags = cfg.folder_tags()
        width = cfg["offsetBytes"] or DEFAULT_OFFSET_BYTES
        locs = [
            FollowerLocation(
                d, idx_directory=cfg["dir.idx"] or None, disk_type=disks[i] if i < len(disks) else "",
                max_volume_count=cfg.max_counts[i], tags=tags[i], min_free_space=frees[i], offset_bytes=width,
            )
            for i, d in enumerate(cfg.dirs)
        ]
        return cls(locs, offset_bytes=width)
