"""`.idx` rows: needle id u64, offset (8-byte units, 4 or 5 bytes), size i32; appended per write.

A put is `(id, offset, size >= 0)`; a delete is `(id, offset of the tombstone record, -1)`.
Offset 0 means "no record" (remote-tier deletes). The same rows, sorted by key, make `.sdx`/`.ecx`.

`columns` turns a whole index into three arrays with strided slice copies only (no per-row
Python work), which is what lets a million-row index load in tens of milliseconds.
"""

from __future__ import annotations

import dataclasses
import operator
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator
from itertools import repeat

from ._types import NEEDLE_ID_SIZE, PADDING_SIZE, TOMBSTONE_SIZE, OffsetCodec

__all__ = ["IdxEntry", "IdxCodec", "IdxColumns"]

_LITTLE = sys.byteorder == "little"
_NON_NEGATIVE = bytes(1 if b < 0x80 else 0 for b in range(256))
_ROW4 = struct.Struct(">QIi")  # a row with a 4-byte offset
_ROW5 = struct.Struct(">QIBi")  # a row with a 5-byte offset: the low word, then bits 32-39


@dataclasses.dataclass(frozen=True, slots=True)
class IdxEntry:
    key: int
    offset: int  # in 8-byte units; 0 = no record
    size: int  # int32; -1 = tombstone

    @property
    def actual_offset(self) -> int:
        return self.offset * PADDING_SIZE

    @property
    def is_put(self) -> bool:
        """What Go's map loader treats as a live write (everything else is a delete)."""
        return self.offset != 0 and self.size >= 0


@dataclasses.dataclass(frozen=True, slots=True)
class IdxColumns:
    """A parsed index as parallel arrays (row order kept), plus any torn trailing bytes."""

    keys: array  # 'Q'
    offsets: array  # 'Q', 8-byte units
    sizes: array  # 'i'
    trailing: int  # bytes after the last whole row (a torn append)
    put_mask: bytes | None = None  # 1 per row Go's loader applies as a write, 0 for a delete

    def puts(self) -> bytes:
        """The put mask: offset != 0 and size >= 0 (computed here if `columns` did not)."""
        if self.put_mask is not None:
            return self.put_mask
        n = len(self.sizes)
        if not n:
            return b""
        if min(self.sizes) >= 0 and 0 not in self.offsets:
            return b"\x01" * n
        return bytes(map(operator.and_, map(bool, self.offsets), map(operator.ge, self.sizes, repeat(0, n))))

    def __len__(self) -> int:
        return len(self.keys)

    def entry(self, i: int) -> IdxEntry:
        return IdxEntry(self.keys[i], self.offsets[i], self.sizes[i])

    def top_offset_entry(self) -> IdxEntry | None:
        """The first row with the highest offset (None when every offset is 0)."""
        top = max(self.offsets, default=0)
        return self.entry(self.offsets.index(top)) if top else None


@dataclasses.dataclass(frozen=True, slots=True)
class IdxCodec:
    offsets: OffsetCodec

    @classmethod
    def for_width(cls, width: int) -> "IdxCodec":
        return cls(OffsetCodec(width))

    @property
    def entry_size(self) -> int:
        return self.offsets.entry_size

    def encode(self, key: int, offset: int, size: int) -> bytes:
        # the bytes of the general form below, in one call
        if 0 <= key <= 0xFFFFFFFFFFFFFFFF and 0 <= offset <= 0xFFFFFFFFFF and -0x80000000 <= size <= 0x7FFFFFFF:
            width = self.offsets.width
            if width == 5:
                return _ROW5.pack(key, offset & 0xFFFFFFFF, offset >> 32, size)
            if width == 4 and offset <= 0xFFFFFFFF:
                return _ROW4.pack(key, offset, size)
        return (
            key.to_bytes(8, "big")
            + self.offsets.encode(offset)
            + (size & 0xFFFFFFFF).to_bytes(4, "big")
        )

    def tombstone(self, key: int, offset: int) -> bytes:
        return self.encode(key, offset, TOMBSTONE_SIZE)

    def decode(self, raw: bytes | memoryview) -> IdxEntry:
        w = self.offsets.width
        return IdxEntry(
            int.from_bytes(raw[0:8], "big"),
            self.offsets.decode(raw[8:8 + w]),
            int.from_bytes(raw[8 + w:12 + w], "big", signed=True),
        )

    def iter_rows(self, buf: bytes) -> Iterable[tuple[int, int, int]]:
        """`iter_entries` as (key, offset, size) tuples, a torn trailing row likewise ignored:
        the rows another process appended, which a shared volume applies before each read or
        append (no per-row object)."""
        row = _ROW4 if self.offsets.width == 4 else _ROW5
        if len(buf) == row.size:  # one row (a catch-up's usual): no iterator objects
            if row is _ROW4:
                return (row.unpack(buf),)
            key, low, high, size = row.unpack(buf)
            return ((key, low | high << 32, size),)
        whole = len(buf) - len(buf) % row.size
        rows = row.iter_unpack(buf if whole == len(buf) else memoryview(buf)[:whole])
        if row is _ROW4:
            return rows
        return ((key, low | high << 32, size) for key, low, high, size in rows)

    def iter_entries(self, buf: bytes | memoryview) -> Iterator[IdxEntry]:
        """Every whole row; a torn trailing row is ignored (as Go's WalkIndexFile does)."""
        es = self.entry_size
        mv = memoryview(buf)
        for start in range(0, len(mv) - es + 1, es):
            yield self.decode(mv[start:start + es])

    def columns(self, buf: bytes) -> IdxColumns:
        es = self.entry_size
        w = self.offsets.width
        n = len(buf) // es
        trailing = len(buf) - n * es
        if trailing:
            buf = buf[: n * es]
        keys = array("Q")
        offsets = array("Q")
        sizes = array("i")
        if n:
            # Build little-endian native words by scattering each big-endian byte column.
            kb = bytearray(8 * n)
            for j in range(8):
                kb[7 - j::8] = buf[j::es]
            ob = bytearray(8 * n)
            for j in range(4):  # low word, big-endian in the file
                ob[3 - j::8] = buf[NEEDLE_ID_SIZE + j::es]
            if w == 5:
                ob[4::8] = buf[NEEDLE_ID_SIZE + 4::es]
            sb = bytearray(4 * n)
            for j in range(4):
                sb[3 - j::4] = buf[NEEDLE_ID_SIZE + w + j::es]
            keys.frombytes(kb)
            offsets.frombytes(ob)
            sizes.frombytes(sb)
            if not _LITTLE:
                keys.byteswap()
                offsets.byteswap()
                sizes.byteswap()
            # sign bit of each size, straight from the bytes: 1 where size >= 0
            put_mask = buf[NEEDLE_ID_SIZE + w::es].translate(_NON_NEGATIVE)
            if 0 in offsets:
                put_mask = bytes(map(operator.and_, put_mask, map(bool, offsets)))
        else:
            put_mask = b""
        return IdxColumns(keys, offsets, sizes, trailing, put_mask)

    def encode_columns(self, keys: array, offsets: array, sizes: array) -> bytes:
        """Rows for parallel arrays (used for sorted `.sdx`-style output and tests)."""
        return b"".join(self.encode(k, o, s) for k, o, s in zip(keys, offsets, sizes))
