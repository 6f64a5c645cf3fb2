"""Needle map memory and volume load time, weedpy against Go's start-up on the same files.

    .venv/bin/python bench/storage_load.py [--entries 1000000] [--deletes 0.1] [--overwrites 0]
                                           [--shuffle] [--runs 3] [--dir DIR] [--json FILE]

Builds one volume (5-byte offsets, small needles, ascending ids like master-assigned keys;
`--deletes` of them deleted later, `--overwrites` rewritten later), then, in the same run:

- weedpy: `Volume.load` in this process (median of --runs, page cache warm), twice: resolving the
  `.idx` in bulk (no needle map file) and mapping the `.nmx` map file a previous load wrote; the
  map's bytes per live entry (tracemalloc around resolving it), and a cold `python -c` process
  that opens the store;
- Go: `weed volume` on the same directory, from spawn until `/status` lists the volume with its
  file count (median of --runs), against a private `weed master`.

Targets: <= 24 bytes/entry; load <= 1.5x Go's start-up (both ways).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from native.storage._map_load import MapPolicy  # noqa: E402
from native.storage import (  # noqa: E402
    IdxCodec,
    Needle,
    NeedleMap,
    SuperBlock,
    Volume,
    VolumeInfo,
    encode_needle,
    save_volume_info,
)
from tests.support.procs import clean_env, free_port_pair, wait_http  # noqa: E402
from weedpy.weedbin import find_weed_binary  # noqa: E402

VID = 7


def build_volume(d: Path, entries: int, deletes: float, overwrites: float, shuffle: bool, seed: int = 1) -> dict:
    """Write `entries` puts (+ later deletes/overwrites) fast, by patching one record template."""
    d.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    codec = IdxCodec.for_width(5)
    data = b"0123456789abcdef"
    template = bytearray(encode_needle(Needle.create(1, 0x5EED, data, name=b"", mime=b"", last_modified=1_700_000_000), 3))
    size = int.from_bytes(template[12:16], "big")
    tomb_template = bytearray(encode_needle(Needle(1, 0x5EED, checksum=int.from_bytes(template[16 + size:20 + size], "big")), 3))
    ts_at = 16 + size + 4
    keys = [3 * i + 1 for i in range(entries)]
    if shuffle:
        rnd.shuffle(keys)
    dat = bytearray(SuperBlock().encode())
    rows = []
    ts = time.time_ns()

    def put(key: int) -> None:
        nonlocal ts
        ts += 1
        template[4:12] = key.to_bytes(8, "big")
        template[ts_at:ts_at + 8] = ts.to_bytes(8, "big")
        rows.append(codec.encode(key, len(dat) // 8, size))
        dat.extend(template)

    def delete(key: int) -> None:
        nonlocal ts
        ts += 1
        tomb_template[4:12] = key.to_bytes(8, "big")
        tomb_template[20:28] = ts.to_bytes(8, "big")
        rows.append(codec.tombstone(key, len(dat) // 8))
        dat.extend(tomb_template)

    for k in keys:
        put(k)
    for k in rnd.sample(keys, int(entries * overwrites)):
        put(k)
    for k in rnd.sample(keys, int(entries * deletes)):
        delete(k)
    (d / f"{VID}.dat").write_bytes(dat)
    (d / f"{VID}.idx").write_bytes(b"".join(rows))
    save_volume_info(d / f"{VID}.vif", VolumeInfo(version=3, bytes_offset=5))
    return {"rows": len(rows), "dat_bytes": len(dat)}


def weedpy_load(d: Path, runs: int) -> dict:
    no_file = MapPolicy(use_files=False)
    Volume.load(d, VID, map_policy=no_file).close()  # warm the page cache
    times, mapped = [], []
    stats = None
    for _ in range(runs):
        t = time.perf_counter()
        v = Volume.load(d, VID, map_policy=no_file)
        times.append(time.perf_counter() - t)
        stats = v.stats()
        v.close()
    Volume.load(d, VID).close()  # writes the map file
    for _ in range(runs):
        t = time.perf_counter()
        v = Volume.load(d, VID)
        mapped.append(time.perf_counter() - t)
        got = v.stats()
        assert (got.file_count, got.delete_count, got.content_size, got.deleted_bytes) == (
            stats.file_count, stats.delete_count, stats.content_size, stats.deleted_bytes)
        v.close()
    v = Volume.load(d, VID)
    codec = v.codec
    v.close()
    cols = codec.columns((d / f"{VID}.idx").read_bytes())
    tracemalloc.start()
    m = NeedleMap.from_columns(cols, 3)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stats is not None
    return {
        "load_s": statistics.median(times),
        "load_runs_s": times,
        "mapped_load_s": statistics.median(mapped),
        "mapped_load_runs_s": mapped,
        "map_entries": len(m),
        "map_bytes": held,
        "bytes_per_entry": held / max(len(m), 1),
        "map_peak_bytes_during_load": peak,
        "file_count": stats.file_count,
        "delete_count": stats.delete_count,
        "content_size": stats.content_size,
        "deleted_bytes": stats.deleted_bytes,
    }


def weedpy_cold(d: Path) -> float:
    code = (
        "import sys, time; t=time.perf_counter(); sys.path.insert(0, %r);"
        "from native.storage import Store; s=Store.open([%r], max_counts=10); s.close();"
        "print(time.perf_counter()-t)"
    ) % (str(ROOT), str(d))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - t


def go_startup(d: Path, runs: int, work: Path) -> dict:
    weed = str(find_weed_binary())
    mport, mgrpc = free_port_pair()
    master = subprocess.Popen(
        [weed, "master", "-ip=127.0.0.1", f"-port={mport}", f"-port.grpc={mgrpc}", f"-mdir={work / 'm'}",
         "-peers=none", "-volumeSizeLimitMB=30000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(), start_new_session=True,
    )
    (work / "m").mkdir(exist_ok=True)
    times, status = [], {}
    try:
        wait_http(f"http://127.0.0.1:{mport}/cluster/status")
        for _ in range(runs):
            port, gport = free_port_pair()
            t = time.perf_counter()
            p = subprocess.Popen(
                [weed, "volume", "-ip=127.0.0.1", f"-port={port}", f"-port.grpc={gport}", f"-dir={d}", "-max=10",
                 f"-master=127.0.0.1:{mport}", "-preStopSeconds=0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(), start_new_session=True,
            )
            try:
                while True:
                    if p.poll() is not None:
                        raise RuntimeError("weed volume exited during start-up")
                    try:
                        vols = httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).json().get("Volumes") or []
                        hit = [v for v in vols if v["Id"] == VID]
                        if hit and hit[0]["FileCount"] > 0:
                            status = hit[0]
                            break
                    except (httpx.HTTPError, ValueError):
                        pass
                    time.sleep(0.002)
                times.append(time.perf_counter() - t)
            finally:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    finally:
        master.send_signal(signal.SIGINT)
        try:
            master.wait(15)
        except subprocess.TimeoutExpired:
            master.kill()
    return {
        "startup_s": statistics.median(times),
        "startup_runs_s": times,
        "file_count": status.get("FileCount"),
        "delete_count": status.get("DeleteCount"),
        "content_size": status.get("Size"),
        "deleted_bytes": status.get("DeletedByteCount"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--deletes", type=float, default=0.1)
    ap.add_argument("--overwrites", type=float, default=0.0)
    ap.add_argument("--shuffle", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="weedpy-bench-"))
    data = work / "data"
    try:
        t = time.perf_counter()
        shape = build_volume(data, args.entries, args.deletes, args.overwrites, args.shuffle)
        print(f"built {shape['rows']} index rows, {shape['dat_bytes']} .dat bytes in {time.perf_counter() - t:.1f}s", flush=True)
        wp = weedpy_load(data, args.runs)
        cold = weedpy_cold(data)
        go = go_startup(data, args.runs, work)
        ratio = wp["load_s"] / go["startup_s"]
        result = {"shape": shape, "args": {k: str(v) for k, v in vars(args).items()}, "weedpy": wp,
                  "weedpy_cold_process_s": cold, "go": go, "load_ratio_vs_go": ratio}
        same = all(wp[k] == go[k] for k in ("file_count", "delete_count", "content_size", "deleted_bytes"))
        print(f"needle map: {wp['map_entries']} entries, {wp['bytes_per_entry']:.1f} bytes/entry (target <= 24)")
        print(f"weedpy Volume.load, resolving the .idx: {wp['load_s'] * 1000:.0f} ms median of {args.runs} {[round(x * 1000) for x in wp['load_runs_s']]}")
        print(f"weedpy Volume.load, mapping the .nmx: {wp['mapped_load_s'] * 1000:.0f} ms median of {args.runs} {[round(x * 1000) for x in wp['mapped_load_runs_s']]}")
        print(f"weedpy cold process (interpreter + imports + Store.open): {cold * 1000:.0f} ms")
        print(f"Go weed volume start-up until /status lists it: {go['startup_s'] * 1000:.0f} ms median {[round(x * 1000) for x in go['startup_runs_s']]}")
        print(f"ratio weedpy load / Go start-up: {ratio:.2f} resolving, {wp['mapped_load_s'] / go['startup_s']:.2f} mapped "
              f"(target <= 1.5); counts identical to Go: {same}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
