"""`weedpy local`: a real `weed master` and a weedpy volume server on loopback, for trying things out.

Data goes under ./weedpy-data (master metadata in `master/`, volumes in `volume/`). Ctrl-C stops
both, volume server first so it deregisters cleanly.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from weedpy.config import check_mode
from weedpy.flags import FlagError, FlagSpec, HelpRequested, Kind, format_usage, parse_flags, print_usage
from weedpy.weedbin import WeedNotFound, find_weed_binary

__all__ = ["run_local"]

def _port_with_grpc(value: int) -> None:
    if not 1 <= value <= 65535 - 10000:
        raise ValueError("must be a TCP port whose gRPC port, port+10000, is one too")


_FLAGS = (
    FlagSpec("dir", Kind.STRING, "./weedpy-data", "data directory (master and volumes)", from_env=False),
    FlagSpec("port", Kind.INT, 8080, "volume server HTTP port (gRPC is port+10000)", _port_with_grpc, from_env=False),
    FlagSpec("master.port", Kind.INT, 9333, "master HTTP port (gRPC is port+10000)", _port_with_grpc, from_env=False),
    FlagSpec("mode", Kind.STRING, "", "weedpy volume mode: exec|proxy|native|mixed (default: env WEEDPY_MODE, else native)",
             check_mode, from_env=False),
    FlagSpec("max", Kind.STRING, "16", "maximum number of volumes", from_env=False),
)


def _listened_on(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port (a port in TIME_WAIT counts as free, as for Go)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _busy_ports(mport: int, vport: int) -> list[str]:
    """The ports this run needs that another process holds; checked first, because the readiness
    probes would otherwise take that process's answers for ours."""
    wanted = {mport: "master HTTP", mport + 10000: "master gRPC", vport: "volume HTTP", vport + 10000: "volume gRPC"}
    return [f"{port} ({what})" for port, what in wanted.items() if _listened_on(port)]


def _wait(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s ({url})")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _usage() -> str:
    return "\n".join([
        "usage: weedpy local [flags]",
        "Runs a `weed master` and a weedpy volume server on 127.0.0.1 until Ctrl-C.",
        "",
        format_usage(_FLAGS),
    ])


def run_local(argv: Sequence[str]) -> int:
    try:
        flags = parse_flags(_FLAGS, argv)
    except HelpRequested:
        print_usage(_usage())
        return 0
    except FlagError as exc:
        print(f"weedpy local: {exc}", file=sys.stderr)
        return 2
    try:
        weed = find_weed_binary()
    except WeedNotFound as exc:
        print(f"weedpy local: {exc}", file=sys.stderr)
        return 2
    mport, vport = flags["master.port"], flags["port"]
    if len({mport, mport + 10000, vport, vport + 10000}) < 4:
        print("weedpy local: -port and -master.port need four distinct ports (each plus its port+10000)", file=sys.stderr)
        return 2
    busy = _busy_ports(mport, vport)
    if busy:
        print(
            f"weedpy local: already in use on 127.0.0.1: {', '.join(busy)}; another weedpy local or weed may be "
            f"running. Pick free ports, e.g. `weedpy local -port={vport + 1} -master.port={mport + 1}`",
            file=sys.stderr,
        )
        return 1
    base = Path(flags["dir"]).resolve()
    (base / "master").mkdir(parents=True, exist_ok=True)
    (base / "volume").mkdir(parents=True, exist_ok=True)
    master_cmd = [str(weed), "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={mport}",
                  f"-mdir={base / 'master'}", "-peers=none", "-defaultReplication=000"]
    volume_cmd = [sys.executable, "-m", "weedpy.cli", "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                  f"-port={vport}", f"-dir={base / 'volume'}", f"-max={flags['max']}",
                  f"-master=127.0.0.1:{mport}", "-preStopSeconds=0"]
    if flags["mode"]:
        volume_cmd.append(f"-mode={flags['mode']}")
    master = volume = None
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        master = subprocess.Popen(master_cmd, stdout=open(base / "master.log", "ab"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        _wait(f"http://127.0.0.1:{mport}/cluster/status", master, "weed master")
        volume = subprocess.Popen(volume_cmd, stdout=open(base / "volume.log", "ab"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        _wait(f"http://127.0.0.1:{vport}/healthz", volume, "weedpy volume")
        print(
            f"weedpy local is running (data in {base}, logs in {base}/*.log)\n"
            f"  master:        http://127.0.0.1:{mport}\n"
            f"  volume server: http://127.0.0.1:{vport}  (gRPC 127.0.0.1:{vport + 10000})\n\n"
            "Try it:\n"
            f"  echo hello > /tmp/hello.txt\n"
            f"  {weed} upload -master=127.0.0.1:{mport} /tmp/hello.txt\n"
            f"  {weed} download -server=127.0.0.1:{mport} -dir=/tmp <fid printed above>\n"
            f"  curl http://127.0.0.1:{vport}/status\n\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while master.poll() is None and volume.poll() is None:
            time.sleep(0.5)
        dead = "weed master" if master.poll() is not None else "weedpy volume"
        print(f"weedpy local: {dead} exited; stopping (see {base}/*.log)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"weedpy local: {exc}; see {base}/*.log", file=sys.stderr)
        return 1
    finally:
        _stop(volume)
        _stop(master)
