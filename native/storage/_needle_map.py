"""The in-memory needle map: needle id -> (offset, size), plus Go's file/deletion counters.

Layout: keys, offsets and sizes live in sorted blocks of `array('Q')`, `array('Q')` and
`array('i')` (about 20 bytes per entry, against ~200 for a dict of tuples). A lookup bisects a
small array of block maxima, then the block. New keys above the current maximum (the usual
case: the master hands out increasing ids) are appended; anything else is inserted into its
block, which splits when it grows past `2 * BLOCK`.

Loading replays an `.idx` with C-level bulk operations only (see `NeedleMap.from_columns`):
a volume whose ids only ever grew and that has no deletes needs no per-row Python code at all,
and the general case touches in Python only the rows of ids that were overwritten or deleted.

Two sets of semantics, both Go's:
- *memory* (a writable volume, Go's CompactMap): a delete keeps the old offset with a negated
  size (0 becomes -1), so `read_deleted` can still find the data; counters as `doLoading`.
- *sorted* (a volume loaded read-only, Go's SortedFileNeedleMap over `.sdx`): ids whose last row
  is a delete are gone, counters come from Go's reverse index walk, and deletes only flip the
  entry to a tombstone without touching the counters.
"""

from __future__ import annotations

import dataclasses
import operator
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate, compress, islice, repeat

from ._idx import IdxColumns
from ._types import CHECKSUM_SIZE, NEEDLE_HEADER_SIZE, PADDING_SIZE, TIMESTAMP_SIZE, TOMBSTONE_SIZE, VERSION3

__all__ = ["NeedleMap", "MapCounters", "NeedleValue"]

BLOCK = 2048
_FLIP = bytes((1,)) + bytes(255)  # 0 -> 1, anything else -> 0


@dataclasses.dataclass(frozen=True, slots=True)
class NeedleValue:
    key: int
    offset: int  # 8-byte units
    size: int  # negative when deleted

    @property
    def actual_offset(self) -> int:
        return self.offset * PADDING_SIZE

    @property
    def is_deleted(self) -> bool:
        return self.size < 0


@dataclasses.dataclass(frozen=True, slots=True)
class MapCounters:
    """What a heartbeat and `/status` report, counted exactly as Go counts them."""

    file_count: int
    file_bytes: int  # "content size": every live put ever applied, overwrites included
    deletion_count: int
    deletion_bytes: int
    max_file_key: int
    max_needle_end: int  # highest offset+record length among live rows seen at load


