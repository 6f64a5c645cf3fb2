"""Event-loop stalls: 1 KiB read latency on one volume while another, big one is compacted,
fsynced and scrubbed; Go 4.48 and weedpy native in the same run (not a test).

For each target (its own Go master and data directory) the harness

1. allocates volume A (1) and volume B (2) over gRPC, fills A with `--a-needles` ~1 KiB needles
   and B with `--b-bytes` (default 1 GiB) of `--b-needle`-sized needles (default 1 MiB), then
   deletes a quarter of B's needles so that compaction has garbage to drop;
2. reads random needles of A at a fixed rate (`--rate` GETs/s, open loop: bench/http_loadgen
   `-rate`, each request timed from when it was due, so a stall shows in every request it
   delayed) through six phases, each a window of time:
   - `idle`: nothing else happens (`--idle-seconds`);
   - `compact`: VacuumVolumeCompact then VacuumVolumeCommit of B over gRPC;
   - `fsync`: `--fsync-writes` uploads of `--fsync-size` bytes to B with `?fsync=true`
     (`--fsync-clients` at once; `--fsync-query=` uploads without it, to tell the syncs' share
     from the uploads' work);
   - `scrub`: ScrubVolume of B (`--scrub-mode`, default FULL: every record read and checked);
   - `flush`: B fsynced with `--flush-bytes` (default 1 GiB) of it unwritten to disk: before each
     repeat, untimed, that much is uploaded to B without `?fsync=true` (it stays in the page cache:
     the kernel writes dirty pages back after 30 s); the window is one 1 KiB upload to B with
     `?fsync=true`, whose sync writes all of it to disk (the server's lock on B held through
     it, Go's as weedpy's): what the reads of A see of a volume's sync, without the uploads' CPU
     of the `fsync` window;
   - `idle2`: nothing again (how much the box itself moved during the run);
   each operation runs `--repeat` times (default 3) back to back in its window, so that its p99
   ranks a few thousand reads;
3. reports, per phase, the p50/p99/max of the reads of A due inside the window and p99 / idle
   p99 (the target: within 2x);
4. counts heartbeats: the volume server's `-master` is a relay (the gateway's HeartbeatRelay,
   bench/stall_bench.py's `CountingRelay`) that forwards everything to the real master and
   timestamps every message of the SendHeartbeat stream. A heartbeat is "missed" when two
   consecutive messages are more than 1.5 pulses (7.5 s) apart; the largest gap is reported.

Targets: `go` (weed volume 4.48), `native` (weedpy -mode=native, default workers: one process
per usable core), `native:N` (-workers=N). Everything runs on this machine, which other jobs
may share: each phase also records the load average and how busy all cores were.

    .venv/bin/python bench/stall_bench.py                          # go, native, native:1; 1 GiB
    .venv/bin/python bench/stall_bench.py --targets native:1 --b-bytes 256MiB --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import trio  # noqa: E402

from bench.native_http_bench import build_loadgen  # noqa: E402
from gateway.backend import FrontIdentity  # noqa: E402
from gateway.heartbeat_relay import HeartbeatRelay  # noqa: E402
from proto import volume_server_pb2 as vs  # noqa: E402
from tests.support.procs import start_go_volume, start_master  # noqa: E402
from tests.support.weedpy_proc import start_weedpy_volume  # noqa: E402
from weedpy.grpc import Channel, GrpcError, encode_message  # noqa: E402
from weedpy.logs import configure_logging  # noqa: E402

P = "/volume_server_pb.VolumeServer/"
A, B = 1, 2
PULSE = 5.0  # both servers' heartbeat period
MISSED_GAP = 1.5 * PULSE
_TICK = os.sysconf("SC_CLK_TCK")


# -- the counting master relay ---------------------------------------------------------------------


class CountingRelay(HeartbeatRelay):
    """The gateway's master relay, forwarding heartbeats unchanged and timestamping each one."""

    def __init__(self, master: str) -> None:
        super().__init__([master], FrontIdentity("127.0.0.1", 0, 0, "", ""))
        self.beats: list[float] = []

    async def _requests_up(self, call, upstream, heartbeat: bool) -> None:
        while (msg := await call.receive_message()) is not None:
            if heartbeat:
                self.beats.append(time.time())
            try:
                await upstream.send_data(encode_message(msg))
            except GrpcError:
                return
        try:
            upstream.end()
        except GrpcError:
            pass


