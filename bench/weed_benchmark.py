"""`weed benchmark` against a plain Go volume server and against weedpy, side by side in one run.

Each target gets its own fresh master and data directory (same flags); the runs alternate
(go, weedpy, go, weedpy, ...) so machine load drifts hit both, and the median of each is reported
with the weedpy/Go ratio. Figures are only meaningful as ratios from one run.

    .venv/bin/python bench/weed_benchmark.py --mode proxy --rounds 3 -n 20000 -c 16 --size 1024
"""

from __future__ import annotations

import argparse
import atexit
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import VolumeProc, start_go_volume, start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.weedbin import find_weed_binary

_RPS = re.compile(r"Requests per second:\s+([0-9.]+)")
_FAILED = re.compile(r"Failed requests:\s+([0-9]+)")


def run_benchmark(master_addr: str, n: int, c: int, size: int, workdir: Path) -> dict[str, float]:
    """Write then read phase of `weed benchmark`; req/s and failures of each."""
    out = subprocess.run(
        [str(find_weed_binary()), "benchmark", f"-master={master_addr}", f"-n={n}", f"-c={c}",
         f"-size={size}", f"-list={workdir / 'list.txt'}", "-collection=bench"],
        capture_output=True, text=True, timeout=3600,
    ).stdout
    rps = [float(x) for x in _RPS.findall(out)]
    failed = [int(x) for x in _FAILED.findall(out)]
    if len(rps) < 2:
        raise RuntimeError(f"unexpected weed benchmark output:\n{out}")
    return {"write": rps[0], "read": rps[1], "write_failed": failed[0] if failed else -1,
            "read_failed": failed[1] if len(failed) > 1 else -1}


def one_round(kind: str, mode: str, args: argparse.Namespace, base: Path) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    master = start_master(work / "m", volume_size_limit_mb=1024)
    server: VolumeProc | None = None
    try:
        if kind == "go":
            server = start_go_volume(work, master, max_volumes=32)
        else:
            server = start_weedpy_volume(work, master, extra=[f"-mode={mode}", "-max=32"])
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        return run_benchmark(master.address, args.n, args.c, args.size, work)
    finally:
        if server is not None:
            server.stop()
        master.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="proxy", help="weedpy mode to measure (proxy, native, ...)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="weed-benchmark-"))
    atexit.register(shutil.rmtree, base, True)
    results: dict[str, list[dict[str, float]]] = {"go": [], "weedpy": []}
    for r in range(args.rounds):
        for kind in ("go", "weedpy"):
            res = one_round(kind, args.mode, args, base)
            results[kind].append(res)
            print(f"round {r + 1} {kind:6s} write {res['write']:9.1f} req/s  read {res['read']:9.1f} req/s  "
                  f"failed {res['write_failed']}/{res['read_failed']}", flush=True)
    summary = {}
    for phase in ("write", "read"):
        go = statistics.median(x[phase] for x in results["go"])
        py = statistics.median(x[phase] for x in results["weedpy"])
        summary[phase] = {"go": go, "weedpy": py, "ratio": py / go}
        print(f"{phase:5s}: go {go:9.1f} req/s   weedpy[{args.mode}] {py:9.1f} req/s   ratio {py / go:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
