"""`weedpy local`: the newcomer's first command, started, used and stopped as the README says."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import clean_env
from weedpy.cli import main
from weedpy.ports import free_port_pair
from weedpy.weedbin import find_weed_binary


@pytest.fixture
def listening() -> Iterator[int]:
    """A port that something else listens on (its port+10000 is free)."""
    port, _ = free_port_pair()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        yield port


def test_a_port_in_use_is_refused_before_anything_starts(
    listening: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master_port, _ = free_port_pair()
    data = tmp_path / "data"
    assert main(["local", f"-port={listening}", f"-master.port={master_port}", f"-dir={data}"]) == 1
    err = capsys.readouterr().err
    assert f"{listening} (volume HTTP)" in err and "-port=" in err and "\n" not in err.rstrip("\n")
    assert not data.exists()


@pytest.mark.parametrize("argv", [["-port=60000"], ["-port=9333", "-master.port=9333"], ["-master.port=0"]])
def test_ports_that_cannot_work_are_flag_errors(argv: list[str], tmp_path: Path) -> None:
    assert main(["local", *argv, f"-dir={tmp_path / 'd'}"]) == 2
    assert not (tmp_path / "d").exists()


def _read_until(proc: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    """Output up to `marker`, read from the pipe unbuffered (a buffered reader hides lines from select)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {timeout}s:\n{seen.decode()}"
        if sel.select(left):
            chunk = os.read(fd, 65536)
            assert chunk, f"weedpy local exited ({proc.poll()}):\n{seen.decode()}"
            seen += chunk
    return seen.decode()


@pytest.mark.parametrize("mode", ["proxy", "native"])
def test_local_runs_a_master_and_a_volume_server_until_stopped(mode: str, tmp_path: Path) -> None:
    vport, _ = free_port_pair()
    mport, _ = free_port_pair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "weedpy.cli", "local", f"-port={vport}", f"-master.port={mport}",
         f"-dir={tmp_path / 'data'}", f"-mode={mode}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(), cwd=tmp_path,
    )
    try:
        banner = _read_until(proc, "Press Ctrl-C to stop.", timeout=90)
        assert f"master:        http://127.0.0.1:{mport}" in banner
        assert f"volume server: http://127.0.0.1:{vport}" in banner
        weed = str(find_weed_binary())
        (tmp_path / "hello.txt").write_text("hello\n")
        up = subprocess.run([weed, "upload", f"-master=127.0.0.1:{mport}", str(tmp_path / "hello.txt")],
                            capture_output=True, text=True, timeout=60, check=True)
        (entry,) = json.loads(up.stdout)
        assert entry["url"].startswith(f"127.0.0.1:{vport}/")
        out = tmp_path / "out"
        out.mkdir()
        subprocess.run([weed, "download", f"-server=127.0.0.1:{mport}", f"-dir={out}", entry["fid"]],
                       capture_output=True, timeout=60, check=True)
        assert (out / "hello.txt").read_text() == "hello\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for name in ("master.log", "volume.log"):
            assert (tmp_path / "data" / name).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
