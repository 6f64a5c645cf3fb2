"""Instructions per request of the uvloop relay's own work (gateway/uv_relay.py), in-process.

`bench/callgrind_request.py --mode uvrelay` counts the relay as it runs, the event loop and the
kernel calls' user side included; this counts only what the relay's Python does per request:
a `_Client` driven with fake transports, with the front's route, metrics and log line of
`bench/uv_relay.py` (lines buffered and flushed every 256 requests, to nowhere), one backend
connection kept in the pool. Each request arrives in one read and its answer in one read, as
captured from the load generator and Go 4.48 (1 KiB files). Runs this file under
`valgrind --tool=callgrind` with `-n` and with 6*`-n` requests and prints the difference per
request; `--profile` runs it under cProfile instead (where the calls go, not their cost).

    .venv/bin/python bench/callgrind_relay.py -n 2000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind_inner import inner_instructions  # noqa: E402

_BOUNDARY = b"7bc57e1b67779807f1e1e646f735d2b9d98bbccd74d1960a499a010bffc3"
_PART = (b"--" + _BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench0\"\r\n"
         b"Content-Type: image/bench\r\n\r\n" + bytes(range(256)) * 4 + b"\r\n--" + _BOUNDARY + b"--\r\n")
WRITE = (b"POST /1,517156075 HTTP/1.1\r\nHost: 127.0.0.1:42801\r\nUser-Agent: Go-http-client/1.1\r\n"
         b"Content-Length: %d\r\nContent-Type: multipart/form-data; boundary=%s\r\nAccept-Encoding: gzip\r\n\r\n"
         % (len(_PART), _BOUNDARY)) + _PART
WRITTEN = (b"HTTP/1.1 201 Created\r\nContent-Md5: \r\nContent-Type: application/json\r\nEtag: \"b4181c65\"\r\n"
           b"Server: SeaweedFS Volume 8000GB 4.48\r\nX-Amz-Request-Id: 18EEB9C066852FCCD46D1DB4\r\n"
           b"X-Content-Type-Options: nosniff\r\nDate: Sun, 06 Dec 2026 17:18:57 GMT\r\nContent-Length: 68\r\n\r\n"
           b"{\"name\":\"bench0\",\"size\":1062,\"eTag\":\"b4181c65\",\"mime\":\"image/bench\"}")
READ = (b"GET /1,7538453d7 HTTP/1.1\r\nHost: 127.0.0.1:42801\r\nUser-Agent: Go-http-client/1.1\r\n"
        b"Accept-Encoding: gzip\r\n\r\n")
_FILE = (bytes(range(256)) * 5)[2:1069]
READ_ANSWER = (b"HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nContent-Disposition: inline; filename=bench2\r\n"
               b"Content-Length: %d\r\nContent-Type: image/bench\r\nEtag: \"c890946a\"\r\n"
               b"Last-Modified: Sun, 06 Dec 2026 17:18:57 GMT\r\nServer: SeaweedFS Volume 8000GB 4.48\r\n"
               b"X-Amz-Request-Id: 18EEB9C0669C21FDE79227FC\r\nDate: Sun, 06 Dec 2026 17:18:57 GMT\r\n\r\n"
               % len(_FILE)) + _FILE
PHASES = {"write": (WRITE, WRITTEN), "read": (READ, READ_ANSWER)}


class _Transport:
    """What the relay calls on a transport; what it writes is counted and dropped."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the relay closed a connection")

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else None


class _Nowhere:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def run_requests(phase: str, n: int) -> None:
    """The measured loop: `n` requests of `phase` on one client connection."""
    from bench.uv_relay import StandaloneHost
    from gateway.uv_relay import UvRelay, _Client, _Upstream
    from weedpy.logs import configure_logging

    sink = configure_logging("info", stream=_Nowhere(), buffered=True)  # type: ignore[arg-type]
    backend = ("127.0.0.1", 8080)
    host = StandaloneHost(backend)
    relay = UvRelay(host, None, pool_ttl=1e9, front_address="127.0.0.1:8081")  # type: ignore[arg-type]
    up = _Upstream(relay.pool, backend)
    up.connection_made(_Transport())  # type: ignore[arg-type]
    relay.pool.put_back(up, 0.0)
    client = _Client(relay, "admin")  # the port the load generator uses
    client_t = _Transport()
    client.connection_made(client_t)  # type: ignore[arg-type]
    request, answer = PHASES[phase]
    for i in range(n):
        client.data_received(request)
        up.data_received(answer)
        if i & 255 == 255:
            sink.flush()
    if client_t.written != n * len(answer) or host.handed:
        raise AssertionError(f"{phase}: {client_t.written} bytes written for {n} answers, {host.handed} handed over")


def collected(phase: str, n: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same start-up in both runs
    return inner_instructions(__file__, phase, "-n", str(n), env=env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--phase", default="both", choices=["write", "read", "both"])
    p.add_argument("--profile", action="store_true", help="cProfile the loop (sorted by own time)")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        run_requests(args.inner, args.n)
        return 0
    phases = ["write", "read"] if args.phase == "both" else [args.phase]
    for phase in phases:
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(run_requests, phase, args.n)
            print(f"== {phase}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            continue
        per_request = (collected(phase, 6 * args.n) - collected(phase, args.n)) / (5 * args.n)
        print(f"{phase}: {per_request / 1000:.1f}k instructions per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
