"""Native mode vs Go: unary control-plane gRPC calls per second, and idle memory, in one run.

    python bench/native_core_bench.py [--seconds 5] [--rounds 2] [--concurrency 32] [--clients 1]
                                      [--methods Ping,VolumeServerStatus] [--volumes 8]

Starts one `weed master`, a Go `weed volume` and `weedpy volume -mode=native` on the same
settings (both pinned to CPU 0 when taskset exists; clients on the other CPUs; native logs at
warning, as Go logs nothing per call), each with `--volumes` allocated volumes. Then, for each
method, alternating rounds Go/native with bench/grpc_bench.py's load generator, medians and the
native/Go ratio; and the resident memory (VmRSS) of both servers after idling, before any load.
Server CPU time per call is printed too: the load generator is Python, so against Go it is often
the bottleneck and calls/s flatter native; CPU per call is the server's own cost.
A benchmark, never a test: figures move with the machine's load, the ratio is what to quote.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SVC = "/volume_server_pb.VolumeServer/"


def _pin(cpus: str) -> list[str]:
    return ["taskset", "-c", cpus] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rate(port: int, method: str, args: argparse.Namespace) -> float:
    cmd = [sys.executable, str(ROOT / "bench" / "grpc_bench.py"), "--client", str(port), "--seconds", str(args.seconds),
           "--concurrency", str(args.concurrency), "--method", method]
    cpus = "1-" + str((os.cpu_count() or 2) - 1)
    procs = [subprocess.Popen(_pin(cpus) + cmd, stdout=subprocess.PIPE, text=True) for _ in range(args.clients)]
    total = 0.0
    import json

    for p in procs:
        out, _ = p.communicate(timeout=args.seconds + 60)
        r = json.loads(out.strip().splitlines()[-1])
        total += r["calls"] / r["seconds"]
    return total


def _allocate(grpc_port: int, count: int) -> None:
    import trio

    from proto import volume_server_pb2 as vs
    from weedpy.grpc import Channel

    async def run() -> None:
        async with Channel("127.0.0.1", grpc_port) as ch:
            for vid in range(1, count + 1):
                await ch.unary_unary(SVC + "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3),
                                     vs.AllocateVolumeResponse, timeout=30)

    trio.run(run)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--methods", default="Ping,VolumeServerStatus")
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds to idle before reading RSS")
    args = ap.parse_args()

    from tests.support.procs import VolumeProc, free_port_pair, start_master, start_proc, wait_http, wait_tcp
    from tests.support.weedpy_proc import weedpy_executable
    from weedpy.weedbin import find_weed_binary

    def start(kind: str, work: Path, master_addr: str) -> VolumeProc:
        port, grpc_port = free_port_pair()
        data = work / kind
        data.mkdir()
        common = [f"-port={port}", f"-port.grpc={grpc_port}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
                  f"-max={args.volumes + 2}", f"-master={master_addr}", "-preStopSeconds=0"]
        if kind == "go":
            argv = [str(find_weed_binary()), "volume", *common]
        else:
            argv = [weedpy_executable(), "-mode=native", "-logLevel=warning", *common]
        proc = start_proc(_pin("0") + argv, work / "logs" / f"{kind}.log", cwd=work)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=60, ok_below=300)
        wait_tcp("127.0.0.1", grpc_port, proc=proc)
        return VolumeProc(proc, port, grpc_port, port, data)

    with tempfile.TemporaryDirectory(prefix="native-core-bench-") as tmp:
        work = Path(tmp)
        master = start_master(work)
        servers = {}
        try:
            for kind in ("go", "native"):
                servers[kind] = start(kind, work, master.address)
                _allocate(servers[kind].grpc_port, args.volumes)
            time.sleep(args.idle)
            rss = {k: _rss_mb(v.proc.pid) for k, v in servers.items()}
            print(f"idle RSS with {args.volumes} volumes: Go {rss['go']:.1f} MiB, native {rss['native']:.1f} MiB "
                  f"(native/Go {rss['native'] / rss['go']:.2f}x)")
            for method in args.methods.split(","):
                rates: dict[str, list[float]] = {"go": [], "native": []}
                cpu: dict[str, list[float]] = {"go": [], "native": []}  # server CPU microseconds per call
                for _ in range(args.rounds):
                    for kind in ("go", "native"):
                        pid = servers[kind].proc.pid
                        c0 = _cpu_seconds(pid)
                        rate = _rate(servers[kind].grpc_port, method, args)
                        rates[kind].append(rate)
                        cpu[kind].append((_cpu_seconds(pid) - c0) / max(1.0, rate * args.seconds) * 1e6)
                go, nat = statistics.median(rates["go"]), statistics.median(rates["native"])
                gc, nc = statistics.median(cpu["go"]), statistics.median(cpu["native"])
                print(f"{method}: Go {go:,.0f} calls/s, native {nat:,.0f} calls/s, native/Go {nat / go:.2f}x "
                      f"(rounds go={[round(r) for r in rates['go']]} native={[round(r) for r in rates['native']]}; "
                      f"{args.clients} client process(es) x {args.concurrency} in flight, {args.seconds:g} s); "
                      f"server CPU per call: Go {gc:,.0f} us, native {nc:,.0f} us (Go/native {gc / nc:.2f}x)")
            after = {k: _rss_mb(v.proc.pid) for k, v in servers.items()}
            print(f"RSS after the load: Go {after['go']:.1f} MiB, native {after['native']:.1f} MiB")
        finally:
            for v in servers.values():
                v.stop()
            master.stop()


if __name__ == "__main__":
    main()
