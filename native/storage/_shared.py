"""The volume table the processes of one server share (weedpy.sharedmem's volume region).

One slot per mounted volume, nine 64-bit words:

    0 vid + 1 (0: free)   1 generation   2 committed .dat end   3 committed .idx end
    4 last AppendAtNs      5 last modified (s)   6 read-only flags   7 pid of an append in progress
    8 the processes syncing the volume's files now (bit i: process i; changed under the slot lock)

and one lock per slot (a byte-range lock on the shared block: the kernel releases a dead
process's). Every process follows a volume's `.idx` as a log: it remembers how much of it its
map has applied and applies the rest before it answers (a read of one word in the common case).
An append takes the slot lock, writes at the committed ends (not at the file sizes: a process
killed mid-append leaves a torn tail that the next append truncates), then publishes the new
ends. The generation changes when the leader replaces or removes the volume's files (compaction
commit, index consolidation, tier moves, unmount, delete): a process whose view is of an older
generation reopens the volume before using it.
"""

from __future__ import annotations

import struct
import threading

from weedpy.sharedmem import LAYOUT, WORDS_PER_SLOT, SharedBlock

__all__ = ["VolumeTable", "SharedSlot", "NO_WRITE_OR_DELETE", "NO_WRITE_CAN_DELETE"]

NO_WRITE_OR_DELETE = 1
NO_WRITE_CAN_DELETE = 2

_VID, _GEN, _DAT_END, _IDX_END, _APPEND_NS, _MODIFIED, _FLAGS, _WRITER, _SYNCING = range(WORDS_PER_SLOT)
# An erasure-coded volume's shards mounted on one disk location take a slot too: its key word is
# _EC | disk id << 33 | vid + 1, and its third word the mask of the shard ids mounted there.
_WORDS = struct.Struct(f"@{WORDS_PER_SLOT}Q")  # a whole slot, in the block's (native) word order
_EC = 1 << 62
_SHARDS = _DAT_END


def _ec_key(disk_id: int, vid: int) -> int:
    return _EC | disk_id << 33 | (vid + 1)


