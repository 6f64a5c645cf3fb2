"""`weedpy diff run|report|replay`: the differ's command line.

    weedpy diff run SCENARIO... --out DIR [--candidate proxy|native|mixed|go] [--routes FILE] [--no-control]
                    [--seed N|A-B]... [--operations N]      (generated scenarios, e.g. grpc-random)
    weedpy diff report --from URL|FILE [--out report.json] [--html FILE] [--junit FILE] [--fixtures DIR]
    weedpy diff replay FIXTURE [--against HOST:PORT --grpc HOST:PORT [--public HOST:PORT]] [--fresh [--candidate MODE]]

Exit codes: 0 clean (replay: the answer now matches Go), 1 unexplained mismatches (replay: it
still reproduces), 2 usage or start-up errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import trio

from difftool._cluster import ClusterError
from difftool._compare import Verdict
from difftool._fixture import read_fixture
from difftool._html import html_report
from difftool._junit import junit_xml
from difftool._replay import ReplayTarget, rejudge, replay_against, replay_fresh
from difftool._run import RunOptions, run_scenario
from difftool._scenario import MIXED_ROUTES, Scenario, ScenarioError, load_scenario, scenario_files

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weedpy diff", description="dual-run differ: compare Go and weedpy answers")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="drive scripted scenarios at a fresh Go and a fresh weedpy; write reports")
    run.add_argument("scenarios", nargs="+", help="scenario files or names in difftool/scenarios/ ('all' for every one)")
    run.add_argument("--out", required=True, type=Path, help="report directory (one subdirectory per scenario if several)")
    run.add_argument("--candidate", default="proxy", help="weedpy -mode to compare (proxy, native, mixed) or 'go' (A/A run)")
    run.add_argument("--routes", default=None, help="route table for the weedpy side; its ignore rules apply too")
    run.add_argument("--no-control", action="store_true", help="skip the second Go server (no noise learning)")
    run.add_argument("--keep-data", action="store_true", help="keep the servers' data directories")
    run.add_argument("--flag", action="append", default=[], help="extra volume server flag for every side (repeatable)")
    run.add_argument("--seed", action="append", default=[], type=_seeds, metavar="N|A-B",
                     help="generated scenarios: run with these seeds (repeatable; A-B is a range), each on fresh servers")
    run.add_argument("--operations", type=int, default=None, help="generated scenarios: steps per seed")
    rep = sub.add_parser("report", help="fetch a gateway's report (admin API) or re-render a report file")
    rep.add_argument("--from", dest="source", required=True, help="http://host:port of a gateway, or a report.json")
    rep.add_argument("--out", type=Path, default=Path("report.json"), help="JSON report to write")
    rep.add_argument("--html", type=Path, default=None)
    rep.add_argument("--junit", type=Path, default=None)
    rep.add_argument("--fixtures", type=Path, default=None, help="also save the gateway's mismatch fixtures here")
    rpl = sub.add_parser("replay", help="replay a mismatch fixture")
    rpl.add_argument("fixture", type=Path)
    rpl.add_argument("--against", default=None, help="HOST:PORT of a running volume server (HTTP admin port)")
    rpl.add_argument("--grpc", default=None, help="HOST:PORT of its gRPC port (default: HTTP port + 10000)")
    rpl.add_argument("--public", default=None, help="HOST:PORT of its public port, if separate")
    rpl.add_argument("--fresh", action="store_true", help="start a fresh Go and weedpy and replay on both")
    rpl.add_argument("--candidate", default="proxy", help="weedpy -mode for --fresh (or 'go')")
    rpl.add_argument("--routes", default=None)
    return p


def _seeds(text: str) -> list[int]:
    lo, dash, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi) if dash else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or A-B, got {text!r}") from None
    if first < 0 or last < first or last - first >= 100_000:
        raise argparse.ArgumentTypeError(f"not a seed range: {text!r}")
    return list(range(first, last + 1))


def _expand(scenarios: list[Scenario], seeds: list[int], operations: int | None) -> list[Scenario]:
    """Generated scenarios once per seed (named <name>-seed<N>), with `operations` steps."""
    out = []
    for sc in scenarios:
        if sc.generate is None:
            if seeds or operations is not None:
                raise ScenarioError(f"{sc.name} is not generated: --seed and --operations do not apply")
            out.append(sc)
            continue
        for seed in seeds or [sc.generate.seed]:
            one = sc.regenerated(seed, operations)
            out.append(dataclasses.replace(one, name=f"{sc.name}-seed{seed}") if seeds else one)
    return out


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _run(args: argparse.Namespace) -> int:
    names: list[str] = []
    for s in args.scenarios:
        names += [str(p) for p in scenario_files()] if s == "all" else [s]
    try:
        scenarios = _expand([load_scenario(n) for n in names], [s for group in args.seed for s in group],
                            args.operations)
    except (ScenarioError, OSError) as exc:
        print(f"weedpy diff: {exc}", file=sys.stderr)
        return 2
    routes = args.routes
    if routes is None and args.candidate == "mixed":
        routes = str(MIXED_ROUTES)  # mixed mode with nothing routed to native would compare Go with Go
    opts = RunOptions(candidate=args.candidate, routes_file=routes, control=not args.no_control,
                      keep_data=args.keep_data, extra_flags=tuple(args.flag))
    worst = total_ops = 0
    for sc in scenarios:
        out = args.out / sc.name if len(scenarios) > 1 else args.out
        try:
            result = run_scenario(sc, out, opts)
        except ClusterError as exc:
            print(f"weedpy diff: {sc.name}: servers did not start: {exc}", file=sys.stderr)
            worst = 2
            continue
        t = result.report["totals"]
        bad = [e["endpoint"] for e in result.report["endpoints"] if e["verdict"] == "mismatch"]
        total_ops += t["compared"]
        stores, files = result.report["stores"], result.report["files"]
        print(f"{sc.name}: compared {t['compared']}, matched {t['matched']}, mismatched {t['mismatched']}, "
              f"noise {t['noise']}, ignored {t['ignored']}; stores {'equal' if stores['equal'] else 'DIFFER'}, "
              f"files {'equal' if files['equal'] else 'DIFFER'}"
              f"{'; mismatching: ' + ', '.join(bad) if bad else ''} -> {out}")
        worst = max(worst, result.exit_code)
    if len(scenarios) > 1:
        print(f"{len(scenarios)} runs, {total_ops} requests compared, exit {worst}")
    return worst


def _fetch_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _report(args: argparse.Namespace) -> int:
    src = args.source
    try:
        if src.startswith(("http://", "https://")):
            base = src.rstrip("/")
            report = _fetch_json(f"{base}/weedpy/diff")
        else:
            report = json.loads(Path(src).read_text())
    except (OSError, ValueError) as exc:
        print(f"weedpy diff report: cannot read {src}: {exc}", file=sys.stderr)
        return 2
    assert isinstance(report, dict)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if args.html:
        args.html.write_text(html_report(report), encoding="utf-8")
    if args.junit:
        args.junit.write_bytes(junit_xml(report))
    if args.fixtures and src.startswith(("http://", "https://")):
        args.fixtures.mkdir(parents=True, exist_ok=True)
        listing = _fetch_json(f"{src.rstrip('/')}/weedpy/diff/fixtures")
        assert isinstance(listing, dict)
        for sid in listing.get("fixtures", []):
            doc = _fetch_json(f"{src.rstrip('/')}/weedpy/diff/fixtures/{sid}")
            assert isinstance(doc, dict)
            (args.fixtures / f"{int(sid):04d}-{doc['endpoint'].strip('/').replace('/', '-')}.json").write_text(
                json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    t = report.get("totals", {})
    print(f"compared {t.get('compared', 0)}, mismatched {t.get('mismatched', 0)}, noise {t.get('noise', 0)}, "
          f"ignored {t.get('ignored', 0)}, dropped {t.get('dropped', 0)} -> {args.out}")
    return 1 if any(e["verdict"] == "mismatch" for e in report.get("endpoints", [])) else 0


def _print_diffs(title: str, diffs: Sequence[object]) -> None:
    print(title)
    for d in diffs:
        print(f"  {d.path}: go={d.left} other={d.right}")  # type: ignore[attr-defined]


def _replay(args: argparse.Namespace) -> int:
    try:
        fx = read_fixture(args.fixture)
    except (OSError, ValueError, KeyError) as exc:
        print(f"weedpy diff replay: cannot read {args.fixture}: {exc}", file=sys.stderr)
        return 2
    print(f"fixture: {fx.sample.endpoint} ({fx.sample.label or 'live'}), routes {fx.sample.routes_v or '-'}, "
          f"versions {fx.versions}; {len(fx.setup)} setup request(s)")
    if args.against:
        try:
            host, port = _hostport(args.against)
            ghost, gport = _hostport(args.grpc) if args.grpc else (host, port + 10000)
            public = _hostport(args.public)[1] if args.public else None
        except ValueError as exc:
            print(f"weedpy diff replay: {exc}", file=sys.stderr)
            return 2
        target = ReplayTarget(host, port, gport, public)
        out, cmp = trio.run(replay_against, fx, target)
        if cmp.verdict is Verdict.MATCH:
            print("the target now answers as Go did: fixed")
            return 0
        _print_diffs(f"still differs from the recorded Go answer ({cmp.verdict.value}):", cmp.diffs + cmp.ignored)
        return 1
    if args.fresh:
        try:
            sample, j = replay_fresh(fx, args.candidate, args.routes)
        except ClusterError as exc:
            print(f"weedpy diff replay: servers did not start: {exc}", file=sys.stderr)
            return 2
        if j.candidate.verdict is Verdict.MATCH:
            print(f"fresh Go and weedpy ({args.candidate}) now agree: fixed")
            return 0
        _print_diffs(f"reproduces on a fresh pair ({j.candidate.verdict.value}):", j.candidate.diffs + j.candidate.ignored)
        return 1
    j = rejudge(fx)
    if j.candidate.verdict is Verdict.MATCH:
        print("the recorded answers match under today's differ")
        return 0
    _print_diffs(f"recorded answers differ ({j.candidate.verdict.value}):", j.candidate.diffs + j.candidate.ignored)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "report":
        return _report(args)
    return _replay(args)
