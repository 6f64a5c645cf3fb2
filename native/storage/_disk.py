"""Disk locations: one `-dir` each, with its volume limit, disk type and free-space floor."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._errors import InvalidFileId, OffsetWidthMismatch, StorageError, VolumeNotFound
from ._fs import remove_path
from ._map_types import MapPolicy
from ._names import ALL_VOLUME_EXTS, parse_volume_base, volume_base_name, volume_from_file_name
from ._shared import NO_WRITE_CAN_DELETE, NO_WRITE_OR_DELETE, VolumeTable
from ._types import DEFAULT_OFFSET_BYTES, SUPER_BLOCK_SIZE, normalize_disk_type
from ._vif import VolumeInfo, load_volume_info, width_mismatch
from .tier import BackendRegistry

if TYPE_CHECKING:
    from ._volume import Volume

__all__ = ["MinFreeSpace", "parse_min_free_spaces", "DiskStatus", "disk_status", "DiskLocation"]

log = logging.getLogger("weedpy.storage")

_SIZE_UNITS = {
    "b": 1, "": 1,
    "kib": 1 << 10, "ki": 1 << 10, "kb": 1000, "k": 1000,
    "mib": 1 << 20, "mi": 1 << 20, "mb": 1000**2, "m": 1000**2,
    "gib": 1 << 30, "gi": 1 << 30, "gb": 1000**3, "g": 1000**3,
    "tib": 1 << 40, "ti": 1 << 40, "tb": 1000**4, "t": 1000**4,
    "pib": 1 << 50, "pi": 1 << 50, "pb": 1000**5, "p": 1000**5,
    "eib": 1 << 60, "ei": 1 << 60, "eb": 1000**6, "e": 1000**6,
}
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|[iI]nf(inity)?|[nN]a[nN])\Z")


def _parse_bytes(text: str) -> int:
    """Go's util.ParseBytes: digits (with `.` and `,`), then an SI or IEC unit."""
    i = 0
    while i < len(text) and (text[i].isdigit() or text[i] in ".,"):
        i += 1
    num = text[:i].replace(",", "")
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"invalid size {text!r}") from None
    unit = text[i:].strip().lower()
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unhandled size name: {unit}")
    value *= _SIZE_UNITS[unit]
    if value >= 2**64:
        raise ValueError(f"too large: {text}")
    return int(value)


@dataclasses.dataclass(frozen=True, slots=True)
class MinFreeSpace:
    """`-minFreeSpace`: a percentage (value <= 100) or an absolute size like `10GiB`."""

    percent: float | None = None
    bytes: int | None = None
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> "MinFreeSpace":
        s = text.strip()
        if _FLOAT.match(s):
            p = float(s)
            if not 0 <= p <= 100:
                raise ValueError(f"minFreeSpace {text!r} is invalid")
            return cls(percent=p, raw=s)
        try:
            b = _parse_bytes(s)
        except ValueError:
            raise ValueError(f"minFreeSpace {text!r} is invalid") from None
        if b <= 100:
            raise ValueError(f"minFreeSpace {text!r} is invalid")
        return cls(bytes=b, raw=s)

    def is_low(self, free_bytes: int, percent_free: float) -> bool:
        if self.percent is not None:
            return percent_free < self.percent
        return free_bytes < (self.bytes or 0)

    def available(self, free_bytes: int, total_bytes: int) -> int:
        floor = int(total_bytes * self.percent / 100) if self.percent is not None else (self.bytes or 0)
        return max(0, free_bytes - floor)


def parse_min_free_spaces(min_free_space: str, min_free_space_percent: str, n_dirs: int) -> list[MinFreeSpace]:
    """Go's MustParseMinFreeSpace: `-minFreeSpace` wins over the deprecated percent flag; one
    value applies to every directory."""
    text = min_free_space or min_free_space_percent
    values = [MinFreeSpace.parse(part) for part in text.split(",")]
    if len(values) == 1 and n_dirs > 1:
        values = values * n_dirs
    if len(values) != n_dirs:
        raise ValueError(f"{n_dirs} directories by -dir, but {len(values)} minFreeSpace values")
    return values


@dataclasses.dataclass(frozen=True, slots=True)
class DiskStatus:
    """statfs of a directory as Go reports it in `/status` (free = blocks available to users)."""

    dir: str
    all: int
    used: int
    free: int
    percent_free: float
    percent_used: float
    disk_type: str = ""