class RelayThread:
    """A CountingRelay on its own trio loop in a thread; `.address` is the `-master` to give."""

    def __init__(self, master: str) -> None:
        self.relay = CountingRelay(master)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        ready = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with trio.open_nursery() as n:
                await n.start(self.relay.run)
                ready.set()
                await self._stop.wait()
                n.cancel_scope.cancel()

        self._thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the master relay did not start")

    @property
    def address(self) -> str:
        return self.relay.address

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.set)
        self._thread.join(10)


@dataclasses.dataclass
class _MasterAt:
    """What the start helpers read of a master: the address the volume server dials."""

    address: str


# -- gRPC, load, machine -----------------------------------------------------------------------------


def grpc(port: int, method: str, request, response_type, *, timeout: float = 3600, stream: bool = False):
    async def run():
        async with Channel("127.0.0.1", port) as ch:
            if not stream:
                return await ch.unary_unary(P + method, request, response_type, timeout=timeout)
            out = []
            async with ch.unary_stream(P + method, request, response_type, timeout=timeout) as responses:
                async for msg in responses:
                    out.append(msg)
            return out

    return trio.run(run)


def fid(vid: int, key: int) -> str:
    """The file id bench/http_loadgen uses for `key`."""
    return f"{vid},{key:x}{((key * 2654435761) & 0xFFFFFFFF) | 1:08x}"


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def proc_tree_cpu(pid: int) -> float:
    """utime+stime of `pid` and its children (weedpy's workers), seconds."""
    total = 0.0
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry))
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
        except OSError:
            pass
    return total


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]i?B?|B)?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    unit = (m.group(2) or "B").upper()[0]
    return int(float(m.group(1)) * {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit])


# -- one target ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Phase:
    """One phase: the reads due inside its timed spans count for it (most phases time one span)."""

    name: str
    spans: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    detail: str = ""
    load: tuple[float, float] = (0.0, 0.0)
    busy_jiffies: tuple[int, int] = (0, 0)  # all cores: (busy, total) inside the spans
    server_cpu: float = 0.0  # seconds of the server's processes inside the spans

    @property
    def box_busy(self) -> float:
        return 100.0 * self.busy_jiffies[0] / max(1, self.busy_jiffies[1])

    @contextlib.contextmanager
    def timed(self, server_pid: int) -> Iterator[None]:
        """Time what runs inside as one span of this phase."""
        (b0, t0), c0 = cpu_busy(), proc_tree_cpu(server_pid)
        start = time.time()
        try:
            yield
        finally:
            end = time.time()
            (b1, t1), c1 = cpu_busy(), proc_tree_cpu(server_pid)
            self.spans.append((start, end))
            self.busy_jiffies = (self.busy_jiffies[0] + b1 - b0, self.busy_jiffies[1] + t1 - t0)
            self.server_cpu += c1 - c0


