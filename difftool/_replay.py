"""Replay a mismatch fixture: re-judge it, run it against any server, or against a fresh pair.

* `rejudge`: the recorded answers through today's differ (did a rule or the mask change?);
* `replay_against`: the setup requests, then the request, sent to one running server (any
  build); its answer is compared with the recorded Go answer;
* `replay_fresh`: a new cluster (`_cluster.py`) with Go and weedpy in the given mode; setup and
  request go to both, and the two new answers are compared.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import trio

from difftool._aggregate import Judgement, judge
from difftool._capture import capture_grpc, capture_http
from difftool._cluster import Cluster, SideSpec
from difftool._compare import NO_RULES, Comparison, Rules, compare_outcomes
from difftool._fixture import Fixture
from difftool._records import GrpcRequest, HttpRequest, Outcome, Request, Sample, Side
from weedpy.grpc import ConnectionPool
from weedpy.http1 import UpstreamPool

__all__ = ["ReplayTarget", "rejudge", "replay_against", "replay_fresh"]


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayTarget:
    host: str
    port: int  # admin HTTP
    grpc_port: int
    public_port: int | None = None
    version: str = "replay target"

    @property
    def own_addrs(self) -> tuple[bytes, ...]:
        ports = {self.port, self.public_port or self.port}
        return tuple(sorted(f"{self.host}:{p}".encode() for p in ports))


def rejudge(fx: Fixture, rules: Rules = NO_RULES) -> Judgement:
    return judge(fx.sample, rules)


async def _send(target: ReplayTarget, http: UpstreamPool, grpc: ConnectionPool, req: Request, timeout: float) -> Outcome:
    if isinstance(req, HttpRequest):
        port = target.public_port if req.port_kind == "public" and target.public_port else target.port
        return await capture_http(http, (target.host, port), req, timeout=timeout, own_addrs=target.own_addrs,
                                  version=target.version)
    assert isinstance(req, GrpcRequest)
    return await capture_grpc(grpc, req, timeout=timeout, own_addrs=target.own_addrs, version=target.version)


async def replay_against(fx: Fixture, target: ReplayTarget, rules: Rules = NO_RULES,
                         timeout: float = 30.0) -> tuple[Outcome, Comparison]:
    """The target's answer and its comparison with the recorded Go answer."""
    async with trio.open_nursery() as nursery:
        http = UpstreamPool()
        grpc = ConnectionPool(target.host, target.grpc_port, nursery)
        try:
            for req in fx.setup:
                await _send(target, http, grpc, req, timeout)
            out = await _send(target, http, grpc, fx.sample.request, timeout)
        finally:
            grpc.close()
            await http.aclose()
            nursery.cancel_scope.cancel()
    method = fx.sample.request.method if isinstance(fx.sample.request, GrpcRequest) else ""
    return out, compare_outcomes(method, fx.sample.primary, out, rules)


def replay_fresh(fx: Fixture, candidate: str = "proxy", routes_file: str | None = None,
                 flags: tuple[str, ...] = (), split_public: bool = False) -> tuple[Sample, Judgement]:
    """Setup and request against a new Go and a new weedpy (`candidate` mode, or "go")."""
    work = Path(tempfile.mkdtemp(prefix="weedpy-diff-replay-"))
    split = split_public or any(isinstance(r, HttpRequest) and r.port_kind == "public"
                                for r in (*fx.setup, fx.sample.request))
    cand = (SideSpec(Side.CANDIDATE, "go", flags=flags) if candidate == "go"
            else SideSpec(Side.CANDIDATE, "weedpy", candidate, routes_file, flags))
    try:
        with Cluster(work, [SideSpec(Side.PRIMARY, "go", flags=flags), cand], split_public=split) as cluster:
            targets = [ReplayTarget("127.0.0.1", s.port, s.grpc_port, s.public_port, s.version)
                       for s in (cluster.servers[Side.PRIMARY], cluster.servers[Side.CANDIDATE])]
            aliases = [cluster.servers[Side.PRIMARY].aliases, cluster.servers[Side.CANDIDATE].aliases]
            outcomes: list[Outcome] = []

            async def main() -> None:
                async with trio.open_nursery() as nursery:
                    pools = [(UpstreamPool(), ConnectionPool(t.host, t.grpc_port, nursery)) for t in targets]
                    try:
                        for req in fx.setup:
                            for t, (h, g) in zip(targets, pools):
                                await _send(t, h, g, req, 30.0)
                        for t, (h, g), al in zip(targets, pools, aliases):
                            o = await _send(t, h, g, fx.sample.request, 30.0)
                            outcomes.append(dataclasses.replace(o, aliases=al))
                    finally:
                        for h, g in pools:
                            g.close()
                            await h.aclose()
                        nursery.cancel_scope.cancel()

            trio.run(main)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sample = dataclasses.replace(fx.sample, primary=outcomes[0], candidate=outcomes[1], secondary=None)
    return sample, judge(sample)
