"""structlog set-up: one JSON event per line on stderr, request context bound through contextvars.

Per-request events on the data path are written through a line buffer that the server flushes
every `FLUSH_INTERVAL` seconds from a worker thread (and at exit), so a request costs one JSON
render and no write syscall, and the event loop never waits for the log's disk (a write to a
file can wait for the page cache's writeback while a compaction or an fsync keeps that disk
busy). Only a buffer past `HARD_LIMIT` (the log cannot keep up at all) is written by whoever
adds to it. Outside a running server (`buffered=False`, the default) every event is written at
once.

The per-request events themselves (one per HTTP request or gRPC call) go through `FastEvent`:
the same JSON line the structlog chain below renders, built from a pre-rendered template in a
few microseconds instead of about twenty. structlog stays the logging API: whenever the active
structlog configuration is not the one `configure_logging` installed (tests capturing logs,
another configuration), or context variables are bound, `FastEvent` hands the event to structlog.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import io
import json
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Sequence
from collections.abc import AsyncIterator
from typing import Any, TextIO

from weedpy.imports import stand_in

with stand_in("asyncio"), stand_in("uuid"):  # structlog imports them for what weedpy never calls (start-up time)
    import structlog

__all__ = ["configure_logging", "get_logger", "LineSink", "FLUSH_INTERVAL", "HARD_LIMIT", "flush_periodically", "FastEvent"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FLUSH_INTERVAL = 0.1
HARD_LIMIT = 1 << 20  # buffered bytes past which a writer flushes the buffer itself (backpressure)


class LineSink:
    """A structlog logger that appends rendered lines to a buffer; `flush()` writes them out.

    Several processes of one server (the leader and its workers) share one stderr: lines go out
    in `write` calls of whole lines of at most PIPE_BUF bytes, which a pipe never interleaves
    with another writer's (a file shared through one descriptor keeps one offset for all).
    """

    def __init__(self, stream: TextIO, buffered: bool, max_buffer: int = HARD_LIMIT) -> None:
        self._stream = stream
        self._fd = _fileno(stream)
        self._buffered = buffered
        self._max = max_buffer
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time, so lines leave in order
        # Set by configure_logging: a copy of the chain it installed (FastEvent renders exactly
        # this chain's output while it is the active configuration) and the lowest level logged.
        self.chain_list: list[Any] = []
        self.wrapper: Any = None
        self.level = logging.INFO
        # The fields configure_logging adds to every event (`, "worker": 1`), as JSON text.
        self.extra_text = ""

    def __call__(self, *args: Any) -> "LineSink":
        """structlog's logger factory: every logger writes here."""
        return self

    def msg(self, message: str) -> None:
        if not self._buffered:
            self._write(message + "\n")
            return
        with self._lock:
            self._lines.append(message)
            self._size += len(message) + 1
            full = self._size >= self._max
        if full:
            self.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                if not self._lines:
                    return
                text = "\n".join(self._lines) + "\n"
                self._lines.clear()
                self._size = 0
            self._write(text)

    def _write(self, text: str) -> None:
        try:
            if self._fd is None:
                self._stream.write(text)
                self._stream.flush()
                return
            self._stream.flush()  # whatever else was printed to the stream goes first
            data = text.encode()
            while data:
                cut = len(data) if len(data) <= select.PIPE_BUF else data.rfind(b"\n", 0, select.PIPE_BUF) + 1
                if cut <= 0:  # one line longer than PIPE_BUF: it goes alone
                    cut = data.index(b"\n") + 1
                chunk, data = data[:cut], data[cut:]
                while chunk:
                    chunk = chunk[os.write(self._fd, chunk):]
        except (OSError, ValueError):
            pass

    @property
    def pending(self) -> bool:
        return bool(self._lines)

    def set_buffered(self, buffered: bool) -> None:
        self._buffered = buffered
        if not buffered:
            self.flush()


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def configure_logging(
    level: str = "info", stream: TextIO | None = None, buffered: bool = False, worker: int | None = None,
) -> LineSink:
    """JSON lines; cached loggers; no stdlib bridge on the hot path. Returns the sink to flush.

    `worker`: the process's number in a server of several processes (0: the leader); every event
    then says which process wrote it, since they share one stderr."""
    sink = LineSink(stream or sys.stderr, buffered)
    atexit.register(sink.flush)
    processors: list[Any] = [structlog.contextvars.merge_contextvars]
    if worker is not None:
        processors.append(_AddFields({"worker": worker}))
        sink.extra_text = ', "worker": ' + int.__repr__(worker)
    processors += [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    sink.level = _LEVELS.get(level, logging.INFO)
    sink.wrapper = structlog.make_filtering_bound_logger(sink.level)
    sink.chain_list = list(processors)
    structlog.configure(
        processors=processors,
        wrapper_class=sink.wrapper,
        logger_factory=sink,
        cache_logger_on_first_use=True,
    )
    return sink


class _AddFields:
    """A processor adding fixed fields to every event (compared by value: FastEvent checks that
    the active chain is the one configure_logging installed)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = dict(fields)

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.update(self.fields)
        return event_dict

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _AddFields) and other.fields == self.fields

    __hash__ = None  # type: ignore[assignment]


def get_logger(name: str, **initial: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(logger_name=name, **initial)


async def flush_periodically(sink: LineSink, interval: float = FLUSH_INTERVAL) -> None:
    """Run for the server's lifetime: buffered lines reach the log within `interval` seconds."""
    import trio  # 0.14 s to import; commands that only log (verify, flag errors) never load it

    sink.set_buffered(True)
    try:
        while True:
            await trio.sleep(interval)
            if sink.pending:
                await trio.to_thread.run_sync(sink.flush)  # the write may wait for the disk
    finally:
        sink.set_buffered(False)


_contextvars = structlog.contextvars


# structlog's global configuration, read per event without the dict get_config() builds (a
# structlog without it: get_config then).
_STRUCTLOG_CONFIG = getattr(getattr(structlog, "_config", None), "_CONFIG", None)


def _active_sink() -> LineSink | None:
    """The LineSink of the running configuration if it is exactly configure_logging's chain."""
    cfg = _STRUCTLOG_CONFIG
    if cfg is None:
        d = structlog.get_config()
        sink, wrapper, processors = d["logger_factory"], d["wrapper_class"], d["processors"]
    else:
        sink, wrapper, processors = cfg.logger_factory, cfg.default_wrapper_class, cfg.default_processors
    if (
        type(sink) is not LineSink
        or wrapper is not sink.wrapper
        or processors != sink.chain_list  # capture_logs edits the list in place
        or getattr(_contextvars, "_CONTEXT_VARS", True)  # something was bound once: merge
    ):
        return None
    return sink


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str


class _Clock:
    """`datetime.now(utc).isoformat()` with `+00:00` as `Z` (TimeStamper's text), the
    seconds part formatted once per second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second, rest = divmod(time.time_ns(), 1_000_000_000)  # text(time_ns()), one call less
        if second == self._second:
            micro = rest // 1000
            return "%s.%06dZ" % (self._text, micro) if micro else self._text + "Z"
        return self.text(second * 1_000_000_000 + rest)

    def text(self, ns: int) -> str:
        second, rest = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._text = datetime.datetime.fromtimestamp(second, datetime.timezone.utc).replace(tzinfo=None).isoformat()
            self._second = second
        micro = rest // 1000
        if micro:
            return "%s.%06dZ" % (self._text, micro)
        return self._text + "Z"  # isoformat leaves out a zero fraction


_MAX_PREFIXES = 4096


class FastEvent:
    """An info event with fixed fields, rendered without running the structlog chain.

    `FastEvent("gateway.http", "http", ("route", "status"))("admin.read", 200)` writes the line
    `get_logger("gateway.http").info("http", route="admin.read", status=200)` would write under
    configure_logging's configuration: `{"logger_name": ..., <fields in order>, "event": ...,
    "level": "info", "timestamp": ...}`, values as json.dumps renders them. Values other than
    str, int, float, bool and None, a non-finite float, or any other active configuration send
    the event through structlog itself.

    The first `repeating` fields take few distinct str values (an endpoint name, a method): the
    text they render to is remembered per combination, so only the others are rendered.
    """

    __slots__ = ("_log", "_event", "_fields", "_keys", "_head", "_event_text", "_repeating", "_prefixes", "_clock",
                 "_tail", "_tail_extra")

    def __init__(self, logger_name: str, event: str, fields: Sequence[str], repeating: int = 0) -> None:
        reserved = {"logger_name", "event", "level", "timestamp"}.intersection(fields)
        if reserved or len(set(fields)) != len(fields):
            raise ValueError(f"fields must be distinct and not {sorted(reserved)}")
        if not 0 <= repeating <= len(fields):
            raise ValueError("repeating must count leading fields")
        self._log = get_logger(logger_name)
        self._event = event
        self._fields = tuple(fields)
        self._keys = tuple(", " + _encode_str(f) + ": " for f in fields)
        self._head = '{"logger_name": ' + _encode_str(logger_name)
        self._event_text = ', "event": ' + _encode_str(event)
        self._repeating = repeating
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._clock = _Clock()
        self._tail = ""  # what follows the fields, up to the timestamp's text, for `_tail_extra`
        self._tail_extra: str | None = None

    def __call__(self, *values: Any) -> None:
        fields = self._fields
        if len(values) != len(fields):
            raise TypeError(f"{len(fields)} values expected, got {len(values)}")
        sink = _active_sink()
        if sink is None:
            self._slow(values)
            return
        if sink.level > logging.INFO:
            return
        r = self._repeating
        if r:
            lead = values[:r]
            prefix = self._prefixes.get(lead)
            if prefix is None:
                prefix = self._render(self._head, 0, lead)
                if prefix is None:
                    self._slow(values)
                    return
                # Only str keys: a str is equal only to an equal str (1, 1.0 and True are not).
                if all(type(v) is str for v in lead):
                    if len(self._prefixes) >= _MAX_PREFIXES:
                        self._prefixes.clear()
                    self._prefixes[lead] = prefix
        else:
            prefix = self._head
        line = self._render(prefix, r, values[r:])
        if line is None:
            self._slow(values)
            return
        extra = sink.extra_text
        if extra is not self._tail_extra:
            self._tail = self._event_text + extra + ', "level": "info", "timestamp": "'
            self._tail_extra = extra
        sink.msg(line + self._tail + self._clock.now() + '"}')

    def _render(self, text: str, first: int, values: Sequence[Any]) -> str | None:
        """`text` and then each value with its key, as json.dumps writes them; None when a value
        is not one of the plain types (or a float is not finite): structlog renders that."""
        parts = [text]
        keys = self._keys
        i = first
        for v in values:
            t = type(v)
            if t is str:
                text = _encode_str(v)
            elif t is int:
                text = int.__repr__(v)
            elif t is float and v - v == 0.0:  # not inf or nan: json.dumps's spelling is left to structlog
                text = float.__repr__(v)
            elif v is None:
                text = "null"
            elif t is bool:
                text = "true" if v else "false"
            else:
                return None
            parts.append(keys[i])
            parts.append(text)
            i += 1
        return "".join(parts)

    def _slow(self, values: Sequence[Any]) -> None:
        self._log.info(self._event, **dict(zip(self._fields, values, strict=True)))


@contextlib.asynccontextmanager
async def log_flushing(sink: LineSink | None) -> AsyncIterator[None]:
    """For a server's lifetime: buffer log lines and flush them periodically (no-op without a sink)."""
    import trio  # 0.14 s to import; commands that only log (verify, flag errors) never load it

    async with trio.open_nursery() as nursery:
        if sink is not None:
            nursery.start_soon(flush_periodically, sink)
        try:
            yield
        finally:
            nursery.cancel_scope.cancel()
