"""What a needle map answers: one entry (`NeedleValue`) and Go's counters (`MapCounters`), and
the resolved columns a map's base is made of (`Resolved`).

Kept apart from the map so that the bulk builder (`_map_build`), the map file (`_map_file`) and
the map itself (`_needle_map`) share them without importing one another in a circle, and so
that a volume, and a map read from its map file, need no numpy (which loads with the first bulk
resolve).
"""

from __future__ import annotations

import dataclasses

from typing import Any

from ._types import PADDING_SIZE

__all__ = ["NeedleValue", "MapCounters", "EMPTY_COUNTERS", "MapPolicy", "Resolved"]


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


EMPTY_COUNTERS = MapCounters(0, 0, 0, 0, 0, 0)


class Resolved:
    """A replayed index: one entry per id, ascending, and Go's counters for both map kinds.
    The columns are numpy arrays from `_map_build.resolve`, or memoryviews over a mapped map
    file (`_map_file`): anything with the buffer protocol, `len` and `itemsize`. (A plain
    class: this module loads at start-up, where each dataclass costs about a millisecond.)"""

    __slots__ = ("keys", "offsets", "sizes", "memory", "sorted", "deleted")

    def __init__(self, keys: Any, offsets: Any, sizes: Any, memory: MapCounters, sorted: MapCounters, deleted: int) -> None:
        self.keys = keys  # uint64, strictly ascending
        self.offsets = offsets  # uint32 when every offset fits, else uint64; 8-byte units
        self.sizes = sizes  # int32; negative: deleted, at its last put's offset
        self.memory = memory  # a writable volume's counters (Go's doLoading over CompactMap)
        self.sorted = sorted  # a volume loaded read-only (Go's .sdx map and its reverse walk)
        self.deleted = deleted  # entries with a negative size (absent from the read-only map)

    def __len__(self) -> int:
        return len(self.keys)


@dataclasses.dataclass(frozen=True, slots=True)
class MapPolicy:
    """When a volume's map goes through a map file (see `_map_load`): indexes of `file_min_rows`
    rows or more; rows past a valid file replayed up to `replay_max_rows`, else resolved again."""

    file_min_rows: int = 1 << 16
    replay_max_rows: int = 1 << 15
    use_files: bool = True
