"""The cutover rules without sockets: evidence windows, when a route goes back to Go, what the
status shows, and that the test-only fault switch cannot be turned on outside a loopback server."""

from __future__ import annotations

import pytest
import trio

from weedpy.cutover import Cutover, status_rows, fault_switch
from weedpy.serve.evidence import Evidence
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.routes import Target, parse_route_table


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_evidence_windows() -> None:
    clock = Clock()
    ev = Evidence(clock, keep_s=100)
    for _ in range(5):
        ev.add("admin.read", "samples")
        clock.now += 10
    assert ev.window("admin.read", 35)["samples"] == 3 and ev.window("admin.read", 1000)["samples"] == 5
    clock.now += 200  # everything older than keep_s goes with the next count
    ev.add("admin.read", "samples")
    assert ev.window("admin.read", 1000)["samples"] == 1
    ev.answered("admin.read", "native+verify", True)
    ev.answered("admin.read", "shadow", False)
    ev.answered("admin.read", "off", True)
    w = ev.window("admin.read", 5)
    assert (w["requests.native"], w["5xx.native"], w["requests.go"], w["5xx.go"]) == (1, 1, 1, 0)


def _setup(routes: dict) -> tuple[Cutover, Clock]:
    clock = Clock()
    live = LiveRoutes(parse_route_table({"version": "c1", "default": "go", "routes": routes}), mode="mixed")
    return Cutover(live, Evidence(clock)), clock


RULE = {"max_real_diff_pct": 5, "max_5xx_pct": 10, "window_s": 30, "min_samples": 20}


def test_real_differences_over_the_threshold_roll_the_route_back() -> None:
    async def main() -> None:
        cut, clock = _setup({"admin.read": {"target": "native+verify", "native_pct": 40, "auto_rollback": RULE},
                             "admin.status": {"target": "shadow", "auto_rollback": RULE}})
        for i in range(19):
            cut.judged("admin.read", "real" if i < 5 else "match")
            cut.judged("admin.status", "real")  # served by Go already: nothing to roll back
        assert await cut.check() == []  # under min_samples
        cut.judged("admin.read", "match")
        cut.judged("admin.status", "real")
        assert await cut.check() == ["admin.read"]
        route = cut.live.lookup("admin.read")
        assert (route.target, route.native_pct, route.auto_rollback) == (Target.SHADOW, None,
                                                                           cut.live.table.routes["admin.read"].auto_rollback)
        assert cut.live.lookup("admin.status").target is Target.SHADOW
        assert cut.live.history[-1].by == "auto_rollback" and cut.live.version == "c1#2"
        [rb] = cut.rollbacks
        assert rb["route"] == "admin.read" and rb["from"] == "native+verify" and rb["to"] == "shadow"
        assert "5/20 = 25.00%" in rb["reason"]
        assert await cut.check() == []  # once
        doc = cut.live.status()
        row = next(r for r in doc["evidence"] if r["route"] == "admin.read")
        assert (row["samples"], row["real"], row["rolled_back"], row["last_change_by"]) == (20, 5, True, "auto_rollback")
        assert doc["rollbacks_total"] == 1
        assert status_rows(doc)[1][:2] == ["admin.read", "shadow (rolled back)"]
        clock.now += 31  # the window moves on: old evidence no longer counts
        assert cut.evidence.window("admin.read", 30)["samples"] == 0

    trio.run(main)


def test_native_5xx_over_the_threshold_roll_the_route_back() -> None:
    async def main() -> None:
        cut, _ = _setup({"admin.read": {"target": "native", "auto_rollback": {"max_5xx_pct": 10, "min_samples": 10}},
                         "admin.ui": {"target": "native", "auto_rollback": {"max_5xx_pct": 10, "min_samples": 10}}})
        for i in range(10):
            cut.evidence.answered("admin.read", "native", i < 2)
            cut.evidence.answered("admin.ui", "native", i < 1)  # 10%: not above
            cut.evidence.answered("admin.ui", "go", True)  # Go's own errors are not native's
        assert await cut.check() == ["admin.read"]
        assert cut.live.lookup("admin.read").target is Target.GO
        assert cut.live.lookup("admin.ui").target is Target.NATIVE

    trio.run(main)


def test_the_fault_switch_is_for_loopback_test_servers_only() -> None:
    env = {"WEEDPY_TEST_ONLY_FAULT": "differ:admin.read"}
    assert fault_switch("127.0.0.1", env) == ("differ", "admin.read")
    assert fault_switch("::1", {"WEEDPY_TEST_ONLY_FAULT": "5xx:admin.status"}) == ("5xx", "admin.status")
    assert fault_switch("0.0.0.0", {}) is None
    for bind in ("0.0.0.0", "10.1.2.3", ""):
        with pytest.raises(ValueError, match="for tests only"):
            fault_switch(bind, env)
    with pytest.raises(ValueError, match="expected"):
        fault_switch("127.0.0.1", {"WEEDPY_TEST_ONLY_FAULT": "slow:admin.read"})
