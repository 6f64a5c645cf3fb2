"""Start `weedpy-volume` as a real process, with Go-style or the harness's double-dash flags."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.procs import (
    MasterProc, VolumeProc, clean_env, free_port, free_port_pair, on_fresh_ports, start_proc, wait_http, wait_tcp,
)

__all__ = ["weedpy_volume_argv", "start_weedpy_volume", "weedpy_executable"]


def weedpy_executable() -> str:
    found = shutil.which("weedpy-volume", path=str(Path(sys.executable).parent)) or shutil.which("weedpy-volume")
    assert found, "weedpy-volume is not installed (run scripts/bootstrap)"
    return found


def weedpy_volume_argv(
    *, port: int, grpc_port: int, public_port: int, data_dir: Path, master: str,
    style: str = "go", max_volumes: int = 16, extra: Sequence[str] = (), env: Mapping[str, str] | None = None,
) -> list[str]:
    """The command line of a weedpy volume server on these ports. A test that names no mode
    (no -mode in `extra`, no WEEDPY_MODE or VOLUME_SERVER_RUST_MODE in `env`, the test
    environment by default) runs proxy mode: such tests were written for it."""
    pairs = [
        ("port", str(port)), ("port.grpc", str(grpc_port)), ("port.public", str(public_port)),
        ("ip", "127.0.0.1"), ("ip.bind", "127.0.0.1"), ("dir", str(data_dir)),
        ("max", str(max_volumes)), ("master", master), ("preStopSeconds", "0"),
    ]
    argv = [weedpy_executable()]
    for name, value in pairs:
        argv += [f"--{name}", value] if style == "dash" else [f"-{name}={value}"]
    return argv + _mode_unless_named(extra, os.environ if env is None else env, style) + list(extra)


def _mode_unless_named(extra: Sequence[str], env: Mapping[str, str], style: str) -> list[str]:
    if any(a.lstrip("-").startswith("mode") for a in extra) or env.get("WEEDPY_MODE") or env.get("VOLUME_SERVER_RUST_MODE"):
        return []
    return ["--mode", "proxy"] if style == "dash" else ["-mode=proxy"]


def start_weedpy_volume(
    workdir: Path, master: MasterProc, *, style: str = "go", extra: Sequence[str] = (),
    name: str = "weedpy", split_public: bool = False, env: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> VolumeProc:
    data_dir = data_dir or workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)

    def start() -> VolumeProc:
        port, grpc_port = free_port_pair()
        public_port = free_port() if split_public else port
        argv = weedpy_volume_argv(
            port=port, grpc_port=grpc_port, public_port=public_port, data_dir=data_dir,
            master=master.address, style=style, extra=extra, env=env or clean_env(),
        )
        proc = start_proc(argv, workdir / "logs" / f"{name}-{port}.log", cwd=workdir, env=env or clean_env())
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=60)
            wait_tcp("127.0.0.1", grpc_port, proc=proc)
        except BaseException:
            proc.stop()  # never leave a half-started server behind a failed fixture
            raise
        return VolumeProc(proc, port, grpc_port, public_port, data_dir)

    return on_fresh_ports(start)
