"""Unary gRPC calls per second: straight to Go vs through the gateway's gRPC proxy.

    python bench/grpc_bench.py [--seconds 5] [--concurrency 32] [--clients 2] [--method Ping]

Starts a `weed master` and a Go `weed volume`, then the proxy in its own process (pinned to CPU 0
when taskset exists, as the architecture notes measure "one core"), and load-generating client
processes (weedpy.grpc Channel, one connection each, `--concurrency` calls in flight) on the other
CPUs. Prints calls/s for both paths. A benchmark, never a test: numbers vary with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


async def _serve_proxy(port: int, backend_port: int) -> None:
    import trio

    from gateway.backend import BackendEndpoints
    from gateway.grpc_proxy import serve_grpc_proxy
    from weedpy.logs import configure_logging

    configure_logging("warning")  # one event per call would dominate the measurement at info
    endpoints = BackendEndpoints(http=("127.0.0.1", 1), grpc=("127.0.0.1", backend_port))

    class View:
        def current(self) -> BackendEndpoints:
            return endpoints

    listener = (await trio.open_tcp_listeners(port, host="127.0.0.1"))[0]
    await serve_grpc_proxy(listener, View())


async def _client(port: int, seconds: float, concurrency: int, method: str) -> None:
    import trio

    from proto.services import RPCS
    from weedpy.grpc import Channel

    rpc = RPCS[SVC + method]
    count = 0
    async with Channel("127.0.0.1", port) as ch:
        await ch.unary_unary(rpc.path, rpc.request(), rpc.response, timeout=10)  # connect + warm up
        deadline = trio.current_time() + seconds

        async def worker() -> None:
            nonlocal count
            while trio.current_time() < deadline:
                await ch.unary_unary(rpc.path, rpc.request(), rpc.response, timeout=10)
                count += 1

        start = time.perf_counter()
        async with trio.open_nursery() as n:
            for _ in range(concurrency):
                n.start_soon(worker)
        elapsed = time.perf_counter() - start
    print(json.dumps({"calls": count, "seconds": elapsed}))


def _measure(port: int, args: argparse.Namespace) -> float:
    cmd = [sys.executable, __file__, "--client", str(port), "--seconds", str(args.seconds),
           "--concurrency", str(args.concurrency), "--method", args.method]
    procs = [subprocess.Popen(_pin("1-" + str((os.cpu_count() or 2) - 1)) + cmd, stdout=subprocess.PIPE, text=True)
             for _ in range(args.clients)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=args.seconds + 60)
        result = json.loads(out.strip().splitlines()[-1])
        total += result["calls"] / result["seconds"]
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--method", default="Ping")
    ap.add_argument("--client", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-proxy", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import trio

    if args.client:
        trio.run(_client, args.client, args.seconds, args.concurrency, args.method)
        return
    if args.serve_proxy:
        trio.run(_serve_proxy, *args.serve_proxy)
        return

    from tests.support.procs import free_port, start_go_volume, start_master, wait_tcp

    with tempfile.TemporaryDirectory(prefix="grpc-bench-") as tmp:
        work = Path(tmp)
        master = start_master(work)
        volume = start_go_volume(work, master)
        proxy_port = free_port()
        proxy = subprocess.Popen(_pin("0") + [sys.executable, __file__, "--serve-proxy", str(proxy_port), str(volume.grpc_port)])
        try:
            wait_tcp("127.0.0.1", proxy_port)
            direct = _measure(volume.grpc_port, args)
            proxied = _measure(proxy_port, args)
        finally:
            proxy.terminate()
            proxy.wait(10)
            volume.stop()
            master.stop()
    print(f"{args.method}: direct to Go {direct:,.0f} calls/s; through the proxy {proxied:,.0f} calls/s "
          f"({proxied / direct:.0%}); {args.clients} client process(es) x {args.concurrency} in flight, {args.seconds:g} s each")


if __name__ == "__main__":
    main()
