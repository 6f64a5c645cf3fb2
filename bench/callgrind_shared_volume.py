"""Instructions per append of a volume shared by two processes' views, against one process
(callgrind: deterministic, unlike the CPU clock of `shared_volume_bench.py` on a busy machine).

The stores of `shared_volume_bench.py` (`alone`, `shared`, `alternating`); each mode runs twice
under callgrind, making 0 and `n` writes after the same set-up, and the difference is divided by `n`.

    .venv/bin/python bench/callgrind_shared_volume.py -n 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind_inner import inner_instructions  # noqa: E402
from bench.shared_volume_bench import VID, _needles, _stores  # noqa: E402


def run_writes(mode: str, n: int, size: int, feed: int) -> None:
    """`feed` of `n` prepared writes (a few first as warm-up), alternating between the stores."""
    with tempfile.TemporaryDirectory(prefix="shared-volume-") as tmp:
        stores = _stores(Path(tmp), mode)
        warm = _needles(20, size, 1)
        needles = _needles(n, size, 1 << 20)  # ids above the warm-up's, increasing (as the master hands them out)
        for i, nd in enumerate(warm):
            stores[i % len(stores)].write_needle(VID, nd, blocking=False)
        for i, nd in enumerate(needles[:feed]):
            stores[i % len(stores)].write_needle(VID, nd, blocking=False)
        for s in stores:
            s.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--modes", default="alone,shared,alternating")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    p.add_argument("--feed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        run_writes(args.inner, args.n, args.size, args.feed)
        return 0
    for mode in args.modes.split(","):
        common = ("-n", str(args.n), "--size", str(args.size), "--feed")
        zero = inner_instructions(__file__, mode, *common, "0")
        full = inner_instructions(__file__, mode, *common, str(args.n))
        print(f"{mode:12s} {(full - zero) / args.n / 1000:.1f}k instructions per write", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
