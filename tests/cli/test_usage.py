"""`-h` prints flags the way Go's flag.PrintDefaults does, for `weedpy volume` and `weedpy local` alike."""

from __future__ import annotations

import re
import subprocess

import pytest

from weedpy.cli import main
from weedpy.config import parse_volume_args
from weedpy.flags import FlagError, FlagSpec, Kind, format_usage, go_quote
from weedpy.weedbin import find_weed_binary


def _go_section(text: str) -> str:
    """The flag entries of a usage text, with -ip's detected default (host-dependent) dropped."""
    return re.sub(r'(  -ip string\n\t?.*?) \(default "[^"]*"\)', r"\1", text)


def test_volume_help_prints_go_flags_exactly_as_weed_does(capsys: pytest.CaptureFixture[str]) -> None:
    go = subprocess.run([str(find_weed_binary()), "volume", "-h"], capture_output=True, text=True, timeout=30)
    go_text = go.stdout + go.stderr
    go_flags = go_text.split("Default Usage:\n", 1)[1].split("Description:", 1)[0].rstrip("\n")
    assert main(["volume", "-h"]) == 0
    ours = capsys.readouterr().out
    our_flags = ours.split("weed volume 4.48 flags:\n", 1)[1].split("\n\n", 1)[0]
    assert _go_section(our_flags) == _go_section(go_flags)


def test_local_help_prints_its_flags_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: weedpy local")
    for entry in ("  -port int\n    \t", "(default 8080)", "  -master.port int\n", "(default 9333)",
                  "  -dir string\n", '(default "./weedpy-data")', "  -mode string\n"):
        assert entry in out


def test_volume_and_local_help_share_the_printer(capsys: pytest.CaptureFixture[str]) -> None:
    main(["local", "--help"])
    local = capsys.readouterr().out
    main(["volume", "--help"])
    volume = capsys.readouterr().out
    # The same flag spec renders the same way in both.
    assert "  -port int\n    \thttp listen port (default 8080)" in volume
    assert "  -port int\n    \tvolume server HTTP port (gRPC is port+10000) (default 8080)" in local


@pytest.mark.parametrize(
    "spec, entry",
    [
        (FlagSpec("hasSlowRead", Kind.BOOL, True, "h"), "  -hasSlowRead\n    \th (default true)"),
        (FlagSpec("pprof", Kind.BOOL, False, "h"), "  -pprof\n    \th"),
        (FlagSpec("x", Kind.BOOL, True, "h"), "  -x\th (default true)"),
        (FlagSpec("t", Kind.DURATION, 60.0, "h"), "  -t duration\n    \th (default 1m0s)"),
        (FlagSpec("t", Kind.DURATION, 0.3, "h"), "  -t duration\n    \th (default 300ms)"),
        (FlagSpec("t", Kind.DURATION, 0.0, "h"), "  -t duration\n    \th"),
        (FlagSpec("n", Kind.INT, 0, "h"), "  -n int\n    \th"),
        (FlagSpec("n", Kind.INT, -1, "h"), "  -n int\n    \th (default -1)"),
        (FlagSpec("s", Kind.STRING, "", "h"), "  -s string\n    \th"),
        (FlagSpec("s", Kind.STRING, 'a "b"\t\\', "h"), '  -s string\n    \th (default "a \\"b\\"\\t\\\\")'),
        (FlagSpec("s", Kind.STRING, "x", "a `path` to\nread"), "  -s path\n    \ta path to\n    \tread (default \"x\")"),
    ],
)
def test_entries_follow_go(spec: FlagSpec, entry: str) -> None:
    assert format_usage([spec]) == entry


def test_entries_are_sorted_by_name() -> None:
    specs = [FlagSpec(n, Kind.INT, 0, "h") for n in ("port", "ip.bind", "ip", "Z")]
    assert re.findall(r"^  -(\S+)", format_usage(specs), re.M) == ["Z", "ip", "ip.bind", "port"]


@pytest.mark.parametrize(
    "text, quoted",
    [("localhost:9333", '"localhost:9333"'), ("é", '"é"'), ("\x01\x7f", '"\\x01\\x7f"'),
     ("\u200b", '"\\u200b"'), (b"\xff".decode("utf-8", "surrogateescape"), '"\\xff"')],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_bad_mode_lists_only_real_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FlagError) as exc:
        parse_volume_args(["-mode=bogus"], environ={})
    assert str(exc.value).endswith("must be one of exec, proxy, native, mixed")
    assert main(["local", "-mode=bogus"]) == 2
    assert capsys.readouterr().err.strip().endswith("must be one of exec, proxy, native, mixed")


def test_bad_offset_width_is_a_flag_error_not_a_crash() -> None:
    with pytest.raises(FlagError, match="must be one of 0, 4, 5"):
        parse_volume_args(["-offsetBytes=3"], environ={})
