"""Per-volume evidence and rollback without sockets: the counts per volume (windows, workers'
tallies, totals, pruning), the `[volumes] auto_rollback` entry of the route table, which volumes
the differ's samples name, when a volume native owns goes back to Go, and what is shown."""

from __future__ import annotations

import collections
from typing import Any

import pytest
import trio

from difftool import GrpcRequest, HttpRequest
from proto import volume_server_pb2 as vs
from tests.metrics.support import parse_exposition
from weedpy.cutover import Cutover, fault_switch, volume_rows, volumes_named
from weedpy.metrics import render_text
from weedpy.serve.evidence import Evidence, EvidenceTally, volume_key
from weedpy.serve.live_routes import LiveRoutes, edit_table
from weedpy.serve.routes import Rollback, RouteTableError, mode_route_problem, parse_route_table
from weedpy.serve.volume_owners import GO, NATIVE, VolumeOwners
from weedpy.volume_moves import MoveRefused
from weedpy.volume_rollback import VolumeCutover

RULE = {"max_5xx_pct": 10, "max_real_diff_pct": 5, "window_s": 30, "min_samples": 10}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Moves:
    """What VolumeCutover uses of weedpy.volume_moves.VolumeMoves: the owners, the history, `move`."""

    def __init__(self, native: list[int], clock: Clock) -> None:
        self.owners = VolumeOwners(native, clock=clock)
        self.history: collections.deque[dict[str, Any]] = collections.deque()
        self.refuse: MoveRefused | None = None

    async def move(self, vid: int, to: str, by: str) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        record = {"vid": vid, "from": self.owners.side(vid), "to": to, "by": by, "at": 0.0, "outcome": "moved",
                  "held_ms": 12.5}
        self.owners.set_owner(vid, to)
        self.history.append(record)
        return record


def _table(volumes: dict | None = None) -> LiveRoutes:
    doc: dict[str, Any] = {"version": "v1", "default": "go"}
    if volumes is not None:
        doc["volumes"] = volumes
    return LiveRoutes(parse_route_table(doc), mode="mixed")


def test_evidence_per_volume_windows_totals_tallies_and_pruning() -> None:
    clock = Clock()
    ev = Evidence(clock, keep_s=100, volume_keep_s=20)
    for i in range(10):
        ev.answered("admin.read", "native", i >= 8)
        ev.answered_volume(7, "native", i >= 8)
        ev.answered_volume(8, "shadow", False)
        clock.now += 5
    w = ev.window(volume_key(7), 1000)
    assert (w["requests.native"], w["5xx.native"]) == (4, 2)  # 20 s of buckets kept for a volume ...
    assert ev.window("admin.read", 1000)["requests.native"] == 10  # ... 100 s for an endpoint
    assert ev.window(volume_key(8), 16)["requests.go"] == 3
    assert ev.totals(volume_key(7)) == {"requests.native": 10, "5xx.native": 2}  # since start: the metrics
    assert ev.endpoints() == ["admin.read"] and ev.volumes() == [7, 8]
    tally = EvidenceTally()  # a worker process's counts, taken once a second by the leader
    tally.answered_volume(7, "native", True)
    tally.answered_volume(7, "off", True)  # no side: not counted
    tally.answered("admin.read", "go", False)
    ev.merge(tally.take())
    assert tally.take() == []
    assert ev.window(volume_key(7), 1)["5xx.native"] == 1 and ev.window("admin.read", 1)["requests.go"] == 1
    clock.now += 21
    ev.answered_volume(8, "go", False)
    ev.prune()  # volume 7 saw nothing for 20 s: its buckets go, its totals stay
    assert ev.window(volume_key(7), 1000) == {} and ev.totals(volume_key(7))["requests.native"] == 11
    assert ev.window(volume_key(8), 1000)["requests.go"] == 1 and ev.volumes() == [7, 8]


