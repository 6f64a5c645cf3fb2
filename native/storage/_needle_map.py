"""The needle map: needle id -> (offset, size), plus Go's file/deletion counters.

Two parts:

- a sorted, immutable *base*: three flat columns (keys u64, offsets u32 or u64 in 8-byte units,
  sizes i32; 16 bytes per entry under 32 GiB), built in bulk from the `.idx` by `_map_build`
  and usually backed by an mmap'd map file beside it (`_map_file`), so that processes serving
  the same volume share one copy of it in the page cache;
- a small *overlay* (`BlockMap`) of the entries changed since: writes and deletes made here,
  and rows another process appended to the `.idx` (`catch_up`).

A lookup tries the overlay, then bisects the base (memoryviews: no numpy call per lookup), and
a map read from its map file, with the rows appended since replayed by `catch_up`, needs no
numpy at all.

Two sets of semantics, both Go's:
- *memory* (a writable volume, Go's CompactMap): a delete keeps the old offset with a negated
  size (0 becomes -1), so `read_deleted` can still find the data; counters as `doLoading`.
- *sorted* (a volume loaded read-only, Go's SortedFileNeedleMap over `.sdx`): ids whose last row
  is a delete are gone (the base keeps them, negated, and lookups skip them), counters come
  from Go's reverse index walk (`_map_walk`, its Bloom filter's false positives included), and
  deletes only flip the entry to a tombstone without touching the counters.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._idx import IdxColumns
from ._idx_rows import IdxRows
from ._map_blocks import BlockMap
from ._map_types import EMPTY_COUNTERS, MapCounters, NeedleValue
from ._types import CHECKSUM_SIZE, NEEDLE_HEADER_SIZE, PADDING_SIZE, TIMESTAMP_SIZE, TOMBSTONE_SIZE, VERSION3

if TYPE_CHECKING:
    from ._map_types import Resolved

__all__ = ["NeedleMap", "MapCounters", "NeedleValue", "SortedBase", "PYTHON_REPLAY_ROWS"]

_CHUNK = 1 << 16  # base entries turned into Python ints at a time by items()
PYTHON_REPLAY_ROWS = 4096  # a writable map of up to this many rows is replayed without numpy


def _scalar_view(a, fmt: str) -> memoryview:
    """A memoryview whose items are Python ints (what `bisect` and indexing want) over a
    contiguous numpy array or `array`."""
    return memoryview(a).cast("B").cast(fmt)


class SortedBase:
    """Immutable sorted columns; `owner` keeps whatever backs them (an mmap) alive."""

    __slots__ = ("keys", "offsets", "sizes", "deleted", "owner", "_k", "_o", "_s", "_n", "top")

    def __init__(self, keys, offsets, sizes, deleted: int = 0, owner: object = None) -> None:
        """Columns: numpy arrays (or `array`s) of uint64 keys, uint32/uint64 offsets, int32 sizes."""
        self.keys, self.offsets, self.sizes = keys, offsets, sizes
        self.deleted = deleted
        self.owner = owner
        self._k = _scalar_view(keys, "Q")
        self._o = _scalar_view(offsets, "I" if offsets.itemsize == 4 else "Q")
        self._s = _scalar_view(sizes, "i")
        self._n = len(keys)
        self.top = self._k[self._n - 1] if self._n else -1  # the largest key (-1: none)

    @classmethod
    def empty(cls) -> "SortedBase":
        return cls(array("Q"), array("I"), array("i"))

    @classmethod
    def of(cls, r: Resolved, owner: object = None) -> "SortedBase":
        return cls(r.keys, r.offsets, r.sizes, r.deleted, owner)

    def __len__(self) -> int:
        return self._n

    def locate(self, key: int, hide_deleted: bool) -> tuple[int, int] | None:
        n = self._n
        if not n:
            return None
        k = self._k
        if key > k[n - 1]:  # above every key (a new id): no bisect
            return None
        j = bisect_left(k, key)
        if j < self._n and k[j] == key:
            size = self._s[j]
            if size < 0 and hide_deleted:
                return None
            return self._o[j], size
        return None

    def nbytes(self) -> int:
        return sum(len(c) * c.itemsize for c in (self.keys, self.offsets, self.sizes))


class NeedleMap:
    """A sorted base plus an overlay, with Go's counters. Thread-safe: one lock guards the
    overlay and the counters (the base never changes)."""

    __slots__ = (
        "_base", "_ov", "_len", "_lock", "sorted_semantics",
        "file_count", "file_bytes", "deletion_count", "deletion_bytes", "max_file_key", "max_needle_end",
    )

    def __init__(
        self, *, sorted_semantics: bool = False, base: SortedBase | None = None, counters: MapCounters = EMPTY_COUNTERS,
    ) -> None:
        self._base = base if base is not None else SortedBase.empty()
        self._ov = BlockMap()
        self._lock = threading.Lock()
        self.sorted_semantics = sorted_semantics
        self._len = len(self._base) - (self._base.deleted if sorted_semantics else 0)
        self.file_count = counters.file_count
        self.file_bytes = counters.file_bytes
        self.deletion_count = counters.deletion_count
        self.deletion_bytes = counters.deletion_bytes
        self.max_file_key = counters.max_file_key
        self.max_needle_end = counters.max_needle_end

    # building ----------------------------------------------------------------------------------

    @classmethod
    def from_resolved(
        cls, r: Resolved, *, sorted_semantics: bool = False, owner: object = None, counters: MapCounters | None = None,
    ) -> "NeedleMap":
        """The map of `r`; `counters` (Go's read-only walk, `_map_walk`) replace the resolved ones."""
        if counters is None:
            counters = r.sorted if sorted_semantics else r.memory
        return cls(sorted_semantics=sorted_semantics, base=SortedBase.of(r, owner), counters=counters)

    @classmethod
    def from_rows(cls, rows: IdxRows, version: int, *, sorted_semantics: bool = False) -> "NeedleMap":
        """Replay an index the way Go's loader of that map kind does (in memory, no file).

        A writable map of up to `PYTHON_REPLAY_ROWS` rows is replayed row by row into the
        overlay (`catch_up`, which ends where the bulk resolve ends): a new or small volume then
        costs a server no numpy (an import of about 50 ms of CPU and 12 MB per process)."""
        if not len(rows):
            return cls(sorted_semantics=sorted_semantics)
        if not sorted_semantics and len(rows) <= PYTHON_REPLAY_ROWS:
            m = cls()
            m.catch_up(rows, version)
            return m
        from ._map_build import resolve  # numpy: loaded with the first map built, not at start-up
        from ._map_walk import walk_counters  # numpy: as above

        walk = walk_counters(rows, version) if sorted_semantics else None
        return cls.from_resolved(resolve(rows, version), sorted_semantics=sorted_semantics, counters=walk)

    @classmethod
    def from_columns(cls, cols: IdxColumns, version: int, *, sorted_semantics: bool = False) -> "NeedleMap":
        """`from_rows` for an index already parsed into `array` columns."""
        import numpy as np  # numpy: loaded with the first map built, not at start-up

        rows = IdxRows.from_columns(
            np.frombuffer(cols.keys, np.uint64), np.frombuffer(cols.offsets, np.uint64), np.frombuffer(cols.sizes, np.int32),
        )
        return cls.from_rows(rows, version, sorted_semantics=sorted_semantics)

    # queries -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def _find(self, key: int) -> tuple[int, int] | None:
        if self._ov._len:
            found = self._ov.locate(key)
            if found is not None:
                return found
        return self._base.locate(key, self.sorted_semantics)

    def get(self, key: int) -> NeedleValue | None:
        with self._lock:
            found = self._find(key)
        return None if found is None else NeedleValue(key, found[0], found[1])

    def locate(self, key: int) -> tuple[int, int] | None:
        """(offset in 8-byte units, size) of `key`, as `get` finds it, without building a
        NeedleValue (the read fast path; `_find`, inline)."""
        with self._lock:
            if self._ov._len:
                found = self._ov.locate(key)
                if found is not None:
                    return found
            return self._base.locate(key, self.sorted_semantics)

    def __contains__(self, key: int) -> bool:
        return self.locate(key) is not None

    def counters(self) -> MapCounters:
        with self._lock:
            return MapCounters(
                self.file_count, self.file_bytes, self.deletion_count, self.deletion_bytes,
                self.max_file_key, self.max_needle_end,
            )

    @property
    def base_entries(self) -> int:
        """Entries in the sorted base (the shareable part)."""
        return len(self._base)

    @property
    def overlay_entries(self) -> int:
        """Entries changed since the base was built (this process's own memory)."""
        return len(self._ov)

    def items(self) -> Iterator[NeedleValue]:
        """Ascending by key, from a snapshot of the overlay taken at the start."""
        with self._lock:
            ok, oo, os_ = self._ov.snapshot()
        base = self._base
        hide = self.sorted_semantics
        i, n_ov = 0, len(ok)
        for start in range(0, len(base), _CHUNK):
            bk = base.keys[start:start + _CHUNK].tolist()
            bo = base.offsets[start:start + _CHUNK].tolist()
            bs = base.sizes[start:start + _CHUNK].tolist()
            for k, o, s in zip(bk, bo, bs):
                while i < n_ov and ok[i] < k:
                    yield NeedleValue(ok[i], oo[i], os_[i])
                    i += 1
                if i < n_ov and ok[i] == k:
                    yield NeedleValue(k, oo[i], os_[i])
                    i += 1
                elif s >= 0 or not hide:
                    yield NeedleValue(k, o, s)
        while i < n_ov:
            yield NeedleValue(ok[i], oo[i], os_[i])
            i += 1

    def nbytes(self) -> int:
        """Bytes held in the base columns and the overlay arrays."""
        return self._base.nbytes() + self._ov.nbytes()

    # mutations ---------------------------------------------------------------------------------

    def _store(self, key: int, offset: int, size: int, old: tuple[int, int] | None) -> None:
        self._ov.set(key, offset, size)
        if old is None:
            self._len += 1

    def set(self, key: int, offset: int, size: int) -> NeedleValue | None:
        """Insert or overwrite without touching counters; returns the previous value."""
        with self._lock:
            old = self._find(key)
            self._store(key, offset, size, old)
        return None if old is None else NeedleValue(key, old[0], old[1])

    def put(self, key: int, offset: int, size: int) -> NeedleValue | None:
        """A write at runtime (Go's NeedleMap.Put + logPut)."""
        with self._lock:
            if key > self._base.top:  # not in the base: the overlay's entry is the key's (one call)
                old = self._ov.set(key, offset, size)
                if old is None:
                    self._len += 1
            else:
                old = self._find(key)
                self._store(key, offset, size, old)
            if key > self.max_file_key:
                self.max_file_key = key
            self.file_count += 1
            self.file_bytes += size
            if old is not None and old[1] > 0:
                self.deletion_count += 1
                self.deletion_bytes += old[1]
        return None if old is None else NeedleValue(key, old[0], old[1])

    def put_absent(self, key: int, offset: int, size: int) -> None:
        """`put` of a key `get` has just found absent, by a writer nothing else changes the map
        beside (a volume's appender, its write lock held, on a volume no other process writes):
        the same change without looking the key up again."""
        with self._lock:
            self._ov.set(key, offset, size)  # `_store` of a new key
            self._len += 1
            if key > self.max_file_key:
                self.max_file_key = key
            self.file_count += 1
            self.file_bytes += size

    def delete(self, key: int) -> int:
        """A delete at runtime; returns the live size it removed (0 if none)."""
        with self._lock:
            old = self._find(key)
            if old is None or old[1] < 0:
                return 0
            offset, size = old
            if self.sorted_semantics:  # Go's read-only map: a tombstone, the counters untouched
                self._ov.set(key, offset, TOMBSTONE_SIZE)
                return size
            self._ov.set(key, offset, TOMBSTONE_SIZE if size == 0 else -size)
            if size > 0:
                self.deletion_count += 1
                self.deletion_bytes += size
            return size

    def catch_up(self, rows: IdxRows, version: int) -> None:
        """Apply `.idx` rows appended after the ones this map holds (by another process, or
        since the map file was written), in file order, as Go's loader replays them: the map
        and its counters end as if the whole index had been loaded at once. (A read-only map
        applies them as runtime writes and deletes: Go's `.sdx` counters are a walk of the
        whole index, which its loader rebuilds instead.)"""
        if not len(rows):
            return
        tail = NEEDLE_HEADER_SIZE + CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0)
        with self._lock:
            for key, offset, size in rows.tuples():
                if key > self.max_file_key:
                    self.max_file_key = key
                old = self._find(key)
                if offset and size >= 0:
                    self._store(key, offset, size, old)
                    self.file_count += 1
                    self.file_bytes += size
                    if old is not None and (old[1] > 0 or (old[1] == 0 and not self.sorted_semantics)):
                        self.deletion_count += 1
                        self.deletion_bytes += old[1]
                    if size > 0:
                        t = size + tail
                        end = offset * PADDING_SIZE + t + PADDING_SIZE - t % PADDING_SIZE
                        if end > self.max_needle_end:
                            self.max_needle_end = end
                    continue
                if self.sorted_semantics:  # as a runtime delete does: the counters untouched
                    if old is not None and old[1] >= 0:
                        self._ov.set(key, old[0], TOMBSTONE_SIZE)
                    continue
                self.deletion_count += 1
                if old is not None and old[1] >= 0:
                    self.deletion_bytes += old[1]
                    self._ov.set(key, old[0], TOMBSTONE_SIZE if old[1] == 0 else -old[1])

