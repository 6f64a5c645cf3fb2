"""Instructions per request of a weedpy server, counted by valgrind's callgrind (noise-free).

CPU time per request (bench/cpu_per_request.py) still moves with the load on a shared machine;
the number of instructions the server executes per request does not. This starts a master and
`weedpy-volume -mode=<mode>` under `valgrind --tool=callgrind --instr-atstart=no` (in proxy
mode only the gateway runs under valgrind; its Go backend runs natively), warms up with a
few hundred requests, then switches instrumentation on for exactly `-n` requests of one phase of the
Go load generator, dumps, and prints instructions (Ir) per request. The dump can be read with
`callgrind_annotate` to see which C functions (the interpreter, the kernel calls' user side,
llhttp, json, ...) the instructions went to. `--mode go` runs a plain Go `weed volume` the
same way, for a reference figure; `--mode uvrelay` runs a plain Go server natively and proxy
mode's uvloop relay alone in front of it (bench/uv_relay.py) under valgrind. `--workers N` runs a native or proxy server with N processes,
every one under valgrind (its workers traced as children), and adds up their instructions;
the figure per process is printed too.

A server also works when no request comes (timers, the log flush, the leader's supervision of
its workers): natively a few ms of CPU per second per process, nothing per request, but under
valgrind a phase lasts 5-20 times longer, so that work weighs on each request by how long the
phase took, and more with more processes. `--idle-seconds S` first counts S seconds with no
request, and each phase's figure is also printed with that rate times the phase's duration
taken off (what the requests themselves cost; compare those across worker counts).

    .venv/bin/python bench/callgrind_request.py --mode native --phase read -n 2000
    .venv/bin/python bench/callgrind_request.py --mode proxy --phase both -n 2000 --keep
    .venv/bin/python bench/callgrind_request.py --mode native --phase both --workers 2
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.native_http_bench import build_loadgen  # noqa: E402
from tests.support.procs import (  # noqa: E402
    clean_env, free_port_pair, start_master, start_proc, wait_for_volume_server, wait_http, wait_tcp,
)
from weedpy.weedbin import find_weed_binary  # noqa: E402

VOLUMES = 7
_TOTALS = re.compile(r"^(?:summary|totals): *([0-9]+)", re.M)
_LAUNCH = "import sys; from weedpy.cli import volume_main; sys.argv[0] = 'weedpy-volume'; volume_main()"
# valgrind 3.19 does not know pidfd_open(2), which the gateway's supervisor waits on; under it, a
# pipe that a polling thread makes readable once the child is a zombie stands in for the pidfd.
_PIDFD_SHIM = """
import os, threading, time
def _pidfd_open(pid, flags=0):
    r, w = os.pipe()
    def watch():
        while True:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                        break
            except OSError:
                break
            time.sleep(0.05)
        os.close(w)
    threading.Thread(target=watch, daemon=True).start()
    return r
