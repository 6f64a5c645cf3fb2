"""Unary gRPC calls per second: straight to Go vs through the gateway's gRPC proxy.

    python bench/grpc_bench.py [--seconds 5] [--concurrency 32] [--clients 2] [--method Ping] [--stream-mb 256]

Starts a `weed master` and a Go `weed volume`, then the proxy in its own process (pinned to CPU 0
when taskset exists, as the architecture notes measure "one core"), and load-generating client
processes (weedpy.grpc Channel, one connection each, `--concurrency` calls in flight) on the other
CPUs. Prints calls/s for both paths. With --stream-mb, also streams a volume's .dat of that size
with CopyFile (server streaming) both ways and reports MB/s and the proxy's peak RSS, which must
not grow with the stream (end-to-end flow control). A benchmark, never a test: numbers vary.
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
STREAM_VID = 42


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


async def _stream(port: int, vid: int) -> None:
    from proto import volume_server_pb2 as vs
    from weedpy.grpc import Channel

    async with Channel("127.0.0.1", port) as ch:
        st = await ch.unary_unary(SVC + "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid), vs.ReadVolumeFileStatusResponse)
        req = vs.CopyFileRequest(volume_id=vid, ext=".dat", stop_offset=st.dat_file_size, compaction_revision=st.compaction_revision)
        start = time.perf_counter()
        got = 0
        async with ch.unary_stream(SVC + "CopyFile", req, vs.CopyFileResponse, timeout=600) as responses:
            async for msg in responses:
                got += len(msg.file_content)
        elapsed = time.perf_counter() - start
    print(json.dumps({"bytes": got, "seconds": elapsed}))


def _fill_volume(url: str, grpc_port: int, vid: int, mb: int) -> None:
    import httpx
    import trio

    from proto import volume_server_pb2 as vs
    from weedpy.grpc import Channel

    async def allocate() -> None:
        async with Channel("127.0.0.1", grpc_port) as ch:
            await ch.unary_unary(SVC + "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse)

    trio.run(allocate)
    blob = os.urandom(8 << 20)
    for i in range(max(1, mb // 8)):
        r = httpx.post(f"{url}/{vid},{i + 1:x}00000001", files={"f": ("b", blob)}, timeout=60)
        r.raise_for_status()


def _stream_measure(port: int) -> tuple[float, int]:
    out = subprocess.run([sys.executable, __file__, "--stream-client", str(port)], capture_output=True, text=True, timeout=900).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["bytes"] / r["seconds"] / 1e6, r["bytes"]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
    ap.add_argument("--stream-mb", type=int, default=0)
    ap.add_argument("--client", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--stream-client", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-proxy", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import trio

    if args.client:
        trio.run(_client, args.client, args.seconds, args.concurrency, args.method)
        return
    if args.stream_client:
        trio.run(_stream, args.stream_client, STREAM_VID)
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
            print(f"{args.method}: direct to Go {direct:,.0f} calls/s; through the proxy {proxied:,.0f} calls/s "
                  f"({proxied / direct:.0%}); {args.clients} client process(es) x {args.concurrency} in flight, "
                  f"{args.seconds:g} s each")
            if args.stream_mb:
                _fill_volume(volume.url, volume.grpc_port, STREAM_VID, args.stream_mb)
                rss_before = _peak_rss_mb(proxy.pid)
                d_rate, size = _stream_measure(volume.grpc_port)
                p_rate, _ = _stream_measure(proxy_port)
                print(f"CopyFile {size / 1e6:,.0f} MB: direct {d_rate:,.0f} MB/s; through the proxy {p_rate:,.0f} MB/s; "
                      f"proxy peak RSS {rss_before:.0f} MiB before, {_peak_rss_mb(proxy.pid):.0f} MiB after")
        finally:
            proxy.terminate()
            proxy.wait(10)
            volume.stop()
            master.stop()


if __name__ == "__main__":
    main()
