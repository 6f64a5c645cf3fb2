"""Go-compatible flag parsing: forms, booleans, precedence (argv > env > options file > default), errors."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from weedpy.flags import (
    FlagError, FlagSpec, Kind, environ_without_flags, format_go_duration, format_usage, go_flag_text, parse_flags,
    parse_go_duration, parse_go_int,
)

SPECS = (
    FlagSpec("port", Kind.INT, 8080, ""),
    FlagSpec("port.grpc", Kind.INT, 0, ""),
    FlagSpec("dir", Kind.STRING, "/tmp", ""),
    FlagSpec("pprof", Kind.BOOL, False, ""),
    FlagSpec("hasSlowRead", Kind.BOOL, True, ""),
    FlagSpec("timeout", Kind.DURATION, 60.0, ""),
    FlagSpec("options", Kind.STRING, "", ""),
    FlagSpec("mode", Kind.STRING, "", "", from_env=False),
)


@pytest.mark.parametrize(
    "argv",
    [
        ["-port=9", "-dir=/d"], ["-port", "9", "-dir", "/d"], ["--port", "9", "--dir", "/d"],
        ["--port=9", "--dir=/d"], ["-port=9", "--dir", "/d"],
    ],
)
def test_all_go_forms_parse_the_same(argv: list[str]) -> None:
    f = parse_flags(SPECS, argv)
    assert (f["port"], f["dir"]) == (9, "/d")
    assert f.explicit == {"port", "dir"}


def test_bare_boolean_and_explicit_false() -> None:
    f = parse_flags(SPECS, ["-pprof", "-hasSlowRead=false"])
    assert f["pprof"] is True and f["hasSlowRead"] is False


def test_boolean_does_not_take_the_next_argument_as_its_value() -> None:
    # Go: `-pprof false` sets pprof and then stops at the positional "false"; we refuse it.
    with pytest.raises(FlagError, match="unexpected argument"):
        parse_flags(SPECS, ["-pprof", "false"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-nope=1"], "flag provided but not defined: -nope"),
        (["--port", "abc"], "invalid value 'abc' for flag -port"),
        (["-port"], "flag needs an argument: -port"),
        (["-timeout=5x"], "invalid value '5x' for flag -timeout"),
        (["-pprof=maybe"], "invalid value 'maybe' for flag -pprof"),
        (["---port=1"], "bad flag syntax"),
    ],
)
def test_errors_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message):
        parse_flags(SPECS, argv)


def test_environment_fills_flags_not_on_the_command_line() -> None:
    env = {"PORT": "7000", "PORT_GRPC": "17000", "DIR": "/env", "MODE": "native", "PPROF": ""}
    f = parse_flags(SPECS, ["-dir=/cli"], environ=env)
    assert f["port"] == 7000 and f["port.grpc"] == 17000  # `.` becomes `_`
    assert f["dir"] == "/cli"  # the command line wins
    assert f["mode"] == ""  # weedpy's own flags never come from the environment
    assert f["pprof"] is True  # an empty value sets a boolean


def test_bad_environment_value_is_reported_with_its_variable() -> None:
    with pytest.raises(FlagError, match="environment variable PORT"):
        parse_flags(SPECS, [], environ={"PORT": "x"})


def test_options_file_is_lowest_precedence() -> None:
    files = {"/o": "# comment\nport=1234\ndir = /from-file\n-pprof=true\n"}
    f = parse_flags(SPECS, ["-options=/o", "-dir=/cli"], read_file=files.__getitem__)
    assert (f["port"], f["dir"], f["pprof"]) == (1234, "/cli", True)


def test_environ_without_flags_removes_what_go_would_read() -> None:
    env = {"PORT": "1", "DIR": "x", "PATH": "/bin", "PORT_GRPC": "2"}
    assert environ_without_flags(SPECS, env) == {"PATH": "/bin"}


@pytest.mark.parametrize(
    "text, seconds",
    [("2s", 2.0), ("1m0s", 60.0), ("1h2m3.5s", 3723.5), ("300ms", 0.3), ("0", 0.0), ("1.5h", 5400.0), ("-2s", -2.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "1x", "1s2"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_duration_format_round_trips(ms: int) -> None:
    assert parse_go_duration(format_go_duration(ms / 1000)) == pytest.approx(ms / 1000)


def test_duration_format_matches_go() -> None:
    assert [format_go_duration(s) for s in (60, 2, 0.5, 3600, 90)] == ["1m0s", "2s", "500ms", "1h0m0s", "1m30s"]


@pytest.mark.parametrize("text, value", [("10", 10), ("0x10", 16), ("010", 8), ("-5", -5), ("1_000", 1000), ("0", 0)])
def test_go_ints(text: str, value: int) -> None:
    assert parse_go_int(text) == value


@pytest.mark.parametrize("name, value, text", [
    ("port", 9333, "9333"), ("dir", "/a b", "/a b"), ("pprof", True, "true"), ("hasSlowRead", False, "false"),
    ("timeout", 90.0, "1m30s"), ("timeout", 0.5, "500ms"),
])
def test_go_flag_text_is_what_go_prints_and_parses_back(name: str, value: object, text: str) -> None:
    """One rendering for both uses: the value passed on a Go command line (proxy mode's backend
    argv) and the default that usage prints."""
    spec = next(s for s in SPECS if s.name == name)
    assert go_flag_text(spec, value) == text
    assert parse_flags(SPECS, [f"-{name}={text}"])[name] == value
    shown = format_usage([FlagSpec(name, spec.kind, value, "help")])
    assert (f"(default {text})" in shown) or (f'(default "{text}")' in shown) or text in ("false", "0s")
