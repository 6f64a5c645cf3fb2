"""EC volumes across the store's disk locations (Go's store_ec.go and disk_location_ec.go).

One `EcVolume` per (location, volume id) holding the shards mounted from that location. A vid
can have shards on several locations of one server, each location with its own EcVolume (as
in Go); reads use the first one with the index and any local shard wherever it is.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import StorageError
from .._names import parse_volume_base, volume_base_name
from .._shared import VolumeTable
from ._shards import DATA_SHARDS, MAX_SHARDS, shard_ext

if TYPE_CHECKING:
    from ._volume import EcShard, EcVolume

__all__ = ["EcStore", "EcMountError", "SHARD_FILE"]

log = logging.getLogger("weedpy.storage.ec")

SHARD_FILE = re.compile(r"^(.+)\.ec(\d\d)$")


class EcMountError(StorageError):
    pass


class EcStore:
    def __init__(self, locations: Sequence, *, offset_bytes: int) -> None:
        self.locations = list(locations)
        self.offset_bytes = offset_bytes
        self._vols: list[dict[int, EcVolume]] = [{} for _ in self.locations]
        self._lock = threading.RLock()
        # Set when other processes serve this server too (`Store.share`): the leader publishes
        # which shards it mounts where after every change; a worker mounts exactly those.
        self.table: VolumeTable | None = None
        self.leader = True

    # discovery -------------------------------------------------------------------------------

    def _dirs(self, loc) -> list[str]:
        return list(dict.fromkeys((loc.directory, loc.idx_directory)))

    def has_ecx(self, loc, collection: str, vid: int) -> bool:
        base = volume_base_name(collection, vid)
        return any(os.path.isfile(os.path.join(d, base + ".ecx")) for d in self._dirs(loc))

    def _ecx_owner(self, collection: str, vid: int) -> str | None:
        """The directory of a non-empty `.ecx` for the volume, on any location."""
        base = volume_base_name(collection, vid)
        for loc in self.locations:
            for d in self._dirs(loc):
                p = os.path.join(d, base + ".ecx")
                if os.path.isfile(p) and os.path.getsize(p) > 0:
                    return d
        return None

    def load(self) -> None:
        """Mount every non-empty shard file whose volume has an `.ecx` (Go's loadAllEcShards)."""
        for disk_id, loc in enumerate(self.locations):
            groups: dict[tuple[str, int], list[int]] = {}
            try:
                names = sorted(os.listdir(loc.directory))
            except FileNotFoundError:
                continue
            for name in names:
                m = SHARD_FILE.match(name)
                if not m:
                    continue
                try:
                    collection, vid = parse_volume_base(m.group(1))
                except StorageError:
                    continue
                sid = int(m.group(2))
                path = os.path.join(loc.directory, name)
                if sid >= MAX_SHARDS or not os.path.isfile(path) or os.path.getsize(path) == 0:
                    continue
                groups.setdefault((collection, vid), []).append(sid)
            for (collection, vid), sids in sorted(groups.items(), key=lambda kv: kv[0][1]):
                if not self.has_ecx(loc, collection, vid) and self._ecx_owner(collection, vid) is None:
                    continue
                for sid in sids:
                    try:
                        self._load_shard(disk_id, collection, vid, sid)
                    except (OSError, StorageError, ValueError) as exc:
                        log.warning("cannot load ec shard %d.%d in %s: %s", vid, sid, loc.directory, exc)
                        loc.load_errors[volume_base_name(collection, vid) + shard_ext(sid)] = str(exc)

    def _load_shard(self, disk_id: int, collection: str, vid: int, sid: int, idx_dir: str | None = None) -> EcVolume:
        from ._volume import EcShard, EcVolume  # erasure coding loads with the first shard (start-up time)

        loc = self.locations[disk_id]
        shard = EcShard(loc.directory, collection, vid, sid, loc.disk_type)
        try:
            with self._lock:
                ev = self._vols[disk_id].get(vid)
                if ev is None:
                    idx = idx_dir or loc.idx_directory
                    if not self.has_ecx(loc, collection, vid):
                        idx = idx_dir or self._ecx_owner(collection, vid) or loc.idx_directory
                    ev = EcVolume(loc.directory, idx, collection, vid, offset_bytes=self.offset_bytes,
                                  disk_type=loc.disk_type, create_journal=self.leader)
                    self._vols[disk_id][vid] = ev
                if not ev.add_shard(shard):
                    shard.close()
                self._publish()
                return ev
        except BaseException:
            shard.close()
            raise

    def _publish(self) -> None:
        """The leader's mounts, for its workers (with `_lock` held)."""
        if self.table is not None and self.leader:
            self.table.publish_ec({
                (disk_id, vid): sum(1 << s for s in ev.shard_ids())
                for disk_id, vols in enumerate(self._vols) for vid, ev in vols.items()
            })

    def follow_table(self) -> None:
        """A worker's mounts made the leader's: the same shards of the same volumes on the same
        locations (nothing is created: the leader made every file)."""
        assert self.table is not None and not self.leader
        wanted = self.table.ec_shards()
        with self._lock:
            for disk_id, vols in enumerate(self._vols):
                for vid, ev in list(vols.items()):
                    mask = wanted.get((disk_id, vid), 0)
                    for sid in ev.shard_ids():
                        if not mask >> sid & 1:
                            ev.remove_shard(sid)
                    if not ev.shard_ids():
                        ev.close()
                        del vols[vid]
        for (disk_id, vid), mask in wanted.items():
            loc = self.locations[disk_id]
            have = self._vols[disk_id].get(vid)
            for sid in range(MAX_SHARDS):
                if mask >> sid & 1 and (have is None or have.shard(sid) is None):
                    collection = self._collection_of(loc, vid, sid)
                    if collection is not None:
                        have = self._load_shard(disk_id, collection, vid, sid)

    def _collection_of(self, loc, vid: int, sid: int) -> str | None:
        """The collection a shard file of `vid` in `loc` is named with."""
        suffix = shard_ext(sid)
        try:
            names = os.listdir(loc.directory)
        except FileNotFoundError:
            return None
        for name in names:
            if name.endswith(suffix):
                try:
                    collection, found = parse_volume_base(name[:-len(suffix)])
                except StorageError:
                    continue
                if found == vid:
                    return collection
        return None

    # mount / unmount -------------------------------------------------------------------------

    def mount_shard(self, collection: str, vid: int, sid: int, source_disk_type: str = "") -> tuple[int, EcVolume]:
        """Go's MountEcShards: the first location holding `<base>.ecNN`, with the `.ecx` from
        this location or any sibling. Raises EcMountError with Go's texts."""
        owner = self._ecx_owner(collection, vid)
        base = volume_base_name(collection, vid)
        failures = []
        for disk_id, loc in enumerate(self.locations):
            if not os.path.exists(os.path.join(loc.directory, base + shard_ext(sid))):
                continue
            idx = None if self.has_ecx(loc, collection, vid) else owner
            if idx is None and not self.has_ecx(loc, collection, vid):
                continue
            try:
                ev = self._load_shard(disk_id, collection, vid, sid, idx)
            except FileNotFoundError:
                continue
            except (OSError, StorageError, ValueError) as exc:
                failures.append(f"{loc.directory}: {exc}")
                continue
            if source_disk_type:
                ev.disk_type = source_disk_type if source_disk_type != "hdd" else ""
                for s in ev.shard_list():
                    s.disk_type = ev.disk_type
            return disk_id, ev
        if failures:
            raise EcMountError(f"MountEcShards {vid}.{sid} load failures: {'; '.join(failures)}")
        if owner is None:
            raise EcMountError(f"MountEcShards {vid}.{sid}: no .ecx index found on any local disk")
        raise EcMountError(f"MountEcShards {vid}.{sid} not found on disk")

    def unmount_shard(self, vid: int, sid: int) -> list[int]:
        """Close the shard on every location; an EcVolume left without shards is closed too."""
        done = []
        with self._lock:
            for disk_id, vols in enumerate(self._vols):
                ev = vols.get(vid)
                if ev is None or ev.shard(sid) is None:
                    continue
                ev.remove_shard(sid)
                if not ev.shard_ids():
                    ev.close()
                    del vols[vid]
                done.append(disk_id)
            self._publish()
        return done

    def unload_volume(self, vid: int) -> None:
        with self._lock:
            for vols in self._vols:
                ev = vols.pop(vid, None)
                if ev is not None:
                    ev.close()
            self._publish()

    def unload_collection(self, collection: str) -> list[int]:
        gone = []
        with self._lock:
            for vols in self._vols:
                for vid in [v for v, ev in vols.items() if ev.collection == collection]:
                    vols.pop(vid).close()
                    gone.append(vid)
            self._publish()
        return gone

    # queries ---------------------------------------------------------------------------------

    # The lookups take no lock: each is one dict lookup per location (`_lock` orders the changes,
    # and a mount holds it while it opens a volume's files; an unmount, while closing waits for a
    # journal fsync). Every DELETE and every read of a volume not held here asks `has`.

    def find_volume(self, vid: int) -> EcVolume | None:
        for vols in self._vols:
            ev = vols.get(vid)
            if ev is not None:
                return ev
        return None

    def volumes_of(self, vid: int) -> list[tuple[int, EcVolume]]:
        return [(i, ev) for i, vols in enumerate(self._vols) if (ev := vols.get(vid)) is not None]

    def find_shard(self, vid: int, sid: int) -> tuple[EcVolume, EcShard] | None:
        for vols in self._vols:
            ev = vols.get(vid)
            if ev is not None and (s := ev.shard(sid)) is not None:
                return ev, s
        return None

    def all(self) -> list[tuple[int, EcVolume]]:
        with self._lock:
            return sorted(((i, ev) for i, vols in enumerate(self._vols) for ev in vols.values()),
                          key=lambda t: (t[1].vid, t[0]))

    def has(self, vid: int) -> bool:
        return self.find_volume(vid) is not None

    def shard_count(self, disk_id: int) -> int:
        with self._lock:
            return sum(len(ev.shard_ids()) for ev in self._vols[disk_id].values())

    def target_location(self, collection: str, vid: int, data_shards: int = DATA_SHARDS) -> int | None:
        """Go's FindEcShardTargetLocation: mounted here > `.ecx` here > HDD > any, then the most
        free shard slots; locations low on space or full are skipped. A disk id or None."""
        best, best_key = None, None
        for disk_id, loc in enumerate(self.locations):
            if loc.is_disk_space_low:
                continue
            used = len(loc) * data_shards + self.shard_count(disk_id)
            free = (1 << 30) - used if loc.max_volume_count <= 0 else (loc.max_volume_count - len(loc)) * data_shards - self.shard_count(disk_id)
            if free <= 0:
                continue
            tier = 1 + (loc.disk_type == "")
            if self.has_ecx(loc, collection, vid):
                tier = 3
            if vid in self._vols[disk_id]:
                tier = 4
            key = (tier, free)
            if best_key is None or key > best_key:
                best, best_key = disk_id, key
        return best

    def collect_shards(self, vid: int) -> tuple[EcVolume | None, dict[int, str]]:
        """Every locally mounted shard file of the volume (Go's CollectEcShards)."""
        paths: dict[int, str] = {}
        found = None
        for _, ev in self.volumes_of(vid):
            found = found or ev
            for s in ev.shard_list():
                paths.setdefault(s.shard_id, s.path)
        return found, paths

    def reports(self) -> list[tuple]:
        """Heartbeat material, one tuple per EcVolume: (vid, collection, disk id, disk type, shard
        bits, shard sizes in shard-id order, expire_at_sec, file count, delete count, encode ts)."""
        out = []
        for disk_id, ev in self.all():
            shards = ev.shard_list()
            if not shards:
                continue
            files, deletes = ev.file_and_delete_count()
            bits = 0
            for s in shards:
                bits |= 1 << s.shard_id
            out.append((ev.vid, ev.collection, disk_id, ev.disk_type, bits, tuple(s.size for s in shards),
                        ev.expire_at_sec, files, deletes, ev.encode_ts_ns))
        return out

    def close(self) -> None:
        with self._lock:
            for vols in self._vols:
                for ev in vols.values():
                    ev.close()
                vols.clear()