def test_the_volumes_rule_in_the_route_table() -> None:
    table = parse_route_table({"version": "t", "volumes": {"auto_rollback": {"max_5xx_pct": 2, "window_s": 120}}})
    assert table.volume_rollback == Rollback(max_5xx_pct=2.0, window_s=120.0, min_samples=20)
    assert parse_route_table(table.to_doc()) == table  # what the workers and the API get
    assert "volumes" not in parse_route_table({"default": "go"}).to_doc()
    for bad, message in [({"auto_rollback": {"window_s": 10}}, "needs max_real_diff_pct or max_5xx_pct"),
                         ({"auto_rollback": {"max_5xx_pct": 200}}, "max_5xx_pct must be a number from 0 to 100"),
                         ({"auto_rollback": {"max_5xx_pct": 1, "min_samples": 0}}, "min_samples"),
                         ({"rollback": {}}, r"\[volumes\]: unknown key"),
                         ("on", r"\[volumes\] must be a table")]:
        with pytest.raises(RouteTableError, match=message):
            parse_route_table({"volumes": bad})
    assert "[volumes] has auto_rollback" in mode_route_problem("native", parse_route_table(
        {"default": "native", "volumes": {"auto_rollback": {"max_5xx_pct": 1}}}))
    assert mode_route_problem("mixed", table) is None
    edited = edit_table(table, {"volumes": {"auto_rollback": {"max_5xx_pct": 5}}})
    assert edited.volume_rollback == Rollback(max_5xx_pct=5.0)
    assert edit_table(edited, {"volumes": None}).volume_rollback is None
    assert edit_table(edited, {"routes": {"admin.read": "native"}}).volume_rollback == edited.volume_rollback

    async def main() -> None:  # a live change of the rule is an ordinary change, in the history
        live = LiveRoutes(table, mode="mixed")
        await live.edit({"volumes": {"auto_rollback": {"max_5xx_pct": 5}}}, "api 127.0.0.1")
        assert live.table.volume_rollback == Rollback(max_5xx_pct=5.0)
        assert any(line.startswith("[volumes] auto_rollback: ") for line in live.history[-1].moved)

    trio.run(main)


def test_the_volumes_a_compared_request_names() -> None:
    assert volumes_named("admin.read", HttpRequest(b"GET", b"/7,01637037d6?x=1")) == [7]
    assert volumes_named("public.read", HttpRequest(b"GET", b"/12/01637037d6/name.jpg", port_kind="public")) == [12]
    assert volumes_named("admin.status", HttpRequest(b"GET", b"/status")) == []
    status = vs.VolumeStatusRequest(volume_id=9).SerializeToString()
    assert volumes_named("/volume_server_pb.VolumeServer/VolumeStatus",
                         GrpcRequest("/volume_server_pb.VolumeServer/VolumeStatus", messages=(status,))) == [9]
    batch = vs.BatchDeleteRequest(file_ids=["3,01637037d6", "4,01637037d6", "3,0263703711"]).SerializeToString()
    assert volumes_named("/volume_server_pb.VolumeServer/BatchDelete",
                         GrpcRequest("/volume_server_pb.VolumeServer/BatchDelete", messages=(batch,))) == [3, 4]
    assert volumes_named("/volume_server_pb.VolumeServer/Ping",
                         GrpcRequest("/volume_server_pb.VolumeServer/Ping", messages=(b"",))) == []
    cut = Cutover(_table(), Evidence(Clock()))
    cut.judged("admin.read", "real", HttpRequest(b"GET", b"/7,01637037d6"))
    cut.judged("admin.read", "match", HttpRequest(b"GET", b"/7,01637037d6"))
    cut.judged("admin.read", "noise", HttpRequest(b"GET", b"/8,01637037d6"))
    assert cut.evidence.window(volume_key(7), 60) == {"samples": 2, "real": 1}
    assert cut.evidence.window(volume_key(8), 60) == {"samples": 1, "noise": 1}
    assert cut.evidence.window("admin.read", 60) == {"samples": 3, "real": 1, "noise": 1}


