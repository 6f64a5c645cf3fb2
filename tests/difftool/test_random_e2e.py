"""The seeded random gRPC differential (scenario grpc-random) against a real Go 4.48: weedpy answers
every call as Go does and ends with the same files.

- CI runs a few fixed seeds of a few hundred operations per mode (`test_random_grpc`);
- the long run (`-m random_long`, deselected by default; `scripts/diff_random` runs it) goes
  through enough seeds for WEEDPY_RANDOM_OPS operations per mode (20,000 unless set), seeds from
  WEEDPY_RANDOM_FIRST_SEED (1000) on, WEEDPY_RANDOM_STEPS (500) operations each, and writes a
  summary per mode (operations, seeds, differences) under $WEEDPY_DIFF_REPORTS when set.

Reports go to $WEEDPY_DIFF_REPORTS/<run> when set, else to a temporary directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from difftool._run import RunOptions, run_scenario
from difftool._scenario import MIXED_ROUTES, load_scenario
from difftool.cli import main as diff_main

pytestmark = pytest.mark.slow

CI_SEEDS = {"native": (11, 12), "mixed": (13,)}
CI_OPERATIONS = 300


def _out(tmp_path: Path, name: str) -> Path:
    base = os.environ.get("WEEDPY_DIFF_REPORTS")
    return Path(base) / name if base else tmp_path / name


def _options(mode: str) -> RunOptions:
    return RunOptions(candidate=mode, control=False, routes_file=str(MIXED_ROUTES) if mode == "mixed" else None)


def _unclean(report: dict) -> list:
    """Everything that is not the same: endpoints with differences (and a few of their samples),
    store and file differences."""
    out: list = [(e["endpoint"], [f["field"] for f in e["fields"]]) for e in report["endpoints"]
                 if e["verdict"] != "clean"]
    out += [(s["label"], [d["path"] for d in s["diffs"]][:4]) for s in list(report["samples"].values())[:5]]
    if not report["stores"]["equal"]:
        out.append(("stores", report["stores"]["differences"][:5]))
    if not report["files"]["equal"]:
        out.append(("files", report["files"]["differences"][:5]))
    return out


@pytest.mark.parametrize("mode, seed", [(m, s) for m, seeds in CI_SEEDS.items() for s in seeds])
def test_random_grpc(tmp_path: Path, mode: str, seed: int) -> None:
    sc = load_scenario("grpc-random").regenerated(seed, CI_OPERATIONS)
    result = run_scenario(sc, _out(tmp_path, f"random-{mode}-{seed}"), _options(mode))
    report = result.report
    assert report["totals"]["compared"] == CI_OPERATIONS
    assert result.exit_code == 0, _unclean(report)
    assert report["meta"]["generate"] == {"kind": "grpc", "seed": seed, "operations": CI_OPERATIONS}
    # the generator's calls mostly do what it meant them to (its model follows Go's files)
    assert report["model"]["checked"] > 40 and report["model"]["missed"] <= 2, report["model"]


def test_cli_runs_seed_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = diff_main(["run", "grpc-random", "--seed", "21-22", "--operations", "40", "--candidate", "native",
                      "--no-control", "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "grpc-random-seed21: compared 40, matched 40" in out and "grpc-random-seed22: compared 40" in out
    assert "2 runs, 80 requests compared, exit 0" in out
    report = json.loads((tmp_path / "cli" / "grpc-random-seed22" / "report.json").read_text())
    assert report["meta"]["generate"]["seed"] == 22 and report["files"]["equal"]


def _long_settings() -> tuple[int, int, int]:
    env = os.environ
    return (int(env.get("WEEDPY_RANDOM_OPS", "20000")), int(env.get("WEEDPY_RANDOM_FIRST_SEED", "1000")),
            int(env.get("WEEDPY_RANDOM_STEPS", "500")))


@pytest.mark.random_long
@pytest.mark.timeout(0)
@pytest.mark.parametrize("mode", ["native", "mixed"])
def test_random_grpc_long(tmp_path: Path, mode: str) -> None:
    total, first, steps = _long_settings()
    sc = load_scenario("grpc-random")
    done, runs, failing = 0, [], []
    seed = first
    while done < total:
        n = min(steps, total - done)
        result = run_scenario(sc.regenerated(seed, n), _out(tmp_path, f"random-long-{mode}/seed{seed}"), _options(mode))
        runs.append({"seed": seed, "operations": n, "exit": result.exit_code,
                     "model_missed": result.report["model"]["missed"]})
        if result.exit_code != 0:
            failing.append((seed, _unclean(result.report)))
        done += result.report["totals"]["compared"]
        seed += 1
    summary = {"mode": mode, "operations": done, "seeds": [first, seed - 1], "runs": runs,
               "failing": [s for s, _ in failing]}
    out = _out(tmp_path, f"random-long-{mode}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{mode}: {done} operations over seeds {first}-{seed - 1}, {len(failing)} runs with differences")
    assert not failing, failing[:3]
