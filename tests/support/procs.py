"""Real processes for tests: free loopback ports, a `weed master`, a plain Go `weed volume`.

A port is picked (weedpy.ports) before the server binds it, so in rare cases someone else binds
it first and the server exits with "address already in use". The start helpers here recognise
that exit (`PortTaken`) and start again on fresh ports (`on_fresh_ports`); helpers elsewhere in
tests/ that start servers on picked ports do the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from tests.support.process_tree import kill_tree, tree
from tests.support.reaper import REAPER
from weedpy.ports import free_port, free_port_pair
from weedpy.weedbin import find_weed_binary

__all__ = [
    "free_port",
    "free_port_pair",
    "PortTaken",
    "BIND_FAILURE",
    "on_fresh_ports",
    "wait_http",
    "wait_tcp",
    "Proc",
    "start_proc",
    "MasterProc",
    "start_master",
    "start_go_volume",
    "clean_env",
]


T = TypeVar("T")
BIND_FAILURE = "address already in use"  # Go's "bind: address already in use", Python's "Address already in use"


class PortTaken(RuntimeError):
    """A server exited because a port picked for it was bound by someone else first."""


def on_fresh_ports(start: Callable[[], T], attempts: int = 3) -> T:
    """`start()` picks its ports and starts a server on them (raising PortTaken from its readiness
    wait if the server could not bind one); on PortTaken, start again with fresh ports."""
    for attempt in range(attempts):
        try:
            return start()
        except PortTaken:
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


def wait_tcp(host: str, port: int, timeout: float = 30.0, proc: "Proc | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not accept connections in {timeout}s")


def wait_http(url: str, timeout: float = 30.0, proc: "Proc | None" = None, ok_below: int = 500) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code < ok_below:
                return
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready in {timeout}s (last: {last})")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test environment minus variables Go's weed would read as flags (PORT, DIR, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in _KEEP or k.startswith(("WEEDPY_", "PYTHON", "LC_", "XDG_"))}
    env.update(extra or {})
    return env


_KEEP = {"PATH", "HOME", "USER", "LANG", "TMPDIR", "TERM", "SHELL", "VIRTUAL_ENV", "PWD"}


@dataclasses.dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log_path: Path
    argv: Sequence[str]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        rc = self.popen.poll()
        if rc is not None:
            tail = self.log_tail()
            kind = PortTaken if BIND_FAILURE in tail.lower() else RuntimeError
            raise kind(f"{self.argv[0]} exited with {rc}:\n{tail}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """`sig`, then SIGKILL after `timeout` seconds; either way no process of the server (its Go
        backend and workers run in sessions of their own) outlives it: what is still alive of
        the tree once the leader has exited is killed."""
        members = tree(self.pid) if self.popen.poll() is None else []
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_tree(members + tree(self.pid))
                self.popen.wait(5)
        kill_tree(members)
        return self.popen.returncode


def start_proc(argv: Sequence[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    popen = subprocess.Popen(
        list(argv), stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
        env=env if env is not None else clean_env(), start_new_session=True,
    )
    log.close()
    REAPER.register(popen.pid)  # killed with its tree should this test process end without stopping it
    return Proc(popen, log_path, list(argv))


@dataclasses.dataclass
class MasterProc:
    proc: Proc
    port: int
    grpc_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stop()


def start_master(workdir: Path, volume_size_limit_mb: int = 32, extra: Sequence[str] = (),
                 global_flags: Sequence[str] = ()) -> MasterProc:
    """`global_flags` go before `master` (weed's own: `-v=1` for the master's verbose log)."""
    return on_fresh_ports(lambda: _start_master_once(workdir, volume_size_limit_mb, extra, global_flags))


def _start_master_once(workdir: Path, volume_size_limit_mb: int, extra: Sequence[str],
                       global_flags: Sequence[str] = ()) -> MasterProc:
    port, grpc_port = free_port_pair()
    mdir = workdir / "master"
    mdir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(find_weed_binary()), *global_flags, "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-port={port}", f"-port.grpc={grpc_port}", f"-mdir={mdir}", "-peers=none",
        f"-volumeSizeLimitMB={volume_size_limit_mb}", "-defaultReplication=000", *extra,
    ]
    proc = start_proc(argv, workdir / "logs" / f"master-{port}.log", cwd=workdir)
    try:
        wait_http(f"http://127.0.0.1:{port}/cluster/status", proc=proc)
    except BaseException:
        proc.stop()
        raise
    return MasterProc(proc, port, grpc_port)


@dataclasses.dataclass
class VolumeProc:
    proc: Proc
    port: int
    grpc_port: int
    public_port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self, sig: int = signal.SIGINT) -> int:
        return self.proc.stop(sig)


def start_go_volume(
    workdir: Path, master: MasterProc, data_dir: Path | None = None, extra: Sequence[str] = (),
    name: str = "go-volume", config_dir: Path | None = None, max_volumes: int = 16, split_public: bool = False,
) -> VolumeProc:
    data_dir = data_dir or workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    pre = [f"-config_dir={config_dir}"] if config_dir else []

    def start() -> VolumeProc:
        port, grpc_port = free_port_pair()
        public_port = free_port() if split_public else port
        argv = [
            str(find_weed_binary()), *pre, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-port={port}", f"-port.grpc={grpc_port}", f"-dir={data_dir}", f"-max={max_volumes}",
            f"-master={master.address}", "-preStopSeconds=0",
            *([f"-port.public={public_port}"] if split_public else []), *extra,
        ]
        proc = start_proc(argv, workdir / "logs" / f"{name}-{port}.log", cwd=workdir)
        try:
            wait_http(f"http://127.0.0.1:{port}/status", proc=proc)
            wait_tcp("127.0.0.1", grpc_port, proc=proc)
        except BaseException:
            proc.stop()
            raise
        return VolumeProc(proc, port, grpc_port, public_port, data_dir)

    return on_fresh_ports(start)


__all__.append("VolumeProc")


def wait_for_volume_server(master: MasterProc, url: str, timeout: float = 30.0) -> None:
    """Until the master's topology lists a data node at `url` (host:port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{master.url}/dir/status", timeout=2)
            if url in r.text:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"master never listed volume server {url}")


__all__.append("wait_for_volume_server")


@contextlib.contextmanager
def running(proc_like: "MasterProc | VolumeProc") -> Iterator["MasterProc | VolumeProc"]:
    try:
        yield proc_like
    finally:
        proc_like.stop()


__all__.append("running")
