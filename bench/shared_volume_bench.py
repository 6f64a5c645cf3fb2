"""CPU per append and per read of a volume shared by two processes' views, against one process.

What the cross-process coordination of native mode's worker processes costs by itself, without
HTTP, the event loop or the scheduler: the calls the fast write and read paths make
(`Store.write_needle(..., blocking=False)`, `Volume.read_plain`), timed with the thread's CPU
clock over many calls, in one process:

- `alone`: a store with no shared table (`-workers=1`);
- `shared`: the leader's store with a shared table, only it writing (the slot lock, the
  publish and the follow check);
- `alternating`: the leader's and a worker's store over the same files, writes alternating
  between them as two processes' would, each one catching up with the other's row first; the
  figure is per write, catch-up included. (Both views live in one process here, so the record
  locks do not exclude each other; they are still taken and released, syscalls included.)

Medians and minimums over the rounds are printed: on a busy machine the minimum (the least
disturbed round) is the steadier figure.

    .venv/bin/python bench/shared_volume_bench.py -n 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from native.storage import Needle, Store, VolumeTable  # noqa: E402
from weedpy.sharedmem import SharedBlock  # noqa: E402

VID = 1
PLAIN_LIMIT = 1 << 20


def _needles(n: int, size: int, base: int) -> list[Needle]:
    return [Needle.create(base + i, 0x1234, bytes([i & 0xFF]) * size, name=b"bench.bin", last_modified=1)
            for i in range(n)]


def _stores(tmp: Path, mode: str) -> list[Store]:
    if mode == "alone":
        store = Store.open([str(tmp)], max_counts=8)
        store.allocate_volume(VID)
        return [store]
    block = SharedBlock.create()
    leader = Store.open([str(tmp)], max_counts=8)
    leader.share(VolumeTable(block, 0), leader=True)
    leader.allocate_volume(VID)
    if mode == "shared":
        return [leader]
    worker = Store.open([str(tmp)], max_counts=8, load=False)
    worker.share(VolumeTable(SharedBlock.attach(block.fd), 1), leader=False)
    worker.sync_shared()
    return [leader, worker]


def one_round(mode: str, n: int, size: int) -> tuple[float, float]:
    """(CPU us per write, CPU us per read) for `mode`."""
    with tempfile.TemporaryDirectory(prefix="shared-volume-") as tmp:
        stores = _stores(Path(tmp), mode)
        needles = _needles(n, size, 1)
        spent = 0.0
        for i, nd in enumerate(needles):
            store = stores[i % len(stores)]
            t = time.thread_time()
            store.write_needle(VID, nd, blocking=False)
            spent += time.thread_time() - t
        write_us = spent / n * 1e6
        vols = [s.find_volume(VID) for s in stores]
        spent = 0.0
        for i in range(n):
            v = vols[i % len(vols)]
            t = time.thread_time()
            found = v.read_plain(needles[(i * 7919) % n].id, PLAIN_LIMIT)
            spent += time.thread_time() - t
            assert found is not None
        read_us = spent / n * 1e6
        for s in stores:
            s.close()
    return write_us, read_us


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="alone,shared,alternating")
    args = p.parse_args()
    modes = args.modes.split(",")
    got: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes:
            w, rd = one_round(mode, args.n, args.size)
            got[mode].append((w, rd))
            print(f"round {r + 1} {mode:12s} write {w:6.1f} us  read {rd:6.1f} us", flush=True)
    base = got.get("alone")
    for name, pick in (("median", statistics.median), ("min", min)):  # min: the least disturbed round
        for mode in modes:
            w = pick(x[0] for x in got[mode])
            rd = pick(x[1] for x in got[mode])
            line = f"{name:6s} {mode:12s} write {w:6.1f} us/op  read {rd:6.1f} us/op"
            if base and mode != "alone":
                line += (f"   (write {w - pick(x[0] for x in base):+.1f} us, read {rd - pick(x[1] for x in base):+.1f} us"
                         " over alone)")
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
