"""Recognise a Go process's fatal exit in its output: glog's F line and the stack dump after it.

`weed volume` stops with `glog.Fatalf` when it cannot start (an unusable `-dir`, a port it cannot
bind, ...): one line `F1206 02:48:50.301783 volume.go:307 MESSAGE`, then the goroutine dump of
the whole process. The gateway reports MESSAGE as its one-line start-up error and keeps the dump
out of its info-level logs. Sans-IO: lines in, classifications out.
"""

from __future__ import annotations

import enum
import re

__all__ = ["GlogFatal", "LineKind"]

# glog's header: severity, MMDD, time, then (standard glog) an optional thread id and the
# `file:line]` of the call; SeaweedFS's glog prints `file:line` without the bracket.
_HEADER = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+(?:\d+\s+)?[\w.\-]+:\d+\]?\s?(.*)$")


class LineKind(enum.Enum):
    LOG = "log"  # an ordinary output line
    FATAL = "fatal"  # the F line itself
    DUMP = "dump"  # part of the stack dump after it


class GlogFatal:
    """Feed a process's output lines; `message` is the fatal line's text once one was seen."""

    __slots__ = ("message",)

    def __init__(self) -> None:
        self.message: str | None = None

    def feed(self, line: str) -> LineKind:
        m = _HEADER.match(line)
        if m is not None:
            if m.group(1) == "F" and self.message is None:
                self.message = m.group(2).strip()
                return LineKind.FATAL
            return LineKind.LOG  # other goroutines may still log while the process exits
        return LineKind.DUMP if self.message is not None else LineKind.LOG
