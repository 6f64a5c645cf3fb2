"""Server CPU time per request (and req/s) for Go, weedpy proxy and weedpy native, in one run.

req/s on a shared 2-core machine moves with everyone else's load; the CPU the server process
spends per request moves much less, so this reports both. Each target gets its own master and
data directory; the Go load generator (bench/http_loadgen) first uploads `-n` files with
`weed benchmark`-shaped multipart POSTs to 7 volumes, then reads `-n` random ones. Around each
phase the harness samples utime+stime of the server's processes from /proc (the gateway and its
Go backend separately in proxy mode), so

    cpu_us/req = (CPU seconds spent by the server during the phase) / n * 1e6

Targets alternate (go, proxy, native, go, ...) for `--rounds`; medians and the ratio to Go of
the same run are printed (for CPU: target/Go, lower is better; for req/s: target/Go). Each phase
also reports how busy the machine's cores were (all processes, /proc/stat): near 100% means the
box, not the server alone, was the limit.

    .venv/bin/python bench/cpu_per_request.py --rounds 3 -n 20000 -c 16 --size 1024
    .venv/bin/python bench/cpu_per_request.py --targets go,native --size 1048576 -n 1000

Target `gorelay` puts a minimal compiled relay (bench/go_relay: Go's httputil.ReverseProxy) in
front of a plain Go server, and `nginx` Debian's nginx-light (worker_processes auto, upstream
keepalive; `bench/setup` installs it): what a relay costs on this machine, the references for
proxy mode. `uvrelay` puts proxy mode's uvloop relay (gateway/uv_relay.py) alone in front of a
plain Go server (bench/uv_relay.py: the relay with the front's route, log and metrics work and
no trio). A weedpy target takes a worker count after a colon (`native:1`, `proxy:2`; without
one, weedpy's default: every usable core); its CPU is the leader's, its workers' and, in proxy
mode, the Go backend's. Experiments (weedpy itself pins nothing): `+pin` after a weedpy target
(`native:2+pin`) pins each of its processes to a core of its own, `+cpu0` all of them to core 0;
`--loadgen-cpu 1` keeps the load generator on core 1 (so `native:1+cpu0` against `native:2+cpu0`
compares one process with two sharing one core, the load generator beside them). `native:1x2` runs
two independent single-process servers (their own master and data, nothing shared) side by side,
each loaded with half the requests at half the concurrency at the same time: what two processes
cost with no coordination at all, the reference for `native:2`. `@DIR` at the end of a weedpy
target runs that checkout's code for the server (its PYTHONPATH): `proxy:1@../base,proxy:1` is an
A/B of two commits in one run, rounds alternating.

`--rate R` makes the read phase open loop (R GETs/s, whatever the server's speed): every target
then serves the same load, so CPU per request compares at equal load, not at each one's
saturation. `--pace R` caps both phases at R requests/s (the `-c` clients wait for their turn):
a fixed load below saturation, where a second process is not competing with the load generator
for the cores, so what two processes cost over one is their coordination, not the box. `--detail` adds, per process and request, user and system CPU and voluntary/involuntary context
switches; `--syscalls` syscalls by kind, context switches and migrations (perf tracepoints,
bench/proc_counters.py).

    bench/setup && .venv/bin/python bench/cpu_per_request.py --targets go,native:1,native,proxy:1,proxy,nginx
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from bench.native_http_bench import build_loadgen
from bench.proc_counters import SyscallCounts, task_counters

from tests.support.procs import (
    VolumeProc,
    clean_env,
    free_port,
    start_go_volume,
    start_master,
    wait_for_volume_server,
    wait_tcp,
)
from tests.support.weedpy_proc import start_weedpy_volume

_LINE = re.compile(r"(write|read) rps=([0-9.]+) failed=([0-9]+)")
_RATE_LINE = re.compile(r"rateread n=([0-9]+) failed=([0-9]+).* seconds=([0-9.]+)")
_TICK = os.sysconf("SC_CLK_TCK")
VOLUMES = 7


def proc_cpu(pid: int) -> float:
    """utime+stime of a live process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def sample(pids: dict[str, int]) -> dict[str, float]:
    return {name: proc_cpu(pid) for name, pid in pids.items()}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def run_phase(loadgen: Path, server: str, phase: str, vids: str, args: argparse.Namespace, keybase: int,
              pids: dict[str, int]) -> dict[str, float]:
    detail = getattr(args, "detail", False)
    counts = SyscallCounts() if getattr(args, "syscalls", False) else None
    if counts is not None:
        counts.__enter__()
    tasks0 = {name: task_counters(pid) for name, pid in pids.items()} if detail else {}
    before = sample(pids)
    busy0 = machine_ticks()
    servers = server.split()  # several independent servers: the load split evenly between them
    k = len(servers)
    rate = getattr(args, "rate", 0) / k if phase == "read" else 0
    query = [f"-query={args.query}"] if phase == "write" and getattr(args, "query", "") else []
    open_loop = [f"-rate={rate}", f"-seconds={args.n / k / rate}"] if rate else []
    pace = [f"-pace={args.pace / k}"] if getattr(args, "pace", 0) and not rate else []
    cpu = getattr(args, "loadgen_cpu", None)
    pin_loadgen = ["taskset", "-c", str(cpu)] if cpu is not None else []
    gens = [subprocess.Popen([*pin_loadgen, str(loadgen), f"-server={addr}", f"-vids={vids}", f"-n={args.n // k}",
                              f"-c={max(1, args.c // k)}", f"-size={args.size}", f"-keybase={keybase}",
                              f"-phase={phase}", *open_loop, *pace, *query], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for addr in servers]
    outs = [g.communicate(timeout=3600) for g in gens]
    out = subprocess.CompletedProcess([], 0, "".join(o for o, _ in outs), "".join(e for _, e in outs))
    after = sample(pids)
    busy1 = machine_ticks()
    tasks1 = {name: task_counters(pid) for name, pid in pids.items()} if detail else {}
    if counts is not None:
        counts.__exit__(None, None, None)
    found: dict[str, tuple[float, int]] = {}
    for p, r, f in _LINE.findall(out.stdout):  # each load generator's req/s, added up
        found[p] = (found.get(p, (0.0, 0))[0] + float(r), found.get(p, (0.0, 0))[1] + int(f))
    done = args.n // k * k
    if rate and (ms := _RATE_LINE.findall(out.stdout)):  # open loop: the requests sent in the time
        done = sum(int(m[0]) for m in ms)
        found[phase] = (sum(int(m[0]) / float(m[2]) for m in ms), sum(int(m[1]) for m in ms))
    if phase not in found:
        raise RuntimeError(out.stdout + out.stderr)
    rps, failed = found[phase]
    res = {"rps": rps, "failed": failed}
    total = 0.0
    for name in pids:
        us = (after[name] - before[name]) / done * 1e6
        res[f"cpu_us_{name}"] = us
        total += us
    res["cpu_us"] = total
    res["cores_busy_pct"] = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * 100
    for name in tasks1:  # per request: user and system CPU (us), voluntary and involuntary switches
        for key, scale in (("user", 1e6), ("sys", 1e6), ("vcs", 1.0), ("ivcs", 1.0)):
            res[f"{key}_{name}"] = (tasks1[name][key] - tasks0[name][key]) / done * scale
    if counts is not None:
        for name, events in counts.per_process(pids).items():
            for event, count in events.items():
                res[f"sc_{event}_{name}"] = count / done
    return res


NGINX_CONF = """worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    upstream go {{ server {backend}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{ proxy_pass http://go; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}
}}
"""


def start_nginx(work: Path, backend: str) -> tuple[subprocess.Popen[bytes], int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: run bench/setup")
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, backend=backend, port=port))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work), "-g", "daemon off;"])
    wait_tcp("127.0.0.1", port, timeout=10)
    return proc, port