class SharedSlot:
    """One volume's slot. Plain attribute reads and writes of aligned words (see weedpy.sharedmem)."""

    __slots__ = ("index", "bit", "_w", "_base", "_block", "_lock", "lock", "unlock")

    def __init__(self, block: SharedBlock, index: int, process: int = 0) -> None:
        self.index = index
        self.bit = 1 << process  # this process's bit in the syncing mask
        self._block = block
        self._w = block.words
        self._base = LAYOUT.volumes + index * WORDS_PER_SLOT
        self._lock = block.range_lock(index)
        # `lock(blocking=True) -> bool` and `unlock()`: the slot lock's own methods (every append
        # of a shared volume takes and releases it; no call of ours in between)
        self.lock = self._lock.acquire
        self.unlock = self._lock.release

    @property
    def vid(self) -> int | None:
        raw = self._w[self._base + _VID]
        return raw - 1 if raw and not raw & _EC else None

    @property
    def generation(self) -> int:
        return self._w[self._base + _GEN]

    @property
    def dat_end(self) -> int:
        return self._w[self._base + _DAT_END]

    @property
    def idx_end(self) -> int:
        return self._w[self._base + _IDX_END]

    @property
    def last_append_ns(self) -> int:
        return self._w[self._base + _APPEND_NS]

    @property
    def last_modified(self) -> int:
        return self._w[self._base + _MODIFIED]

    @property
    def flags(self) -> int:
        return self._w[self._base + _FLAGS]

    @property
    def writer(self) -> int:
        return self._w[self._base + _WRITER]

    def publish(self, dat_end: int, idx_end: int, last_append_ns: int, last_modified: int) -> None:
        """After an append (slot lock held): the ends last, so a reader that sees them finds
        every byte before them written."""
        w, b = self._w, self._base
        w[b + _APPEND_NS] = last_append_ns
        if last_modified > w[b + _MODIFIED]:
            w[b + _MODIFIED] = last_modified
        w[b + _DAT_END] = dat_end
        w[b + _IDX_END] = idx_end

    def set_writer(self, pid: int) -> None:
        self._w[self._base + _WRITER] = pid

    # The hot paths' reads and writes, a call each (every read checks the slot; every append of a
    # shared volume takes and publishes it).

    def holds(self, vid: int) -> bool:
        """The slot is still volume `vid`'s (the leader has not removed it): one word load."""
        return self._w[self._base + _VID] == vid + 1

    def follow_state(self) -> tuple[int, int, int]:
        """(`.idx` end, generation, raw vid word): what a read that must catch up checks."""
        w, b = self._w, self._base
        return w[b + _IDX_END], w[b + _GEN], w[b + _VID]

    def current(self, idx_end: int, generation: int) -> bool:
        """Nothing committed nor replaced since a view that applied the `.idx` up to `idx_end`
        at `generation` (what a read checks first: two word loads)."""
        w, b = self._w, self._base
        return w[b + _IDX_END] == idx_end and w[b + _GEN] == generation

    def committed(self) -> tuple[int, int, int, int, int]:
        """(`.idx` end, `.dat` end, last AppendAtNs, last modified, read-only flags). The `.idx`
        end is read first: `publish` stores it last, so the other values are at least as new as
        the rows up to it."""
        w, b = self._w, self._base
        idx_end = w[b + _IDX_END]
        return idx_end, w[b + _DAT_END], w[b + _APPEND_NS], w[b + _MODIFIED], w[b + _FLAGS]

    def words(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """(raw vid word, generation, `.dat` end, `.idx` end, last AppendAtNs, last modified,
        read-only flags, pid of an append in progress, syncing processes) in one call: what an
        append reads once it holds the lock (nothing changes them then, so the copy is consistent)."""
        return _WORDS.unpack_from(self._w, self._base * 8)

    def publish_and_unlock(self, dat_end: int, idx_end: int, last_append_ns: int, last_modified: int) -> None:
        """An append completed (slot lock held): its ends published, the writer mark cleared,
        the lock released."""
        w, b = self._w, self._base
        try:
            w[b + _APPEND_NS] = last_append_ns
            if last_modified > w[b + _MODIFIED]:
                w[b + _MODIFIED] = last_modified
            w[b + _DAT_END] = dat_end
            w[b + _IDX_END] = idx_end
            w[b + _WRITER] = 0
        finally:
            self._lock.release()

    def set_flags(self, flags: int) -> None:
        self._w[self._base + _FLAGS] = flags

    def mark_sync(self, on: bool) -> None:
        """This process begins (`on`) or ends a sync of the volume's files: its bit in the mask
        other processes' event loops check before they append (an append waits while the files
        are written back). Under the slot lock: every process changes its own bit of one word.
        The slot lock excludes this process's other threads too (its per-slot mutex, see
        `SharedBlock.range_lock`): another Volume object of the same slot (a view being replaced,
        or a removed volume whose slot a new one took) may be appending meanwhile."""
        self._lock.acquire()
        try:
            w, b = self._w, self._base
            w[b + _SYNCING] = w[b + _SYNCING] | self.bit if on else w[b + _SYNCING] & ~self.bit
        finally:
            self._lock.release()

    def bump_generation(self) -> int:
        w, b = self._w, self._base
        w[b + _GEN] = w[b + _GEN] + 1
        return w[b + _GEN]


class VolumeTable:
    """The slots, by volume id. The leader assigns and frees them (from several threads: volumes
    load in parallel, so a slot is taken under `_lock`); every process finds them."""

    def __init__(self, block: SharedBlock, process: int) -> None:
        self._block = block
        self._w = block.words
        self._lock = threading.Lock()
        self._process = process  # this process's index among the server's (its syncing bit)

    def _slot_vid(self, index: int) -> int:
        return self._w[LAYOUT.volumes + index * WORDS_PER_SLOT + _VID]

    def find(self, vid: int) -> SharedSlot | None:
        return self._find_key(vid + 1)

    def _find_key(self, want: int) -> SharedSlot | None:
        for i in range(LAYOUT.volume_slots):
            if self._slot_vid(i) == want:
                return SharedSlot(self._block, i, self._process)
        return None

    def _free_slot(self, key: int) -> SharedSlot:
        for i in range(LAYOUT.volume_slots):
            if not self._slot_vid(i):
                return SharedSlot(self._block, i, self._process)
        raise RuntimeError(f"no free volume slot for {key:#x} ({LAYOUT.volume_slots} in use)")

    def vids(self) -> dict[int, SharedSlot]:
        """Every volume in the table now."""
        out = {}
        for i in range(LAYOUT.volume_slots):
            raw = self._slot_vid(i)
            if raw and not raw & _EC:
                out[raw - 1] = SharedSlot(self._block, i, self._process)
        return out

    def ec_shards(self) -> dict[tuple[int, int], int]:
        """(disk id, vid) -> the mask of the shard ids the leader has mounted there."""
        out = {}
        for i in range(LAYOUT.volume_slots):
            raw = self._slot_vid(i)
            if raw & _EC:
                base = LAYOUT.volumes + i * WORDS_PER_SLOT
                out[((raw >> 33) & 0x1FFFFFFF, (raw & 0x1FFFFFFFF) - 1)] = self._w[base + _SHARDS]
        return out

    def publish_ec(self, mounted: dict[tuple[int, int], int]) -> None:
        """The leader's EC mounts now (each (disk id, vid) with its shard mask); the rest freed."""
        with self._lock:
            self._publish_ec(mounted)

    def _publish_ec(self, mounted: dict[tuple[int, int], int]) -> None:
        for key, mask in mounted.items():
            k = _ec_key(*key)
            slot = self._find_key(k) or self._free_slot(k)
            self._w[slot._base + _SHARDS] = mask
            self._w[slot._base + _VID] = k
        for key in set(self.ec_shards()) - set(mounted):
            slot = self._find_key(_ec_key(*key))
            if slot is not None:
                self._w[slot._base + _VID] = 0

    def assign(self, vid: int, *, dat_end: int, idx_end: int, last_append_ns: int, last_modified: int,
               flags: int) -> SharedSlot:
        """The leader mounts a volume: its slot (the one it had, or a free one), a new generation."""
        with self._lock:
            found = self.find(vid)
            slot = found or self._free_slot(vid + 1)
            slot.lock()
            try:
                b = slot._base
                if found is None:  # another volume's slot before: its marks are not this one's
                    self._w[b + _SYNCING] = 0
                # the generation before the ends: a read that finds these ends finds it too
                slot.bump_generation()
                self._w[b + _WRITER] = 0
                self._w[b + _FLAGS] = flags
                self._w[b + _MODIFIED] = last_modified
                slot.publish(dat_end, idx_end, last_append_ns, last_modified)
                self._w[b + _VID] = vid + 1
            finally:
                slot.unlock()
        return slot

    def forget_syncs(self) -> None:
        """A process starting (a worker restarted in a dead one's place): no sync of its index is
        in progress, whatever bits its predecessor left set."""
        bit = 1 << self._process
        for i in range(LAYOUT.volume_slots):
            if self._w[LAYOUT.volumes + i * WORDS_PER_SLOT + _SYNCING] & bit:
                SharedSlot(self._block, i, self._process).mark_sync(False)

    def free(self, vid: int) -> None:
        """The leader unmounted or deleted a volume: a process still holding it reopens and finds none."""
        with self._lock:
            slot = self.find(vid)
            if slot is None:
                return
            slot.lock()
            try:
                slot.bump_generation()
                self._w[slot._base + _VID] = 0
            finally:
                slot.unlock()
