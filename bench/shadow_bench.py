"""What shadowing costs the serving path: the same load against mixed mode without and with dual-run.

Configurations (each a weedpy volume server on its own master and fresh directories, all
started up front and kept running, so rounds can alternate between them):

  go          `-mode=proxy`: the gateway relays everything to Go (the baseline; the relay path is
              the one shadowed routes serve from)
  mixed       `-mode=mixed`, every route `go` (native handlers loaded, no dual-run)
  shadow-P    `-mode=mixed`, `admin.read` = shadow at sample P%; while dual-run is on, every write is mirrored to
              the native store too (off the serving path, but on the same CPU)

Load: bench/http_loadgen (Go, `weed benchmark`-shaped: multipart uploads, then random GETs) at
-c concurrency, straight at the volume server. Each round runs a write phase on every
configuration in turn, waits until each mirror lane has applied every write to the native store
(so reads are measured without a write backlog behind them), then a read phase on every
configuration in turn. Medians per configuration and the ratio to `go` are printed, with what the
differ did. The servers (gateway + Go backend) are pinned to CPU 0 and the load generator to the
others when taskset exists. The machine is shared: only ratios from one run mean anything.

    .venv/bin/python bench/shadow_bench.py --rounds 5 -n 5000 -c 16 --size 1024 --samples 100,10,1
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import (  # noqa: E402
    MasterProc, Proc, clean_env, free_port_pair, start_master, start_proc, wait_for_volume_server, wait_http, wait_tcp,
)
from tests.support.weedpy_proc import weedpy_volume_argv  # noqa: E402

_LINE = re.compile(r"(\w+) rps=([0-9.]+) failed=(\d+) p50=([0-9.]+)ms p99=([0-9.]+)ms")
VOLUMES = "1,2,3,4"


def _pin(cpus: str) -> list[str]:
    return ["taskset", "-c", cpus] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def build_loadgen(out: Path) -> Path:
    exe = out / "http_loadgen"
    subprocess.run(["go", "build", "-o", str(exe), "."], cwd=ROOT / "bench" / "http_loadgen", check=True,
                   env={**os.environ, "GOFLAGS": "-mod=mod"})
    return exe


def table(config: str) -> str:
    if config in ("go", "mixed"):
        return f'version = "bench-{config}"\ndefault = "go"\n'
    pct = float(config.split("-", 1)[1])
    return f'version = "bench-{config}"\ndefault = "go"\n[routes]\n"admin.read" = {{ target = "shadow", sample_pct = {pct} }}\n'


@dataclasses.dataclass
class Server:
    config: str
    master: MasterProc
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def report(self) -> dict:
        return httpx.get(f"{self.url}/weedpy/diff", timeout=30).json()

    def drain(self) -> float:
        t0 = time.monotonic()
        while self.config.startswith("shadow") and self.report()["stores"]["mirror_pending"]:
            time.sleep(0.2)
        return time.monotonic() - t0

    def stop(self) -> None:
        self.proc.stop()
        self.master.stop()


def start(config: str, base: Path) -> Server:
    work = base / config
    master = start_master(work / "m", volume_size_limit_mb=1024)
    routes = work / "routes.toml"
    routes.write_text(table(config))
    (work / "go").mkdir(parents=True)
    port, grpc_port = free_port_pair()
    extra = (["-mode=proxy"] if config == "go" else ["-mode=mixed", f"-routes={routes}"] if config == "mixed" else
             ["-mode=mixed", f"-routes={routes}", f"-dir.native={work / 'py'}"])
    argv = weedpy_volume_argv(port=port, grpc_port=grpc_port, public_port=port, data_dir=work / "go",
                              master=master.address, max_volumes=32, extra=extra + ["-logLevel=warning"])
    proc = start_proc(_pin("0") + argv, work / "server.log", env=clean_env())
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=60)
    wait_tcp("127.0.0.1", grpc_port, proc=proc)
    wait_for_volume_server(master, f"127.0.0.1:{port}")
    httpx.get(f"{master.url}/vol/grow", params={"count": 4, "replication": "000"}, timeout=60).raise_for_status()
    return Server(config, master, proc, port)


def load(loadgen: Path, server: Server, phase: str, args: argparse.Namespace, keybase: int) -> dict[str, float]:
    cpus = "1-" + str((os.cpu_count() or 2) - 1)
    out = subprocess.run(_pin(cpus) + [str(loadgen), f"-server=127.0.0.1:{server.port}", f"-vids={VOLUMES}",
                                       f"-n={args.n}", f"-c={args.c}", f"-size={args.size}", f"-phase={phase}",
                                       f"-keybase={keybase}"],
                         capture_output=True, text=True, timeout=3600).stdout
    for name, rps, failed, p50, p99 in _LINE.findall(out):
        return {f"{name}_rps": float(rps), f"{name}_failed": float(failed), f"{name}_p50": float(p50),
                f"{name}_p99": float(p99)}
    raise RuntimeError(f"unexpected load generator output:\n{out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--samples", default="100,10", help="shadow sample percentages to measure")
    ap.add_argument("--mixed", action="store_true", help="also measure mixed mode without dual-run")
    args = ap.parse_args()
    configs = ["go"] + (["mixed"] if args.mixed else []) + [f"shadow-{p.strip()}" for p in args.samples.split(",") if p.strip()]
    base = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    servers: list[Server] = []
    results: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
    try:
        loadgen = build_loadgen(base)
        servers = [start(c, base) for c in configs]
        time.sleep(1.0)
        for r in range(args.rounds):
            keybase = 1 + r * args.n
            round_res: dict[str, dict[str, float]] = {}
            for s in servers:
                round_res[s.config] = load(loadgen, s, "write", args, keybase)
            for s in servers:
                round_res[s.config]["drain_s"] = s.drain()
            for s in servers:
                round_res[s.config].update(load(loadgen, s, "read", args, keybase))
            for c, res in round_res.items():
                results[c].append(res)
                print(f"round {r + 1} {c}: " + ", ".join(f"{k}={v:g}" for k, v in res.items()), flush=True)
        reports = {s.config: s.report() for s in servers if s.config.startswith("shadow")}
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(base, ignore_errors=True)
    med = {c: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for c, rs in results.items()}
    print(f"\nmedians of {args.rounds} rounds, n={args.n} c={args.c} size={args.size} (ratio to go)")
    keys = ["read_rps", "read_p50", "read_p99", "write_rps", "write_p50", "write_p99"]
    print(f"{'config':<12}" + "".join(f"{k:>18}" for k in keys))
    for c in configs:
        print(f"{c:<12}" + "".join(f"{med[c][k]:>10.2f} ({med[c][k] / med['go'][k]:4.2f})" for k in keys))
    for c, rep in reports.items():
        eps = {e["endpoint"]: e for e in rep["endpoints"]}
        read, write = eps.get("admin.read", {}), eps.get("admin.write", {})
        print(f"{c}: reads compared {read.get('compared', 0)}, dropped {read.get('dropped_by_reason', {})}, "
              f"mismatched {read.get('mismatched', 0)}; writes mirrored {write.get('compared', 0)}, "
              f"mismatched {write.get('mismatched', 0)}; diverged {rep['stores']['diverged_writes']}, "
              f"mirror waits {rep['stores']['mirror_waits']} ({rep['stores']['mirror_wait_seconds']} s); "
              f"drain after writes {med[c]['drain_s']:.1f} s")


if __name__ == "__main__":
    main()
