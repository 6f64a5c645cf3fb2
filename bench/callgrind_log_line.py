"""Instructions per call of the front's per-request log line, in-process, counted by callgrind.

Runs this file under `valgrind --tool=callgrind` twice per variant, with 0 and with `-n` calls,
and prints the difference per call minus the same loop calling a no-op: what one line costs
the server (`bench/callgrind_request.py` counts the whole request; there the line's share also
carries the periodic flush, which valgrind's slow request rate weighs more). Variants: `emit`
(the front's compiled `FastEvent(..., types=...).emit`), `event` (the same event called
untyped, value by value), `warning` (`emit` under `-logLevel=warning`: the check alone).

    .venv/bin/python bench/callgrind_log_line.py -n 20000
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.callgrind_inner import inner_instructions  # noqa: E402

FIELDS = ("route", "target", "routes_v", "method", "path", "status", "ms", "client")


def run_calls(variant: str, n: int) -> None:
    """The measured loop: `n` lines as the front writes them (buffered, never flushed)."""
    from weedpy.logs import FastEvent, Millis, configure_logging

    sink = configure_logging("warning" if variant == "warning" else "info", stream=io.StringIO(), buffered=True)
    sink._limit = sink._max = 1 << 62  # the periodic flush is not part of the line
    event = FastEvent("gateway.http", "http", FIELDS, repeating=4, types=(str, int, Millis, str))
    log = {"emit": event.emit, "warning": event.emit, "event": event, "noop": lambda *values: None}[variant]
    untyped = variant == "event"  # the event takes what the line shows: milliseconds as a float
    paths = ["/%d,%x" % (i % 7 + 1, 0x1637037D6 + i) for i in range(64)]
    log("public.read", "native", "native", "GET", paths[0], 200, 125, "127.0.0.1")
    for i in range(n):
        us = 120 + i % 500
        log("public.read", "native", "native", "GET", paths[i & 63], 200, us / 1000 if untyped else us, "127.0.0.1")


def collected(variant: str, n: int) -> int:
    return inner_instructions(__file__, variant, "-n", str(n))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=20000)
    p.add_argument("--inner", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        run_calls(args.inner, args.n)
        return 0
    per_call = {v: (collected(v, args.n) - collected(v, 0)) / args.n for v in ("noop", "emit", "event", "warning")}
    for variant in ("emit", "event", "warning"):
        print(f"{variant}: {(per_call[variant] - per_call['noop']) / 1000:.1f}k instructions per line")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
