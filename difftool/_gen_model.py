"""What the gRPC generator believes one server holds, so it can name real offsets and needles.

Sans-IO and deterministic: a `VolumeModel` per volume follows Go 4.48's rules for appending
records to the `.dat` (a blob written as given, a 32-byte tombstone per delete, nothing for a
blob that repeats the stored one), the needle map, vacuum and erasure coding, well enough to
predict each record's offset and length and whether Go accepts a call. A prediction is a
convenience, never a verdict: both servers answer every call and only their answers are
compared; a wrong guess only makes a "good" call a bad one. Where the model cannot follow (a
compaction of records it cannot parse), it says so (`exact = False`) and the generator stops
relying on offsets for that volume.
"""

from __future__ import annotations

import dataclasses

from native.storage import VERSION3, actual_size
from native.storage.ec import EcLayout

__all__ = ["Record", "Live", "EcModel", "VolumeModel", "TOMBSTONE_LENGTH", "SUPER_BLOCK", "IDX_ROW"]

SUPER_BLOCK = 8
IDX_ROW = 17  # 8-byte key, 5-byte offset, 4-byte size (the bundled weed uses 5-byte offsets)
TOMBSTONE_LENGTH = actual_size(0, VERSION3)
FAKE_TOMBSTONE_COOKIE = 0x12345678  # what Go's commit writes for a needle deleted during the compaction
_TIMESTAMP_AT = 16 + 4  # after the header and the checksum (plus the body's size)


@dataclasses.dataclass(slots=True)
class Record:
    """One record of a `.dat`: where it is, what its header says, and which needle it holds."""

    offset: int
    size: int  # the header's Size (0 for a tombstone)
    needle_id: int
    parsable: bool = True  # a well-formed needle (a compaction can copy it)

    @property
    def length(self) -> int:
        return actual_size(self.size, VERSION3)

    @property
    def clock(self) -> tuple[int, int]:
        """The record's append time (which each server stamps from its own clock)."""
        start = self.offset + _TIMESTAMP_AT + self.size
        return start, start + 8


@dataclasses.dataclass(slots=True)
class Live:
    """The needle map's entry for one id and what the generator knows of that needle."""

    needle_id: int
    cookie: int
    size: int
    offset: int
    blob: bytes  # the record as written (append time as sent)
    data: bytes
    checksum: int
    manifest: bool = False
    parsable: bool = True
    kind: str = "bytes"  # bytes | json | csv | empty | manifest | garbage | other-id
    ttl: bool = False  # has a TTL (a compaction drops it: these volumes have none)
    header_id: int = 0  # the id in the record's header when it is not `needle_id` (other-id)


@dataclasses.dataclass(slots=True)
class EcModel:
    collection: str
    dat_size: int
    clocks: tuple[tuple[int, int], ...]  # append times in the encoded .dat
    entries: dict[int, tuple[int, int]]  # .ecx: needle id -> (offset, size), sorted by id on disk
    files: set[int] = dataclasses.field(default_factory=lambda: set(range(14)))  # shard files on disk
    mounted: set[int] = dataclasses.field(default_factory=set)
    deleted: set[int] = dataclasses.field(default_factory=set)

    @property
    def shard_size(self) -> int:
        return EcLayout().shard_size(self.dat_size)

    def shard_clock_ranges(self, shard_id: int, offset: int, size: int) -> tuple[tuple[int, int], ...]:
        """Byte ranges of a read of `size` bytes at `offset` of a shard that hold (or, in a
        parity shard, are computed from) append times."""
        layout = EcLayout()
        large_rows = layout.large_rows_for_dat(self.dat_size)
        out = []
        for start, end in self.clocks:
            end = min(end, self.dat_size)
            if start >= end:
                continue
            for iv in layout.locate(large_rows, start, end - start):
                if iv.shard_id != shard_id and shard_id < layout.data_shards:
                    continue
                lo, hi = max(iv.offset, offset), min(iv.offset + iv.size, offset + size)
                if lo < hi:
                    out.append((lo - offset, hi - offset))
        return tuple(sorted(set(out)))


