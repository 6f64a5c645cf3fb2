"""Start-up at scale: time to ready, time until every volume is served, and memory per needle,
Go 4.48 against native (`-workers=1` and the default), side by side in one run.

    .venv/bin/python bench/startup_scale.py [--sets 0,1x1M,1x3M,10x3M] [--variants plain,churn]
                                            [--runs 2] [--dir DIR] [--keep] [--json FILE]

Data sets (`VOLUMESxNEEDLES`; `0` is an empty directory): volumes of 16-byte files with ascending
ids, as master-assigned keys are. The `churn` variant then overwrites 5% of the ids and deletes
10%. 30M needles by upload would take hours on this box, so the files are written here, record
by record in the layout native.storage writes byte-compatibly with Go (numpy over one record
template: tests/support/bulk_volumes.py), and Go loads them first in every run: the run stops
unless Go's /status reports the expected file and delete counts, and native's counts must equal
Go's.

Every server start is a fresh process on the same files, with one `weed master` for the run
(Go waits for a master before it opens its ports), page cache warm, and weedpy's modules
byte-compiled beforehand into a cache of the run's own (`PYTHONPYCACHEPREFIX`), as an installed
package is (without it, an environment with `PYTHONDONTWRITEBYTECODE` compiles every module at
every start):
- ready: spawn until `/status` answers 200;
- served: spawn until `/status` lists every volume with its full file count (asked every 25 ms
  once the server answers: `SERVED_PROBE_INTERVAL`); with workers, whichever process accepts the
  probe answers it;
- healthy: spawn until `/healthz` answers 200 (asked once served): native answers it once every
  process serves every volume and the master answered, Go once its ports are open;
- memory once healthy (sampled 1 s later), summed over the server's process tree: RSS
  (`VmRSS`, and its file-backed part `RssFile`) and PSS (`/proc/PID/smaps_rollup`), which
  divides pages shared by several processes (the mapped needle map files) among them;
- growth per needle: (memory - memory of the same server on an empty directory) / needles;
- numpy: how many of the server's processes have numpy loaded (none, once its map files are
  current).

Native is measured twice per set: `first` (no needle map files: the start resolves every `.idx`
and writes `<vid>.nmx`) and `restart` (the map files are there and still match the `.idx`).
Targets: ready within 1.5x of Go, every volume served within 2x, <= 24 bytes per
needle across all processes, start-up on an empty directory within 1.5x.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.bulk_volumes import write_volume  # noqa: E402
from tests.support.procs import clean_env, free_port_pair, start_master  # noqa: E402
from weedpy.weedbin import find_weed_binary  # noqa: E402


# Once a server answers, /status is asked every 25 ms until it lists every volume: each answer
# costs the server CPU (native ~1.5 ms, Go ~0.9 ms) that the loading shares two cores with, and
# only native answers while it loads (Go's ports open after), so a faster probe slows native.
SERVED_PROBE_INTERVAL = 0.025


@dataclasses.dataclass(frozen=True)
class DataSet:
    volumes: int
    needles: int  # per volume
    churn: bool

    @property
    def name(self) -> str:
        if not self.volumes:
            return "empty"
        n = f"{self.needles // 1_000_000}M" if self.needles % 1_000_000 == 0 else str(self.needles)
        return f"{self.volumes}x{n}" + ("-churn" if self.churn else "")

    @property
    def total(self) -> int:
        return self.volumes * self.needles


def parse_set(text: str, churn: bool) -> DataSet:
    if text == "0":
        return DataSet(0, 0, False)
    vols, _, n = text.partition("x")
    mult = 1_000_000 if n.endswith("M") else 1_000 if n.endswith("K") else 1
    return DataSet(int(vols), int(n.rstrip("MK")) * mult, churn)


# -- writing the volumes ---------------------------------------------------------------------------


def write_set(ds: DataSet, d: Path) -> dict[int, dict]:
    return {vid: write_volume(d, vid, ds.needles, ds.churn, seed=vid) for vid in range(1, ds.volumes + 1)}


# -- measuring a server ----------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time spent so far by the process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def memory(pid: int) -> dict:
    """RSS, its file-backed part and PSS in bytes, summed over the process tree, and how many of
    its processes have numpy loaded (its core extension mapped)."""
    rss = rss_file = pss = numpy = 0
    pids = tree(pid)
    for p in pids:
        try:
            numpy += "_multiarray_umath" in Path(f"/proc/{p}/maps").read_text()
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) << 10
                elif line.startswith("RssFile:"):
                    rss_file += int(line.split()[1]) << 10
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) << 10
        except OSError:
            continue
    return {"rss": rss, "rss_file": rss_file, "pss": pss, "processes": len(pids), "numpy": numpy}


def python_env(pycache: Path) -> dict[str, str]:
    """The server's environment: Go's flag variables scrubbed, bytecode cached in `pycache`."""
    env = clean_env({"PYTHONPYCACHEPREFIX": str(pycache)})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_project(pycache: Path) -> None:
    dirs = [str(ROOT / p) for p in ("weedpy", "native", "gateway", "proto", "difftool")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], env=python_env(pycache), check=True,
                   stdout=subprocess.DEVNULL)


def start_server(kind: str, d: Path, master: str, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    port, gport = free_port_pair()
    common = ["-ip=127.0.0.1", f"-port={port}", f"-port.grpc={gport}", f"-dir={d}", "-max=0", f"-master={master}",
              "-preStopSeconds=0"]
    if kind == "go":
        argv = [str(find_weed_binary()), "volume", *common]
    else:
        argv = [str(Path(sys.executable).parent / "weedpy"), "volume", "-mode=native", *common] + ([f"-workers={workers}"] if workers else [])
    env = python_env(log.parent / "pycache") if kind != "go" else clean_env()
    with open(log, "ab") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return p, port


def until_healthy(client: httpx.Client, port: int, p: subprocess.Popen, t0: float, timeout: float) -> float:
    """Time from spawn until `/healthz` answers 200: with workers, native answers it only once every
    process serves every volume (a `/status` probe lands on whichever process accepts it, so
    `served` may be one process's view); Go once its ports are open."""
    while True:
        if p.poll() is not None:
            raise RuntimeError(f"server exited with {p.returncode}")
        now = time.perf_counter() - t0
        if now > timeout:
            raise TimeoutError(f"/healthz did not answer 200 in {timeout:.0f} s")
        try:
            if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return now
        except httpx.HTTPError:
            pass
        time.sleep(SERVED_PROBE_INTERVAL)


def measure(kind: str, d: Path, master: str, expect: dict[int, dict], workers: int, log: Path,
            timeout: float = 600.0) -> dict:
    t0 = time.perf_counter()
    p, port = start_server(kind, d, master, workers, log)
    ready = served = None
    ready_cpu = 0.0
    status: dict = {}
    # a new connection per probe (with workers, whichever process accepts it answers), one client
    # (no TLS context built per probe: the probing shares the server's 2 cores)
    client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5)
    try:
        while served is None:
            if p.poll() is not None:
                raise RuntimeError(f"{kind} exited with {p.returncode}; see {log}")
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{kind} (-workers={workers}) did not serve every volume of {d.name} in {timeout:.0f} s")
            try:
                r = client.get(f"http://127.0.0.1:{port}/status")
            except httpx.HTTPError:
                time.sleep(0.005)
                continue
            now = time.perf_counter() - t0
            if r.status_code == 200:
                if ready is None:
                    ready, ready_cpu = now, cpu_seconds(p.pid)
                vols = {v["Id"]: v for v in r.json().get("Volumes") or []}
                if all(vid in vols and vols[vid]["FileCount"] == e["FileCount"] for vid, e in expect.items()):
                    served, status = now, vols
                    served_cpu = cpu_seconds(p.pid)
                    break
            time.sleep(SERVED_PROBE_INTERVAL)
        healthy = until_healthy(client, port, p, t0, timeout)
        time.sleep(1.0)
        mem = memory(p.pid)
    finally:
        client.close()
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    counts = {vid: {k: v[k] for k in ("FileCount", "DeleteCount", "Size", "DeletedByteCount")} for vid, v in status.items()}
    return {"ready_s": ready, "served_s": served, "healthy_s": healthy, "ready_cpu_s": ready_cpu, "served_cpu_s": served_cpu, **mem,
            "counts": counts}


