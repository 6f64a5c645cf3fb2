"""Which side owns a volume in mixed mode: the folder its files are in (files only, no serving).

Mixed mode serves each volume from exactly one side. Go loads every volume it finds in a `-dir`
folder `D` (at start and at every restart), and skips sub-folders; so a volume owned by native
keeps its files in `D/.weedpy-native/` (and its index files in `I/.weedpy-native/` for a
`-dir.idx` folder `I`), where Go never looks, and a volume owned by Go keeps them in `D`. A move
renames the files between the two within one filesystem: nothing is copied and a file is never
in both places, so whatever crashes, each side opens only its own folder.

A move is recorded in a journal (`D0/.weedpy-move.json`, `D0` the first `-dir`) written and
synced before anything changes and removed when the move is done; `recover` resolves one left by
a crash (before either side opens its folders): unless it says `done`, the move is undone (every
file of the volume under the new owner's folders is renamed back). The renames put the `.dat`
out of `D` first and back into `D` last, so a Go started meanwhile either loads the whole volume
or none of it (it skips a volume without a `.dat`).

`settle` moves every volume back to `D` (the layout Go and plain native mode use); every mode but
mixed settles at start, and `weedpy cutover settle` does it by hand. docs/volume-ownership.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterable
from typing import Any

from ._errors import InvalidFileId
from ._names import ALL_VOLUME_EXTS, parse_volume_base

__all__ = [
    "NATIVE_FOLDER",
    "JOURNAL_NAME",
    "GO",
    "NATIVE",
    "STEPS",
    "OwnershipError",
    "Layout",
    "volume_files",
    "owned_by_native",
    "rename_volume",
    "write_journal",
    "read_journal",
    "remove_journal",
    "recover",
    "settle",
]

NATIVE_FOLDER = ".weedpy-native"
JOURNAL_NAME = ".weedpy-move.json"
GO, NATIVE = "go", "native"
# A move's steps, in order; the journal names the last one begun.
STEPS = ("hold", "drain", "unmount", "rename", "mount", "done")
_MOVABLE = frozenset(ALL_VOLUME_EXTS)
_EC = re.compile(r"\.(ecx|ecj|ec\d\d)$")


class OwnershipError(RuntimeError):
    """The files do not allow the move (an EC volume, a file in both places, no files)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Layout:
    """The folders of a server's data: each `-dir` and the `-dir.idx` folder, per side."""

    dirs: tuple[str, ...]
    idx_dir: str | None = None

    @classmethod
    def of(cls, dirs: Iterable[str], idx_dir: str | None = None) -> "Layout":
        return cls(tuple(os.path.abspath(os.path.expanduser(d)) for d in dirs),
                   os.path.abspath(os.path.expanduser(idx_dir)) if idx_dir else None)

    def folders(self, side: str) -> list[str]:
        """Every folder that may hold a file of a volume `side` owns (data folders, then the idx one)."""
        go = list(dict.fromkeys([*self.dirs, *([self.idx_dir] if self.idx_dir else [])]))
        return go if side == GO else [os.path.join(f, NATIVE_FOLDER) for f in go]

    def native_dirs(self) -> list[str]:
        """The data folders the native writer store opens, in `-dir` order (disk ids match Go's)."""
        return [os.path.join(d, NATIVE_FOLDER) for d in self.dirs]

    def native_idx_dir(self) -> str | None:
        return os.path.join(self.idx_dir, NATIVE_FOLDER) if self.idx_dir else None

    def state_dir(self) -> str:
        """The folder of the server's `state.pb` (Go's first location's index folder): Go writes it,
        native's writer store reads it, so both sides keep one maintenance state."""
        return self.idx_dir or self.dirs[0]

    @property
    def journal(self) -> str:
        return os.path.join(self.dirs[0], JOURNAL_NAME)

    def ensure_native_folders(self) -> None:
        for folder in self.folders(NATIVE):
            if not os.path.isdir(folder):
                os.makedirs(folder, exist_ok=True)
                _fsync_dir(os.path.dirname(folder))

    def counterpart(self, path: str, to: str) -> str:
        """Where the file at `path` goes when its volume moves to `to`."""
        folder, name = os.path.split(path)
        if to == NATIVE:
            return os.path.join(folder, NATIVE_FOLDER, name)
        if os.path.basename(folder) != NATIVE_FOLDER:
            raise OwnershipError(f"{path} is not in a {NATIVE_FOLDER} folder")
        return os.path.join(os.path.dirname(folder), name)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _volume_of(name: str) -> int | None:
    """The volume id a file name belongs to (a movable or EC extension), else None."""
    stem, ext = os.path.splitext(name)
    if not stem or (ext not in _MOVABLE and not _EC.search(name)):
        return None
    try:
        return parse_volume_base(stem)[1]
    except (InvalidFileId, ValueError):
        return None


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _order(paths: list[str], to: str) -> list[str]:
    """Renames out of Go's folders start with the `.dat` (then `.vif`); renames into them end
    with the `.vif` then the `.dat`: Go skips a volume whose `.dat` is not there."""
    def rank(p: str) -> int:
        return {".dat": 0, ".vif": 1}.get(os.path.splitext(p)[1], 2)

    ordered = sorted(paths, key=lambda p: (rank(p), p))
    return ordered if to == NATIVE else ordered[::-1]


