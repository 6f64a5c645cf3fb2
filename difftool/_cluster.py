"""Real processes for offline runs: per side a `weed master` and a volume server on loopback.

Each side gets its own master. The servers of an offline run hold the same volume ids; under one
master they would look like replicas of each other, and lookups, redirects and proxied reads
would cross between the sides. Separate masters keep every answer a side gives its own.

Side kinds: `go` (the bundled `weed volume`), `weedpy` (`weedpy volume -mode=MODE`, optionally
with a route table). Everything starts in parallel; `Cluster.close()` stops volume servers first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from weedpy import __version__
from weedpy.ports import free_port, free_port_pair
from weedpy.weedbin import find_weed_binary, weed_version

__all__ = ["SideSpec", "Server", "Cluster", "ClusterError", "free_port", "free_port_pair"]


class ClusterError(RuntimeError):
    """A process of the run failed to start; the message carries its log tail."""


def _env() -> dict[str, str]:
    """The environment minus upper-case variables weed would read as flags (PORT, DIR, ...)."""
    keep = {"PATH", "HOME", "USER", "LANG", "TMPDIR", "TERM", "SHELL", "VIRTUAL_ENV", "PWD"}
    return {k: v for k, v in os.environ.items()
            if not k.isupper() or k in keep or k.startswith(("WEEDPY_", "PYTHON", "LC_", "XDG_"))}


@dataclasses.dataclass(frozen=True, slots=True)
class SideSpec:
    name: str  # "go", "native", "go-control"
    kind: str  # "go" | "weedpy"
    mode: str = "proxy"  # weedpy -mode
    routes_file: str | None = None
    flags: tuple[str, ...] = ()


@dataclasses.dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    log: Path
    what: str

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def check(self) -> None:
        if self.popen.poll() is not None:
            raise ClusterError(f"{self.what} exited with {self.popen.returncode}; log {self.log}:\n{self.tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _spawn(argv: Sequence[str], log: Path, what: str) -> _Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as f:
        p = subprocess.Popen(list(argv), stdout=f, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    return _Proc(p, log, what)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _tcp_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclasses.dataclass
class Server:
    spec: SideSpec
    port: int
    grpc_port: int
    public_port: int
    data_dir: Path
    master_port: int
    version: str
    proc: _Proc | None = None
    master: _Proc | None = None

    @property
    def own_addrs(self) -> tuple[bytes, ...]:
        addrs = {f"127.0.0.1:{self.port}".encode(), f"127.0.0.1:{self.public_port}".encode()}
        return tuple(sorted(addrs))

    @property
    def aliases(self) -> tuple[tuple[bytes, bytes], ...]:
        return ((str(self.data_dir).encode(), b"<data dir>"), (f"127.0.0.1:{self.master_port}".encode(), b"<master>"))

    @property
    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.master_port}"


class Cluster:
    """Start one master + one volume server per side; a context manager that stops them all."""

    def __init__(self, workdir: Path, sides: Sequence[SideSpec], *, split_public: bool = False,
                 max_volumes: int = 16, timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.sides = list(sides)
        self.split_public = split_public
        self.max_volumes = max_volumes
        self.timeout = timeout
        self.servers: dict[str, Server] = {}
        self._procs: list[_Proc] = []

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        weed = find_weed_binary()
        go_version = f"weed {weed_version(weed, 2) or '(unknown version)'}"
        logs = self.workdir / "logs"
        masters: dict[str, tuple[_Proc, int]] = {}
        for i, spec in enumerate(self.sides):
            try:
                mport, mgrpc = free_port_pair()
            except OSError as exc:
                raise ClusterError(str(exc)) from exc
            mdir = self._side_dir(i) / "master"
            mdir.mkdir(parents=True, exist_ok=True)
            argv = [str(weed), "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={mport}",
                    f"-port.grpc={mgrpc}", f"-mdir={mdir}", "-peers=none", "-volumeSizeLimitMB=64",
                    "-defaultReplication=000"]
            proc = _spawn(argv, logs / f"{spec.name}-master.log", f"master of {spec.name}")
            self._procs.append(proc)
            masters[spec.name] = (proc, mport)
        self._wait_all([(p, f"http://127.0.0.1:{port}/cluster/status", None) for p, port in masters.values()])
        waits = []
        for i, spec in enumerate(self.sides):
            mproc, mport = masters[spec.name]
            port, grpc_port = free_port(), free_port()
            public_port = free_port() if self.split_public else port
            data = self._side_dir(i) / "data"
            data.mkdir(parents=True, exist_ok=True)
            common = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-port.grpc={grpc_port}",
                      f"-port.public={public_port}", f"-dir={data}", f"-max={self.max_volumes}",
                      f"-master=127.0.0.1:{mport}", "-preStopSeconds=0", *spec.flags]
            if spec.kind == "go":
                argv = [str(weed), "volume", *common]
                version, ready = go_version, f"http://127.0.0.1:{port}/status"
            else:
                argv = [sys.executable, "-m", "weedpy.cli", "volume", *common, f"-mode={spec.mode}"]
                if spec.routes_file:
                    argv.append(f"-routes={spec.routes_file}")
                version = f"weedpy {__version__} -mode={spec.mode}"
                ready = f"http://127.0.0.1:{port}/healthz"
            proc = _spawn(argv, logs / f"{spec.name}-volume.log", f"volume server {spec.name}")
            self._procs.append(proc)
            self.servers[spec.name] = Server(spec, port, grpc_port, public_port, data, mport, version, proc, mproc)
            waits.append((proc, ready, grpc_port))
        self._wait_all(waits)
        self._wait_registered()

    def _side_dir(self, i: int) -> Path:
        # Same-length paths for every side: a server shows its data directory in /status and the
        # UI, and the lengths would otherwise differ in Content-Length (the path itself is masked).
        return self.workdir / f"side{i}"

    def _wait_all(self, items: Sequence[tuple[_Proc, str, int | None]]) -> None:
        deadline = time.monotonic() + self.timeout
        pending = list(items)
        while pending:
            for item in list(pending):
                proc, url, grpc_port = item
                proc.check()
                if _ready(url) and (grpc_port is None or _tcp_ready(grpc_port)):
                    pending.remove(item)
            if pending:
                if time.monotonic() > deadline:
                    raise ClusterError(f"not ready in {self.timeout:g}s: {', '.join(p.what for p, _, _ in pending)}")
                time.sleep(0.05)

    def _wait_registered(self) -> None:
        """Until every master lists its volume server (so lookups and heartbeats work)."""
        deadline = time.monotonic() + self.timeout
        for s in self.servers.values():
            while True:
                try:
                    with urllib.request.urlopen(f"{s.master_url}/dir/status", timeout=2) as r:
                        if f"127.0.0.1:{s.port}" in r.read().decode(errors="replace"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ClusterError(f"master of {s.spec.name} never listed its volume server")
                assert s.proc is not None
                s.proc.check()
                time.sleep(0.1)

    def close(self) -> None:
        vols = [s.proc for s in self.servers.values() if s.proc is not None]
        for p in vols:
            if p.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.popen.send_signal(signal.SIGINT)
        for p in vols:
            p.stop()
        for p in self._procs:
            p.stop()
