"""Instructions a bench script's own `--inner` run executes, counted by valgrind's callgrind
(deterministic, unlike CPU time on a shared machine): the in-process counters
(`callgrind_log_line.py`, `callgrind_parse.py`) run themselves under it and subtract two counts."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping

__all__ = ["inner_instructions"]

_COLLECTED = re.compile(r"Collected : ([0-9]+)")


def inner_instructions(script: str, *args: str, env: Mapping[str, str] | None = None) -> int:
    """Instructions of `python script --inner ARGS` from start to exit."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, script,
                          "--inner", *args], capture_output=True, text=True, check=True, env=env)
    return int(_COLLECTED.findall(out.stderr)[-1])
