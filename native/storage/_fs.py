"""Removing volume files whatever state a crash or an earlier attempt left them in."""

from __future__ import annotations

import os
import shutil

__all__ = ["remove_file", "remove_path"]


def remove_file(path: str) -> None:
    """Remove a file; one that is already gone is fine."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def remove_path(path: str) -> None:
    """Remove a file or a directory tree (a LevelDB index is a directory); gone is fine."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
