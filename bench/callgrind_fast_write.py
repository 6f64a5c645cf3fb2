"""Instructions per upload (or read) of native mode's uvloop fast path, in-process, counted by callgrind.

Builds a native server's HTTP side over a temp-dir store (the front of native mode's route
table, the compiled log line into a buffer that is never flushed), opens one client connection
of `native/http/uv_serve.py` on a transport that keeps nothing, and feeds it `-n` uploads as the
Go load generator (`bench/http_loadgen`) sends them: 1 KiB-ish multipart bodies of one part
named `bench<i>` with `Content-Type: image/bench`, over 7 volumes, fresh ids. Run under
`valgrind --tool=callgrind` with 0 and `-n` uploads; the difference per upload is what the
request costs the server from its bytes to its answer, without the event loop, the kernel's
side of the socket or the log flush (`bench/callgrind_request.py` counts those too).
`--profile` instead prints cProfile's calls and time per upload, by own time (where the Python
calls go; the profiler's overhead weighs on small functions).

`--phase read` counts the read path the same way: the `-n` uploads are stored first (outside
what is counted), then the connection is fed `-n` GETs of them, one each in a shuffled order,
as the load generator's client sends them (Host, User-Agent, Accept-Encoding); the objects
alive before the reads are frozen out of the collector's passes, as a server's start-up's are.

    .venv/bin/python bench/callgrind_fast_write.py -n 2000
    .venv/bin/python bench/callgrind_fast_write.py -n 2000 --profile
    .venv/bin/python bench/callgrind_fast_write.py -n 2000 --phase read
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind_inner import inner_instructions  # noqa: E402

VOLUMES = 7
BOUNDARY = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"


class _Transport:
    """What the connection writes to: counts the bytes, keeps the last answer."""

    def __init__(self) -> None:
        self.last = b""

    def write(self, data: bytes) -> None:
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_closing(self) -> bool: return False
    def close(self) -> None: ...
    def get_write_buffer_size(self) -> int: return 0


def fid_of(i: int) -> bytes:
    return b"%d,%x%08x" % (i % VOLUMES + 1, 0x10000 + i, 0x1637037D)


def get_bytes(i: int) -> bytes:
    return (b"GET /" + fid_of(i) + b" HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n"
            b"Accept-Encoding: gzip\r\n\r\n")


def upload_bytes(i: int, size: int) -> bytes:
    data = bytes((i + j) & 0xFF for j in range(size + i % 64))
    body = (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="bench%d"\r\n' % i
            + b"Content-Type: image/bench\r\n\r\n" + data + b"\r\n--" + BOUNDARY + b"--\r\n")
    fid = fid_of(i)
    head = (b"POST /" + fid + b" HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n"
            b"Content-Length: %d\r\nContent-Type: multipart/form-data; boundary=" % len(body) + BOUNDARY
            + b"\r\nAccept-Encoding: gzip\r\n\r\n")
    return head + body


def run_uploads(n: int, size: int, profile: bool, feed: int | None = None, phase: str = "write") -> None:
    """The measured loop: `feed` (default `n`) of `n` uploads (or, `phase` "read", GETs of them)
    made through one connection (set-up, the requests' bytes and a warm-up outside it, the same
    whatever `feed` is)."""
    from native.context import Location, NativeContext
    from native.http.app import NativeHttp
    from native.http.uv_serve import NativeUvHttp
    from native.storage import Store
    from tests.native_http.support import HttpMasterLookup
    from weedpy.config import parse_volume_args
    from weedpy.http1 import UpstreamPool
    from weedpy.logs import configure_logging
    from weedpy.security import SecurityConfig
    from weedpy.serve.http_front import FrontState, HttpFront
    from weedpy.serve.routes import Target, native_route_table

    sink = configure_logging("info", stream=io.StringIO(), buffered=True)
    sink._limit = sink._max = 1 << 62  # the periodic flush is not part of a request
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_volume_args([f"-dir={tmp}", "-port=8080", "-ip=127.0.0.1", "-master=127.0.0.1:1"], environ={})
        store = Store.open([tmp], max_counts=50)
        for vid in range(1, VOLUMES + 1):
            store.allocate_volume(vid)
        ctx = NativeContext(cfg=cfg, security=SecurityConfig(), store=store, version="8000GB 4.48",
                            full_version="8000GB 4.48 pypi", master=HttpMasterLookup(None, Location("127.0.0.1:8080", "127.0.0.1:8080", 1), store),
                            http_pool=UpstreamPool())
        app = NativeHttp(ctx)
        front = HttpFront(native_route_table(None), {Target.NATIVE: app.handle}, app.guard,
                          ctx.server_header.encode(), FrontState(), meter=ctx.metrics.meter)
        host = NativeUvHttp(app, front)
        conn = host.protocol("admin")()
        t = _Transport()
        conn.connection_made(t)  # type: ignore[arg-type]
        warm = [upload_bytes(i, size) for i in range(1 << 20, (1 << 20) + 100)]
        reqs = [upload_bytes(i, size) for i in range(n)]
        for r in warm:
            conn.data_received(r)
        assert t.last.startswith(b"HTTP/1.1 201 "), t.last[:200]
        expect = b"HTTP/1.1 201 "
        if phase == "read":
            import random

            for r in reqs:
                conn.data_received(r)
            order = list(range(n))
            random.Random(1).shuffle(order)
            for i in range(1 << 20, (1 << 20) + 100):
                conn.data_received(get_bytes(i))
            reqs = [get_bytes(i) for i in order]
            expect = b"HTTP/1.1 200 "
            assert t.last.startswith(expect), t.last[:200]
            # What lives on is frozen, as the server freezes its start-up's (weedpy.imports): a
            # full pass of the collector over the set-up's objects (the stored uploads, the
            # requests' bytes), whether one falls inside the measured reads or not, would move
            # the count per read by several thousand instructions from one tree to the next.
            import gc

            gc.collect()
            gc.freeze()
        if profile:
            import cProfile
            import pstats

            pr = cProfile.Profile()
            pr.enable()
        for r in reqs[:n if feed is None else feed]:
            conn.data_received(r)
        if profile:
            pr.disable()
            st = pstats.Stats(pr)
            rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
            total = sum(v[1] for _, v in rows)
            print(f"{total / max(n, 1):.1f} Python calls per request")
            for (file, line, fn), (cc, nc, tt, ct, _) in rows:
                print(f"{nc / max(n, 1):6.2f} calls {tt / max(n, 1) * 1e6:6.2f} us own {ct / max(n, 1) * 1e6:6.2f} us with callees"
                      f"  {Path(file).name}:{line} {fn}")
        assert t.last.startswith(expect), t.last[:200]
        assert conn.target is None and not conn.busy
        store.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--phase", choices=("write", "read"), default="write")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    p.add_argument("--feed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner or args.profile:
        run_uploads(args.n, args.size, args.profile, args.feed, args.phase)
        return 0
    common = ("-n", str(args.n), "--size", str(args.size), "--phase", args.phase, "--feed")
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict and set layouts in both runs and every tree
    zero = inner_instructions(__file__, "x", *common, "0", env=env)
    full = inner_instructions(__file__, "x", *common, str(args.n), env=env)
    what = "upload" if args.phase == "write" else "read"
    print(f"{(full - zero) / args.n / 1000:.1f}k instructions per {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
