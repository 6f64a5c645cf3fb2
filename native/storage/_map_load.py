"""Loading a volume's needle map: from its map file when one still matches the `.idx`, else
resolved in bulk from the `.idx` (and the map file written for the next load and for the other
processes serving the volume).

- small indexes (under `MapPolicy.file_min_rows`) are resolved in memory every time: a few
  milliseconds, and no extra file beside thousands of small volumes;
- a valid map file covering the whole `.idx` is the map as it stands (no row parsed);
- rows appended after the map file was written (by writes since, or by another process) are
  replayed on top (`NeedleMap.catch_up`) while they are few; past `replay_max_rows`, or for a
  read-only map, the map is resolved again and the file rewritten;
- a read-only map's counters are always Go's walk of the whole index (`_map_walk`), which the
  map file keeps for the prefix it covers once a read-only load has run it (`record_walk`).

numpy is imported only to resolve (and to walk a read-only map's index): a writable map read
from a current map file, its tail replayed, costs the process no numpy.
"""

from __future__ import annotations

import os

from ._idx_rows import IdxRows
from ._map_file import open_map_file, record_walk, write_map_file
from ._map_types import MapCounters, MapPolicy
from ._needle_map import NeedleMap

__all__ = ["MapPolicy", "load_needle_map"]


def load_needle_map(
    rows: IdxRows,
    version: int,
    *,
    sorted_semantics: bool,
    map_path: str | None,
    may_write: bool,
    policy: MapPolicy = MapPolicy(),
) -> NeedleMap:
    """The map of a volume whose whole `.idx` is `rows` (raw bytes behind them).

    `map_path` is where its map file lives (None: no map file); `may_write` False (a read-only
    view of another process's volume) only ever reads one.
    """
    if map_path is None or not policy.use_files or not rows.buf:
        return NeedleMap.from_rows(rows, version, sorted_semantics=sorted_semantics)
    if len(rows) < policy.file_min_rows:
        if may_write:
            _remove_stale(map_path)
        return NeedleMap.from_rows(rows, version, sorted_semantics=sorted_semantics)
    mf = open_map_file(map_path, rows.buf, rows.entry_size, version)
    if mf is not None:
        tail = rows.after(mf.idx_bytes)
        if not len(tail) or (not sorted_semantics and len(tail) <= policy.replay_max_rows):
            walk = None
            if sorted_semantics:  # the file covers the whole index: its walk, once recorded, is Go's
                walk = mf.walk
                if walk is None:
                    walk = _walk(rows, version)
                    if may_write:
                        record_walk(map_path, mf, walk)
            m = NeedleMap.from_resolved(mf.resolved, sorted_semantics=sorted_semantics, owner=mf.mapping, counters=walk)
            m.catch_up(tail, version)
            return m
    # a read-only map's counters are Go's walk of the whole index, whatever holds its entries
    walk = _walk(rows, version) if sorted_semantics else None
    from ._map_build import resolve  # numpy: loaded with the first bulk resolve

    resolved = resolve(rows, version)
    if may_write:
        written = write_map_file(
            map_path, resolved, idx_buf=rows.buf, idx_bytes=rows.whole_bytes, entry_size=rows.entry_size, version=version,
            walk=walk,
        )
        if written is not None:
            return NeedleMap.from_resolved(
                written.resolved, sorted_semantics=sorted_semantics, owner=written.mapping, counters=walk,
            )
    return NeedleMap.from_resolved(resolved, sorted_semantics=sorted_semantics, counters=walk)


def _walk(rows: IdxRows, version: int) -> MapCounters:
    from ._map_walk import walk_counters  # numpy: the walk is a bulk replay

    return walk_counters(rows, version)


def _remove_stale(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
