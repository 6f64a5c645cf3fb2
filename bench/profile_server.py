"""Where a weedpy server's CPU goes under `weed benchmark`-shaped load: py-spy samples, grouped.

Starts a master and `weedpy-volume -mode=<mode>`, grows volumes, runs the Go load generator's
write phase (and then its read phase), and records the server process with `py-spy record`
(sampling, no instrumentation: the server runs at almost full speed) during the phase asked
for. The collapsed stacks are summed two ways:

- by area (the package a frame's file belongs to: h2, hpack, trio, weedpy.http1, native.http,
  native.storage, gateway, the stdlib, ...), self time and inclusive time in % of the samples
  in which the process was running Python (py-spy drops idle samples);
- the hottest functions by self time.

This is the "profile that shows what still costs the difference" for the benchmark notes: pair it
with `bench/cpu_per_request.py` (CPU per request against Go in the same run).

    .venv/bin/python bench/profile_server.py --mode native --phase read -n 20000
    .venv/bin/python bench/profile_server.py --mode proxy --phase write --top 25
    .venv/bin/python bench/profile_server.py --mode native --phase grpc --method Ping -c 32

Needs the `bench` extra (py-spy) and permission to ptrace the server (root, or
kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.cpu_per_request import VOLUMES, run_phase, server_pids  # noqa: E402
from bench.native_http_bench import build_loadgen  # noqa: E402
from tests.support.procs import start_master, wait_for_volume_server  # noqa: E402
from tests.support.weedpy_proc import start_weedpy_volume  # noqa: E402

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_AREAS = (  # first match wins: (area, substring of the frame's file path)
    ("h2", "/h2/"), ("hpack", "/hpack/"), ("trio", "/trio/"), ("httptools", "/httptools/"),
    ("structlog", "/structlog/"), ("protobuf", "/google/protobuf/"), ("PIL", "/PIL/"),
    ("weedpy.http1", "/weedpy/http1/"), ("weedpy.grpc", "/weedpy/grpc/"), ("weedpy", "/weedpy/"),
    ("native.http", "/native/http/"), ("native.grpc", "/native/grpc/"), ("native.storage", "/native/storage/"),
    ("native", "/native/"), ("gateway", "/gateway/"), ("difftool", "/difftool/"), ("proto", "/proto/"),
)


def area_of(path: str) -> str:
    path = "/" + path  # py-spy prints paths relative to sys.path entries: `trio/_core/_run.py`
    for name, part in _AREAS:
        if part in path:
            return name
    if "site-packages" in path:
        return "other site-packages"
    if "/lib/python" in path or path.count("/") == 1:  # `socket.py`: the stdlib, relative
        return "stdlib"
    return "other"


def parse_frame(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    if m is None:
        return frame, "other"
    return f"{m['func']} ({Path(m['file']).name})", area_of(m["file"])


def summarize(collapsed: str) -> tuple[int, dict[str, int], dict[str, int], dict[str, int]]:
    """Samples, self samples by area, inclusive samples by area, self samples by function."""
    total = 0
    self_area: collections.Counter[str] = collections.Counter()
    incl_area: collections.Counter[str] = collections.Counter()
    self_func: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [parse_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if not f[0].startswith("process ") and not f[0].startswith("thread ")]
        if not frames:
            continue
        total += n
        func, area = frames[-1]
        self_area[area] += n
        self_func[func] += n
        for a in {a for _, a in frames}:
            incl_area[a] += n
    return total, dict(self_area), dict(incl_area), dict(self_func)


@contextlib.contextmanager
def recording(spy: str, pid: int, rate: int, out: Path, *more: tuple[int, Path], gil: bool = False) -> Iterator[None]:
    """py-spy samples `pid` into `out` (collapsed stacks) while the block runs; each of `more`
    (pid, file) likewise, at the same time. `gil`: only samples of the thread holding the GIL."""
    flags = ["--gil"] if gil else []
    recs = [subprocess.Popen([spy, "record", "--format", "raw", "--rate", str(rate), "--nonblocking", *flags,
                              "--pid", str(p), "-o", str(o)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p, o in ((pid, out), *more)]
    try:
        yield
    finally:
        for rec in recs:
            rec.send_signal(signal.SIGINT)
        for rec in recs:
            rec.wait(timeout=60)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("native", "proxy"), default="native")
    p.add_argument("--phase", choices=("write", "read", "grpc"), default="read",
                   help="grpc: unary calls of --method from bench/grpc_bench.py's client for --seconds")
    p.add_argument("--method", default="Ping")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--query", default="", help="query string of every upload, e.g. fsync=true (without '?')")
    p.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--log-level", default="info")
    p.add_argument("--workers", type=int, default=1,
                   help="-workers of the server; HTTP phases sample every process (the summary adds them up), "
                        "grpc only the leader (which alone serves it)")
    p.add_argument("--keep", help="also write the collapsed stacks (flamegraph input) here")
    p.add_argument("--gil", action="store_true",
                   help="only samples holding the GIL (as py-spy reads it): nearer the Python's own CPU. Without it a thread inside a syscall "
                        "counts however long it waits there, e.g. for its core back after a send woke the peer")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="profile-server-"))
    loadgen = build_loadgen(base / "loadgen")
    master = start_master(base / "m", volume_size_limit_mb=4096)
    server = None
    try:
        server = start_weedpy_volume(base, master, extra=[f"-mode={args.mode}", f"-max={VOLUMES + 2}",
                                                          f"-logLevel={args.log_level}",
                                                          f"-workers={args.workers}"])
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        httpx.get(f"{master.url}/vol/grow", params={"count": VOLUMES, "replication": "000"}, timeout=120).raise_for_status()
        vids = ",".join(str(v) for v in range(1, VOLUMES + 1))
        addr = f"127.0.0.1:{server.port}"
        pids = {"server": server.proc.pid}
        out = base / "stacks.txt"
        if args.phase == "grpc":
            with recording(spy, server.proc.pid, args.rate, out, gil=args.gil):
                calls = subprocess.run([sys.executable, str(ROOT / "bench" / "grpc_bench.py"), "--client",
                                        str(server.grpc_port), "--seconds", str(args.seconds), "--concurrency",
                                        str(args.c), "--method", args.method],
                                       capture_output=True, text=True, timeout=600).stdout
            got = json.loads(calls.strip().splitlines()[-1])
            print(f"{args.mode} {args.method}: {got['calls'] / got['seconds']:.0f} calls/s "
                  f"(one Python client, {args.c} in flight)")
        else:
            if args.workers != 1:
                time.sleep(2)  # the workers come up beside the leader
                pids = server_pids(server, args.mode)
            if args.phase == "read":
                run_phase(loadgen, addr, "write", vids, args, 10_000_000, pids)  # the files to read
            more = [(pid, base / f"stacks-{name}.txt") for name, pid in pids.items() if name.startswith("worker")]
            with recording(spy, server.proc.pid, args.rate, out, *more, gil=args.gil):
                res = run_phase(loadgen, addr, args.phase, vids, args, 10_000_000, pids)
            parts = " ".join(f"{k[7:]}={v:.0f}" for k, v in res.items() if k.startswith("cpu_us_"))
            print(f"{args.mode} {args.phase}: {res['rps']:.0f} req/s, {res['cpu_us']:.1f} cpu-us/req ({parts}), "
                  f"failed {res['failed']:.0f}, cores {res['cores_busy_pct']:.0f}% busy")
            for _, extra in more:  # one profile of the whole server: every process's samples
                if extra.exists():
                    with out.open("a") as f:
                        f.write(extra.read_text())
    finally:
        if server is not None:
            server.stop()
        master.stop()
    text = out.read_text() if out.exists() else ""
    shutil.rmtree(base, ignore_errors=True)  # the server's data and the stacks (--keep has a copy)
    if args.keep:
        Path(args.keep).write_text(text)
    total, self_area, incl_area, self_func = summarize(text)
    if not total:
        print("no samples (is ptrace allowed?)", file=sys.stderr)
        return 1
    print(f"\n{total} samples while running Python; by area (self %, inclusive %):")
    for area, n in sorted(self_area.items(), key=lambda kv: -kv[1]):
        print(f"  {area:20s} {100 * n / total:5.1f}%  {100 * incl_area.get(area, 0) / total:5.1f}%")
    print("\nhottest functions by self time:")
    for func, n in sorted(self_func.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {100 * n / total:5.1f}%  {func}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
