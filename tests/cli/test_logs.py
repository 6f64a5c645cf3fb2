"""FastEvent writes the very line structlog's configured chain writes, and defers to structlog
whenever that chain is not the one configure_logging installed."""

from __future__ import annotations

import datetime
import io
import json
import math

import pytest
import structlog
from hypothesis import HealthCheck, given, settings, strategies as st

from weedpy.logs import FastEvent, _Clock, configure_logging, get_logger

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