def volume_files(layout: Layout, vid: int, side: str) -> list[str]:
    """The files of volume `vid` in `side`'s folders, in the order a move away renames them.
    An EC volume raises OwnershipError (EC volumes stay with Go)."""
    found = []
    for folder in layout.folders(side):
        for name in _listdir(folder):
            if _volume_of(name) != vid:
                continue
            if _EC.search(name):
                raise OwnershipError(f"volume {vid} has erasure-coded files ({name}): EC volumes stay with Go")
            found.append(os.path.join(folder, name))
    return _order(found, NATIVE if side == GO else GO)


def owned_by_native(layout: Layout) -> list[int]:
    """The volumes whose files are in the native folders."""
    vids = {v for folder in layout.folders(NATIVE) for name in _listdir(folder)
            if (v := _volume_of(name)) is not None}
    return sorted(vids)


def rename_volume(layout: Layout, vid: int, frm: str, to: str) -> list[tuple[str, str]]:
    """Rename every file of `vid` from `frm`'s folders to `to`'s (both folders synced after);
    the (source, destination) pairs. A destination that exists already stops it before any
    rename (OwnershipError): the files would be in both places."""
    if frm == to:
        raise OwnershipError(f"volume {vid} is already owned by {to}")
    sources = volume_files(layout, vid, frm)
    pairs = [(src, layout.counterpart(src, to)) for src in sources]
    clash = [dst for _, dst in pairs if os.path.lexists(dst)]
    if clash:
        raise OwnershipError(f"volume {vid}: {', '.join(clash)} exist(s) already on the {to} side")
    layout.ensure_native_folders()
    for src, dst in pairs:
        os.rename(src, dst)
    for folder in {os.path.dirname(p) for pair in pairs for p in pair}:
        _fsync_dir(folder)
    return pairs


# -- the journal ---------------------------------------------------------------------------------


def write_journal(layout: Layout, doc: dict[str, Any]) -> None:
    """Replace the journal with `doc`, durably (file and folder synced) before returning."""
    path = layout.journal
    tmp = path + ".tmp"
    data = json.dumps({**doc, "at": time.time()}, sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    _fsync_dir(os.path.dirname(path))


def read_journal(layout: Layout) -> dict[str, Any] | None:
    try:
        with open(layout.journal, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("from") not in (GO, NATIVE) or doc.get("to") not in (GO, NATIVE) \
            or not isinstance(doc.get("vid"), int):
        # A journal is replaced whole by a rename: a torn one cannot be read back. Refuse to guess.
        raise OwnershipError(f"{layout.journal} does not parse as a move journal: {raw[:200]!r}")
    return doc


def remove_journal(layout: Layout) -> None:
    try:
        os.remove(layout.journal)
    except FileNotFoundError:
        return
    _fsync_dir(os.path.dirname(layout.journal))


def recover(layout: Layout) -> dict[str, Any] | None:
    """Resolve the journal a crash left (blocking; before either side opens its folders): a move
    that reached `done` stands, any other is undone. Returns the journal with `outcome`
    (`completed` or `undone`) and `renamed` (the files moved back), or None when there was none."""
    doc = read_journal(layout)
    if doc is None:
        return None
    vid, frm, to = doc["vid"], doc["from"], doc["to"]
    renamed: list[tuple[str, str]] = []
    if doc.get("step") == "done":
        outcome = "completed"
    else:
        outcome = "undone"
        if volume_files(layout, vid, to):
            renamed = rename_volume(layout, vid, to, frm)
    remove_journal(layout)
    return {**doc, "outcome": outcome, "renamed": renamed}


def settle(layout: Layout) -> tuple[dict[str, Any] | None, list[int]]:
    """Every volume back in Go's folders (a journal resolved first): (the journal resolved, the
    volumes moved). Empty native folders are removed."""
    resolved = recover(layout)
    moved = []
    for vid in owned_by_native(layout):
        rename_volume(layout, vid, NATIVE, GO)
        moved.append(vid)
    for folder in layout.folders(NATIVE):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not there, or something else is in it: left as it is
    return resolved, moved
