"""The needle map's mutable part: entries written since the sorted base was built.

Sorted blocks of `array('Q')` keys, `array('Q')` offsets (8-byte units) and `array('i')` sizes,
up to `2 * BLOCK` entries each, plus an array of block maxima (about 20 bytes per entry, against
~200 for a dict of tuples). A lookup bisects the maxima, then one block. New keys above the
current maximum (the usual case: the master hands out increasing ids) are appended; anything
else is inserted into its block, which splits when it grows past `2 * BLOCK`.

Not thread-safe on its own: `NeedleMap` calls it under its lock.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

__all__ = ["BlockMap", "BLOCK"]

BLOCK = 2048


class BlockMap:
    """Sorted id -> (offset, size) blocks; no counters, no semantics."""

    __slots__ = ("_keys", "_offs", "_sizes", "_maxes", "_len")

    def __init__(self) -> None:
        self._keys: list[array] = []
        self._offs: list[array] = []
        self._sizes: list[array] = []
        self._maxes = array("Q")
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def locate(self, key: int) -> tuple[int, int] | None:
        maxes = self._maxes
        if not maxes or key > maxes[-1]:  # above every key (a new id, the usual write): no bisect
            return None
        bi = bisect_left(maxes, key)
        kb = self._keys[bi]
        j = bisect_left(kb, key)
        if j < len(kb) and kb[j] == key:
            return self._offs[bi][j], self._sizes[bi][j]
        return None

    def set(self, key: int, offset: int, size: int) -> tuple[int, int] | None:
        """Insert or overwrite; the (offset, size) overwritten, None when the key was new here."""
        maxes = self._maxes
        bi = len(maxes) if not maxes or key > maxes[-1] else bisect_left(maxes, key)
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
            ob, sb = self._offs[bi], self._sizes[bi]
            old = ob[j], sb[j]
            ob[j] = offset
            sb[j] = size
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

    def snapshot(self) -> tuple[array, array, array]:
        """Every entry, ascending, as three flat arrays (copies)."""
        keys, offs, sizes = array("Q"), array("Q"), array("i")
        for kb, ob, sb in zip(self._keys, self._offs, self._sizes):
            keys += kb
            offs += ob
            sizes += sb
        return keys, offs, sizes

    def nbytes(self) -> int:
        """Bytes held in the arrays."""
        total = self._maxes.buffer_info()[1] * self._maxes.itemsize
        for blocks in (self._keys, self._offs, self._sizes):
            for a in blocks:
                total += len(a) * a.itemsize
        return total
