"""What a volume server tells the master, computed from store snapshots (sans-IO, no sockets).

weed 4.48's heartbeat stream, as observed from the binary (see tests/native_core):

- at connect: a full heartbeat (identity, per-disk-type max counts, disk tags and bytes, every
  volume or `has_no_volumes`, `has_no_ec_shards`, location uuids, the server state), then an
  EC-only one (`has_no_ec_shards`);
- when volumes come or go (allocate, mount, unmount, delete, delete collection): a delta with
  only ip, port, data center, rack and `new_volumes` / `deleted_volumes` (short messages);
- every pulse (5 s): the full heartbeat again;
- on VolumeServerLeave or shutdown: ip, port, public url and `has_no_volumes`, which makes the
  master drop every volume of this server.

Go 4.48 also sends a volume digest so that a digest-aware master may accept changed-only lists.
weedpy sends no digest: a master then treats every full heartbeat as the whole truth, which is
what every master version understands (the cost is the full list every 5 s).

`HeartbeatState` keeps what the master was last told and turns snapshots into messages; deltas
are the difference between the last report and the current snapshot, so any change to the
store (by any handler) is reported without handlers having to emit events.
`interpret_response` turns a HeartbeatResponse into the actions the shell must take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from native.identity import PULSE_SECONDS, Identity
from proto.lazy import master_pb2, volume_server_pb2

__all__ = [
    "PULSE_SECONDS",
    "Identity",
    "VolumeReport",
    "DiskReport",
    "StoreSnapshot",
    "EcReport",
    "HeartbeatState",
    "ResponseActions",
    "interpret_response",
    "snapshot_store",
    "same_master",
]


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeReport:
    """One volume as a full heartbeat reports it (Go's ToVolumeInformationMessage)."""

    id: int
    size: int  # .dat size
    collection: str
    file_count: int
    delete_count: int
    deleted_byte_count: int
    read_only: bool
    read_only_can_delete: bool  # read-only, deletes still allowed (the noWriteCanDelete reason)
    replica_placement: int  # the placement byte
    version: int
    ttl: int  # TTL as uint32
    compact_revision: int
    modified_at_second: int
    disk_type: str
    disk_id: int
    max_file_key: int = 0
    remote_storage_name: str = ""  # a volume tiered to remote storage: backend name and object key
    remote_storage_key: str = ""

    def short(self) -> tuple:
        """The fields of a delta (VolumeShortInformationMessage); a change here is a re-add."""
        return (self.id, self.collection, self.replica_placement, self.version, self.ttl, self.disk_type, self.disk_id)

    def full_message(self) -> master_pb2.VolumeInformationMessage:
        return master_pb2.VolumeInformationMessage(
            id=self.id, size=self.size, collection=self.collection, file_count=self.file_count,
            delete_count=self.delete_count, deleted_byte_count=self.deleted_byte_count, read_only=self.read_only,
            read_only_can_delete=self.read_only_can_delete, replica_placement=self.replica_placement, version=self.version, ttl=self.ttl,
            compact_revision=self.compact_revision, modified_at_second=self.modified_at_second,
            disk_type=self.disk_type, disk_id=self.disk_id,
            remote_storage_name=self.remote_storage_name, remote_storage_key=self.remote_storage_key,
        )


def _short_message(short: tuple) -> master_pb2.VolumeShortInformationMessage:
    vid, collection, rp, version, ttl, disk_type, disk_id = short
    return master_pb2.VolumeShortInformationMessage(
        id=vid, collection=collection, replica_placement=rp, version=version, ttl=ttl,
        disk_type=disk_type, disk_id=disk_id,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class DiskReport:
    """One `-dir` location."""

    disk_id: int
    disk_type: str
    max_volume_count: int  # effective: the used slots when the disk is low on space
    uuid: str
    tags: tuple[str, ...] = ()
    total_bytes: int = 0
    free_bytes: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class EcReport:
    """The EC shards of one volume on one disk (Go's ToVolumeEcShardInformationMessage)."""

    id: int
    collection: str
    disk_id: int
    disk_type: str
    bits: int  # bit i set = shard i held
    sizes: tuple[int, ...]  # per held shard, in shard-id order
    expire_at_sec: int = 0
    file_count: int = 0
    delete_count: int = 0
    encode_ts_ns: int = 0

    def message(self, bits: int | None = None) -> master_pb2.VolumeEcShardInformationMessage:
        """The full message, or one restricted to `bits` (a delta's shards)."""
        held = [i for i in range(32) if self.bits >> i & 1]
        size_of = dict(zip(held, self.sizes))
        want = self.bits if bits is None else bits
        ids = [i for i in range(32) if want >> i & 1]
        return master_pb2.VolumeEcShardInformationMessage(
            id=self.id, collection=self.collection, ec_index_bits=want, disk_type=self.disk_type,
            expire_at_sec=self.expire_at_sec, disk_id=self.disk_id, shard_sizes=[size_of.get(i, 0) for i in ids],
            file_count=self.file_count if bits is None else 0, delete_count=self.delete_count if bits is None else 0,
            encode_ts_ns=self.encode_ts_ns,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class StoreSnapshot:
    volumes: tuple[VolumeReport, ...]
    disks: tuple[DiskReport, ...]
    ec_shards: tuple[EcReport, ...] = ()

    @property
    def max_file_key(self) -> int:
        return max((v.max_file_key for v in self.volumes), default=0)


class HeartbeatState:
    """What the master has been told on the current stream; builds every outgoing Heartbeat."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._reported: dict[int, tuple] = {}
        self._reported_ec: dict[tuple[int, int], EcReport] = {}

    @property
    def reported_ids(self) -> frozenset[int]:
        return frozenset(self._reported)

    def reset(self) -> None:
        """A new stream: the master (maybe a different one) knows nothing yet."""
        self._reported = {}
        self._reported_ec = {}

    def full(self, snap: StoreSnapshot, state: volume_server_pb2.VolumeServerState | None = None) -> master_pb2.Heartbeat:
        ident = self.identity
        hb = master_pb2.Heartbeat(
            ip=ident.ip, port=ident.port, grpc_port=ident.grpc_port, public_url=ident.public_url, id=ident.server_id,
            data_center=ident.data_center, rack=ident.rack, max_file_key=snap.max_file_key,
            volumes=[v.full_message() for v in snap.volumes],
            has_no_volumes=not snap.volumes, has_no_ec_shards=not snap.ec_shards,
            location_uuids=[d.uuid for d in snap.disks],
        )
        for d in snap.disks:
            hb.max_volume_counts[d.disk_type] = hb.max_volume_counts[d.disk_type] + max(0, d.max_volume_count)
            hb.disk_total_bytes[d.disk_type] = hb.disk_total_bytes[d.disk_type] + d.total_bytes
            hb.disk_free_bytes[d.disk_type] = hb.disk_free_bytes[d.disk_type] + d.free_bytes
            hb.disk_tags.add(disk_id=d.disk_id, tags=list(d.tags), type=d.disk_type, max_volume_count=max(0, d.max_volume_count))
        hb.state.CopyFrom(state if state is not None else volume_server_pb2.VolumeServerState())
        self._reported = {v.id: v.short() for v in snap.volumes}
        return hb

    def ec_full(self, snap: StoreSnapshot | None = None) -> master_pb2.Heartbeat:
        """Go's CollectErasureCodingHeartbeat: every EC shard held (the master replaces its list)."""
        reports = snap.ec_shards if snap is not None else ()
        self._reported_ec = {(r.id, r.disk_id): r for r in reports}
        return master_pb2.Heartbeat(ec_shards=[r.message() for r in reports], has_no_ec_shards=not reports)

    def ec_delta(self, snap: StoreSnapshot) -> master_pb2.Heartbeat | None:
        """Shards mounted or unmounted since the last EC report (Go's new/deleted EC shard
        channels); None when nothing changed."""
        current = {(r.id, r.disk_id): r for r in snap.ec_shards}
        new, deleted = [], []
        for key in sorted(set(current) | set(self._reported_ec)):
            now, before = current.get(key), self._reported_ec.get(key)
            now_bits, before_bits = (now.bits if now else 0), (before.bits if before else 0)
            if before is not None and before_bits & ~now_bits:
                deleted.append(before.message(before_bits & ~now_bits))
            if now is not None and now_bits & ~before_bits:
                new.append(now.message(now_bits & ~before_bits))
        self._reported_ec = current
        if not new and not deleted:
            return None
        ident = self.identity
        return master_pb2.Heartbeat(ip=ident.ip, port=ident.port, data_center=ident.data_center, rack=ident.rack,
                                    new_ec_shards=new, deleted_ec_shards=deleted)

    def delta(self, snap: StoreSnapshot) -> master_pb2.Heartbeat | None:
        """Volumes added or removed since the last report; None when nothing changed."""
        current = {v.id: v.short() for v in snap.volumes}
        deleted = [short for vid, short in self._reported.items() if current.get(vid) != short]
        new = [short for vid, short in current.items() if self._reported.get(vid) != short]
        if not new and not deleted:
            return None
        ident = self.identity
        hb = master_pb2.Heartbeat(ip=ident.ip, port=ident.port, data_center=ident.data_center, rack=ident.rack)
        # a volume whose short info changed (deleted and re-created) goes out as both, old first
        hb.deleted_volumes.extend(_short_message(s) for s in sorted(deleted))
        hb.new_volumes.extend(_short_message(s) for s in sorted(new))
        self._reported = current
        return hb

    def leave(self) -> master_pb2.Heartbeat:
        """The last heartbeat (Leave/stop): no volumes, so the master forgets them all."""
        ident = self.identity
        self._reported = {}
        return master_pb2.Heartbeat(
            ip=ident.ip, port=ident.port, public_url=ident.public_url, data_center=ident.data_center,
            rack=ident.rack, has_no_volumes=True,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ResponseActions:
    """What one HeartbeatResponse asks of the server."""

    volume_size_limit: int | None = None  # new limit (bytes) when the master sent a different one
    preallocate: bool | None = None
    new_leader: str | None = None  # reconnect there: the master we talk to is not the leader
    resend_full: bool = False
    duplicated_uuids: tuple[str, ...] = ()


def same_master(a: str, b: str) -> bool:
    """Go's ServerAddress.Equals on `host:port[.grpc]`: the HTTP parts match."""
    return _http_part(a) == _http_part(b)


def _http_part(address: str) -> str:
    host, sep, ports = address.strip().rpartition(":")
    if not sep:
        return address.strip()
    return f"{host}:{ports.split('.', 1)[0]}"


def interpret_response(
    resp: master_pb2.HeartbeatResponse, current_master: str, volume_size_limit: int, preallocate: bool,
) -> ResponseActions:
    limit = resp.volume_size_limit if resp.volume_size_limit and resp.volume_size_limit != volume_size_limit else None
    pre = resp.preallocate if resp.preallocate != preallocate else None
    leader = None
    if resp.leader and not same_master(resp.leader, current_master):
        leader = resp.leader
    return ResponseActions(
        volume_size_limit=limit, preallocate=pre, new_leader=leader,
        resend_full=resp.resend_full_volume_list, duplicated_uuids=tuple(resp.duplicated_uuids),
    )


# -- store adapter (blocking: statfs and fstat; run it in a worker thread for large stores) -------


def _volume_report(v: object, disk_type: str, disk_id: int) -> VolumeReport:
    s = v.stats()  # type: ignore[attr-defined]
    remote_name, remote_key = getattr(v, "remote_storage", ("", ""))
    return VolumeReport(
        id=s.id, size=s.dat_size, collection=s.collection, file_count=s.file_count, delete_count=s.delete_count,
        deleted_byte_count=s.deleted_bytes, read_only=s.read_only,
        read_only_can_delete=s.read_only_reasons.no_write_can_delete, replica_placement=s.replica_placement.to_byte(),
        version=s.version, ttl=s.ttl.to_uint32(), compact_revision=s.compaction_revision,
        modified_at_second=s.modified_at_second, disk_type=disk_type, disk_id=disk_id, max_file_key=s.max_file_key,
        remote_storage_name=remote_name, remote_storage_key=remote_key,
    )


def snapshot_store(store: object, *, skip: Iterable[int] = ()) -> StoreSnapshot:
    """A StoreSnapshot of a `native.storage.Store` (volumes in `skip`, e.g. expired ones, left out)."""
    skipped = frozenset(skip)
    volumes: list[VolumeReport] = []
    disks: list[DiskReport] = []
    for disk_id, loc in enumerate(store.locations):  # type: ignore[attr-defined]
        vols = loc.volumes()
        max_count = loc.max_volume_count
        if loc.is_disk_space_low:
            max_count = len(vols)
        try:
            st = loc.status()
            total, free = st.all, st.free
        except OSError:
            total = free = 0
        disks.append(DiskReport(disk_id, loc.disk_type, max_count, loc.uuid, tuple(loc.tags), total, free))
        for v in vols:
            if v.id in skipped:
                continue
            try:
                volumes.append(_volume_report(v, loc.disk_type, disk_id))
            except Exception:  # a volume closed under us (unmounted meanwhile): not held any more
                continue
    volumes.sort(key=lambda r: r.id)
    ec = getattr(store, "ec", None)
    ec_reports = tuple(EcReport(*r) for r in ec.reports()) if ec is not None else ()
    return StoreSnapshot(tuple(volumes), tuple(disks), ec_reports)