def start_uv_relay(work: Path, backend: str, env: dict[str, str] | None) -> tuple[subprocess.Popen[bytes], int]:
    """bench/uv_relay.py (gateway/uv_relay.py alone, with proxy mode's per-request work) in front
    of `backend`; its log lines go to a file, as a server's do."""
    port = free_port()
    with open(work / "uv-relay.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "uv_relay.py"), f"--listen=127.0.0.1:{port}",
                                 f"--backend={backend}"], stderr=log, env=env or clean_env())
    wait_tcp("127.0.0.1", port, timeout=30)
    return proc, port


def server_pids(server: VolumeProc, kind: str) -> dict[str, int]:
    """The server's processes by role: the leader and its workers (weedpy), the Go backend (proxy)."""
    pids = {"server": server.proc.pid}
    for i, child in enumerate(sorted(children(server.proc.pid))):
        cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        pids[f"worker{i}" if b"weedpy.worker" in cmd else "backend"] = child
    if kind == "proxy" and "backend" not in pids:
        raise RuntimeError(f"no Go backend under the gateway: {pids}")
    return pids


def one_round(target: str, args: argparse.Namespace, base: Path, loadgen: Path, keybase: int) -> dict[str, dict[str, float]]:
    target, _, tree = target.partition("@")
    env = clean_env({"PYTHONPATH": str(Path(tree).resolve())}) if tree else None
    target, _, pin = target.partition("+")
    kind, _, workers = target.partition(":")
    workers, _, copies = workers.partition("x")
    if copies:  # `native:1x2`: that many independent servers side by side, the load split between them
        return twin_round(kind, workers, int(copies), args, base, loadgen, keybase)
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    master = start_master(work / "m", volume_size_limit_mb=4096)
    server: VolumeProc | None = None
    relay: subprocess.Popen[bytes] | None = None
    try:
        extra = [f"-max={VOLUMES + 2}", f"-logLevel={args.log_level}"] + ([f"-workers={workers}"] if workers else [])
        if kind in ("go", "gorelay", "nginx", "uvrelay"):
            server = start_go_volume(work, master, max_volumes=VOLUMES + 2)
            pids = {"server": server.proc.pid}
        else:
            server = start_weedpy_volume(work, master, extra=[f"-mode={kind}", *extra], env=env)
            time.sleep(2)  # the workers come up beside the leader
            pids = server_pids(server, kind)
            if pin:  # an experiment: `pin`, each process (and its threads) on a core of its own; `cpuN`, all on N
                cpus = sorted(os.sched_getaffinity(0))
                for i, pid in enumerate(pids.values()):
                    cpu = int(pin[3:]) if pin.startswith("cpu") else cpus[i % len(cpus)]
                    for tid in os.listdir(f"/proc/{pid}/task"):
                        os.sched_setaffinity(int(tid), {cpu})
        wait_for_volume_server(master, f"127.0.0.1:{server.port}")
        r = httpx.get(f"{master.url}/vol/grow", params={"count": VOLUMES, "replication": "000"}, timeout=120)
        r.raise_for_status()
        vids = ",".join(str(v) for v in range(1, VOLUMES + 1))
        addr = f"127.0.0.1:{server.port}"
        if kind == "gorelay":
            relay_port = free_port()
            relay = subprocess.Popen([str(loadgen.parent / "go_relay"), f"-listen=127.0.0.1:{relay_port}",
                                      f"-backend={addr}"])
            pids = {"relay": relay.pid, "backend": server.proc.pid}
            addr = f"127.0.0.1:{relay_port}"
            wait_tcp("127.0.0.1", relay_port, timeout=10)
        elif kind == "uvrelay":
            relay, relay_port = start_uv_relay(work, addr, env)
            pids = {"relay": relay.pid, "backend": server.proc.pid}
            addr = f"127.0.0.1:{relay_port}"
        elif kind == "nginx":
            relay, relay_port = start_nginx(work, addr)
            time.sleep(0.5)
            pids = {"relay": relay.pid, **{f"relay{i}": c for i, c in enumerate(children(relay.pid))},
                    "backend": server.proc.pid}
            addr = f"127.0.0.1:{relay_port}"
        return {phase: run_phase(loadgen, addr, phase, vids, args, keybase, pids) for phase in ("write", "read")}
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=10)
        if server is not None:
            server.stop()
        master.stop()
        shutil.rmtree(work, ignore_errors=True)  # 1 MiB rounds write gigabytes