os.pidfd_open = _pidfd_open
"""


def loadgen_phase(loadgen: Path, addr: str, phase: str, n: int, c: int, size: int, keybase: int) -> str:
    vids = ",".join(str(v) for v in range(1, VOLUMES + 1))
    out = subprocess.run([str(loadgen), f"-server={addr}", f"-vids={vids}", f"-n={n}", f"-c={c}", f"-size={size}",
                          f"-keybase={keybase}", f"-phase={phase}"], capture_output=True, text=True, timeout=3600)
    line = out.stdout.strip().splitlines()[0] if out.stdout.strip() else out.stderr
    if "failed=0" not in line:
        raise RuntimeError(f"{phase} phase failed: {out.stdout}{out.stderr}")
    return line


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=600)


def read_totals(out_file: Path) -> dict[str, int]:
    """Instructions per dump file (one per process and thread dump: `callgrind.out.<pid>...`)."""
    return {path.name: max((int(x) for x in _TOTALS.findall(path.read_text(errors="replace"))), default=0)
            for path in out_file.parent.glob(out_file.name + ".*")}


def server_processes(pid: int) -> list[int]:
    """The server and its worker processes (children traced by valgrind), leader first."""
    from bench.cpu_per_request import children

    return [pid, *sorted(children(pid))]


def counted(pids: list[str], out_file: Path, keep_dir: Path, dump: str, fn, *args, per_file: bool = False):
    """Run `fn(*args)` with every process instrumented: (instructions, or per dump file when
    `per_file`; seconds it took). The dumps are moved to `keep_dir`."""
    for pid in pids:
        control("-z", pid)
    for pid in pids:
        control("-i", "on", pid)
    t0 = time.monotonic()
    fn(*args)
    seconds = time.monotonic() - t0
    for pid in pids:
        control("-i", "off", pid)
    for pid in pids:
        control("-d", dump, pid)
    totals = read_totals(out_file)
    keep_dir.mkdir()
    for path in out_file.parent.glob(out_file.name + ".*"):
        path.rename(keep_dir / path.name)
    return (totals if per_file else sum(totals.values())), seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="native", help="weedpy -mode (native or proxy), or `go` for plain Go")
    p.add_argument("--phase", default="read", choices=["read", "write", "both"])
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--log-level", default="info")
    p.add_argument("--keep", action="store_true", help="keep the callgrind output (its path is printed)")
    p.add_argument("--workers", type=int, default=1, help="weedpy -workers (every process runs under valgrind)")
    p.add_argument("--idle-seconds", type=float, default=0.0,
                   help="count this long with no request first; also print each phase without that rate")
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="callgrind-request-"))
    loadgen = build_loadgen(base / "loadgen")
    master = start_master(base / "m", volume_size_limit_mb=4096)
    port, grpc_port = free_port_pair()
    data = base / "data"
    data.mkdir()
    out_file = base / "callgrind.out"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    if args.workers > 1 and args.mode != "go":  # one output file per process
        # the Go backend of proxy mode runs natively (Go's runtime does not run under valgrind)
        valgrind += ["--trace-children=yes", "--trace-children-skip=*/weed", f"--callgrind-out-file={out_file}.%p"]
    else:
        valgrind += [f"--callgrind-out-file={out_file}"]
    flags = [f"-port={port}", f"-port.grpc={grpc_port}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
             f"-max={VOLUMES + 2}", f"-master={master.address}", "-preStopSeconds=0"]
    relay = None
    if args.mode == "uvrelay":  # Go natively, the relay alone under valgrind in front of it
        argv = [str(find_weed_binary()), "volume", *flags]
    elif args.mode == "go":
        argv = [*valgrind, str(find_weed_binary()), "volume", *flags]
    else:
        argv = [*valgrind, sys.executable, "-c", _PIDFD_SHIM + _LAUNCH, *flags, f"-mode={args.mode}",
                f"-logLevel={args.log_level}", f"-workers={args.workers}"]
    server = start_proc(argv, base / "server.log", cwd=base, env=clean_env())
    try:
        wait_http(f"http://127.0.0.1:{port}/status", proc=server, timeout=600)
        wait_tcp("127.0.0.1", grpc_port, proc=server, timeout=600)
        wait_for_volume_server(master, f"127.0.0.1:{port}", timeout=600)
        httpx.get(f"{master.url}/vol/grow", params={"count": VOLUMES, "replication": "000"},
                  timeout=600).raise_for_status()
        addr = f"127.0.0.1:{port}"
        if args.mode == "uvrelay":
            relay_port = free_port_pair()[0]
            relay = start_proc([*valgrind, sys.executable, str(ROOT / "bench" / "uv_relay.py"),
                                f"--listen=127.0.0.1:{relay_port}", f"--backend={addr}"], base / "relay.log", cwd=base,
                               env=clean_env())
            wait_tcp("127.0.0.1", relay_port, proc=relay, timeout=600)
            addr = f"127.0.0.1:{relay_port}"
        if args.workers > 1:
            deadline = time.monotonic() + 600
            while len(server_processes(server.pid)) < args.workers and time.monotonic() < deadline:
                time.sleep(1)  # the workers start beside the leader (slowly, under valgrind)
            time.sleep(5)
        if relay is not None:
            pids = [str(relay.pid)]
        else:
            pids = [str(p) for p in server_processes(server.pid)] if args.mode != "go" else [str(server.pid)]
        phases = ["write", "read"] if args.phase == "both" else [args.phase]
        if phases == ["read"]:
            loadgen_phase(loadgen, addr, "write", args.n, args.c, args.size, keybase=1)
        loadgen_phase(loadgen, addr, "write", args.warmup, args.c, args.size, keybase=900_000_000)
        loadgen_phase(loadgen, addr, "read", args.warmup, args.c, args.size, keybase=900_000_000)
        idle_rate = 0.0  # instructions per second with no request, every process
        if args.idle_seconds > 0:
            total, seconds = counted(pids, out_file, base / "idle", f"{args.mode}-idle", time.sleep, args.idle_seconds)
            idle_rate = total / seconds
            print(f"{args.mode} idle: {idle_rate / 1e6:.2f} M instructions/s ({seconds:.0f} s, every process)", flush=True)
        for phase in phases:
            totals, seconds = counted(pids, out_file, base / phase, f"{args.mode}-{phase}", loadgen_phase, loadgen,
                                      addr, phase, args.n, args.c, args.size, 1, per_file=True)
            total = sum(totals.values())
            per_process = {pid: sum(v for k, v in totals.items() if k.split(".")[2:3] == [pid]) for pid in pids}
            parts = (" (" + ", ".join(f"pid {pid}: {v / args.n / 1000:.1f}k" for pid, v in per_process.items()) + ")"
                     if len(pids) > 1 else "")
            busy = (f"; {(total - idle_rate * seconds) / args.n / 1000:.1f} k without the idle rate"
                    if idle_rate else "")
            print(f"{args.mode} {phase}: {total / args.n / 1000:.1f} k instructions/request{parts} "
                  f"({args.n} requests, c={args.c}, size={args.size}; {seconds:.0f} s under valgrind{busy})",
                  flush=True)
        if args.keep:
            print(f"callgrind output: {base}/<phase>/callgrind.out.*")
    finally:
        if relay is not None:
            relay.stop()
        server.stop()
        master.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
