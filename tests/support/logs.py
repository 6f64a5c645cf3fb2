"""Reading a server's structlog output from its log file (tests/support/waiting.py waits for what it will show)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["log_events"]


def log_events(path: Path) -> list[dict]:
    """The JSON events of a log file, in order (other lines, e.g. Go's or a traceback's, skipped)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out