class NeedleMap:
    """Sorted-block map with Go's counters. Thread-safe: one lock guards every operation."""

    __slots__ = (
        "_keys", "_offs", "_sizes", "_maxes", "_len", "_lock", "sorted_semantics",
        "file_count", "file_bytes", "deletion_count", "deletion_bytes", "max_file_key",
        "max_needle_end",
    )

    def __init__(self, *, sorted_semantics: bool = False) -> None:
        self._keys: list[array] = []
        self._offs: list[array] = []
        self._sizes: list[array] = []
        self._maxes = array("Q")
        self._len = 0
        self._lock = threading.Lock()
        self.sorted_semantics = sorted_semantics
        self.file_count = 0
        self.file_bytes = 0
        self.deletion_count = 0
        self.deletion_bytes = 0
        self.max_file_key = 0
        self.max_needle_end = 0

    # queries -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def get(self, key: int) -> NeedleValue | None:
        with self._lock:
            bi = bisect_left(self._maxes, key)
            if bi == len(self._maxes):
                return None
            kb = self._keys[bi]
            j = bisect_left(kb, key)
            if j < len(kb) and kb[j] == key:
                return NeedleValue(key, self._offs[bi][j], self._sizes[bi][j])
            return None

    def locate(self, key: int) -> tuple[int, int] | None:
        """(offset in 8-byte units, size) of `key`, as `get` finds it, without building a
        NeedleValue (the read fast path)."""
        with self._lock:
            bi = bisect_left(self._maxes, key)
            if bi == len(self._maxes):
                return None
            kb = self._keys[bi]
            j = bisect_left(kb, key)
            if j < len(kb) and kb[j] == key:
                return self._offs[bi][j], self._sizes[bi][j]
            return None

    def __contains__(self, key: int) -> bool:
        return self.get(key) is not None

    def counters(self) -> MapCounters:
        with self._lock:
            return MapCounters(
                self.file_count, self.file_bytes, self.deletion_count, self.deletion_bytes,
                self.max_file_key, self.max_needle_end,
            )

    def items(self) -> Iterator[NeedleValue]:
        """Ascending by key; a snapshot per block, so concurrent writes do not break iteration."""
        bi = 0
        while True:
            with self._lock:
                if bi >= len(self._keys):
                    return
                block = (array("Q", self._keys[bi]), array("Q", self._offs[bi]), array("i", self._sizes[bi]))
                last = self._maxes[bi]
            for k, o, s in zip(*block):
                yield NeedleValue(k, o, s)
            with self._lock:
                # blocks may have split or grown meanwhile: continue after the last key seen
                bi = bisect_left(self._maxes, last)
                if bi < len(self._maxes) and self._maxes[bi] == last:
                    bi += 1

    def nbytes(self) -> int:
        """Bytes held in the arrays (allocated capacity is what tracemalloc measures)."""
        total = self._maxes.buffer_info()[1] * self._maxes.itemsize
        for blocks in (self._keys, self._offs, self._sizes):
            for a in blocks:
                total += len(a) * a.itemsize
        return total

    # mutations ---------------------------------------------------------------------------------

    def set(self, key: int, offset: int, size: int) -> NeedleValue | None:
        """Insert or overwrite without touching counters; returns the previous value."""
        with self._lock:
            return self._set(key, offset, size)

    def put(self, key: int, offset: int, size: int) -> NeedleValue | None:
        """A write at runtime (Go's NeedleMap.Put + logPut)."""
        with self._lock:
            old = self._set(key, offset, size)
            if key > self.max_file_key:
                self.max_file_key = key
            self.file_count += 1
            self.file_bytes += size
            if old is not None and old.size > 0:
                self.deletion_count += 1
                self.deletion_bytes += old.size
            return old

    def delete(self, key: int) -> int:
        """A delete at runtime; returns the live size it removed (0 if none)."""
        with self._lock:
            bi = bisect_left(self._maxes, key)
            if bi == len(self._maxes):
                return 0
            kb = self._keys[bi]
            j = bisect_left(kb, key)
            if j == len(kb) or kb[j] != key:
                return 0
            sizes = self._sizes[bi]
            old = sizes[j]
            if old < 0:
                return 0
            if self.sorted_semantics:
                sizes[j] = TOMBSTONE_SIZE
                return old
            sizes[j] = TOMBSTONE_SIZE if old == 0 else -old
            if old > 0:
                self.deletion_count += 1
                self.deletion_bytes += old
            return old

    def _set(self, key: int, offset: int, size: int) -> NeedleValue | None:
        maxes = self._maxes
        bi = bisect_left(maxes, key)
        if bi == len(maxes):
            if self._keys and len(self._keys[-1]) < 2 * BLOCK:
                self._keys[-1].append(key)
                self._offs[-1].append(offset)
                self._sizes[-1].append(size)
                maxes[-1] = key
            else:
                self._keys.append(array("Q", (key,)))
                self._offs.append(array("Q", (offset,)))
                self._sizes.append(array("i", (size,)))
                maxes.append(key)
            self._len += 1
            return None
        kb = self._keys[bi]
        j = bisect_left(kb, key)
        if j < len(kb) and kb[j] == key:
            old = NeedleValue(key, self._offs[bi][j], self._sizes[bi][j])
            self._offs[bi][j] = offset
            self._sizes[bi][j] = size
            return old
        kb.insert(j, key)
        self._offs[bi].insert(j, offset)
        self._sizes[bi].insert(j, size)
        self._len += 1
        if len(kb) > 2 * BLOCK:
            self._split(bi)
        return None

    def _split(self, bi: int) -> None:
        kb, ob, sb = self._keys[bi], self._offs[bi], self._sizes[bi]
        half = len(kb) // 2
        self._keys[bi:bi + 1] = [kb[:half], kb[half:]]
        self._offs[bi:bi + 1] = [ob[:half], ob[half:]]
        self._sizes[bi:bi + 1] = [sb[:half], sb[half:]]
        self._maxes.insert(bi, kb[half - 1])

    # loading -----------------------------------------------------------------------------------

    @classmethod
    def from_sorted(cls, keys: array, offsets: array, sizes: array, *, sorted_semantics: bool = False) -> "NeedleMap":
        """Adopt strictly ascending columns as the map's blocks (no counters)."""
        m = cls(sorted_semantics=sorted_semantics)
        n = len(keys)
        for start in range(0, n, BLOCK):
            m._keys.append(keys[start:start + BLOCK])
            m._offs.append(offsets[start:start + BLOCK])
            m._sizes.append(sizes[start:start + BLOCK])
            m._maxes.append(keys[min(start + BLOCK, n) - 1])
        m._len = n
        return m

    @classmethod
    def from_columns(cls, cols: IdxColumns, version: int, *, sorted_semantics: bool = False) -> "NeedleMap":
        """Replay an index (rows in file order) the way Go's loader of that map kind does.

        Three paths, fastest first: ids strictly ascending with no deletes (adopt the columns);
        puts strictly ascending (deletes matched with set lookups); anything else (one stable
        sort by id, then pairwise comparisons of neighbouring rows).
        """
        K, O, S = cols.keys, cols.offsets, cols.sizes
        n = len(K)
        if n == 0:
            return cls(sorted_semantics=sorted_semantics)
        is_put = cols.puts()
        n_put = is_put.count(1)
        if n_put == n and _strictly_ascending(K):
            m = cls.from_sorted(K, O, S, sorted_semantics=sorted_semantics)
            if sorted_semantics:
                m._count_sorted_unique(S)
            else:
                m.file_count, m.file_bytes = n, sum(S)
            m.max_file_key = K[-1]
            m.max_needle_end = _max_needle_end(O, S, version)
            return m
        if not sorted_semantics:
            loaded = cls._load_ascending_puts(K, O, S, is_put, n_put, version)
            if loaded is None:
                loaded = cls._load_base_and_replay(K, O, S, is_put, n_put, version)
            if loaded is not None:
                return loaded
        m = cls._load_by_sort(K, O, S, is_put, sorted_semantics)
        m.max_file_key = max(K)
        m.max_needle_end = _max_needle_end(O, S, version)
        return m

    def _count_sorted_unique(self, S: array) -> None:
        valid_total, valid_rows = _valid_sum(S)
        self.file_count = len(S)
        self.file_bytes = valid_total
        self.deletion_count = len(S) - valid_rows
        self.deletion_bytes = 0

    @classmethod
    def _load_ascending_puts(
        cls, K: array, O: array, S: array, is_put: bytes, n_put: int, version: int
    ) -> "NeedleMap | None":
        """Memory semantics when every id is put once, in ascending order; None otherwise."""
        not_put = is_put.translate(_FLIP)
        rows_del = _positions(not_put, len(K) - n_put)
        KP, OP, SP = _keep_rows(K, O, S, is_put, rows_del, sparse=len(rows_del) * 8 < len(K))
        if not _strictly_ascending(KP):
            return None
        file_bytes = sum(SP)
        max_needle_end = _max_needle_end(OP, SP, version, b"\x01" * len(OP))
        KD = list(map(K.__getitem__, rows_del))
        deletes = len(KD)
        deleted_bytes = 0
        max_key = KP[-1] if KP else 0
        if deletes:
            max_key = max(max_key, max(KD))
            dkeys = set(KD)
            # positions (in KP) of the ids that have delete rows
            pos = list(compress(range(n_put), map(dkeys.__contains__, KP)))
            where = dict(zip(map(KP.__getitem__, pos), pos))
            # a delete row r (the i-th delete) follows the put at position p iff the puts
            # before r, r - i, are more than p
            puts_before = map(operator.sub, rows_del, range(deletes))
            p_of = [where.get(k, -1) for k in KD]
            hits = set(compress(p_of, map(operator.lt, p_of, puts_before)))
            hits.discard(-1)
            for p in hits:  # the first delete after a put removes it; later ones only count
                sz = SP[p]
                deleted_bytes += sz
                SP[p] = TOMBSTONE_SIZE if sz == 0 else -sz
        m = cls.from_sorted(KP, OP, SP)
        m.file_count = n_put
        m.file_bytes = file_bytes
        m.deletion_count = deletes
        m.deletion_bytes = deleted_bytes
        m.max_file_key = max_key
        m.max_needle_end = max_needle_end
        return m

    @classmethod
    def _load_base_and_replay(
        cls, K: array, O: array, S: array, is_put: bytes, n_put: int, version: int
    ) -> "NeedleMap | None":
        """Memory semantics for "mostly ascending" indexes.

        The puts that raise the running maximum id form the base, adopted in bulk. Every other
        row (overwrites, deletes, stragglers) is replayed in file order on a small dict of the
        ids it touches, then written back. Sound because a late put's id never exceeds the
        running maximum, so it always follows its id's base row; a delete whose id exceeds the
        running maximum precedes any put of that id and is a no-op, as in Go. None when too
        many rows are out of order for this to pay.
        """
        n = len(K)
        # rows whose id exceeds every id before them (deletes included: a delete above the
        # running maximum cannot follow a put of its id, so it is a no-op either way)
        above = bytes(map(operator.gt, K, accumulate(K, max, initial=0)))
        base = _and(is_put, above)
        n_base = base.count(1)
        late = _positions(base.translate(_FLIP), n - n_base)
        if len(late) * 3 > n:
            return None
        KB, OB, SB = _keep_rows(K, O, S, base, late, sparse=len(late) * 4 < n)
        late_keys = set(map(K.__getitem__, late))
        pos = list(compress(range(n_base), map(late_keys.__contains__, KB)))
        where = dict(zip(map(KB.__getitem__, pos), pos))
        state = dict(zip(where, zip(map(OB.__getitem__, pos), map(SB.__getitem__, pos))))
        file_count, file_bytes = n_base, sum(SB)
        deletion_count = deletion_bytes = 0
        get = state.get
        for i in late:
            k = K[i]
            if is_put[i]:
                sz = S[i]
                file_count += 1
                file_bytes += sz
                old = get(k)
                if old is not None and old[1] >= 0:
                    deletion_count += 1
                    deletion_bytes += old[1]
                state[k] = (O[i], sz)
                continue
            deletion_count += 1
            if above[i]:
                continue  # nothing with this id was put yet
            old = get(k)
            if old is not None and old[1] >= 0:
                deletion_bytes += old[1]
                state[k] = (old[0], TOMBSTONE_SIZE if old[1] == 0 else -old[1])
        new_keys = []
        for k, (o, sz) in state.items():
            p = where.get(k)
            if p is None:
                new_keys.append((k, o, sz))
            else:
                OB[p] = o
                SB[p] = sz
        if len(new_keys) * 20 > n:
            return None
        m = cls.from_sorted(KB, OB, SB)
        for k, o, sz in new_keys:
            m._set(k, o, sz)
        m.file_count, m.file_bytes = file_count, file_bytes
        m.deletion_count, m.deletion_bytes = deletion_count, deletion_bytes
        m.max_file_key = max(K)
        m.max_needle_end = _max_needle_end(O, S, version, is_put)
        return m

    @classmethod
    def _load_by_sort(cls, K: array, O: array, S: array, is_put: bytes, sorted_semantics: bool) -> "NeedleMap":
        n = len(K)
        order = sorted(range(n), key=K.__getitem__)  # stable: a key's rows stay in file order
        Ks = array("Q", map(K.__getitem__, order))
        Os = array("Q", map(O.__getitem__, order))
        Ss = array("i", map(S.__getitem__, order))
        Ps = bytes(map(is_put.__getitem__, order))
        same_next = bytes(map(operator.eq, Ks, islice(Ks, 1, None))) + b"\x00"
        is_last = bytes(map(operator.not_, same_next))
        m = cls(sorted_semantics=sorted_semantics)
        if sorted_semantics:
            valid = bytes(map(operator.gt, Ss, repeat(0, n)))
            m.file_count = n
            m.file_bytes = sum(compress(Ss, valid))
            n_keys = sum(is_last)
            m.deletion_count = (n - n_keys) + (n_keys - sum(compress(valid, is_last)))
            m.deletion_bytes = sum(compress(Ss, map(operator.and_, valid, same_next)))
            keep = bytes(map(operator.and_, is_last, Ps))
            final = cls.from_sorted(
                array("Q", compress(Ks, keep)), array("Q", compress(Os, keep)),
                array("i", compress(Ss, keep)), sorted_semantics=True,
            )
        else:
            n_put = sum(Ps)
            m.file_count = n_put
            m.file_bytes = sum(compress(Ss, Ps))
            m.deletion_bytes = sum(compress(Ss, map(operator.and_, Ps, same_next)))
            put_then_put = sum(map(operator.and_, map(operator.and_, same_next, Ps), islice(Ps, 1, None)))
            m.deletion_count = (n - n_put) + put_then_put
            fk = array("Q", compress(Ks, is_last))
            fo = array("Q", compress(Os, is_last))
            fs = array("i", compress(Ss, is_last))
            last_is_put = bytes(compress(Ps, is_last))
            if not all(last_is_put):
                # ids whose last row is a delete keep their last put's offset, size negated
                last_rows = list(compress(range(n), is_last))
                absent: set[int] = set()
                for t in compress(range(len(fk)), map(operator.not_, last_is_put)):
                    j = last_rows[t]
                    key = Ks[j]
                    i = j - 1
                    while i >= 0 and Ks[i] == key and not Ps[i]:
                        i -= 1
                    if i >= 0 and Ks[i] == key:
                        fo[t] = Os[i]
                        fs[t] = TOMBSTONE_SIZE if Ss[i] == 0 else -Ss[i]
                    else:
                        absent.add(t)
                if absent:
                    keep = bytes(t not in absent for t in range(len(fk)))
                    fk = array("Q", compress(fk, keep))
                    fo = array("Q", compress(fo, keep))
                    fs = array("i", compress(fs, keep))
            final = cls.from_sorted(fk, fo, fs)
        final.file_count, final.file_bytes = m.file_count, m.file_bytes
        final.deletion_count, final.deletion_bytes = m.deletion_count, m.deletion_bytes
        return final


