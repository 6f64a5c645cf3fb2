"""Would several gateway processes sharing the front port (SO_REUSEPORT) relay faster?

An experiment, not a feature: it starts a plain Go volume server (own master, 7 volumes) and, in
turn, 1..N relay workers in front of it, each a separate process running the gateway's own HTTP
front and relay (gateway.http_front + gateway.http_proxy, one keep-alive pool per worker, info
logging to a buffered sink as in proxy mode) on one SO_REUSEPORT port. The Go load generator
writes and reads through the workers; req/s, the workers' CPU per request, Go's, and how busy
the machine's cores were are printed for each worker count. It leaves out what a real
multi-process gateway would also need (supervision of the workers, one heartbeat relay, the
backend's restarts), which costs nothing per request.

    .venv/bin/python bench/reuseport_experiment.py --workers 1,2 -n 20000
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from bench.cpu_per_request import run_phase
from bench.native_http_bench import build_loadgen

from tests.support.procs import free_port, start_go_volume, start_master, wait_for_volume_server, wait_http

VOLUMES = 7


def worker(port: int, backend_port: int) -> None:
    """One relay process: the gateway's front and relay, listening with SO_REUSEPORT."""
    import trio

    from gateway.backend import BackendEndpoints
    from gateway.http_proxy import GoHttpTarget
    from weedpy.http1 import UpstreamPool, serve_connection, serve_fast
    from weedpy.logs import configure_logging, log_flushing
    from weedpy.serve.guard import Guard
    from weedpy.serve.http_front import FrontState, HttpFront
    from weedpy.serve.routes import Target, default_route_table

    sink = configure_logging("info", stream=open(os.devnull, "w"))

    class Backend:
        def current(self) -> BackendEndpoints:
            return BackendEndpoints(http=("127.0.0.1", backend_port), grpc=("127.0.0.1", backend_port + 10000))

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4096)
        pool = UpstreamPool(buffer_size=128 << 10)
        go = GoHttpTarget(Backend(), pool)
        front = HttpFront(default_route_table(), {Target.GO: go.handle}, Guard.from_entries(()), b"x", FrontState())
        async with log_flushing(sink), trio.open_nursery() as nursery:
            async def on_conn(stream) -> None:
                await serve_connection(stream, front.handle, idle_timeout=30, port_kind="admin")
            nursery.start_soon(serve_fast, sock, on_conn, nursery, 128 << 10)

    trio.run(main)


def machine_busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,2")
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    base = Path(tempfile.mkdtemp(prefix="reuseport-"))
    atexit.register(shutil.rmtree, base, True)  # servers' data: gigabytes at 1 MiB
    loadgen = build_loadgen(base / "loadgen")
    master = start_master(base / "m", volume_size_limit_mb=4096)
    go = start_go_volume(base, master, max_volumes=VOLUMES + 2)
    try:
        wait_for_volume_server(master, f"127.0.0.1:{go.port}")
        httpx.get(f"{master.url}/vol/grow", params={"count": VOLUMES, "replication": "000"}, timeout=120).raise_for_status()
        vids = ",".join(str(v) for v in range(1, VOLUMES + 1))
        for keybase, count in enumerate(int(x) for x in args.workers.split(",")):
            port = free_port()
            procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(port), str(go.port)]) for _ in range(count)]
            try:
                wait_http(f"http://127.0.0.1:{port}/status", timeout=30)
                time.sleep(0.5)
                pids = {f"w{i}": pr.pid for i, pr in enumerate(procs)} | {"go": go.proc.pid}
                line = [f"{count} worker(s):"]
                for phase in ("write", "read"):
                    b0 = machine_busy()
                    res = run_phase(loadgen, f"127.0.0.1:{port}", phase, vids, args, (keybase + 1) * 10_000_000, pids)
                    b1 = machine_busy()
                    busy = (b1[0] - b0[0]) / max(1, b1[1] - b0[1]) * 100
                    workers_us = sum(v for k, v in res.items() if k.startswith("cpu_us_w"))
                    line.append(f"{phase} {res['rps']:7.0f} req/s  workers {workers_us:5.1f} + go {res['cpu_us_go']:5.1f} "
                                f"cpu-us/req  cores {busy:3.0f}% busy  failed={res['failed']:.0f}")
                print("  ".join(line), flush=True)
            finally:
                for pr in procs:
                    pr.terminate()
                for pr in procs:
                    pr.wait(10)
    finally:
        go.stop()
        master.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