def twin_round(kind: str, workers: str, copies: int, args: argparse.Namespace, base: Path, loadgen: Path,
               keybase: int) -> dict[str, dict[str, float]]:
    """`copies` weedpy servers with their own master and data, nothing shared, each loaded with
    n/copies requests at c/copies concurrency at the same time: what that many processes cost
    with no coordination between them (the reference for `-workers`)."""
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-x{copies}-", dir=base))
    masters, servers = [], []
    try:
        pids: dict[str, int] = {}
        for i in range(copies):
            masters.append(start_master(work / f"m{i}", volume_size_limit_mb=4096))
            extra = [f"-mode={kind}", f"-max={VOLUMES + 2}", f"-logLevel={args.log_level}"]
            servers.append(start_weedpy_volume(work / f"s{i}", masters[i], extra=extra + ([f"-workers={workers}"] if workers else [])))
        time.sleep(2)
        for i, (m, srv) in enumerate(zip(masters, servers)):
            wait_for_volume_server(m, f"127.0.0.1:{srv.port}")
            httpx.get(f"{m.url}/vol/grow", params={"count": VOLUMES, "replication": "000"}, timeout=120).raise_for_status()
            for name, pid in server_pids(srv, kind).items():
                pids[f"{name}{i or ''}"] = pid
        vids = ",".join(str(v) for v in range(1, VOLUMES + 1))
        addrs = " ".join(f"127.0.0.1:{srv.port}" for srv in servers)
        return {phase: run_phase(loadgen, addrs, phase, vids, args, keybase, pids) for phase in ("write", "read")}
    finally:
        for srv in servers:
            srv.stop()
        for m in masters:
            m.stop()
        shutil.rmtree(work, ignore_errors=True)