def _keep_rows(K: array, O: array, S: array, keep: bytes, dropped: list[int], *, sparse: bool) -> tuple[array, array, array]:
    """The columns' rows marked in `keep`; `dropped` lists the others' positions, ascending.
    When they are `sparse`, the runs between them are copied whole (a memcpy per run),
    else every row is filtered through the mask."""
    if not sparse:
        return array("Q", compress(K, keep)), array("Q", compress(O, keep)), array("i", compress(S, keep))
    KK, OK, SK = array("Q"), array("Q"), array("i")
    prev = 0
    for r in dropped + [len(K)]:
        if r > prev:
            KK += K[prev:r]
            OK += O[prev:r]
            SK += S[prev:r]
        prev = r + 1
    return KK, OK, SK


def _valid_sum(S: array) -> tuple[int, int]:
    """(sum of sizes > 0, number of them)."""
    if not len(S):
        return 0, 0
    if min(S) > 0:
        return sum(S), len(S)
    mask = bytes(map(operator.gt, S, repeat(0, len(S))))
    return sum(compress(S, mask)), sum(mask)


def _and(a: bytes, b: bytes) -> bytes:
    """Bytewise AND of two 0/1 masks, as one big-integer operation."""
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _positions(mask: bytes, count: int) -> list[int]:
    """Indices of the 1 bytes in `mask` (`count` of them), found by C-level searches."""
    if count * 16 < len(mask):
        out = []
        find = mask.find
        i = find(1)
        while i >= 0:
            out.append(i)
            i = find(1, i + 1)
        return out
    return list(compress(range(len(mask)), mask))


