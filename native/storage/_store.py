"""The store: every disk location of a volume server, and the operations handlers call."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Protocol

from ._disk import DiskLocation, DiskStatus, MinFreeSpace
from ._errors import BEFORE_WRITING, NoFreeLocation, OffsetWidthMismatch, ReadOnly, StorageError, VolumeExists, VolumeNotFound
from ._shared import VolumeTable
from ._map_types import MapPolicy
from ._memory import bound_heap_retention, release_free_memory
from ._replica import ReplicaPlacement
from ._ttl import TTL
from .ec import EcStore
from ._types import CURRENT_VERSION, DEFAULT_OFFSET_BYTES, normalize_disk_type
from ._vif import VolumeInfo, load_volume_info, save_volume_info
from .tier import BackendRegistry

if TYPE_CHECKING:
    from ._needle import Needle
    from ._stream import NeedleStream
    from ._volume import Volume, VolumeStats, WriteResult

__all__ = ["Store"]

log = logging.getLogger("weedpy.storage")

MAX_TTL_VOLUME_REMOVAL_DELAY = 10  # minutes
LOAD_THREADS = 4  # volumes loaded at once: file reads, numpy and CRCs release the GIL


class _Location(Protocol):
    def find_volume(self, vid: int, *, blocking: bool = True) -> Volume | None: ...
    def volumes(self) -> list[Volume]: ...
    def status(self) -> DiskStatus: ...


class VolumeLookup:
    """Finding volumes across the data directories; shared by `Store` and mixed mode's follower."""

    locations: Sequence[_Location]

    def find_volume(self, vid: int, *, blocking: bool = True) -> Volume | None:
        """Not `blocking` (the event loop): WouldBlock where finding it would wait or load (a
        follower's view that must be loaded again); a store's own lookups never do."""
        for loc in self.locations:
            v = loc.find_volume(vid, blocking=blocking)
            if v is not None:
                return v
        return None

    def volume(self, vid: int) -> Volume:
        v = self.find_volume(vid)
        if v is None:
            raise VolumeNotFound(f"volume {vid} not found")
        return v

    def has_volume(self, vid: int) -> bool:
        return self.find_volume(vid) is not None

    def location_of(self, vid: int) -> tuple[int, _Location] | None:
        """(disk id, location) holding the volume."""
        for i, loc in enumerate(self.locations):
            if loc.find_volume(vid) is not None:
                return i, loc
        return None

    def volumes(self) -> list[Volume]:
        return sorted((v for loc in self.locations for v in loc.volumes()), key=lambda v: v.id)

    def volume_stats(self) -> list[VolumeStats]:
        return [v.stats() for v in self.volumes()]

    def disk_statuses(self) -> list[DiskStatus]:
        return [loc.status() for loc in self.locations]

    def max_file_key(self) -> int:
        return max((v.counters().max_file_key for v in self.volumes()), default=0)


