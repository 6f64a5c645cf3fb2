"""How late a serving thread wakes while maintenance runs in another thread of its process
(the GIL part of "Event-loop stalls" in docs/performance.md; not a test).

One volume of `--mib` MiB of needles of 1 MiB (`--needle-kib`), a quarter deleted, in a temporary directory; then,
`--rounds` times, a compaction, its commit and a full scrub each run in a worker thread while
the main thread sleeps 1 ms in a loop and records how much later than asked it woke. A thread
that holds the GIL for a long stretch, or takes it back right after each read or write before
the sleeper is scheduled, shows as lateness up to the switch interval (5 ms) and past it.

    .venv/bin/python bench/maintenance_lateness.py --mib 384 --rounds 3
    .venv/bin/python bench/maintenance_lateness.py --child     # the copy and the scrub in a child process, as the server runs them
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from native.maintenance_child import compact_copy_in_child, scrub_in_child  # noqa: E402
from native.storage import Needle, Volume, commit_compact, compact, scrub_volume  # noqa: E402


def build(directory: str, mib: int, needle_kib: int = 1024) -> Volume:
    v = Volume.create(directory, 1)
    data = os.urandom(needle_kib << 10)
    n = (mib << 10) // needle_kib
    for key in range(1, n + 1):
        v.write_needle(Needle.create(key, 0x77, data[key % 97:] + data[:key % 97]))
    for key in range(1, n + 1, 4):
        v.delete_needle(key)
    v.sync()
    return v


def lateness(job: Callable[[], object]) -> tuple[float, list[float]]:
    """(seconds the job took, sorted lateness of each 1 ms sleep in ms) with `job` in a thread."""
    late: list[float] = []
    done = threading.Event()

    def run() -> None:
        try:
            job()
        finally:
            done.set()

    t = threading.Thread(target=run)
    t0 = time.perf_counter()
    t.start()
    while not done.is_set():
        a = time.perf_counter()
        time.sleep(0.001)
        late.append((time.perf_counter() - a - 0.001) * 1000)
    t.join()
    return time.perf_counter() - t0, sorted(late)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, default=384)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (default: Python's 5 ms)")
    p.add_argument("--needle-kib", type=int, default=1024, help="needle size (small ones: more Python work per MiB)")
    p.add_argument("--child", action="store_true", help="compaction's copy and the scrub in a child process")
    args = p.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    directory = tempfile.mkdtemp(prefix="maint-lateness-")
    try:
        v = build(directory, args.mib, args.needle_kib)
        for _ in range(args.rounds):
            copy = compact_copy_in_child(128 << 20) if args.child else None
            scrub = scrub_in_child if args.child else scrub_volume
            for name, job in (("compact", lambda: compact(v, copy=copy)), ("commit", lambda: commit_compact(v)),
                              ("scrub", lambda: scrub(v))):
                secs, late = lateness(job)
                q = lambda f: late[min(len(late) - 1, int(f * (len(late) - 1)))]  # noqa: E731
                print(f"{name:8} {secs:6.2f} s  sleeps {len(late):5}  late p50 {q(0.5):5.2f}  p99 {q(0.99):5.2f}  "
                      f"max {late[-1]:6.2f} ms  load {os.getloadavg()[0]:.2f}", flush=True)
        v.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