def _strictly_ascending(K: array) -> bool:
    return all(map(operator.lt, K, islice(K, 1, None)))


def _max_needle_end(O: array, S: array, version: int, is_put: bytes | None = None) -> int:
    """max(offset + record length) over rows with data (Go's MaximumNeedleEnd).

    A record ends at most `reach = max(S) + 36` bytes after its offset, so once the best end
    found among rows with offset above L is at least L*8 + reach, no row at or below L can beat
    it. Start L just under the highest offset holding data and lower it only when needed:
    normally one C-level filter that yields a handful of rows.
    """
    n = len(O)
    if not n:
        return 0
    if is_put is not None:
        # the highest put; if it holds no data the window below widens until one does
        top = max(compress(O, is_put), default=0)
        if top == 0:
            return 0
    elif min(S) > 0 and 0 not in O:
        top = max(O)
    else:
        has_data = bytes(map(operator.and_, map(bool, O), map(operator.gt, S, repeat(0, n))))
        if not any(has_data):
            return 0
        top = max(compress(O, has_data))
    tail = CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0) + NEEDLE_HEADER_SIZE
    reach = max(S) + tail + PADDING_SIZE
    low = top - reach // PADDING_SIZE - 2  # examine rows with offset (units) > low
    examined_above: int | None = None
    best = 0
    while True:
        for i in compress(range(n), map(operator.gt, O, repeat(low, n))):
            o = O[i]
            if examined_above is not None and o > examined_above:
                continue
            sz = S[i]
            if o and sz > 0:
                t = sz + tail
                end = o * PADDING_SIZE + t + PADDING_SIZE - t % PADDING_SIZE
                if end > best:
                    best = end
        if low < 0 or best >= low * PADDING_SIZE + reach:
            return best
        examined_above = low
        low = (best - reach) // PADDING_SIZE - 1 if best else -1