@dataclasses.dataclass(slots=True)
class VolumeModel:
    vid: int
    collection: str = ""
    replication: str = "000"
    dat_size: int = SUPER_BLOCK
    idx_rows: int = 0
    records: list[Record] = dataclasses.field(default_factory=list)
    live: dict[int, Live] = dataclasses.field(default_factory=dict)
    deleted: dict[int, Live] = dataclasses.field(default_factory=dict)  # last state before the delete
    tombstones: dict[int, int] = dataclasses.field(default_factory=dict)  # id -> tombstone offset
    read_only: bool = False
    can_delete: bool = False
    read_only_persisted: bool = False  # in the .vif: survives a remount
    can_delete_persisted: bool = False  # ... with deletes allowed (the last persisted mark's)
    vif_ec: bool = False  # the .vif holds an EC encode's config (EC generate wrote it)
    info_ec: bool = False  # ... and the volume's in-memory info too (read back by a reload)
    compact_revision: int = 0
    compacted: tuple[list[Record], dict[int, Live], int] | None = None  # .cpd/.cpx: records, live, size
    changed: list[int] = dataclasses.field(default_factory=list)  # ids written or deleted since the compaction
    compacted_idx_rows: int = 0  # the index rows when the compaction began
    exact: bool = True
    ec: EcModel | None = None

    # appends ---------------------------------------------------------------------------------

    def append(self, live: Live) -> None:
        """A blob accepted by WriteNeedleBlob."""
        rec = Record(self.dat_size, live.size, live.needle_id, live.parsable)
        live.offset = rec.offset
        self.records.append(rec)
        self.dat_size += rec.length
        self.idx_rows += 1
        self.live[live.needle_id] = live
        self.deleted.pop(live.needle_id, None)
        self._changed(live.needle_id)

    def delete(self, needle_id: int) -> int:
        """A delete that found the needle: a tombstone record and idx row; returns its size."""
        live = self.live.pop(needle_id)
        self.tombstones[needle_id] = self.dat_size
        self.records.append(Record(self.dat_size, 0, needle_id))
        self.dat_size += TOMBSTONE_LENGTH
        self.idx_rows += 1
        self.deleted[needle_id] = live
        self._changed(needle_id)
        return live.size

    def _changed(self, needle_id: int) -> None:
        if self.compacted is not None and needle_id not in self.changed:
            self.changed.append(needle_id)

    def commit_closes(self) -> bool:
        """Go 4.48 fails a commit, and leaves the volume closed, when there is no compaction of
        this mount, or when the compaction began on an empty index that has rows now (its
        makeup walk steps below the first row; docs/parity.md)."""
        return self.compacted is None or (self.compacted_idx_rows == 0 and self.idx_rows > 0)

    def may_change(self, needle_id: int) -> bool:
        """Go's commit replays the needles changed since the compaction in map order (random
        for two or more): the generator changes at most one while a compaction waits."""
        return self.compacted is None or not self.changed or self.changed == [needle_id]

    def repeats(self, needle_id: int, size: int, cookie: int, checksum: int, data: bytes) -> bool:
        """Go's WriteNeedleBlob writes nothing when the stored needle has the same size, cookie,
        checksum and data."""
        cur = self.live.get(needle_id)
        return (cur is not None and cur.kind != "garbage" and cur.size == size and cur.cookie == cookie
                and cur.checksum == checksum and cur.data == data)

    # views -----------------------------------------------------------------------------------

    @property
    def idx_size(self) -> int:
        return self.idx_rows * IDX_ROW

    @property
    def content_records(self) -> list[Record]:
        return [r for r in self.records if r.size > 0]

    def clocks(self) -> tuple[tuple[int, int], ...]:
        """The append times in the `.dat` (all of it when the model lost track of its records)."""
        return tuple(r.clock for r in self.records) if self.exact else ((0, 1 << 62),)

    def clock_overlap(self, offset: int, size: int) -> bool:
        """Would ReadNeedleMeta at `offset` with `size` read another record's append time into
        a field it reports (header, cookie, checksum, ...)? Its own slot (where a record of
        `size` at `offset` keeps its time) is masked in the answer, so it does not count."""
        length = actual_size(max(size, 0), VERSION3)
        own = (offset + _TIMESTAMP_AT + max(size, 0), offset + _TIMESTAMP_AT + max(size, 0) + 8)
        for lo, hi in self.clock_ranges(offset, length):
            if (offset + lo, offset + hi) != own:
                return True
        return False

    def clock_ranges(self, offset: int, length: int) -> tuple[tuple[int, int], ...]:
        """The append times within `length` bytes read at `offset`, relative to `offset`."""
        out = []
        for start, end in self.clocks():
            lo, hi = max(start, offset), min(end, offset + length)
            if lo < hi:
                out.append((lo - offset, hi - offset))
        return tuple(out)

    def garbage_ratio(self) -> float:
        if self.dat_size <= SUPER_BLOCK:
            return 0.0
        live_bytes = sum(actual_size(v.size, VERSION3) for v in self.live.values())
        return (self.dat_size - SUPER_BLOCK - live_bytes) / self.dat_size

    # vacuum ----------------------------------------------------------------------------------

    def compact(self) -> None:
        """The `.cpd` a compaction writes: live needles in ascending id order, less those that
        do not parse and those with a TTL (the volume has none, so every one has run out); a
        record written under another id is copied under the id in its header."""
        records: list[Record] = []
        live: dict[int, Live] = {}
        size = SUPER_BLOCK
        for nid, cur in sorted(self.live.items()):
            if cur.kind == "garbage" or cur.ttl:
                continue
            if cur.kind == "other-id":
                nid = cur.header_id
                cur = dataclasses.replace(cur, needle_id=nid, kind="bytes", parsable=True, header_id=0)
                if nid in live:
                    self.exact = False  # two records for one id: Go's map keeps one
            live[nid] = dataclasses.replace(cur, offset=size)
            records.append(Record(size, cur.size, nid))
            size += actual_size(cur.size, VERSION3)
        self.compacted = (records, live, size)
        self.compacted_idx_rows = self.idx_rows
        self.changed = []

    def save_info(self) -> None:
        """The volume wrote its in-memory info to the `.vif` (a persisted mark)."""
        self.vif_ec = self.info_ec

    def commit(self) -> None:
        """Go's CommitCompact: the compacted records, then the needle changed meanwhile (its
        record copied, or a fake tombstone when it was deleted or is empty), then a reload."""
        assert self.compacted is not None
        self.info_ec = self.vif_ec  # the reload reads the .vif
        # ... and a persisted mark adds its flags to the runtime ones (a runtime can-delete does
        # not undo a persisted read-only without it)
        no_delete = (self.read_only and not self.can_delete) or (self.read_only_persisted and not self.can_delete_persisted)
        self.read_only = self.read_only or self.read_only_persisted
        self.can_delete = self.read_only and not no_delete
        records, live, size = self.compacted
        records, live = list(records), dict(live)
        tombstones: dict[int, int] = {}
        for nid in self.changed:
            cur = self.live.get(nid)
            if cur is not None and cur.size > 0:
                live[nid] = dataclasses.replace(cur, offset=size)
                records.append(Record(size, cur.size, nid, cur.parsable))
                size += actual_size(cur.size, VERSION3)
            else:
                live.pop(nid, None)
                if cur is not None:  # an empty needle: its index row keeps size 0, on the fake record
                    live[nid] = dataclasses.replace(cur, offset=size, cookie=FAKE_TOMBSTONE_COOKIE)
                else:
                    tombstones[nid] = size
                records.append(Record(size, 0, nid))
                size += TOMBSTONE_LENGTH
        self.records, self.live, self.dat_size = records, live, size
        self.idx_rows = len(records)
        self.deleted = {nid: self.deleted[nid] for nid in tombstones if nid in self.deleted}
        self.tombstones = tombstones
        self.compact_revision += 1
        self.compacted = None
        self.changed = []
