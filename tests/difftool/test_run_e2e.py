"""`weedpy diff run` end to end with real processes: an A/A run (Go vs Go) learns noise and comes out
clean; proxy mode over every bundled scenario shows only the known proxy differences, leaves equal
stores, and its fixtures replay. Reports go to $WEEDPY_DIFF_REPORTS/<scenario> when set (CI keeps
them), else to a temporary directory."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from difftool._cluster import Cluster, SideSpec
from difftool._fixture import read_fixture
from difftool._replay import ReplayTarget, replay_against, replay_fresh
from difftool._run import RunOptions, run_scenario
from difftool._scenario import load_scenario, parse_scenario, scenario_files
from difftool.cli import main as diff_main

pytestmark = pytest.mark.slow

# Differences the differ finds in proxy mode today, each a gateway issue (not a native one):
# - the UI page lists the heartbeat relay, not the real master, as the master.
# Strict: when one is fixed, this test fails until the entry is removed.
KNOWN_PROXY = {
    ("http-data-path", "admin.ui", "body~<td>[<master>]</td>"),
}


def _out(tmp_path: Path, name: str) -> Path:
    base = os.environ.get("WEEDPY_DIFF_REPORTS")
    return Path(base) / name if base else tmp_path / name


def test_aa_run_learns_noise(tmp_path: Path) -> None:
    sc = parse_scenario({
        "name": "aa", "description": "Go vs Go",
        "step": [
            {"grpc": "AllocateVolume", "request": {"volume_id": 1, "version": 3}},
            {"http": "PUT /1,0a1b2c3d4e?ts=1700000000", "body": "x"},
            {"http": "GET /1,0a1b2c3d4e"},
            # a needle's append time is each server's own clock: the shared mask zeroes it where
            # it can find it (a .dat copy), and an EC shard read (no records to find it by)
            # leaves it to the noise model
            {"grpc": "CopyFile", "request": {"volume_id": 1, "ext": ".dat", "stop_offset": "100000"}},
            {"grpc": "VolumeEcShardsGenerate", "request": {"volume_id": 1}},
            {"grpc": "VolumeEcShardsMount", "request": {"volume_id": 1, "shard_ids": [0]}},
            {"grpc": "VolumeEcShardRead", "request": {"volume_id": 1, "shard_id": 0, "offset": "0", "size": "200"},
             "repeat": 3},
            {"grpc": "Ping"},
        ],
    })
    read = "/volume_server_pb.VolumeServer/VolumeEcShardRead"
    result = run_scenario(sc, tmp_path / "aa", RunOptions(candidate="go"))
    eps = {e["endpoint"]: e for e in result.report["endpoints"]}
    assert result.exit_code == 0, json.dumps(result.report["endpoints"], indent=1)[:3000]
    shard = eps[read]
    assert shard["noise"] == 3 and shard["mismatched"] == 0 and shard["verdict"] == "clean"
    assert "msg[*].data" in {f["field"] for f in shard["fields"] if f["class"] == "noise"}
    assert all(f["class"] == "noise" for f in shard["fields"]), shard["fields"]
    assert eps["/volume_server_pb.VolumeServer/CopyFile"]["matched"] == 1  # masked, not noise
    assert eps["admin.read"]["matched"] == 1 and result.report["stores"]["equal"]

    # Without the control, the same differences are unexplained.
    result = run_scenario(sc, tmp_path / "aa-no-control", RunOptions(candidate="go", control=False))
    shard = {e["endpoint"]: e for e in result.report["endpoints"]}[read]
    assert result.exit_code == 1 and shard["mismatched"] == 3


def test_proxy_mode_over_every_scenario(tmp_path: Path) -> None:
    found = set()
    for path in scenario_files():
        sc = load_scenario(path)
        out = _out(tmp_path, sc.name)
        result = run_scenario(sc, out, RunOptions(candidate="proxy"))
        report = json.loads((out / "report.json").read_text())
        assert report["stores"]["equal"], report["stores"]
        assert {e["endpoint"] for e in report["endpoints"]} == set(sc.endpoints())
        for ep in report["endpoints"]:
            assert ep["dropped"] == 0
            for f in ep["fields"]:
                if f["class"] == "real":
                    found.add((sc.name, ep["endpoint"], f["field"]))
        cases = ET.fromstring((out / "junit.xml").read_bytes()).iter("testcase")
        failing = {c.get("name") for c in cases if c.find("failure") is not None}
        assert failing == {e for n, e, _ in KNOWN_PROXY if n == sc.name}
        assert "<html>" in (out / "report.html").read_text()
        assert len(result.fixtures) == len(report["fixtures"]) == sum(
            1 for s in report["samples"].values() if s["class"] == "mismatch")
        if sc.name == "http-data-path":
            fixture = next(p for p in result.fixtures if "admin.ui" in p.name)
    assert found == KNOWN_PROXY

    # The fixture reproduces on a fresh pair (replay against a chosen server: test_replay.py).
    fx = read_fixture(fixture)
    _, judgement = replay_fresh(fx, "proxy", flags=("-fileSizeLimitMB=1",))
    # The proxy's page names the relay as master; the request-rate sparklines differ only when a
    # request happens to fall into another second on one side (a loaded CI box).
    keys = {k for k in judgement.candidate.keys if "inlinesparkline" not in k}
    assert keys == {"body~<td>[<master>]</td>"}, judgement
    with Cluster(tmp_path / "replay", [SideSpec("go", "go", flags=("-fileSizeLimitMB=1",))]) as cluster:
        go = cluster.servers["go"]
        import trio

        # Against a plain Go server: the request replays and only the page's per-server lines differ
        # (its master, uptime, data dir and sparklines), never the status or headers.
        _, cmp = trio.run(replay_against, fx, ReplayTarget("127.0.0.1", go.port, go.grpc_port))
        assert cmp.diffs and all(d.path.startswith("body~") for d in cmp.diffs), cmp
    assert diff_main(["replay", str(fixture)]) == 1  # the recorded answers still differ


def test_cli_run_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text('name = "tiny"\ndescription = "t"\n[[step]]\nhttp = "GET /healthz"\n[[step]]\ngrpc = "GetState"\n')
    assert diff_main(["run", str(scenario), "--out", str(tmp_path / "out"), "--no-control"]) == 0
    assert "tiny: compared 2, matched 2" in capsys.readouterr().out
    assert diff_main(["report", "--from", str(tmp_path / "out" / "report.json"), "--out", str(tmp_path / "r.json"),
                      "--html", str(tmp_path / "r.html"), "--junit", str(tmp_path / "r.xml")]) == 0
    assert ET.fromstring((tmp_path / "r.xml").read_bytes()).find("testsuite").get("tests") == "2"
    assert diff_main(["run", "no-such-scenario", "--out", str(tmp_path / "x")]) == 2


def test_native_mode_answers_the_integrity_and_remote_rpcs_as_go(tmp_path: Path) -> None:
    """grpc-integrity-remote (Query, the scrubs, VolumeConsolidateIndex, tier moves and
    FetchAndWriteNeedle without an object store) against native: every answer as Go's."""
    sc = load_scenario("grpc-integrity-remote")
    result = run_scenario(sc, _out(tmp_path, f"native-{sc.name}"), RunOptions(candidate="native"))
    unclean = [(e["endpoint"], e["fields"]) for e in result.report["endpoints"] if e["verdict"] != "clean"]
    assert result.exit_code == 0 and not unclean, unclean
    assert result.report["stores"]["equal"], result.report["stores"]
    assert {e["endpoint"] for e in result.report["endpoints"]} == set(sc.endpoints())