class Target:
    def __init__(self, spec: str, args: argparse.Namespace, loadgen: Path, workdir: Path) -> None:
        self.spec, self.args, self.loadgen = spec, args, loadgen
        self.workdir = workdir / spec.replace(":", "-")
        self.workdir.mkdir(parents=True)
        self.master = start_master(self.workdir, volume_size_limit_mb=max(
            1024, (4 * args.b_bytes + args.repeat * args.flush_bytes) >> 20))
        self.relay = RelayThread(self.master.address)
        at = _MasterAt(self.relay.address)
        if spec == "go":
            self.server = start_go_volume(self.workdir, at, name="go", max_volumes=8)
        else:
            kind, _, workers = spec.partition(":")
            extra = ["-mode=native"] + ([f"-workers={workers}"] if workers else [])
            self.server = start_weedpy_volume(self.workdir, at, name=kind, extra=extra)
        self.addr = f"127.0.0.1:{self.server.port}"
        self.phases: list[Phase] = []

    def close(self) -> None:
        self.server.stop()
        self.relay.stop()
        self.master.stop()

    def loadgen_run(self, *flags: str, timeout: float = 3600) -> str:
        out = subprocess.run([str(self.loadgen), f"-server={self.addr}", *flags], capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0 or "failed=0" not in out.stdout:
            raise RuntimeError(f"loadgen {flags}: {out.stdout}{out.stderr}")
        return out.stdout.strip()

    def prepare(self) -> dict[str, str]:
        a = self.args
        for vid in (A, B):
            grpc(self.server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3),
                 vs.AllocateVolumeResponse, timeout=60)
        info = {"fill_a": self.loadgen_run("-phase=write", f"-vids={A}", f"-n={a.a_needles}", "-c=8", "-size=1024")}
        nb = max(1, a.b_bytes // a.b_needle)
        info["fill_b"] = self.loadgen_run("-phase=write", f"-vids={B}", f"-n={nb}", "-c=4", f"-size={a.b_needle}")
        with httpx.Client(timeout=60) as c:
            for key in range(1, nb + 1, 4):  # a quarter of B becomes garbage for the compaction
                r = c.delete(f"http://{self.addr}/{fid(B, key)}")
                if r.status_code != 202:
                    raise RuntimeError(f"delete {fid(B, key)}: {r.status_code} {r.text}")
        st = grpc(self.server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=B), vs.VolumeStatusResponse)
        info["b_size"] = str(st.volume_size)
        self.b_needles = nb
        self.next_key = nb + 1
        return info

    def run_phases(self) -> list[tuple[int, int, int]]:
        """Every phase under one open-loop reader of A; the per-request records."""
        a = self.args
        lat = self.workdir / "latencies.txt"
        reader = subprocess.Popen([str(self.loadgen), f"-server={self.addr}", "-phase=read", f"-vids={A}",
                                   f"-n={a.a_needles}", f"-rate={a.rate}", f"-latout={lat}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2.0)  # connections warm, before the first window
            self._phase("idle", self._idle)
            for name, op in (("compact", self._compact), ("fsync", self._fsync), ("scrub", self._scrub)):
                if name in a.phases:
                    self._phase(name, lambda timed, op=op: self._timed_repeats(timed, op))
            if "flush" in a.phases:
                self._phase("flush", self._flush)
            self._phase("idle2", self._idle)
            time.sleep(1.0)
        finally:
            reader.send_signal(signal.SIGTERM)
            out, err = reader.communicate(timeout=120)
        self.reader_summary = out.strip()
        recs = []
        for line in lat.read_text().splitlines():
            due, us, status = line.split()
            recs.append((int(due), int(us), int(status)))
        return recs

    def _phase(self, name: str, work: Callable[[Callable[[], contextlib.AbstractContextManager]], str]) -> None:
        """Run `work`, which times its windows with the callable it is given; record the phase."""
        phase = Phase(name)
        la0 = loadavg()
        phase.detail = work(lambda: phase.timed(self.server.proc.pid))
        phase.load = (la0, loadavg())
        self.phases.append(phase)
        time.sleep(1.0)  # the requests of this window finish before the next begins

    def _idle(self, timed) -> str:
        with timed():
            time.sleep(self.args.idle_seconds)
        return ""

    def _timed_repeats(self, timed, op: Callable[[], str]) -> str:
        with timed():
            return "; ".join(op() for _ in range(self.args.repeat))

    def _compact(self) -> str:
        t = time.time()
        progress = grpc(self.server.grpc_port, "VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=B),
                        vs.VacuumVolumeCompactResponse, stream=True)
        compact_s = time.time() - t
        t = time.time()
        commit = grpc(self.server.grpc_port, "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=B),
                      vs.VacuumVolumeCommitResponse)
        return (f"compact {compact_s:.1f}s ({len(progress)} progress messages), commit {time.time() - t:.2f}s, "
                f"B now {commit.volume_size} bytes")

    def _fsync(self) -> str:
        a = self.args
        first = self.next_key  # new needles every time (an identical rewrite appends nothing)
        self.next_key += a.fsync_writes
        return self.loadgen_run("-phase=write", f"-vids={B}", f"-n={a.fsync_writes}", f"-c={a.fsync_clients}",
                                f"-size={a.fsync_size}", f"-keybase={first}", f"-query={a.fsync_query}")

    def _flush(self, timed) -> str:
        """Per repeat: B dirtied untimed, then one timed fsync upload that writes it all to disk."""
        a = self.args
        n = max(1, a.flush_bytes // a.b_needle)
        out = []
        with httpx.Client(timeout=600) as c:
            for _ in range(a.repeat):
                first = self.next_key
                self.next_key += n + 1
                dirty = self.loadgen_run("-phase=write", f"-vids={B}", f"-n={n}", "-c=4", f"-size={a.b_needle}",
                                         f"-keybase={first}")
                t = time.time()
                with timed():
                    r = c.post(f"http://{self.addr}/{fid(B, first + n)}?fsync=true", files={"file": ("f", os.urandom(1024))})
                if r.status_code != 201:
                    raise RuntimeError(f"fsync upload: {r.status_code} {r.text}")
                out.append(f"{n} x {a.b_needle >> 10} KiB dirtied ({dirty.split(' p50')[0]}), sync "
                           f"{time.time() - t:.2f}s")
        return "; ".join(out)

    def _scrub(self) -> str:
        mode = getattr(vs, self.args.scrub_mode)
        r = grpc(self.server.grpc_port, "ScrubVolume", vs.ScrubVolumeRequest(volume_ids=[B], mode=mode),
                 vs.ScrubVolumeResponse)
        out = f"{self.args.scrub_mode}: {r.total_files} files, broken {list(r.broken_volume_ids)}"
        return out + (f" ({len(r.details)} problems, first: {list(r.details[:3])})" if r.details else "")


def percentile(sorted_us: list[int], q: float) -> float:
    return sorted_us[min(len(sorted_us) - 1, int(q * (len(sorted_us) - 1)))] / 1000.0


def summarize(target: Target, recs: list[tuple[int, int, int]]) -> dict:
    beats = target.relay.relay.beats
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    out = {"target": target.spec, "phases": [], "reader": target.reader_summary}
    idle_p99 = None
    for ph in target.phases:
        spans = [(int(a * 1e9), int(b * 1e9)) for a, b in ph.spans]
        window = [r for r in recs if any(lo <= r[0] <= hi for lo, hi in spans)]
        lats = sorted(us for _, us, _ in window)
        failed = sum(1 for _, _, s in window if s != 200)
        row = {"phase": ph.name, "seconds": round(sum(b - a for a, b in ph.spans), 2), "n": len(lats),
               "failed": failed, "spans": [[round(a, 3), round(b, 3)] for a, b in ph.spans],
               "detail": ph.detail, "load": [round(x, 2) for x in ph.load], "box_busy_pct": round(ph.box_busy, 1),
               "server_cpu_s": round(ph.server_cpu, 2)}
        if lats:
            row.update(p50_ms=percentile(lats, 0.50), p99_ms=percentile(lats, 0.99), max_ms=lats[-1] / 1000.0)
            # the slowest reads and when they were due (seconds into the phase's first span): one
            # stall shows as a cluster, contention as slow reads spread over the window
            worst = sorted(window, key=lambda r: -r[1])[:5]
            row["worst"] = [[round((due - spans[0][0]) / 1e9, 2), us // 1000] for due, us, _ in sorted(worst)]
            if ph.name == "idle":
                idle_p99 = row["p99_ms"]
            if idle_p99:
                row["p99_vs_idle"] = round(row["p99_ms"] / idle_p99, 2)
        # heartbeats: the gaps overlapping this phase (from the last beat before it to the first after)
        start, end = ph.spans[0][0], ph.spans[-1][1]
        before = [b for b in beats if b < start]
        inside = [b for b in beats if start <= b <= end]
        after = [b for b in beats if b > end]
        span = ([before[-1]] if before else []) + inside + ([after[0]] if after else [])
        wgaps = [b - a for a, b in zip(span, span[1:])]
        row["heartbeats"] = len(inside)
        row["max_heartbeat_gap_s"] = round(max(wgaps), 2) if wgaps else None
        row["heartbeat_missed"] = any(g > MISSED_GAP for g in wgaps)
        out["phases"].append(row)
    out["heartbeats_total"] = len(beats)
    out["max_heartbeat_gap_s"] = round(max(gaps), 2) if gaps else None
    out["heartbeats_missed"] = sum(1 for g in gaps if g > MISSED_GAP)
    return out


def print_table(results: list[dict]) -> None:
    print()
    print(f"{'target':10} {'phase':8} {'secs':>6} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/idle':>8} "
          f"{'hb':>3} {'hb gap':>6} {'load':>11} {'busy%':>6}")
    for res in results:
        for row in res["phases"]:
            print(f"{res['target']:10} {row['phase']:8} {row['seconds']:6.1f} {row['n']:6d} {row.get('p50_ms', 0):8.2f} "
                  f"{row.get('p99_ms', 0):8.2f} {row.get('max_ms', 0):8.1f} {row.get('p99_vs_idle', 0):8.2f} "
                  f"{row['heartbeats']:3d} {row['max_heartbeat_gap_s'] or 0:6.2f} "
                  f"{row['load'][0]:5.2f}-{row['load'][1]:<5.2f} {row['box_busy_pct']:6.1f}")
        print(f"{res['target']:10} heartbeats: {res['heartbeats_total']}, largest gap {res['max_heartbeat_gap_s']} s, "
              f"missed (gap > {MISSED_GAP:.1f} s): {res['heartbeats_missed']}")
        for row in res["phases"]:
            if row["detail"]:
                print(f"{'':10} {row['phase']}: {row['detail']}")
            if row.get("worst") and row["phase"] != "idle2":
                print(f"{'':10} {row['phase']} slowest (s into window, ms): {row['worst']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default="go,native,native:1")
    p.add_argument("--a-needles", type=int, default=20000)
    p.add_argument("--b-bytes", type=parse_size, default=1 << 30)
    p.add_argument("--b-needle", type=parse_size, default=1 << 20)
    p.add_argument("--rate", type=float, default=300.0, help="GETs of A per second")
    p.add_argument("--idle-seconds", type=float, default=15.0)
    p.add_argument("--fsync-writes", type=int, default=1000)
    p.add_argument("--fsync-size", type=parse_size, default=256 << 10)
    p.add_argument("--fsync-clients", type=int, default=4)
    p.add_argument("--fsync-query", default="fsync=true",
                   help="the fsync window's upload query ('': plain uploads, to tell the syncs from the uploads' work)")
    p.add_argument("--flush-bytes", type=parse_size, default=1 << 30,
                   help="what the flush window's one sync writes to disk (uploaded to B before it, untimed)")
    p.add_argument("--phases", type=lambda t: t.split(","), default=["compact", "fsync", "scrub", "flush"],
                   help="the windows between idle and idle2, comma-separated")
    p.add_argument("--scrub-mode", default="FULL", choices=["INDEX", "FULL", "LOCAL", "READS"])
    p.add_argument("--repeat", type=int, default=3, help="times each operation runs in its window (more reads to rank)")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory, removed after")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--keep-data", action="store_true", help="keep the volumes (with --workdir)")
    args = p.parse_args()
    configure_logging("warning")  # the relay's own stream open/close lines

    base = args.workdir or Path(tempfile.mkdtemp(prefix="stall-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    loadgen = build_loadgen(base / "http_loadgen")
    print(f"machine: {os.cpu_count()} cores, load {open('/proc/loadavg').read().strip()}; "
          f"A: {args.a_needles} x ~1 KiB read at {args.rate:g}/s; B: {args.b_bytes >> 20} MiB of "
          f"{args.b_needle >> 10} KiB needles", flush=True)
    results = []
    try:
        for i, spec in enumerate(args.targets.split(",")):
            t = Target(spec.strip(), args, loadgen, base / str(i))
            try:
                print(f"[{spec}] preparing", flush=True)
                prep = t.prepare()
                print(f"[{spec}] {prep}", flush=True)
                recs = t.run_phases()
            finally:
                t.close()
            res = summarize(t, recs)
            res["prepare"] = prep
            results.append(res)
            print_table([res])
            # B and its compacted copy take GiBs: the volumes go, the logs and latencies stay (--workdir)
            if not args.keep_data:
                shutil.rmtree(t.server.data_dir, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    print_table(results)
    print()
    for res in results:
        worst = max((r.get("p99_vs_idle", 0) for r in res["phases"] if r["phase"] != "idle"), default=0)
        print(f"{res['target']:10} worst p99/idle {worst:.2f} ({'within' if worst <= 2 else 'over'} 2x), "
              f"heartbeats missed: {res['heartbeats_missed']}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
