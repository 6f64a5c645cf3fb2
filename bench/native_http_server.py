"""Serve the native HTTP handlers over a Store in their own process (for benchmarks, until
`weedpy volume -mode=native` boots a full server).

    python bench/native_http_server.py --port 8080 --dir /tmp/d --volumes 1,2,3
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from native.context import Location, NativeContext  # noqa: E402
from native.http.app import NativeHttp  # noqa: E402
from native.storage import Store  # noqa: E402
from weedpy.config import parse_volume_args  # noqa: E402
from weedpy.http1 import UpstreamPool, serve_connection  # noqa: E402
from weedpy.http1._fastio import listening_socket, serve_fast  # noqa: E402
from weedpy.security import SecurityConfig  # noqa: E402


class NoMaster:
    async def lookup_volume(self, vid: int) -> list[Location]:
        raise LookupError(f"volume id {vid} not found")

    def invalidate(self, vid: int) -> None:
        pass

    def current_master(self) -> str | None:
        return None


async def serve(args: argparse.Namespace) -> None:
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    store = Store.open([args.dir], max_counts=64)
    for v in args.volumes.split(","):
        if v and not store.has_volume(int(v)):
            store.allocate_volume(int(v))
    cfg = parse_volume_args([f"-port={args.port}", "-port.grpc=1", "-ip=127.0.0.1", f"-dir={args.dir}", *args.flags], environ={})
    ctx = NativeContext(cfg=cfg, security=SecurityConfig(), store=store, version="8000GB 4.48",
                        master=NoMaster(), http_pool=UpstreamPool(), full_version="8000GB 4.48 pypi")
    app = NativeHttp(ctx)
    sock = listening_socket("127.0.0.1", args.port)
    print("ready", flush=True)

    async def on_conn(stream) -> None:
        try:
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        await serve_connection(stream, app.handle, idle_timeout=30, port_kind="admin")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_fast, sock, on_conn, nursery)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--volumes", default="1")
    ap.add_argument("flags", nargs="*")
    args = ap.parse_args()
    try:
        trio.run(serve, args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
