"""Go's start-up check of `-dir`: every data folder must exist, be a directory and be writable.

`weed volume` checks each folder (after expanding a leading `~`) with util.TestFolderWritable
before it binds a port, and exits through glog.Fatalf (status 255) with
`Check Data Folder(-dir) Writable FOLDER : REASON`. Like Go, "writable" means the owner-write
permission bit, whoever runs the server (root included).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

__all__ = ["FATAL_EXIT", "resolve_path", "folder_problem", "data_folder_problem"]

FATAL_EXIT = 255  # glog.Fatal's exit status


def resolve_path(path: str) -> str:
    """Go's util.ResolvePath: a leading `~` is the user's home directory, the rest as given."""
    if path.startswith("~"):
        return os.path.expanduser("~") + path[1:]
    return path


def _go_errno_text(exc: OSError) -> str:
    """Go's syscall error strings are the C library's with a lower-case first letter."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def folder_problem(folder: str) -> str | None:
    """Go's TestFolderWritable: None when usable, else its error text."""
    try:
        st = os.stat(folder)
    except OSError as exc:
        return f"stat {folder}: {_go_errno_text(exc)}"
    if not stat.S_ISDIR(st.st_mode):
        return "Not a valid folder!"
    if st.st_mode & 0o200:
        return None
    return "Not writable!"


def data_folder_problem(dirs: Iterable[str]) -> str | None:
    """Go's fatal message for the first unusable `-dir` folder, or None when all are usable."""
    for d in dirs:
        folder = resolve_path(d)
        problem = folder_problem(folder)
        if problem is not None:
            return f"Check Data Folder(-dir) Writable {folder} : {problem}"
    return None