def remove_map_files(d: Path) -> None:
    for p in d.glob("*.nmx"):
        p.unlink()


def run_set(ds: DataSet, d: Path, master: str, runs: int, log: Path, empty: dict) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    expect = write_set(ds, d)
    sides: dict[str, list[dict]] = {}
    for _ in range(runs):
        go = measure("go", d, master, expect, 0, log)
        for vid, e in expect.items():
            got = go["counts"][vid]
            if (got["FileCount"], got["DeleteCount"]) != (e["FileCount"], e["DeleteCount"]):
                raise RuntimeError(f"Go reads volume {vid} of {ds.name} as {got}, expected {e}")
        sides.setdefault("go", []).append(go)
        for workers, label in ((1, "native-w1"), (0, "native")):
            remove_map_files(d)
            limit = max(60.0, 10 * go["served_s"])  # a side that hangs is reported, not waited for
            try:
                first = measure("native", d, master, expect, workers, log, limit)
                restart = measure("native", d, master, expect, workers, log, limit)
            except TimeoutError as exc:
                print(f"  {label}: {exc}", flush=True)
                continue
            for r in (first, restart):
                if r["counts"] != go["counts"]:
                    raise RuntimeError(f"{label} counts differ from Go's on {ds.name}: {r['counts']} vs {go['counts']}")
            sides.setdefault(f"{label}-first", []).append(first)
            sides.setdefault(f"{label}-restart", []).append(restart)
    out = {}
    for side, results in sides.items():
        med = {k: statistics.median(r[k] for r in results)
               for k in ("ready_s", "served_s", "healthy_s", "ready_cpu_s", "served_cpu_s", "rss", "rss_file", "pss")}
        med["processes"] = results[0]["processes"]
        med["numpy"] = max(r["numpy"] for r in results)
        base = empty.get(side.split("-first")[0].split("-restart")[0])
        if ds.total and base:
            med["rss_per_needle"] = (med["rss"] - base["rss"]) / ds.total
            med["pss_per_needle"] = (med["pss"] - base["pss"]) / ds.total
        out[side] = med
    return out


