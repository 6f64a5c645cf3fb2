"""Start-up refusals, one line each: an unusable -dir as Go 4.48 words it (native checks it
itself; proxy mode relays the Go backend's fatal line, without its stack dump), and certificate
files that cannot be used, in every mode."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import clean_env, free_port_pair
from tests.support.weedpy_proc import weedpy_executable
from tests.tls.support import Pki
from weedpy.weedbin import find_weed_binary

# glog's fatal line: `F1206 02:48:50.301783 volume.go:307 MESSAGE`
_GLOG_FATAL = re.compile(r"^F\d{4} [\d:.]+ \S+:\d+ (.*)$", re.MULTILINE)


def _bad_dirs(tmp_path: Path) -> dict[str, Path]:
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return {"missing": tmp_path / "missing" / "dir", "read-only": read_only, "not-a-dir": a_file}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd, env=clean_env())


def _go_fatal(d: Path, cwd: Path) -> tuple[int, str]:
    port, grpc_port = free_port_pair()
    out = _run([str(find_weed_binary()), "volume", f"-dir={d}", f"-port={port}", f"-port.grpc={grpc_port}",
                "-master=127.0.0.1:1", "-ip=127.0.0.1"], cwd)
    m = _GLOG_FATAL.search(out.stderr)
    assert m is not None, out.stderr
    return out.returncode, m.group(1)


def _weedpy(mode: str, d: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    port, grpc_port = free_port_pair()
    return _run([weedpy_executable(), f"-mode={mode}", f"-dir={d}", f"-port={port}", f"-port.grpc={grpc_port}",
                 "-master=127.0.0.1:1", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *extra], cwd)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.startswith("{")]  # JSON log events aside
    assert len(lines) == 1, text
    return lines[0]


def test_native_refuses_an_unusable_dir_as_go_does(tmp_path: Path) -> None:
    for what, d in _bad_dirs(tmp_path).items():
        go_code, go_message = _go_fatal(d, tmp_path)
        out = _weedpy("native", d, tmp_path)
        assert (out.returncode, _last_line(out.stderr)) == (go_code, f"weedpy: {go_message}"), what
        assert go_code == 255 and "Check Data Folder(-dir) Writable" in go_message
    assert not (tmp_path / "missing").exists()  # nothing created


def test_proxy_turns_the_backends_fatal_exit_into_its_one_line(tmp_path: Path) -> None:
    d = _bad_dirs(tmp_path)["missing"]
    go_code, go_message = _go_fatal(d, tmp_path)
    out = _weedpy("proxy", d, tmp_path)
    assert (out.returncode, _last_line(out.stderr)) == (go_code, f"weedpy: {go_message}")
    assert "goroutine" not in out.stderr  # Go's stack dump stays out of the info-level logs
    assert '"event": "backend fatal"' in out.stderr


@pytest.mark.parametrize("mode", ["native", "proxy", "mixed", "exec"])
def test_an_unusable_certificate_file_stops_every_mode(mode: str, tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "nowhere" / "volume.crt"
    sec = tmp_path / "sec.toml"
    sec.write_text(f'[grpc]\nca = "{pki.ca}"\n[grpc.volume]\ncert = "{missing}"\nkey = "{pki.key("volume")}"\n')
    data = tmp_path / "data"
    data.mkdir()
    out = _weedpy(mode, data, tmp_path, f"-securityFile={sec}")
    assert out.returncode == 1
    assert _last_line(out.stderr) == f"weedpy: grpc.volume.cert: cannot read {missing}: No such file or directory"
