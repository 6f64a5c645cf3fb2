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
few microseconds instead of about twenty; with its fields' types declared, through an `emit`
compiled for them (one join of the whole line). structlog stays the logging API: whenever the
active structlog configuration is not the one `configure_logging` installed (tests capturing
logs, another configuration), or context variables are bound, `FastEvent` hands the event to
structlog.
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
from time import time_ns as _time_ns
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TextIO

from weedpy.imports import stand_in

with stand_in("asyncio"), stand_in("uuid"):  # structlog imports them for what weedpy never calls (start-up time)
    import structlog

__all__ = ["configure_logging", "get_logger", "fatal_line", "LineSink", "FLUSH_INTERVAL", "HARD_LIMIT", "flush_periodically", "FastEvent",
           "Millis"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FLUSH_INTERVAL = 0.1
HARD_LIMIT = 4096  # buffered lines (about 1 MiB of request lines) past which a writer flushes them itself


class LineSink:
    """A structlog logger that appends rendered lines to a buffer; `flush()` writes them out.

    Several processes of one server (the leader and its workers) share one stderr: lines go out
    in `write` calls of whole lines of at most PIPE_BUF bytes, which a pipe never interleaves
    with another writer's (a file shared through one descriptor keeps one offset for all).

    Adding a line takes no lock: the buffer is one list that is never replaced, an append is
    atomic under the GIL, and `flush` takes the lines it saw and deletes exactly those (a line
    appended meanwhile stays for the next flush).
    """

    def __init__(self, stream: TextIO, buffered: bool, max_lines: int = HARD_LIMIT) -> None:
        self._stream = stream
        self._fd = _fileno(stream)
        self._max = max_lines
        self._limit = max_lines if buffered else 0  # lines past which `msg` flushes (0: every line)
        self._lines: list[str] = []
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
        lines = self._lines
        lines.append(message)
        if len(lines) > self._limit:
            self.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg

    def flush(self) -> None:
        with self._write_lock:
            lines = self._lines
            n = len(lines)
            if not n:
                return
            text = "\n".join(lines[:n]) + "\n"
            del lines[:n]
            self._write(text)

    def _write(self, text: str) -> None:
        try:
            if self._fd is None:
                self._stream.write(text)
                self._stream.flush()
                return
            self._stream.flush()  # whatever else was printed to the stream goes first
            data = text.encode()
            view = memoryview(data)  # the writes take slices of it: no copy of what is left
            start, end = 0, len(data)
            while start < end:
                cut = end if end - start <= select.PIPE_BUF else data.rfind(b"\n", start, start + select.PIPE_BUF) + 1
                if cut <= start:  # one line longer than PIPE_BUF: it goes alone
                    cut = data.index(b"\n", start) + 1
                while start < cut:
                    start += os.write(self._fd, view[start:cut])
        except (OSError, ValueError):
            pass

    @property
    def pending(self) -> bool:
        return bool(self._lines)

    def set_buffered(self, buffered: bool) -> None:
        self._limit = self._max if buffered else 0
        if not buffered:
            self.flush()


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def fatal_line(message: str) -> None:
    """The one line a server that cannot start leaves on stderr (`weedpy: MESSAGE`, as Go's
    fatal message), in one write: `print` writes the text and its newline separately, and a log
    flush or a worker process writing between the two would join its line to this one."""
    sys.stderr.write(f"weedpy: {message}\n")
    sys.stderr.flush()


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


class _Unavailable:
    """Stands in for a structlog internal that this structlog lacks: every event then goes
    through structlog itself."""

    logger_factory = None
    _CONTEXT_VARS = True


# structlog's global configuration and its registry of context variables, read per event
# without the dict get_config() builds.
_STRUCTLOG_CONFIG: Any = getattr(getattr(structlog, "_config", None), "_CONFIG", None) or _Unavailable()
_contextvars: Any = structlog.contextvars if hasattr(structlog.contextvars, "_CONTEXT_VARS") else _Unavailable()
_INFO = logging.INFO


def _active_sink() -> LineSink | None:
    """The LineSink of the running configuration if it is exactly configure_logging's chain
    (a typed FastEvent's `emit` makes the same check inline)."""
    cfg = _STRUCTLOG_CONFIG
    sink = cfg.logger_factory
    if (
        type(sink) is not LineSink
        or cfg.default_wrapper_class is not sink.wrapper
        or cfg.default_processors != sink.chain_list  # capture_logs edits the list in place
        or _contextvars._CONTEXT_VARS  # something was bound once: merge
    ):
        return None
    return sink


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str


class _Clock:
    """`datetime.now(utc).isoformat()` with `+00:00` as `Z` (TimeStamper's text), the
    seconds part formatted once per second."""

    __slots__ = ("start", "seconds_text")

    def __init__(self) -> None:
        self.start = -1  # the current second's first microsecond since the epoch
        self.seconds_text = ""

    def text(self, ns: int) -> str:
        second, micro = divmod(ns // 1000, 1_000_000)
        if second * 1_000_000 != self.start:
            self.start = -1  # while the text changes, no second matches
            self.seconds_text = datetime.datetime.fromtimestamp(second, datetime.timezone.utc).replace(tzinfo=None).isoformat()
            self.start = second * 1_000_000
        if micro:
            return "%s.%06dZ" % (self.seconds_text, micro)
        return self.seconds_text + "Z"  # isoformat leaves out a zero fraction


_MAX_PREFIXES = 4096


class Millis:
    """A declared FastEvent field type: `emit` takes an int count of microseconds and the line
    carries it as milliseconds, `us / 1000` as json.dumps writes that float, for 0 <= us < 10**15
    rendered from two ints (a float's shortest repr costs several times more; below 10**15 it
    is the exact decimal with its trailing zeros dropped)."""


_MILLIS_LIMIT = 10**15
# A declared field type: the check that a value has exactly that type (a float also finite:
# json.dumps spells inf and nan its own way, and structlog renders those), its text as
# json.dumps writes it, and the value the event itself takes.
_CHECKS = {str: "type({v}) is str", int: "type({v}) is int", float: "type({v}) is float and {v} - {v} == 0.0",
           Millis: "type({v}) is int and 0 <= {v} < _MILLIS_LIMIT"}
_TEXTS = {str: "_encode_str({v})", int: "str({v})", float: "str({v})",  # str of an exact int or float is its repr
          Millis: "str({v} // 1000), fractions[{v} % 1000]"}
_VALUES = {str: "{v}", int: "{v}", float: "{v}", Millis: "{v} / 1000"}  # what the event itself takes


# "000" to "999": the timestamp's microseconds as two look-ups (formatting `%06d` costs more)
_DIGITS3 = tuple("%03d" % n for n in range(1000))


def _millis_fractions() -> tuple[str, ...]:
    """The text after the whole milliseconds for each count of microseconds 0-999: float repr's."""
    return tuple(".0" if us == 0 else ("." + "%03d" % us).rstrip("0") for us in range(1000))


# The typed `emit`: the same check of the set-up as _active_sink, one lookup of the remembered
# prefix, one join of the whole line (the keys are constants), one append. Anything unusual
# (other values, a prefix not remembered yet, a new second, a zero fraction, other extra
# fields) goes through `event`, which renders it and remembers the prefix, second and tail.
_EMIT = """\
def emit({args}):
    cfg = _STRUCTLOG_CONFIG
    sink = cfg.logger_factory
    if (
        type(sink) is not LineSink
        or cfg.default_wrapper_class is not sink.wrapper
        or cfg.default_processors != sink.chain_list
        or _contextvars._CONTEXT_VARS
    ):
        return event({values})
    if sink.level > _INFO:
        return
    if {checks}:
        try:
            prefix = prefixes.get(({lead}))
        except TypeError:  # an unhashable value: the event renders it
            prefix = None
        micro = _time_ns() // 1000 - clock.start
        if prefix is not None and 0 < micro < 1_000_000 and sink.extra_text is event._tail_extra:
            lines = sink._lines
            lines.append("".join((prefix, {texts}event._tail, clock.seconds_text, ".", digits[micro // 1000],
                                  digits[micro % 1000], 'Z"}}')))
            if len(lines) > sink._limit:
                sink.flush()
            return
    event({values})
"""


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

    `types` (str, int, float or Millis for each field after the repeating ones), declared once
    by the call site, gives `emit`: a function of exactly the fields, compiled for those types,
    that checks each value's type inline and writes the line with one join (half the
    instructions of calling the event). A call whose values are not of the declared types is
    rendered as the event renders it. Without `types`, `emit` is the event.
    """

    __slots__ = ("_log", "_event", "_fields", "_keys", "_head", "_event_text", "_repeating", "_prefixes", "_clock",
                 "_tail", "_tail_extra", "_types", "emit")

    def __init__(self, logger_name: str, event: str, fields: Sequence[str], repeating: int = 0,
                 types: Sequence[type] | None = None) -> None:
        reserved = {"logger_name", "event", "level", "timestamp"}.intersection(fields)
        if reserved or len(set(fields)) != len(fields):
            raise ValueError(f"fields must be distinct and not {sorted(reserved)}")
        if not 0 <= repeating <= len(fields):
            raise ValueError("repeating must count leading fields")
        if types is not None and (len(types) != len(fields) - repeating or not set(types) <= set(_CHECKS)):
            raise ValueError("types: str, int, float or Millis for each field after the repeating ones")
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
        self._types = tuple(types) if types is not None else None
        self.emit: Callable[..., None] = self if types is None else self._compile()

    def __call__(self, *values: Any) -> None:
        fields = self._fields
        if len(values) != len(fields):
            raise TypeError(f"{len(fields)} values expected, got {len(values)}")
        sink = _active_sink()
        if sink is None:
            self._slow(values)
            return
        if sink.level > _INFO:
            return
        r = self._repeating
        if r:
            lead = values[:r]
            try:
                prefix = self._prefixes.get(lead)
            except TypeError:  # an unhashable value
                prefix = None
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
            self._prefixes[()] = prefix
        line = self._render(prefix, r, values[r:])
        if line is None:
            self._slow(values)
            return
        extra = sink.extra_text
        if extra is not self._tail_extra:
            self._tail = self._event_text + extra + ', "level": "info", "timestamp": "'
            self._tail_extra = extra
        sink.msg(line + self._tail + self._clock.text(_time_ns()) + '"}')

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

    def _compile(self) -> Callable[..., None]:
        """`emit` for the declared types (see _EMIT)."""
        assert self._types is not None
        r = self._repeating
        names = [f"v{i}" for i in range(len(self._fields))]
        rest = list(zip(names[r:], self._types))
        source = _EMIT.format(
            args=", ".join(names),
            values=", ".join(names[:r] + [_VALUES[t].format(v=n) for n, t in rest]),
            lead="".join(n + ", " for n in names[:r]),
            checks=" and ".join(_CHECKS[t].format(v=n) for n, t in rest) or "True",
            texts="".join(repr(key) + ", " + _TEXTS[t].format(v=n) + ", " for key, (n, t) in zip(self._keys[r:], rest)),
        )
        scope = {"_STRUCTLOG_CONFIG": _STRUCTLOG_CONFIG, "_contextvars": _contextvars, "LineSink": LineSink,
                 "_INFO": _INFO, "_time_ns": _time_ns, "_encode_str": _encode_str, "_MILLIS_LIMIT": _MILLIS_LIMIT,
                 "digits": _DIGITS3,
                 "event": self, "prefixes": self._prefixes, "clock": self._clock,
                 "fractions": _millis_fractions() if Millis in self._types else ()}
        exec(compile(source, f"<FastEvent {self._event!r} emit>", "exec"), scope)
        return scope["emit"]

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
