"""Offline replay: drive a scenario at Go and at weedpy side by side, judge, report.

`run_scenario` starts the cluster (`_cluster.py`: per side a master and a volume server; sides
`go`, `native` = weedpy in the chosen mode, and with `control` a second Go), sends every step to
all sides at once (so time-dependent fields line up as well as they can), judges each sample,
then stops the servers, compares the Go and native data directories (needles through the storage
engine, `_stores.py`, and the files themselves with clocks masked, `_files.py`), and writes `report.json`, `report.html`, `junit.xml` and one fixture per unexplained mismatch
into the output directory.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from difftool._aggregate import Aggregator, Judgement, judge
from difftool._capture import capture_grpc, capture_http
from difftool._cluster import Cluster, Server, SideSpec
from difftool._files import compare_volume_files
from difftool._fixture import Fixture, write_fixture
from difftool._noise import DIFFY_DEFAULTS, NoiseThresholds
from difftool._records import GrpcResponse, HttpRequest, Outcome, Request, Sample, Side
from difftool._reports import write_reports
from difftool._scenario import Scenario
from difftool._step import Step
from difftool._stores import compare_stores
from weedpy.grpc import ConnectionPool
from weedpy.http1 import UpstreamPool
from weedpy.serve.routes import load_route_table

__all__ = ["RunOptions", "RunResult", "SideClient", "ModelMisses", "run_scenario", "drive", "grpc_ok"]

MAX_SETUP = 2000  # earlier requests kept in a fixture


@dataclasses.dataclass(frozen=True, slots=True)
class RunOptions:
    candidate: str = "proxy"  # weedpy -mode (proxy, native, mixed), or "go" for an A/A run
    routes_file: str | None = None  # route table for the weedpy side (mixed) and its ignore rules
    control: bool = True  # run a second Go to learn noise
    keep_data: bool = False
    thresholds: NoiseThresholds = DIFFY_DEFAULTS
    extra_flags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    report: dict[str, Any]
    exit_code: int  # 0 clean, 1 unexplained mismatches or stores differ
    out_dir: Path
    fixtures: tuple[Path, ...]


class SideClient:
    """How the driver reaches one running server."""

    def __init__(self, server: Server, nursery: trio.Nursery) -> None:
        self.server = server
        self.http = UpstreamPool(idle_ttl=30.0)
        self.grpc = ConnectionPool("127.0.0.1", server.grpc_port, nursery)

    async def send(self, req: Request, timeout: float) -> Outcome:
        s = self.server
        if isinstance(req, HttpRequest):
            port = s.public_port if req.port_kind == "public" else s.port
            out = await capture_http(self.http, ("127.0.0.1", port), req, timeout=timeout, own_addrs=s.own_addrs,
                                     version=s.version)
        else:
            out = await capture_grpc(self.grpc, req, timeout=timeout, own_addrs=s.own_addrs, version=s.version)
        return dataclasses.replace(out, aliases=s.aliases)

    async def aclose(self) -> None:
        self.grpc.close()
        await self.http.aclose()


Judged = Callable[[int, "int | None", Sample, Judgement], None]  # step index, kept sample id


def grpc_ok(outcome: Outcome) -> bool | None:
    """Did a gRPC call succeed (status 0)? None when it is not a gRPC answer."""
    r = outcome.response
    if not isinstance(r, GrpcResponse):
        return None
    return r.trailer(b"grpc-status") == b"0"


@dataclasses.dataclass
class ModelMisses:
    """Steps whose Go answer a generator's model did not predict (`Step.expect`): not differences
    between the servers, but calls the generator meant as good that were bad, or the reverse."""

    checked: int = 0
    missed: int = 0
    examples: list[str] = dataclasses.field(default_factory=list)

    def see(self, step: Step, go: Outcome) -> None:
        ok = grpc_ok(go)
        if not step.expect or ok is None:
            return
        self.checked += 1
        if ok != (step.expect == "ok"):
            self.missed += 1
            if len(self.examples) < 20:
                self.examples.append(f"{step.label}: expected {step.expect}")

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "missed": self.missed, "examples": self.examples}


async def drive(
    scenario: Scenario, clients: Sequence[SideClient], agg: Aggregator, routes_v: str,
    on_judged: Judged | None = None, misses: ModelMisses | None = None,
) -> None:
    """Send each step to every side at once; clients are (primary, candidate[, secondary])."""
    for index, step in enumerate(scenario.steps):
        if step.request is None:
            await trio.sleep(step.sleep)
            continue
        for _ in range(step.repeat):
            outcomes: list[Outcome | None] = [None] * len(clients)

            async def one(i: int, c: SideClient) -> None:
                outcomes[i] = await c.send(step.request, step.timeout)  # type: ignore[arg-type]

            async with trio.open_nursery() as n:
                for i, c in enumerate(clients):
                    n.start_soon(one, i, c)
            sample = Sample(step.endpoint, step.request, outcomes[0], outcomes[1],  # type: ignore[arg-type]
                            outcomes[2] if len(outcomes) > 2 else None, routes_v, step.label)
            judgement = judge(sample, scenario.rules_for(step.endpoint), step.masks)
            if misses is not None:
                misses.see(step, sample.primary)
            sid = agg.add(sample, judgement)
            if on_judged is not None:
                on_judged(index, sid, sample, judgement)


def _sides(options: RunOptions, scenario: Scenario) -> list[SideSpec]:
    flags = scenario.flags + options.extra_flags
    cand = (SideSpec(Side.CANDIDATE, "go", flags=flags) if options.candidate == "go"
            else SideSpec(Side.CANDIDATE, "weedpy", options.candidate, options.routes_file, flags))
    sides = [SideSpec(Side.PRIMARY, "go", flags=flags), cand]
    if options.control:
        sides.append(SideSpec(Side.SECONDARY, "go", flags=flags))
    return sides


def run_scenario(scenario: Scenario, out_dir: Path, options: RunOptions = RunOptions()) -> RunResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"weedpy-diff-{scenario.name}-"))
    agg = Aggregator(options.thresholds)
    routes_v = scenario.routes.version if scenario.routes is not None else "builtin"
    if options.routes_file:  # the table given on the command line wins over the scenario's
        scenario = dataclasses.replace(scenario, routes=load_route_table(options.routes_file))
        routes_v = scenario.routes.version  # type: ignore[union-attr]
    setups: dict[int, int] = {}  # sample id -> index of its step
    requests_by_step = [s.request for s in scenario.steps]
    meta: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description, "routes_v": routes_v,
                            "candidate": options.candidate, "control": options.control}
    misses = ModelMisses()
    if scenario.generate is not None:
        meta["generate"] = scenario.generate.to_json()
    try:
        with Cluster(work, _sides(options, scenario), split_public=scenario.split_public) as cluster:
            meta["versions"] = {name: s.version for name, s in cluster.servers.items()}

            async def main() -> None:
                async with trio.open_nursery() as nursery:
                    order = [Side.PRIMARY, Side.CANDIDATE] + ([Side.SECONDARY] if options.control else [])
                    clients = [SideClient(cluster.servers[name], nursery) for name in order]
                    try:
                        def remember(index: int, sid: int | None, sample: Sample, j: Judgement) -> None:
                            if sid is not None:
                                setups[sid] = index

                        await drive(scenario, clients, agg, routes_v, remember, misses)
                    finally:
                        for c in clients:
                            await c.aclose()
                        nursery.cancel_scope.cancel()

            trio.run(main)
        stores = compare_stores(cluster.servers[Side.PRIMARY].data_dir, cluster.servers[Side.CANDIDATE].data_dir)
        files = compare_volume_files(cluster.servers[Side.PRIMARY].data_dir, cluster.servers[Side.CANDIDATE].data_dir)
        if (work / "logs").exists():
            shutil.copytree(work / "logs", out_dir / "logs", dirs_exist_ok=True)
    finally:
        if not options.keep_data:
            shutil.rmtree(work, ignore_errors=True)
    report = agg.report(meta)
    report["stores"] = stores.to_json()
    report["files"] = files.to_json()
    if scenario.generate is not None:
        report["model"] = misses.to_json()
    fixtures = []
    for n, (sid, sample, judgement) in enumerate(agg.real_mismatch_samples(), 1):
        step = setups.get(sid, 0)
        setup = tuple(r for r in requests_by_step[:step] if r is not None)[-MAX_SETUP:]
        fx = Fixture(sample, judgement.candidate.diffs, setup, scenario.name)
        fixtures.append(write_fixture(out_dir / "fixtures", fx, n))
    report["fixtures"] = [str(p.relative_to(out_dir)) for p in fixtures]
    write_reports(report, out_dir, title=f"weedpy differ: {scenario.name}")
    bad = any(ep["verdict"] == "mismatch" for ep in report["endpoints"]) or not stores.equal or not files.equal
    return RunResult(report, 1 if bad else 0, out_dir, tuple(fixtures))
