"""FastEvent writes the very line structlog's configured chain writes, and defers to structlog
whenever that chain is not the one configure_logging installed."""

from __future__ import annotations

import datetime
import io
import json
import math
import select
import socket
import threading

import pytest
import structlog
from hypothesis import HealthCheck, given, settings, strategies as st

from weedpy.logs import FastEvent, LineSink, Millis, _Clock, configure_logging, fatal_line, get_logger

FIELDS = ("route", "target", "status", "ms", "client", "extra")


@pytest.fixture
def restore_structlog():
    old = structlog.get_config()
    yield
    structlog.configure(**old)


def _configured(level: str = "info") -> io.StringIO:
    out = io.StringIO()
    configure_logging(level, stream=out)
    return out


def _lines(out: io.StringIO) -> list[str]:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text.splitlines()


def _without_time(line: str) -> tuple[str, str]:
    head, _, stamp = line.rpartition(', "timestamp": "')
    return head, stamp


scalars = st.one_of(
    st.text(), st.integers(min_value=-(1 << 70), max_value=1 << 70), st.floats(), st.none(), st.booleans(),
    st.lists(st.integers(), max_size=2), st.binary(max_size=3),
)


@given(values=st.tuples(*[scalars for _ in FIELDS]))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_same_line_as_structlog(values, restore_structlog) -> None:
    out = _configured()
    event = FastEvent("gateway.http", "http", FIELDS)
    event(*values)
    get_logger("gateway.http").info("http", **dict(zip(FIELDS, values)))
    fast, slow = _lines(out)
    assert _without_time(fast)[0] == _without_time(slow)[0]
    assert fast.startswith('{"logger_name": "gateway.http", ') and fast.endswith('Z"}')


def test_timestamp_has_structlogs_format(restore_structlog) -> None:
    out = _configured()
    before = datetime.datetime.now(datetime.timezone.utc)
    FastEvent("x", "e", ())()
    after = datetime.datetime.now(datetime.timezone.utc)
    _, stamp = _without_time(_lines(out)[0])
    stamp = stamp.removesuffix('"}')
    assert stamp.endswith("Z")
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before <= parsed <= after


@pytest.mark.parametrize("ns", [0, 1_700_000_000_000_000_000, 1_700_000_000_000_001_000, 1_700_000_000_999_999_999,
                                1_764_130_000_123_456_789, 1_764_130_000_000_000_999])
