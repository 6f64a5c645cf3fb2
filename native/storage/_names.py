"""Volume file names: `[<collection>_]<id>.<ext>`, the collection split at the last `_`."""

from __future__ import annotations

import os

from ._errors import InvalidFileId
from ._types import parse_volume_id

__all__ = [
    "volume_base_name",
    "volume_file_name",
    "parse_volume_base",
    "volume_from_file_name",
    "idx_home",
    "DATA_DIR_EXTS",
    "INDEX_DIR_EXTS",
    "ALL_VOLUME_EXTS",
    "MAP_FILE_EXT",
]

# Where Go keeps each file kind when -dir.idx separates index files from data files.
DATA_DIR_EXTS = (".dat", ".vif", ".cpd", ".note")
INDEX_DIR_EXTS = (".idx", ".cpx", ".ldb", ".cpldb", ".rdb", ".sdx", ".nmx")
# What Destroy removes (and what a delete of the volume must not leave behind); `.nmx` is
# weedpy's needle map file (`_map_file`), which Go ignores.
MAP_FILE_EXT = ".nmx"  # weedpy's needle map file beside the .idx (_map_file)
ALL_VOLUME_EXTS = (".dat", ".idx", ".vif", ".sdx", ".cpd", ".cpx", ".cpc", ".ldb", ".rdb", ".note", ".nmx")


def idx_home(directory: str, idx_directory: str, base: str) -> str:
    """The directory a volume's `.idx` loads from: one next to the `.dat` wins over -dir.idx
    (volumes moved in from elsewhere, an EC decode)."""
    if idx_directory != directory and os.path.exists(os.path.join(directory, base + ".idx")):
        return directory
    return idx_directory


def volume_base_name(collection: str, vid: int) -> str:
    return f"{collection}_{vid}" if collection else str(vid)


def volume_file_name(directory: str | os.PathLike[str], collection: str, vid: int, ext: str = "") -> str:
    return os.path.join(os.fspath(directory), volume_base_name(collection, vid) + ext)


def parse_volume_base(base: str) -> tuple[str, int]:
    """`pics_7` -> ("pics", 7); `7` -> ("", 7). Raises InvalidFileId if the id does not parse."""
    i = base.rfind("_")
    collection = ""
    if i > 0:
        collection, base = base[:i], base[i + 1:]
    return collection, parse_volume_id(base)


def volume_from_file_name(name: str) -> tuple[str, int] | None:
    """(collection, id) for the names Go discovers volumes by (`*.idx`, `*.vif`), else None."""
    if not (name.endswith(".idx") or name.endswith(".vif")):
        return None
    try:
        return parse_volume_base(name[:-4])
    except InvalidFileId:
        return None
