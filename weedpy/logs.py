"""structlog set-up: one JSON event per line on stderr, request context bound through contextvars.

Per-request events on the data path are written through a line buffer that the server flushes
every `FLUSH_INTERVAL` seconds (and when it holds 64 KiB, and at exit), so a request costs one
JSON render and no write syscall. Outside a running server (`buffered=False`, the default) every
event is written at once.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger", "LineSink", "FLUSH_INTERVAL", "flush_periodically"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FLUSH_INTERVAL = 0.1


class LineSink:
    """A structlog logger that appends rendered lines to a buffer; `flush()` writes them out."""

    def __init__(self, stream: TextIO, buffered: bool, max_buffer: int = 64 << 10) -> None:
        self._stream = stream
        self._buffered = buffered
        self._max = max_buffer
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        if not self._buffered:
            self._stream.write(message + "\n")
            self._stream.flush()
            return
        with self._lock:
            self._lines.append(message)
            self._size += len(message) + 1
            full = self._size >= self._max
        if full:
            self.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg

    def flush(self) -> None:
        with self._lock:
            if not self._lines:
                return
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            self._size = 0
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def set_buffered(self, buffered: bool) -> None:
        self._buffered = buffered
        if not buffered:
            self.flush()


def configure_logging(level: str = "info", stream: TextIO | None = None, buffered: bool = False) -> LineSink:
    """JSON lines; cached loggers; no stdlib bridge on the hot path. Returns the sink to flush."""
    sink = LineSink(stream or sys.stderr, buffered)
    atexit.register(sink.flush)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=lambda *_: sink,
        cache_logger_on_first_use=True,
    )
    return sink


def get_logger(name: str, **initial: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(logger_name=name, **initial)


async def flush_periodically(sink: LineSink, interval: float = FLUSH_INTERVAL) -> None:
    """Run for the server's lifetime: buffered lines reach the log within `interval` seconds."""
    import trio

    sink.set_buffered(True)
    try:
        while True:
            await trio.sleep(interval)
            sink.flush()
    finally:
        sink.set_buffered(False)
