"""The native HTTP data path against Go's volume server, request for request, without a master.

A Go load generator (bench/http_loadgen, shaped like `weed benchmark`'s volume traffic: multipart
uploads of `bench<id>` files typed image/bench, then random GETs) hits a plain Go volume server
and the native handlers served by bench/native_http_server.py, alternately, `--rounds` times;
medians and the native/Go ratio are printed. For the full-stack figure (master assign + lookup
included) use `bench/weed_benchmark.py --mode native`.

    .venv/bin/python bench/native_http_bench.py --rounds 3 -n 20000 -c 16 --size 1024
    .venv/bin/python bench/native_http_bench.py --rounds 3 -n 1000 -c 16 --size 1048576
"""

from __future__ import annotations

import argparse
import atexit
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import free_port, start_go_volume, start_master, start_proc, wait_http

_LINE = re.compile(r"(write|read) rps=([0-9.]+) failed=([0-9]+)")
VIDS = "1,2,3,4,5,6,7"


def build_loadgen(out: Path) -> Path:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    subprocess.run([go, "build", "-o", str(out), "."], cwd=ROOT / "bench" / "http_loadgen", check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "GOFLAGS": "-mod=mod"})
    return out


def run_loadgen(loadgen: Path, server: str, args: argparse.Namespace, keybase: int) -> dict[str, float]:
    out = subprocess.run([str(loadgen), f"-server={server}", f"-vids={VIDS}", f"-n={args.n}", f"-c={args.c}",
                          f"-size={args.size}", f"-keybase={keybase}"], capture_output=True, text=True, timeout=3600)
    res: dict[str, float] = {}
    for phase, rps, failed in _LINE.findall(out.stdout):
        res[phase] = float(rps)
        res[phase + "_failed"] = int(failed)
    if "read" not in res:
        raise RuntimeError(out.stdout + out.stderr)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="native-http-bench-"))
    atexit.register(shutil.rmtree, base, True)  # servers' data: gigabytes at 1 MiB
    loadgen = build_loadgen(base / "loadgen")
    master = start_master(base / "m", volume_size_limit_mb=4096)
    go = start_go_volume(base, master, max_volumes=16)
    import httpx

    httpx.get(f"{master.url}/vol/grow", params={"count": 7, "replication": "000"}, timeout=60)
    port = free_port()
    native = start_proc([sys.executable, str(ROOT / "bench" / "native_http_server.py"), "--port", str(port),
                         "--dir", str(base / "native"), "--volumes", VIDS], base / "native.log")
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=native)
    results: dict[str, list[dict[str, float]]] = {"go": [], "native": []}
    try:
        for r in range(args.rounds):
            for kind, server in (("go", f"127.0.0.1:{go.port}"), ("native", f"127.0.0.1:{port}")):
                res = run_loadgen(loadgen, server, args, keybase=(r + 1) * 10_000_000)
                results[kind].append(res)
                print(f"round {r + 1} {kind:6s} write {res['write']:9.1f} req/s  read {res['read']:9.1f} req/s  "
                      f"failed {res['write_failed']}/{res['read_failed']}", flush=True)
    finally:
        native.stop()
        go.stop()
        master.stop()
    for phase in ("write", "read"):
        g = statistics.median(x[phase] for x in results["go"])
        n = statistics.median(x[phase] for x in results["native"])
        print(f"{phase:5s}: go {g:9.1f} req/s   native {n:9.1f} req/s   ratio {n / g:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
