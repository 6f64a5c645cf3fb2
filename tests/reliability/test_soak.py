"""The soak (`soak.py`): two native servers under mixed load for minutes, vacuum, EC encoding
and volume moves in the background, kill -9 of one server every 1-5 minutes, every key checked
against the ledger after each restart; at the end `weedpy verify` passes over both data
directories. `scripts/reliability --soak MINUTES` runs it for that long; the marked long set
(`reliability_long`) runs a short form: three minutes, a kill every 20-40 s."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.reliability.ledger import Ledger
from tests.reliability.marks import LONG_MARKS
from tests.reliability.servers import log_counts, weedpy_verify
from tests.reliability.soak import KEYS_PER_VID, VIDS, Soak
from tests.support.procs import MasterProc, start_master

pytestmark = pytest.mark.slow

REQUESTED = float(os.environ.get("WEEDPY_SOAK_MINUTES", "0") or 0)
_SOAK = [pytest.param(3.0, id="short", marks=LONG_MARKS)]
if REQUESTED:
    _SOAK.append(pytest.param(REQUESTED, id="requested",
                              marks=(pytest.mark.reliability_long, pytest.mark.timeout(int(REQUESTED * 60) + 1800))))


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master", volume_size_limit_mb=4096)
    yield m
    m.stop()


@pytest.mark.parametrize("minutes", _SOAK)
def test_soak(tmp_path: Path, master: MasterProc, crashable, minutes: float, report: dict) -> None:
    short = minutes < 10
    servers = [crashable(master, "native", 2, workdir=tmp_path / f"server{i}") for i in range(2)]
    for server in servers:
        server.start()
    soak = Soak(servers, Ledger.create(VIDS, KEYS_PER_VID), random.Random(f"soak{minutes}"))
    for i, vid in enumerate(VIDS):
        servers[i % 2].allocate([vid])
        soak.route[vid] = i % 2
    kill_every = (20.0, 40.0) if short else (60.0, 300.0)
    action_gap = (2.0, 6.0) if short else (5.0, 20.0)
    report.update(minutes=minutes)
    try:
        trio.run(soak.run, minutes * 60, kill_every, action_gap, lambda figures: report.update(**figures))
    finally:
        (tmp_path / "soak.log").write_text("\n".join(soak.log + soak.led.violations) + "\n")
    report.update(**soak.figures())
    for server in servers:
        server.stop()
    # the moves may leave every volume on one server: the other then has nothing to verify, and
    # no volume file left behind
    homes = sorted(set(soak.route.values()))
    verified = [weedpy_verify(servers[i].data_dir) for i in homes]
    for i, server in enumerate(servers):
        if i not in homes:
            assert not list(server.data_dir.glob("*.dat")), f"server {i} holds no volume but has .dat files"
    counts = [log_counts(server.workdir) for server in servers]
    report.update(verify_rc=[rc for rc, _ in verified], tails_repaired=sum(c["tails_repaired"] for c in counts))
    assert soak.led.violations == [], "\n".join(soak.led.violations[:30])
    assert all(rc == 0 for rc, _ in verified), [out[-2000:] for _, out in verified]
    assert soak.kills >= 1 and soak.checks == soak.kills
    assert sum(soak.done.values()) >= 1, soak.log[-20:]
