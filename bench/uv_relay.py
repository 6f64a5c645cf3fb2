"""The uvloop relay (gateway/uv_relay.py) alone in front of a Go volume server: an experiment.

Runs only the relay, with the per-request work proxy mode does (the request parser, the route
table lookup and endpoint name of the HTTP front, its `weedpy_*` metrics and its JSON log line on
stderr), in front of an existing `weed volume`, with no trio at all: `cpu_per_request.py`'s
`uvrelay` target and `callgrind_request.py --mode uvrelay` start it so. A request the relay would
hand over to trio's path gets a 503 here (the load generators send none).

    .venv/bin/python bench/uv_relay.py --listen 127.0.0.1:8081 --backend 127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from gateway.uv_relay import RelayHost, UvRelay  # noqa: E402
from weedpy.http1 import Request, ServerConnection, listening_socket  # noqa: E402
from weedpy.logs import FLUSH_INTERVAL, configure_logging  # noqa: E402
from weedpy.serve.guard import Guard  # noqa: E402
from weedpy.serve.http_front import FrontState, HttpFront  # noqa: E402
from weedpy.serve.live_routes import LiveRoutes  # noqa: E402
from weedpy.serve.metrics import WEEDPY_FAMILIES, RouteMeter, ServerMetrics  # noqa: E402
from weedpy.serve.routes import Target, default_route_table  # noqa: E402

_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class StandaloneHost(RelayHost):
    """The relay's host without trio's path: what it would hand over is refused."""

    def __init__(self, backend: tuple[str, int]) -> None:
        super().__init__()
        self.backend = backend
        metrics = ServerMetrics(WEEDPY_FAMILIES)

        async def unused(_exch: Any) -> None:
            raise AssertionError("served by the relay")

        self.front = HttpFront(LiveRoutes(default_route_table(), mode="proxy"), {Target.GO: unused},
                               Guard.from_entries([]), b"", FrontState(), meter=RouteMeter(metrics.local, "http"))
        self.done = self.front.direct_done
        self.handed = 0

    def route(self, port_kind: str, req: Request, client_host: str) -> tuple[tuple[str, int], Any] | None:
        token = self.front.direct_route(port_kind, req, client_host)
        return None if token is None else (self.backend, token)

    def error(self, reason: str) -> None:
        pass

    def hand_over(self, sock: socket.socket, conn: ServerConnection, req: Request | None, port_kind: str,
                  body: tuple[bytes, bool] | None = None) -> None:
        self.handed += 1
        try:
            sock.send(_REFUSED)
        finally:
            sock.close()

    def closed(self) -> None:
        pass


async def serve(listen: tuple[str, int], backend: tuple[str, int], flush_every: float) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: print("relay: unexpected", ctx, file=sys.stderr, flush=True))
    sink = configure_logging("info", buffered=True)
    host = StandaloneHost(backend)
    relay = UvRelay(host, loop, pool_ttl=15.0, front_address=f"{listen[0]}:{listen[1]}")
    host.started(loop, 30.0)
    sock = listening_socket(*listen)
    server = await loop.create_server(relay.protocol("admin"), sock=sock)

    def flush() -> None:
        sink.flush()
        loop.call_later(flush_every, flush)

    flush()
    async with server:
        await server.serve_forever()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True, help="host:port to serve on")
    p.add_argument("--backend", required=True, help="host:port of the Go volume server")
    args = p.parse_args()
    lh, lp = args.listen.rsplit(":", 1)
    bh, bp = args.backend.rsplit(":", 1)
    uvloop.run(serve((lh, int(lp)), (bh, int(bp)), FLUSH_INTERVAL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