def disk_status(directory: str, disk_type: str = "") -> DiskStatus:
    st = os.statvfs(directory)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - free
    pf = free / total * 100 if total else 0.0
    pu = used / total * 100 if total else 0.0
    return DiskStatus(directory, total, used, free, pf, pu, disk_type)


@dataclasses.dataclass(frozen=True, slots=True)
class _Found:
    """A volume discovered on disk, not loaded yet."""

    base: str
    collection: str
    vid: int
    tiered: bool


def _dir_uuid(directory: str) -> str:
    path = os.path.join(directory, "vol_dir.uuid")
    try:
        with open(path) as f:
            text = f.read()
        if text:
            return text
    except FileNotFoundError:
        pass
    import uuid  # only for a directory seen the first time (uuid loads platform: start-up time)

    value = str(uuid.uuid4())
    with open(path, "w") as f:
        f.write(value)
    return value


class DiskLocation:
    """One data directory (plus an optional separate index directory) and its volumes."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_volume_count: int = 8,
        idx_directory: str | os.PathLike[str] | None = None,
        disk_type: str = "",
        tags: tuple[str, ...] = (),
        min_free_space: MinFreeSpace | None = None,
        offset_bytes: int = DEFAULT_OFFSET_BYTES,
        statfs: Callable[[str], DiskStatus] | None = None,
        clock_ns: Callable[[], int] | None = None,
        map_policy: MapPolicy | None = None,
    ) -> None:
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        self.idx_directory = (
            os.path.abspath(os.path.expanduser(os.fspath(idx_directory))) if idx_directory else self.directory
        )
        os.makedirs(self.directory, exist_ok=True)
        if self.idx_directory != self.directory:
            os.makedirs(self.idx_directory, exist_ok=True)
        self.uuid = _dir_uuid(self.directory)
        self.disk_type = normalize_disk_type(disk_type)
        self.tags = tuple(tags)
        self.max_volume_count = max_volume_count
        self.original_max_volume_count = max_volume_count
        self.min_free_space = min_free_space or MinFreeSpace(percent=1.0, raw="1")
        self.offset_bytes = offset_bytes
        self.is_disk_space_low = False
        self.available_space = 0
        self.load_errors: dict[str, str] = {}
        self._statfs = statfs or (lambda d: disk_status(d, self.disk_type))
        self._clock_ns = clock_ns
        self.map_policy = map_policy or MapPolicy()
        self._volumes: dict[int, Volume] = {}
        self._pending: dict[int, _Found] = {}  # discovered, not loaded yet
        self._inflight: dict[int, threading.Event] = {}  # being loaded, set when done
        self._lock = threading.RLock()
        self.tier_backends = BackendRegistry()  # the Store shares one across its locations
        # Set when other processes serve these volumes too (`Store.share`): the leader assigns
        # each mounted volume a slot of this table and frees it when the volume goes; a worker
        # follows the slots and never removes or repairs a file itself.
        self.table: VolumeTable | None = None
        self.leader = True

    # queries -----------------------------------------------------------------------------------

    def find_volume(self, vid: int, *, blocking: bool = True) -> Volume | None:
        """Lock-free (one dict lookup: `_lock` only orders the changes), so the event loop calls
        it directly; `blocking` is for the lookups that may load (mixed mode's follower)."""
        v = self._volumes.get(vid)
        if v is not None and v.shared is not None and not v.shared.holds(vid):
            return None  # the leader removed it; this process's view goes at the next sync
        return v

    def volumes(self) -> list[Volume]:
        with self._lock:
            vols = [self._volumes[k] for k in sorted(self._volumes)]
        # as find_volume: a volume the leader removed is not listed while this process still holds it
        return [v for v in vols if v.shared is None or v.shared.vid == v.id]

    def held_volumes(self) -> list[Volume]:
        """Every volume this process has open, ones the leader removed since included."""
        with self._lock:
            return list(self._volumes.values())

    def volume_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._volumes)

    def __len__(self) -> int:
        with self._lock:
            return len(self._volumes)

    def has_free_slot(self) -> bool:
        """Go's hasFreeDiskLocation: not low on space, and under the volume limit (0 = none)."""
        if self.is_disk_space_low:
            return False
        return self.max_volume_count == 0 or len(self) < self.max_volume_count

    # disk space --------------------------------------------------------------------------------

    def check_disk_space(self) -> DiskStatus:
        """statfs the directory and update the low-space flag (Go does this every minute)."""
        s = self._statfs(self.directory)
        self.available_space = self.min_free_space.available(s.free, s.all)
        low = self.min_free_space.is_low(s.free, s.percent_free)
        if low != self.is_disk_space_low:
            log.warning("disk %s free space is %s", self.directory, "low: volumes are read-only" if low else "back to normal")
        self.is_disk_space_low = low
        return s

    def status(self) -> DiskStatus:
        return self._statfs(self.directory)

    # loading -----------------------------------------------------------------------------------

    def _volume_bases(self) -> list[str]:
        seen: dict[str, None] = {}
        for directory in dict.fromkeys((self.directory, self.idx_directory)):
            try:
                names = sorted(os.listdir(directory))
            except FileNotFoundError:
                continue
            for name in names:
                if volume_from_file_name(name) is not None and not os.path.isdir(os.path.join(directory, name)):
                    seen.setdefault(name[:-4], None)
        return list(seen)

    def load_existing_volumes(self) -> list[Volume]:
        """Discover volumes by their `.idx`/`.vif` files and load them (Go's startup scan).

        A volume that fails to load is skipped and its error kept in `load_errors`; an offset
        width mismatch is raised, since Go refuses to start on one too.
        """
        return [v for v in map(self.ensure_loaded, self.discover()) if v is not None]

    def discover(self) -> list[int]:
        """The startup scan without the loading: finish or roll back interrupted compactions,
        drop unfinished volumes (`.note`), and list the volumes to load (`ensure_loaded`).
        Only small files are read, so a `.vif` offset width this store cannot use is raised
        here, before anything is served (Go exits on it)."""
        self._reconcile_compactions()
        found = []
        for base in self._volume_bases():
            f = self._find(base)
            if f is None:
                continue
            with self._lock:
                if f.vid in self._volumes or f.vid in self._pending or f.vid in self._inflight:
                    continue
                self._pending[f.vid] = f
            found.append(f.vid)
        return found

    def pending_ids(self) -> list[int]:
        """Volumes discovered and not loaded yet (being loaded included)."""
        with self._lock:
            return sorted(set(self._pending) | set(self._inflight))

    def ensure_loaded(self, vid: int) -> Volume | None:
        """The volume, loaded now if it was discovered and not loaded yet; a load another
        thread is doing is waited for. None when it is not here or does not load."""
        with self._lock:
            v = self._volumes.get(vid)
            if v is not None:
                return v
            done = self._inflight.get(vid)
            if done is None:
                f = self._pending.pop(vid, None)
                if f is None:
                    return None
                mine = self._inflight[vid] = threading.Event()
        if done is not None:
            done.wait()
            return self.find_volume(vid)
        try:
            return self._open_found(f)
        finally:
            with self._lock:
                del self._inflight[vid]
            mine.set()

    def _load_base(self, base: str, *, skip_ec: bool = True) -> Volume | None:
        f = self._find(base, skip_ec=skip_ec)
        if f is None:
            return None
        with self._lock:
            if f.vid not in self._volumes and f.vid not in self._inflight:
                self._pending[f.vid] = f
        return self.ensure_loaded(f.vid)

    def _find(self, base: str, *, skip_ec: bool = True) -> _Found | None:
        """The cheap part of loading a volume: which volume, and whether to load it."""
        try:
            collection, vid = parse_volume_base(base)
        except InvalidFileId:
            return None
        if self.leader and self._empty_ec_stub(base):  # (a worker removes nothing: the leader decides)
            # Go 4.48 (removeEmptyEcDatStub): an empty .dat whose .vif records an EC encode is a
            # leftover of an EC volume, not a volume: its .dat and .idx go (a mount then finds
            # nothing, as Go's does after VolumeConfigure remounts such a volume)
            log.warning("removing leftover empty .dat stub for EC volume %s", base)
            remove_path(os.path.join(self.directory, base + ".dat"))
            remove_path(os.path.join(self.idx_directory, base + ".idx"))
            return None
        if skip_ec and self._exists(base, ".ecx"):  # startup: the EC copy wins (Go); a mount loads it
            self.load_errors[base] = "an .ecx is present: an erasure-coded volume (served by Store.ec)"
            return None
        note = os.path.join(self.directory, base + ".note")
        if self.leader and os.path.exists(note):
            log.warning("volume %s was not completed; removing its files", base)
            self._remove_files(base)
            return None
        vif_path = os.path.join(self.directory, base + ".vif")
        info = _read_vif(vif_path)
        tiered = info is not None and info.has_remote_file
        if not tiered and not os.path.exists(os.path.join(self.directory, base + ".dat")):
            return None  # a lone .vif/.idx
        if info is not None:
            mismatch = width_mismatch(vid, vif_path, info.bytes_offset, self.offset_bytes)
            if mismatch is not None:
                raise mismatch
        return _Found(base, collection, vid, tiered)

    def _empty_ec_stub(self, base: str) -> bool:
        try:
            if os.path.getsize(os.path.join(self.directory, base + ".dat")) > SUPER_BLOCK_SIZE:
                return False
        except OSError:
            return False
        for d in dict.fromkeys((self.directory, self.idx_directory)):
            info = _read_vif(os.path.join(d, base + ".vif"))
            if info is not None and info.ec_shard_config is not None:
                return True
        return False

    def _open_found(self, f: _Found) -> Volume | None:
        """The heavy part: open the files and build the needle map."""
        from ._volume import Volume  # the volume code loads with the first volume, in a loading thread (start-up time)
        from .tier import TieredVolume  # likewise

        try:
            if f.tiered:  # the .dat lives in remote storage (see native/storage/tier)
                v = TieredVolume.open(
                    self.directory, f.vid, backends=self.tier_backends, collection=f.collection,
                    idx_directory=self.idx_directory, offset_bytes=self.offset_bytes, clock_ns=self._clock_ns,
                )
            else:
                v = Volume.load(
                    self.directory, f.vid, collection=f.collection, idx_directory=self.idx_directory,
                    offset_bytes=self.offset_bytes, clock_ns=self._clock_ns, map_policy=self.map_policy,
                    repair=self.leader,  # a worker changes no file: the leader loaded (and repaired) it first
                )
        except OffsetWidthMismatch:
            raise
        except (StorageError, OSError, ValueError) as exc:
            self.load_errors[f.base] = str(exc)
            log.warning("cannot load volume %s in %s: %s", f.base, self.directory, exc)
            return None
        self.attach(v)
        return v

    def _exists(self, base: str, ext: str) -> bool:
        return any(os.path.exists(os.path.join(d, base + ext)) for d in (self.directory, self.idx_directory))

    def _remove_files(self, base: str) -> None:
        for directory in dict.fromkeys((self.directory, self.idx_directory)):
            for ext in ALL_VOLUME_EXTS:
                try:
                    os.remove(os.path.join(directory, base + ext))
                except (FileNotFoundError, IsADirectoryError):
                    pass

    def _reconcile_compactions(self) -> None:
        """Finish (marker `.cpc` present) or roll back (absent) an interrupted compaction."""
        bases: set[str] = set()
        for directory in dict.fromkeys((self.directory, self.idx_directory)):
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                if name.endswith((".cpc", ".cpd", ".cpx")):
                    bases.add(name[:-4])
        for base in bases:
            try:
                _, vid = parse_volume_base(base)
            except InvalidFileId:
                continue
            if self.find_volume(vid) is not None:
                continue  # a live compaction, not a crash leftover
            cpc = os.path.join(self.directory, base + ".cpc")
            cpd = os.path.join(self.directory, base + ".cpd")
            cpx = os.path.join(self.idx_directory, base + ".cpx")
            if os.path.exists(cpc):
                if os.path.exists(cpd):
                    os.replace(cpd, os.path.join(self.directory, base + ".dat"))
                if os.path.exists(cpx):
                    os.replace(cpx, os.path.join(self.idx_directory, base + ".idx"))
                for ext in (".ldb", ".rdb"):
                    remove_path(os.path.join(self.idx_directory, base + ext))
                remove_path(cpc)
            else:
                for p in (cpd, cpx):
                    remove_path(p)

    # membership --------------------------------------------------------------------------------

    def attach(self, v: Volume) -> None:
        v.disk_space_low = lambda: self.is_disk_space_low
        if self.table is not None:
            self._share(v)
        with self._lock:
            self._volumes[v.id] = v

    def _share(self, v: Volume) -> None:
        table = self.table
        assert table is not None
        if self.leader:
            slot = table.assign(
                v.id, dat_end=v.dat_size, idx_end=v.idx_size, last_append_ns=v.last_append_at_ns,
                last_modified=v.last_modified_ts,
                flags=(NO_WRITE_OR_DELETE if v.no_write_or_delete else 0) | (NO_WRITE_CAN_DELETE if v.no_write_can_delete else 0),
            )
        else:
            slot = table.find(v.id)
            if slot is None:
                raise VolumeNotFound(f"volume {v.id} is not mounted by this server's leader")

        def reopen() -> Volume:
            from ._volume import Volume  # loaded already (v is one)

            # the location's index directory, as a mount's load: the `.idx` may have moved since
            # this view found it (VolumeConsolidateIndex); one next to the `.dat` still wins
            return Volume.load(v.directory, v.id, collection=v.collection, idx_directory=self.idx_directory,
                               offset_bytes=self.offset_bytes, clock_ns=self._clock_ns, map_policy=self.map_policy,
                               repair=False, files=v.files)

        v.share(slot, reopen, self.idx_directory)

    def _unshare(self, vid: int) -> None:
        if self.table is not None and self.leader:
            self.table.free(vid)

    def create_volume(self, vid: int, **kwargs: object) -> Volume:
        from ._volume import Volume  # the volume code loads with the first volume (start-up time)

        v = Volume.create(
            self.directory, vid, idx_directory=self.idx_directory, offset_bytes=self.offset_bytes,
            clock_ns=self._clock_ns, map_policy=self.map_policy, **kwargs,  # type: ignore[arg-type]
        )
        self.attach(v)
        return v

    def locate_volume(self, vid: int) -> str | None:
        """The base name of an unmounted volume's files in this directory, if any."""
        for base in self._volume_bases():
            try:
                _, found = parse_volume_base(base)
            except InvalidFileId:
                continue
            if found == vid:
                return base
        return None

    def load_volume(self, vid: int) -> Volume | None:
        base = self.locate_volume(vid)
        if base is None:
            return None
        return self._load_base(base, skip_ec=False)

    def unload_volume(self, vid: int) -> bool:
        with self._lock:
            v = self._volumes.pop(vid, None)
        if v is None:
            return False
        self._unshare(vid)
        v.close()
        return True

    def reload_volume(self, vid: int) -> None:
        """A worker's: open the volume's files again as a new object and put it in the old one's
        place (the old one closes once its readers are done)."""
        old = self.find_volume(vid)
        base = self.locate_volume(vid)
        f = self._find(base, skip_ec=False) if base is not None else None
        if f is None or self._open_found(f) is None:
            self.forget_volume(vid)
            return
        if old is not None:
            old.close()

    def forget_volume(self, vid: int) -> None:
        """A worker's: close its view of a volume the leader removed or replaced (files untouched)."""
        with self._lock:
            v = self._volumes.pop(vid, None)
        if v is not None:
            v.close()

    def delete_volume(self, vid: int, *, only_empty: bool = False) -> None:
        with self._lock:
            v = self._volumes.get(vid)
            if v is None:
                raise VolumeNotFound(f"volume {vid} not found")
            if only_empty and not v.is_empty():
                raise StorageError("volume not empty")
            if not v.compaction_lock.acquire(blocking=False):  # Go's Destroy refuses as well
                raise StorageError(f"volume {vid} is compacting")
            del self._volumes[vid]
        self._unshare(vid)
        try:
            v.destroy()
        finally:
            v.compaction_lock.release()

    def delete_collection(self, collection: str) -> list[Volume]:
        with self._lock:
            doomed = [v for v in self._volumes.values() if v.collection == collection]
            for v in doomed:
                del self._volumes[v.id]
        for v in doomed:
            self._unshare(v.id)
            v.destroy()
        return doomed

    def close(self) -> None:
        with self._lock:
            vols = list(self._volumes.values())
            self._volumes.clear()
        for v in vols:
            v.close()

    def base_name(self, collection: str, vid: int) -> str:
        return volume_base_name(collection, vid)


def _read_vif(vif_path: str) -> VolumeInfo | None:
    """A volume's `.vif` when it reads (an unreadable one is the volume loader's to report)."""
    try:
        return load_volume_info(vif_path)
    except (OSError, ValueError):
        return None
