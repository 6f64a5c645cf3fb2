"""A whole `.idx` as rows in file order, read only as far as its user needs.

A restart whose map file still matches the index reads a handful of rows (the last one for the
integrity check, the few appended since the file was written), so the rows are kept as the raw
bytes and read with `struct` there; numpy parses them into columns only for a bulk resolve
(`columns`, imported then), which is what keeps numpy out of a process whose maps are current.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._idx import IdxCodec, IdxEntry
from ._types import NEEDLE_ID_SIZE, SIZE_SIZE

if TYPE_CHECKING:
    import numpy as np

__all__ = ["IdxRows"]

_ROW4 = struct.Struct(">QIi")  # a row with a 4-byte offset
_ROW5 = struct.Struct(">QIBi")  # a row with a 5-byte offset: the low word, then bits 32-39


class IdxRows:
    """A raw `.idx` read as rows in file order; a torn trailing row is left out (and counted in
    `trailing`), as Go's index walk leaves it. Columns are parsed (with numpy) on first use."""

    __slots__ = ("buf", "width", "entry_size", "count", "trailing", "_cols")

    def __init__(self, buf: bytes, width: int) -> None:
        self.buf = buf
        self.width = width
        self.entry_size = NEEDLE_ID_SIZE + width + SIZE_SIZE
        self.count = len(buf) // self.entry_size
        self.trailing = len(buf) - self.count * self.entry_size
        self._cols: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_columns(cls, keys: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, width: int = 5) -> "IdxRows":
        """Rows already in columns (no raw bytes behind them)."""
        import numpy as np  # numpy: columns come from a bulk resolve, which has loaded it

        rows = cls(b"", width)
        rows.count = len(keys)
        rows._cols = (
            np.ascontiguousarray(keys, np.uint64), np.ascontiguousarray(offsets, np.uint64),
            np.ascontiguousarray(sizes, np.int32),
        )
        return rows

    def __len__(self) -> int:
        return self.count

    @property
    def whole_bytes(self) -> int:
        """Bytes of the whole rows."""
        return self.count * self.entry_size

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keys u64, offsets in 8-byte units, sizes i32), native byte order; offsets are u32
        while every one fits (volumes under 32 GiB), else u64."""
        if self._cols is None:
            from ._map_build import parse_columns  # numpy: loaded with the first bulk resolve

            self._cols = parse_columns(self.buf, self.width, self.count)
        return self._cols

    def tuples(self) -> Iterable[tuple[int, int, int]]:
        """(key, offset, size) per row, in file order, without numpy: for the few rows a map
        file does not cover (`NeedleMap.catch_up`)."""
        if self._cols is not None and not self.buf:
            return zip(*(c.tolist() for c in self._cols))
        buf = self.buf if self.trailing == 0 else memoryview(self.buf)[:self.whole_bytes]
        if self.width == 4:
            return _ROW4.iter_unpack(buf)
        return ((key, low | high << 32, size) for key, low, high, size in _ROW5.iter_unpack(buf))

    def entry(self, i: int) -> IdxEntry:
        if i < 0:
            i += self.count
        if self._cols is not None and not self.buf:
            k, o, s = self._cols
            return IdxEntry(int(k[i]), int(o[i]), int(s[i]))
        es, w = self.entry_size, self.width
        raw = self.buf[i * es:(i + 1) * es]
        low = int.from_bytes(raw[8:12], "big")
        offset = low if w == 4 else low | (raw[12] << 32)
        return IdxEntry(int.from_bytes(raw[0:8], "big"), offset, int.from_bytes(raw[8 + w:12 + w], "big", signed=True))

    def top_offset_entry(self) -> IdxEntry | None:
        """The first row with the highest offset (None when every offset is 0). Parsed columns
        answer with numpy; raw bytes with `array` columns (no numpy for an index whose last row
        is not its tail, as `weed fix` writes them)."""
        if not self.count:
            return None
        if self._cols is not None:
            offsets = self._cols[1]
            i = int(offsets.argmax())
            return self.entry(i) if offsets[i] else None
        return IdxCodec.for_width(self.width).columns(self.buf).top_offset_entry()

    def after(self, start_bytes: int) -> "IdxRows":
        """The whole rows from byte `start_bytes` (a row boundary) on."""
        if self._cols is not None and not self.buf:
            first = start_bytes // self.entry_size
            return IdxRows.from_columns(*(c[first:] for c in self._cols), width=self.width)
        return IdxRows(self.buf[start_bytes:self.whole_bytes], self.width)