def build_go_relay(out: Path) -> Path:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    subprocess.run([go, "build", "-o", str(out), "."], cwd=ROOT / "bench" / "go_relay", check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "GOFLAGS": "-mod=mod"})
    return out


def pids_of(res: dict[str, float]) -> list[str]:
    return [k for k in res if k.startswith("cpu_us_")]


def run_rounds(args: argparse.Namespace, targets: list[str], base: Path) -> dict[str, list[dict[str, dict[str, float]]]]:
    loadgen = build_loadgen(base / "loadgen")
    if "gorelay" in targets:
        build_go_relay(base / "go_relay")
    results: dict[str, list[dict[str, dict[str, float]]]] = {t: [] for t in targets}
    for r in range(args.rounds):
        for kind in targets:
            res = one_round(kind, args, base, loadgen, keybase=(r + 1) * 10_000_000)
            results[kind].append(res)
            cells = []
            for phase in ("write", "read"):
                x = res[phase]
                parts = " ".join(f"{k[7:]}={v:.0f}" for k, v in x.items() if k.startswith("cpu_us_") and len(pids_of(x)) > 1)
                cells.append(f"{phase} {x['rps']:8.0f} req/s {x['cpu_us']:6.1f} cpu-us/req {parts} "
                             f"cores {x['cores_busy_pct']:3.0f}% busy failed={x['failed']:.0f}")
            print(f"round {r + 1} {kind:9s} " + " | ".join(cells), flush=True)
            for phase in ("write", "read"):
                extra = {k: v for k, v in res[phase].items() if k.split("_", 1)[0] in ("user", "sys", "vcs", "ivcs", "sc")}
                if extra:
                    print(f"    {phase} per request: " + " ".join(f"{k}={v:.2f}" for k, v in extra.items()), flush=True)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default="go,proxy,native")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--query", default="", help="query string of every upload, e.g. fsync=true (without '?')")
    p.add_argument("--log-level", default="info", help="weedpy -logLevel (info logs one event per request)")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--loadgen-cpu", type=int, help="run the load generator on this core only (taskset)")
    p.add_argument("--rate", type=float, default=0,
                   help="read phase open loop: this many GETs/s for n/rate seconds (CPU per request at a "
                        "fixed load, the same for every target; 0: -c closed-loop clients)")
    p.add_argument("--pace", type=float, default=0,
                   help="cap each phase at this many requests/s in all (closed loop, -c clients): CPU per "
                        "request at a fixed load below saturation, the same for every target")
    p.add_argument("--detail", action="store_true",
                   help="per process and request: user/system CPU, voluntary/involuntary context switches")
    p.add_argument("--syscalls", action="store_true",
                   help="per process and request: syscalls by kind (perf stat tracepoints; needs perf and root)")
    args = p.parse_args()
    targets = args.targets.split(",")
    base = Path(tempfile.mkdtemp(prefix="cpu-per-request-"))
    try:
        results = run_rounds(args, targets, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for phase in ("write", "read"):
        ref = results.get("go")
        go_rps = statistics.median(x[phase]["rps"] for x in ref) if ref else None
        go_cpu = statistics.median(x[phase]["cpu_us"] for x in ref) if ref else None
        for kind in targets:
            rps = statistics.median(x[phase]["rps"] for x in results[kind])
            cpu = statistics.median(x[phase]["cpu_us"] for x in results[kind])
            row = {"rps": rps, "cpu_us": cpu}
            line = f"{phase:5s} {kind:9s} {rps:8.0f} req/s  {cpu:6.1f} cpu-us/req"
            if go_rps:
                row["rps_ratio"] = rps / go_rps
                row["cpu_ratio"] = cpu / go_cpu
                line += f"   req/s x{rps / go_rps:.2f} of go   cpu x{cpu / go_cpu:.2f} of go"
            summary.setdefault(phase, {})[kind] = row
            print(line)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