def test_a_failing_native_volume_goes_back_to_go_and_only_that_one() -> None:
    async def main() -> None:
        clock = Clock()
        ev = Evidence(clock)
        moves = Moves([7, 8], clock)
        vc = VolumeCutover(_table({"auto_rollback": RULE}), ev, moves, clock)  # type: ignore[arg-type]
        clock.now += 1
        for i in range(9):
            ev.answered_volume(7, "native", True)
            ev.answered_volume(8, "native", i == 0)  # 1 in 10: not above 10%
            ev.answered_volume(9, "go", True)  # Go's volume: Go's own errors are not judged
        ev.answered_volume(8, "native", False)
        assert await vc.check() == []  # volume 7: under min_samples
        ev.answered_volume(7, "native", False)
        assert await vc.check() == [7]
        assert moves.owners.native_volumes() == [8] and [m["by"] for m in moves.history] == ["auto_rollback"]
        [rb] = vc.rollbacks
        assert rb["volume"] == 7 and (rb["from"], rb["to"], rb["by"]) == (NATIVE, GO, "auto_rollback")
        assert rb["reason"] == "5xx answers from native 9/10 = 90.00% over 30s > 10%"
        assert await vc.check() == []  # once: it is Go's now, and nothing moves it back automatically

        doc = vc.status()
        rows = {r["volume"]: r for r in doc["evidence"]}
        assert sorted(rows) == [7, 8, 9] and doc["rollbacks_total"] == 1 and doc["auto_rollback"]["max_5xx_pct"] == 10
        assert (rows[7]["owner"], rows[7]["requests_native"], rows[7]["5xx_native"], rows[7]["rolled_back"]) == (
            GO, 10, 9, True)
        assert (rows[8]["owner"], rows[8]["requests"], rows[8]["5xx"]) == (NATIVE, 10, 1)
        assert (rows[9]["owner"], rows[9]["requests_go"], rows[9]["5xx_go"]) == (GO, 9, 9)
        table = volume_rows(doc)
        assert table[0][:4] == ["VOLUME", "OWNER", "WINDOW", "REQUESTS"]
        assert table[1][:2] == ["7", "go (rolled back)"] and table[1][4] == "9/10" and table[2][:2] == ["8", "native"]
        e = parse_exposition(render_text(vc.metrics()).decode())
        assert e.value("weedpy_volume_rollbacks_total", volume="7") == 1
        assert e.value("weedpy_volume_requests_total", volume="8", side="native") == 10
        assert e.value("weedpy_volume_5xx_total", volume="9", side="go") == 9
        assert e.value("weedpy_volume_owner", volume="8", owner="native") == 1
        assert e.value("weedpy_volume_owner", volume="7", owner="go") == 1
        assert e.types["weedpy_volume_requests_total"] == "counter" and e.types["weedpy_volume_owner"] == "gauge"

        # moved to native again by hand: the earlier stint's errors do not count against it
        clock.now += 5
        moves.owners.set_owner(7, NATIVE)
        assert moves.owners.native_since(7) == clock.now and moves.owners.native_since(8) is None
        assert await vc.check() == []
        for _ in range(10):
            ev.answered_volume(7, "native", False)
        clock.now += 1
        assert await vc.check() == [] and moves.owners.native_volumes() == [7, 8]

        # a volume that fails at once after coming to native, before any check: counted from the move on
        clock.now += 5
        moves.owners.set_owner(9, NATIVE)
        for _ in range(10):
            ev.answered_volume(9, "native", True)
        clock.now += 0.5
        assert await vc.check() == [9]

    trio.run(main)


def test_real_differences_roll_a_volume_back_and_a_refused_move_is_tried_again() -> None:
    async def main() -> None:
        clock = Clock()
        ev = Evidence(clock)
        moves = Moves([4], clock)
        vc = VolumeCutover(_table({"auto_rollback": RULE}), ev, moves, clock)  # type: ignore[arg-type]
        cut = Cutover(vc.live, ev)
        for i in range(20):
            cut.judged("admin.read", "real" if i < 2 else "match", HttpRequest(b"GET", b"/4,01637037d6"))
        moves.refuse = MoveRefused(503, "requests still in flight")
        assert await vc.check() == [] and moves.owners.native_volumes() == [4]  # refused: still native
        moves.refuse = None
        assert await vc.check() == [4]  # the next check tries again
        assert vc.rollbacks[0]["reason"] == "real differences 2/20 = 10.00% over 30s > 5%"

    trio.run(main)


def test_without_a_rule_or_without_owners_nothing_moves_and_the_evidence_shows() -> None:
    async def main() -> None:
        clock = Clock()
        ev = Evidence(clock)
        moves = Moves([5], clock)
        vc = VolumeCutover(_table(), ev, moves, clock)  # type: ignore[arg-type]
        for _ in range(50):
            ev.answered_volume(5, "native", True)
        assert await vc.check() == [] and moves.owners.native_volumes() == [5]
        assert vc.status()["window_s"] == 60 and vc.status()["auto_rollback"] is None
        dual = VolumeCutover(_table({"auto_rollback": RULE}), ev, None, clock)  # dual-run: no owners
        assert await dual.check() == []
        assert [(r["volume"], r["owner"], r["requests_native"]) for r in dual.status()["evidence"]] == [(5, None, 50)]
        assert "weedpy_volume_owner" not in parse_exposition(render_text(dual.metrics()).decode()).types
        clock.now += 120  # no traffic in the window and never moved: not listed
        assert dual.status()["evidence"] == []

    trio.run(main)


def test_the_fault_switch_names_a_volume() -> None:
    assert fault_switch("127.0.0.1", {"WEEDPY_TEST_ONLY_FAULT": "5xx:volume:7"}) == ("5xx", "volume:7")
    for bad in ("5xx:volume:", "5xx:volume:x", "slow:volume:7"):
        with pytest.raises(ValueError, match="expected"):
            fault_switch("127.0.0.1", {"WEEDPY_TEST_ONLY_FAULT": bad})
    with pytest.raises(ValueError, match="for tests only"):
        fault_switch("0.0.0.0", {"WEEDPY_TEST_ONLY_FAULT": "5xx:volume:7"})