def report(name: str, res: dict) -> None:
    go = res["go"]
    print(f"\n{name}")
    print(f"  {'server':22} {'ready s':>8} {'x Go':>6} {'cpu s':>6} {'served s':>9} {'x Go':>6} {'cpu s':>6} "
          f"{'healthy s':>9} {'RSS MB':>8} {'file MB':>8} {'PSS MB':>8} {'B/needle RSS':>13} {'PSS':>6} {'numpy':>5}")
    for side, m in res.items():
        print(f"  {side:22} {m['ready_s']:8.3f} {m['ready_s'] / go['ready_s']:6.2f} {m['ready_cpu_s']:6.2f} {m['served_s']:9.3f} "
              f"{m['served_s'] / go['served_s']:6.2f} {m['served_cpu_s']:6.2f} {m['healthy_s']:9.3f} {m['rss'] / 1e6:8.1f} {m['rss_file'] / 1e6:8.1f} {m['pss'] / 1e6:8.1f} "
              f"{m.get('rss_per_needle', float('nan')):13.1f} {m.get('pss_per_needle', float('nan')):6.1f} {m['numpy']:5d}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="0,1x1M,1x3M,10x3M")
    ap.add_argument("--variants", default="plain,churn")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="weedpy-startup-", dir=os.environ.get("TMPDIR", "/tmp")))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "servers.log"
    compile_project(work / "pycache")
    master = start_master(work / "master", volume_size_limit_mb=30000)
    results: dict[str, dict] = {}
    try:
        # one unmeasured start, so the libraries' bytecode is cached too (not only the project's)
        (work / "warm-up").mkdir(exist_ok=True)
        measure("native", work / "warm-up", master.address, {}, 1, log)
        sets = [parse_set(s, churn) for s in args.sets.split(",") for churn in
                ((False,) if s == "0" else tuple(v == "churn" for v in args.variants.split(",")))]
        empty: dict = {}
        for ds in sets:
            d = work / ds.name
            t = time.perf_counter()
            res = run_set(ds, d, master.address, args.runs, log, empty)
            if not ds.volumes:
                empty = {side.split("-first")[0].split("-restart")[0]: m for side, m in res.items() if not side.endswith("restart")}
            results[ds.name] = res
            report(f"{ds.name} ({ds.total:,} needles; {time.perf_counter() - t:.0f} s)", res)
            if not args.keep:
                shutil.rmtree(d, ignore_errors=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    finally:
        master.stop()
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