def test_clock_text_is_isoformat_with_z(ns: int) -> None:
    clock = _Clock()
    expect = datetime.datetime.fromtimestamp(ns // 1000 / 1e6, datetime.timezone.utc)
    expect = expect.replace(microsecond=(ns // 1000) % 1_000_000)
    assert clock.text(ns) == expect.isoformat().replace("+00:00", "Z")
    assert clock.text(ns) == clock.text(ns)  # the cached seconds part gives the same text


def test_filtered_level_writes_nothing(restore_structlog) -> None:
    out = _configured("warning")
    FastEvent("x", "e", ("a",))(1)
    assert out.getvalue() == ""


def test_capture_logs_sees_the_event(restore_structlog) -> None:
    out = _configured()
    event = FastEvent("gateway.http", "http", ("status",))
    with structlog.testing.capture_logs() as captured:
        event(200)
    assert captured == [{"logger_name": "gateway.http", "status": 200, "event": "http", "log_level": "info"}]
    assert out.getvalue() == ""
    event(201)  # the configuration is back: the fast path again
    assert '"status": 201' in out.getvalue()


def test_other_configuration_gets_the_event(restore_structlog) -> None:
    _configured()
    seen = []
    structlog.configure(processors=[lambda _l, _m, ev: seen.append(ev) or "x"])
    FastEvent("n", "e", ("a",))(math.inf)
    assert seen and seen[0]["a"] == math.inf and seen[0]["event"] == "e"


def test_bound_context_variables_are_merged(restore_structlog, monkeypatch) -> None:
    monkeypatch.setattr(structlog.contextvars, "_CONTEXT_VARS", {})
    out = _configured()
    with structlog.contextvars.bound_contextvars(request_id="r1"):
        FastEvent("n", "e", ("a",))(1)
    line = json.loads(_lines(out)[0])
    assert line["request_id"] == "r1" and line["a"] == 1


def test_fields_must_not_shadow_the_chains_keys() -> None:
    with pytest.raises(ValueError):
        FastEvent("n", "e", ("level",))
    with pytest.raises(ValueError):
        FastEvent("n", "e", ("a", "a"))


def test_configure_logging_makes_its_sink_the_fast_one(restore_structlog, monkeypatch) -> None:
    from weedpy.logs import _active_sink

    monkeypatch.setattr(structlog.contextvars, "_CONTEXT_VARS", {})
    sink = configure_logging("info", stream=io.StringIO())
    assert _active_sink() is sink
    with structlog.testing.capture_logs():
        assert _active_sink() is None
    assert _active_sink() is sink


@given(values=st.lists(st.tuples(st.one_of(st.sampled_from(["a", "b"]), st.integers(0, 2), st.booleans(),
                                           st.just(1.0), st.none()), scalars), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_remembered_prefixes_render_as_structlog(values, restore_structlog) -> None:
    """Leading values that compare equal across types (1, 1.0, True) never share a prefix."""
    out = _configured()
    event = FastEvent("n", "e", ("lead", "rest"), repeating=1)
    for lead, rest in values:
        event(lead, rest)
        get_logger("n").info("e", lead=lead, rest=rest)
    lines = _lines(out)
    for fast, slow in zip(lines[::2], lines[1::2]):
        assert _without_time(fast)[0] == _without_time(slow)[0]


@given(values=st.tuples(*[scalars for _ in FIELDS]), worker=st.integers(min_value=0, max_value=64))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_worker_number_on_every_line(values, worker, restore_structlog) -> None:
    """A process of a multi-process server names itself on every event, fast or not."""
    out = io.StringIO()
    configure_logging("info", stream=out, worker=worker)
    FastEvent("gateway.http", "http", FIELDS)(*values)
    get_logger("gateway.http").info("http", **dict(zip(FIELDS, values)))
    get_logger("serve.workers").warning("other")
    fast, slow, other = _lines(out)
    assert _without_time(fast)[0] == _without_time(slow)[0]
    assert [json.loads(line)["worker"] for line in (fast, slow, other)] == [worker] * 3


# The per-request line's shape: four repeating str fields, then one of each declared type.
TYPED_FIELDS = ("route", "target", "routes_v", "method", "path", "status", "ms", "client", "elapsed")
TYPES = (str, int, Millis, str, float)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))  # unicode, quotes, control chars
typed_values = st.tuples(
    texts, st.integers(min_value=-(1 << 70), max_value=1 << 70), st.integers(min_value=0, max_value=10**15 - 1),
    texts, st.floats(),
)
# what a caller may pass instead: the event renders (or hands to structlog) those
other_values = st.tuples(scalars, scalars, st.one_of(st.integers(-(10**16), 10**16), st.booleans()), scalars, scalars)


def _emit_and_structlog(out: io.StringIO, lead: tuple, rest: tuple) -> None:
    emit = FastEvent("gateway.http", "http", TYPED_FIELDS, repeating=4, types=TYPES).emit
    for _ in range(3):  # the first call remembers the prefix and the second, the others take the compiled path
        emit(*lead, *rest)
    ms = rest[2] / 1000  # a Millis field: the event logs the microseconds as milliseconds
    get_logger("gateway.http").info("http", **dict(zip(TYPED_FIELDS, (*lead, rest[0], rest[1], ms, *rest[3:]))))


@given(lead=st.tuples(*[st.one_of(texts, texts, scalars) for _ in range(4)]), rest=st.one_of(typed_values, other_values))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_typed_emit_writes_structlogs_line(lead, rest, restore_structlog) -> None:
    """`emit`, compiled for its fields' types, writes the line structlog writes, byte for byte
    up to the timestamp, for any values of those types and for values of other types."""
    out = _configured()
    _emit_and_structlog(out, lead, rest)
    *fast, slow = _lines(out)
    assert len(fast) == 3
    for line in fast:
        assert _without_time(line)[0] == _without_time(slow)[0]
        assert line.endswith('Z"}')


@given(us=st.one_of(st.integers(min_value=0, max_value=10**15 - 1), st.integers(0, 10**6)))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_millis_text_is_the_floats_repr(us: int, restore_structlog) -> None:
    """A Millis field's text (two ints, no float) is json.dumps's text of `us / 1000`."""
    out = _configured()
    emit = FastEvent("n", "e", ("ms",), types=(Millis,)).emit
    emit(us)
    emit(us)
    assert [line.split('"ms": ', 1)[1].split(",", 1)[0] for line in _lines(out)] == [json.dumps(us / 1000)] * 2


@pytest.mark.parametrize("micro", [1, 12_345, 100_000, 999_999])
def test_typed_emit_writes_the_clocks_timestamp(micro: int, restore_structlog, monkeypatch) -> None:
    """The compiled path's timestamp (its microseconds from two look-ups) is the clock's text."""
    ns = (1_764_130_000_000_000 + micro) * 1000 + 789
    monkeypatch.setattr("weedpy.logs._time_ns", lambda: ns)
    out = _configured()
    emit = FastEvent("gateway.http", "http", ("route", "status"), repeating=1, types=(int,)).emit
    emit("a", 200)  # the first of its second: through the event
    with monkeypatch.context() as m:  # the prefix and the second are known: the compiled path alone
        m.setattr(FastEvent, "_render", None)
        emit("a", 201)
    stamps = [json.loads(line)["timestamp"] for line in _lines(out)]
    assert stamps == [_Clock().text(ns)] * 2 == ["2025-11-26T04:06:40.%06dZ" % micro] * 2


def test_typed_emit_follows_the_configuration(restore_structlog, monkeypatch) -> None:
    """The compiled path checks the set-up on every call: a capture, another level, a worker's
    number all show in its lines as in the event's."""
    out = _configured()
    emit = FastEvent("gateway.http", "http", ("route", "status", "ms"), repeating=1, types=(int, Millis)).emit
    emit("a", 200, 1500)
    with monkeypatch.context() as m:  # the prefix and the second are known: the compiled path alone
        m.setattr(FastEvent, "_render", None)
        emit("a", 201, 1500)
        if json.loads(out.getvalue().splitlines()[-1])["timestamp"].endswith(":00Z"):
            emit("a", 201, 1500)  # the first call was the first of a new second
    assert [json.loads(line)["status"] for line in _lines(out)][:2] == [200, 201]
    with structlog.testing.capture_logs() as captured:
        emit("a", 202, 2000)
    assert captured == [{"logger_name": "gateway.http", "route": "a", "status": 202, "ms": 2.0, "event": "http",
                         "log_level": "info"}]
    configure_logging("warning", stream=out)
    emit("a", 203, 1)
    assert out.getvalue() == ""
    configure_logging("info", stream=out, worker=3)
    emit("a", 204, 1)
    emit("a", 205, 1)
    assert [json.loads(line)["worker"] for line in _lines(out)] == [3, 3]
    with pytest.raises(TypeError):
        emit("a", 206)


def test_types_are_declared_for_the_fields_after_the_repeating_ones() -> None:
    with pytest.raises(ValueError):
        FastEvent("n", "e", ("a", "b"), repeating=1, types=(str, int))
    with pytest.raises(ValueError):
        FastEvent("n", "e", ("a",), types=(bytes,))


def test_buffered_lines_are_flushed_in_order_without_loss() -> None:
    """Lines added while another thread flushes are kept for the next flush, in order."""
    out = io.StringIO()
    sink = LineSink(out, buffered=True, max_lines=1 << 30)
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            sink.flush()

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for i in range(20000):
            sink.msg(str(i))
    finally:
        stop.set()
        thread.join()
    sink.flush()
    assert out.getvalue().splitlines() == [str(i) for i in range(20000)]


def test_a_full_buffer_is_written_by_the_writer() -> None:
    out = io.StringIO()
    sink = LineSink(out, buffered=True, max_lines=3)
    for i in range(3):
        sink.msg(str(i))
    assert out.getvalue() == ""
    sink.msg("3")
    assert out.getvalue() == "0\n1\n2\n3\n"
    sink.set_buffered(False)
    sink.msg("4")
    assert out.getvalue().endswith("3\n4\n")


def test_a_flush_writes_whole_lines_of_at_most_pipe_buf_bytes() -> None:
    """Each write is whole lines of at most PIPE_BUF bytes (a pipe never interleaves those with
    another process's), or one longer line alone; nothing is lost or reordered."""
    ours, reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # one message per write
    lines = [("x" * (i % 300)) + str(i) for i in range(2000)] + ["y" * (3 * select.PIPE_BUF)] + ["z"] * 50
    with ours, reader, open(ours.fileno(), "w", closefd=False) as stream:
        sink = LineSink(stream, buffered=True, max_lines=1 << 30)
        for line in lines:
            sink.msg(line)
        received: list[bytes] = []

        def drain() -> None:
            while chunk := reader.recv(1 << 20):
                received.append(chunk)

        thread = threading.Thread(target=drain)
        thread.start()
        sink.flush()
        ours.shutdown(socket.SHUT_WR)
        thread.join()
    assert b"".join(received).decode().splitlines() == lines
    for chunk in received:
        assert chunk.endswith(b"\n") and (len(chunk) <= select.PIPE_BUF or chunk.count(b"\n") == 1)
    assert len(received) < len(lines) / 10  # many lines per write


def test_the_fatal_line_leaves_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that cannot start says so in one line written at once: log lines that other
    threads or worker processes write to the same stderr can then only come before or after it,
    never between its text and its newline (which `print` writes separately)."""
    writes: list[str] = []

    class Stderr(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    monkeypatch.setattr("sys.stderr", Stderr())
    fatal_line("Check Data Folder(-dir) Writable /x : stat /x: no such file or directory")
    assert writes == ["weedpy: Check Data Folder(-dir) Writable /x : stat /x: no such file or directory\n"]