class Store(VolumeLookup):
    """Volumes across several directories. Thread-safe; blocking (run it in worker threads)."""

    def __init__(self, locations: Sequence[DiskLocation], *, offset_bytes: int = DEFAULT_OFFSET_BYTES) -> None:
        if not locations:
            raise ValueError("a store needs at least one disk location")
        self.locations = list(locations)
        self.offset_bytes = offset_bytes
        self.volume_size_limit = 0  # learned from the master; 0 = unknown
        self.ec = EcStore(self.locations, offset_bytes=offset_bytes)  # erasure-coded shards
        self.tier_backends = BackendRegistry()  # remote storage for tiered volumes, from the master
        for loc in self.locations:
            loc.tier_backends = self.tier_backends

    @classmethod
    def open(
        cls,
        dirs: Sequence[str | os.PathLike[str]],
        *,
        max_counts: Sequence[int] | int = 8,
        idx_directory: str | os.PathLike[str] | None = None,
        disk_types: Sequence[str] | str = "",
        tags: Sequence[Sequence[str]] = (),
        min_free_spaces: Sequence[MinFreeSpace] | MinFreeSpace | None = None,
        offset_bytes: int = DEFAULT_OFFSET_BYTES,
        load: bool = True,
        statfs: Callable[[str], DiskStatus] | None = None,
        clock_ns: Callable[[], int] | None = None,
        map_policy: MapPolicy | None = None,
    ) -> "Store":
        """Build the locations the way `weed volume -dir -max -disk -minFreeSpace` does (one
        value applies to every directory) and load the existing volumes (with `load=False`,
        `discover` and `load_pending` do it later)."""
        n = len(dirs)
        counts = _per_dir(max_counts, n, "-max")
        types = _per_dir(disk_types.split(",") if isinstance(disk_types, str) else list(disk_types), n, "-disk")
        frees = _per_dir(min_free_spaces if min_free_spaces is not None else MinFreeSpace(percent=1.0, raw="1"), n, "-minFreeSpace")
        locations = [
            DiskLocation(
                d, max_volume_count=counts[i], idx_directory=idx_directory, disk_type=types[i],
                tags=tuple(tags[i]) if i < len(tags) else (), min_free_space=frees[i],
                offset_bytes=offset_bytes, statfs=statfs, clock_ns=clock_ns, map_policy=map_policy,
            )
            for i, d in enumerate(dirs)
        ]
        store = cls(locations, offset_bytes=offset_bytes)
        if load:
            try:
                store.load()
            except BaseException:
                store.close()  # do not leak the volumes loaded before the failure
                raise
        return store

    def load(self) -> None:
        """Discover and load every existing volume (blocking until all are loaded)."""
        self.discover()
        self.load_pending()

    def discover(self) -> list[int]:
        """Go's startup scan without the loading (`DiskLocation.discover`), and the EC shards;
        raises OffsetWidthMismatch before anything is loaded. Returns the volumes to load."""
        found = []
        for loc in self.locations:
            loc.check_disk_space()
            found.extend(loc.discover())
        self.ec.load()
        return sorted(found)

    @property
    def loading(self) -> bool:
        """Discovered volumes are still loading (they are not served or reported yet)."""
        return any(loc.pending_ids() for loc in self.locations)

    def load_pending(
        self, *, threads: int = LOAD_THREADS, on_loaded: Callable[[Volume], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Load the discovered volumes, `threads` at a time, taking the locations in turn (as
        Go loads every directory at once). `on_loaded` is called, in the caller's thread, after
        each volume is loaded and mounted; once `should_stop()` is true the volumes not started
        yet are left. A volume something else needs first (a mount, an allocate, a delete of
        it) is loaded by that call instead (`_settle`). An OffsetWidthMismatch is raised after
        the other volumes are loaded."""
        queues = [[(loc, vid) for vid in loc.pending_ids()] for loc in self.locations]
        order = [job for turn in _in_turns(queues) for job in turn]
        if not order:
            return
        bound_heap_retention()  # the maps' temporaries must not stay resident (see _memory)

        def load(loc: DiskLocation, vid: int) -> Volume | None:
            return None if should_stop() else loc.ensure_loaded(vid)

        failure: OffsetWidthMismatch | None = None
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(order))), thread_name_prefix="volume-load") as pool:
            for fut in as_completed([pool.submit(load, loc, vid) for loc, vid in order]):
                try:
                    v = fut.result()
                except OffsetWidthMismatch as exc:
                    failure = failure or exc
                    continue
                if v is not None and on_loaded is not None:
                    on_loaded(v)
        release_free_memory()
        for loc in self.locations:
            for v in loc.volumes():
                others = [o for o in self.locations if o is not loc and o.find_volume(v.id) is not None]
                if others:
                    log.warning("volume %s is on %s and %s", v.id, loc.directory, others[0].directory)
        if failure is not None:
            raise failure

    def _settle(self, vid: int) -> None:
        """Load `vid` now if it is still waiting to be loaded, so that a change to it (mount,
        allocate, unmount, delete, marks) sees the volume the files hold."""
        for loc in self.locations:
            loc.ensure_loaded(vid)

    # lookup ------------------------------------------------------------------------------------

    # volume lifecycle --------------------------------------------------------------------------

    def allocate_volume(
        self,
        vid: int,
        *,
        collection: str = "",
        replication: str | ReplicaPlacement = "",
        ttl: str | TTL = "",
        disk_type: str = "",
        version: int = CURRENT_VERSION,
    ) -> Volume:
        """Create a volume on the location of that disk type holding the fewest volumes."""
        self._settle(vid)
        if self.find_volume(vid) is not None:
            raise VolumeExists(f"Volume Id {vid} already exists!")
        rp = ReplicaPlacement.parse(replication) if isinstance(replication, str) else replication
        t = TTL.parse(ttl) if isinstance(ttl, str) else ttl
        dt = normalize_disk_type(disk_type)
        candidates = [loc for loc in self.locations if loc.disk_type == dt and loc.has_free_slot()]
        if not candidates:
            raise NoFreeLocation("No more free space left")
        loc = min(candidates, key=len)
        return loc.create_volume(vid, collection=collection, replica_placement=rp, ttl=t, version=version)

    def mount_volume(self, vid: int) -> Volume:
        self._settle(vid)
        v = self.find_volume(vid)
        if v is not None:
            return v
        for loc in self.locations:
            v = loc.load_volume(vid)
            if v is not None:
                return v
        raise VolumeNotFound(f"volume {vid} not found on disk")

    def unmount_volume(self, vid: int) -> bool:
        """Close every mounted copy; False when none was mounted (not an error, as in Go)."""
        self._settle(vid)
        found = False
        for loc in self.locations:
            found = loc.unload_volume(vid) or found
        return found

    def delete_volume(self, vid: int, *, only_empty: bool = False) -> None:
        self._settle(vid)
        deleted = False
        for loc in self.locations:
            if loc.find_volume(vid) is not None:
                loc.delete_volume(vid, only_empty=only_empty)
                deleted = True
        if not deleted:
            raise VolumeNotFound(f"delete volume {vid} not found on disk")

    def delete_collection(self, collection: str) -> list[int]:
        for loc in self.locations:
            for vid in loc.pending_ids():
                self._settle(vid)
        gone: list[int] = []
        for loc in self.locations:
            gone.extend(v.id for v in loc.delete_collection(collection))
        return sorted(gone)

    def mark_volume_readonly(self, vid: int, *, can_delete: bool = False, persist: bool = False) -> None:
        self._settle(vid)
        self.volume(vid).mark_readonly(can_delete=can_delete, persist=persist)

    def mark_volume_writable(self, vid: int) -> None:
        self._settle(vid)
        self.volume(vid).mark_writable()

    def configure_volume(self, vid: int, replication: str) -> None:
        """Write the replication into the volume's `.vif` (mounted or not; applies on mount),
        as given: Go keeps the text ("" or "9" stay so; the placement they mean is "000", "009")."""
        ReplicaPlacement.parse(replication)
        self._settle(vid)
        v = self.find_volume(vid)
        if v is not None:
            v.set_replication(replication)
            return
        for loc in self.locations:
            base = loc.locate_volume(vid)
            if base is None:
                continue
            path = os.path.join(loc.directory, base + ".vif")
            info = load_volume_info(path) or VolumeInfo()
            save_volume_info(path, info.replace(replication=replication))
            return
        raise VolumeNotFound(f"volume {vid} not found on disk")

    def check_disk_space(self) -> None:
        for loc in self.locations:
            loc.check_disk_space()

    def expired_volumes(self, now_s: int | None = None) -> list[int]:
        """TTL volumes past their TTL plus the removal delay (Go deletes these on heartbeat)."""
        out = []
        for v in self.volumes():
            if v.expired(self.volume_size_limit, now_s) and v.expired_long_enough(MAX_TTL_VOLUME_REMOVAL_DELAY, now_s):
                out.append(v.id)
        return out

    def close(self) -> None:
        self.ec.close()
        for loc in self.locations:
            loc.close()

    # several processes -------------------------------------------------------------------------

    def share(self, table: VolumeTable, *, leader: bool) -> None:
        """Serve these volumes together with the server's other processes (see `_shared.py`).
        The leader publishes every volume it mounts in `table`; a worker (opened with
        `load=False`) then follows the table with `sync_shared`."""
        for loc in self.locations:
            loc.table = table
            loc.leader = leader
            if leader:
                for v in loc.volumes():
                    loc.attach(v)
        self.ec.table, self.ec.leader = table, leader
        if leader:
            with self.ec._lock:
                self.ec._publish()

    def sync_shared(self) -> None:
        """A worker's view made the leader's: volumes it mounted since are loaded, volumes it
        removed are closed (never deleted: the files are the leader's), volumes whose files it
        replaced are loaded again, and the erasure-coded shards are rescanned."""
        table = self.locations[0].table
        assert table is not None and not self.locations[0].leader
        wanted = table.vids()
        for loc in self.locations:
            for v in loc.held_volumes():
                slot = wanted.get(v.id)
                if slot is None or slot.index != v.shared.index:
                    loc.forget_volume(v.id)
                elif slot.generation != v._shared_gen:
                    try:
                        v._follow()  # reopened in place: readers never find it missing
                    except StorageError:  # another kind of volume now (tiered): a new one replaces it
                        loc.reload_volume(v.id)
        for vid in wanted:
            if self.find_volume(vid) is None:
                for loc in self.locations:
                    if loc.load_volume(vid) is not None:
                        break
        self.ec.follow_table()

    # vacuum ------------------------------------------------------------------------------------

    def _volume_for(self, vid: int, doing: str) -> Volume:
        v = self.find_volume(vid)
        if v is None:
            raise VolumeNotFound(f"volume id {vid} is not found during {doing}")
        return v

    def check_compact_volume(self, vid: int) -> float:
        """The garbage ratio (Go's CheckCompactVolume)."""
        return self._volume_for(vid, "check compact").garbage_level()

    def compact_volume(self, vid: int, *, preallocate: int = 0, bytes_per_second: int = 0, copy=None) -> Iterator[int]:
        """Compaction as a generator of progress offsets (see `_vacuum.compact_steps`, and its
        `copy`)."""
        from ._vacuum import compact_steps  # compaction code loads with the first compaction (start-up time)

        return compact_steps(self._volume_for(vid, "compact"), preallocate=preallocate,
                             bytes_per_second=bytes_per_second, copy=copy)

    def commit_compact_volume(self, vid: int) -> tuple[bool, int]:
        """(was read-only, `.dat` size after): Go's CommitCompactVolume."""
        from ._vacuum import commit_compact  # compaction code loads with the first compaction (start-up time)

        v = self._volume_for(vid, "commit compact")
        read_only = v.read_only
        commit_compact(v)
        return read_only, v.dat_size

    def cleanup_compact_volume(self, vid: int) -> None:
        from ._vacuum import cleanup_compact  # compaction code loads with the first compaction (start-up time)

        cleanup_compact(self._volume_for(vid, "cleaning up"))

    # needles -----------------------------------------------------------------------------------

    def write_needle(self, vid: int, needle: Needle, *, check_cookie: bool = True, fsync: bool = False,
                     blocking: bool = True, volume: Volume | None = None) -> WriteResult:
        """Append to volume `vid` (`volume`: the one the caller already found for it). A volume
        unmounted, removed or replaced (a tier move) while the append waited for it refuses
        before it writes anything (BEFORE_WRITING); the store then answers as it would have, from
        the volume it holds now (Go's volume is one object whose files change under it). Any
        other error is the answer: the append may have written (an I/O error, a sync that failed
        or met the close after the record was appended: a retry would find it and answer
        "unchanged", or on a TTL volume append it twice), and Go tries an append once."""
        v = volume if volume is not None else self.find_volume(vid, blocking=blocking)
        if v is not None:
            try:
                return v.write_needle(needle, check_cookie=check_cookie, fsync=fsync, blocking=blocking)
            except BEFORE_WRITING:
                if self.find_volume(vid, blocking=blocking) is v:
                    raise
            v = self.find_volume(vid, blocking=blocking)
        if v is None:
            raise VolumeNotFound(f"volume {vid} not found")
        return v.write_needle(needle, check_cookie=check_cookie, fsync=fsync, blocking=blocking)

    def read_needle(self, vid: int, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> Needle:
        return self.volume(vid).read_needle(needle_id, cookie, read_deleted=read_deleted)

    def read_needle_meta(self, vid: int, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> tuple[Needle, int]:
        return self.volume(vid).read_needle_meta(needle_id, cookie, read_deleted=read_deleted)

    def open_needle_stream(self, vid: int, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> NeedleStream:
        return self.volume(vid).open_needle_stream(needle_id, cookie, read_deleted=read_deleted)

    def delete_needle(self, vid: int, needle_id: int, cookie: int | None = None, *, checksum: int | None = None,
                      blocking: bool = True) -> int:
        v = self.volume(vid)
        if v.no_write_or_delete:
            raise ReadOnly(f"volume {vid} is read only")
        return v.delete_needle(needle_id, cookie, checksum=checksum, blocking=blocking)

    def __repr__(self) -> str:
        return f"<Store {[loc.directory for loc in self.locations]}>"


def _in_turns(queues: list[list]) -> Iterator[list]:
    """The queues' items in turns: the first of each, then the second of each, ..."""
    for i in range(max(map(len, queues), default=0)):
        yield [q[i] for q in queues if i < len(q)]


def _per_dir(value: object, n: int, flag: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) == 1 and n > 1:
        values = values * n
    if len(values) != n:
        raise StorageError(f"{n} directories by -dir, but {len(values)} values for {flag}")
    return values
