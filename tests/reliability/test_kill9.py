"""kill -9 under load: 16 writers (0 B to 1 MiB, new keys, overwrites, deletes,
reads of their own keys) against one server, SIGKILL at a random moment, the server started
again on the same files, every key read back against the client's ledger (`ledger.py`). After
the last crash: `weedpy verify` passes over the files, and Go's `weed volume` loads every volume
writable, reads every key as the ledger says and accepts a new write to each volume.

Native mode with -workers=2 and -workers=1; proxy mode (default workers) killing the whole
server (gateway and Go backend), then killing only the Go backend (the gateway restarts it).
The fast set kills a few times; `reliability_long` 50 times each.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.reliability.ledger import Ledger, Value, body, check_all, fid, run_writers
from tests.reliability.marks import LONG_MARKS
from tests.reliability.servers import Crashable, go_loads_writable, log_counts, weedpy_verify
from tests.support.procs import MasterProc, start_master

pytestmark = pytest.mark.slow

VIDS = (1, 2, 3)
KEYS_PER_VID = 40
LONG = int(os.environ.get("WEEDPY_RELIABILITY_KILLS", "50"))  # kills per mode in the long set


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = start_master(tmp_path / "master", volume_size_limit_mb=4096)
    yield m
    m.stop()


def _load_then(server: Crashable, led: Ledger, rng: random.Random, seed: int, act) -> None:
    """Writers on the server; after a random 0.3-1.5 s, `act()` (the kill) while they run."""

    async def main() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_writers(server.url, led, stop, seed=seed, timeout=20))
            await trio.sleep(rng.uniform(0.3, 1.5))
            await trio.to_thread.run_sync(act)
            stop.set()

    trio.run(main)


def _check(server: Crashable, led: Ledger, vids=VIDS) -> None:
    """Every key against the ledger, and every volume listed and writable."""
    trio.run(lambda: check_all(server.url, led))
    vols = {v["Id"]: v for v in httpx.get(f"{server.url}/status", timeout=20).json().get("Volumes") or []}
    for vid in vids:
        if vid not in vols or vols[vid].get("ReadOnly"):
            led.violation(f"volume {vid} after the restart: {vols.get(vid, 'not listed')}")


def _figures(led: Ledger) -> dict:
    return dict(acked_writes=led.acked_writes, acked_deletes=led.acked_deletes,
                acked_mib=round(led.acked_bytes / 2**20, 1), unknown_ops=led.unknown,
                unknown_applied=led.unknown_applied, reads_checked=led.reads_checked, violations=len(led.violations))


def _finish(tmp_path: Path, master: MasterProc, server: Crashable, led: Ledger, report: dict) -> None:
    server.stop()
    rc, out = weedpy_verify(server.data_dir)
    report.update(verify_rc=rc)
    go = go_loads_writable(tmp_path, master, server.data_dir, led, VIDS)
    report.update(go)
    report.update(**_figures(led), **log_counts(tmp_path))
    assert led.violations == [], "\n".join(led.violations[:30])
    assert rc == 0, out[-3000:]
    assert go["go_problems"] == [], "\n".join(go["go_problems"][:30])


def _whole_server_kills(tmp_path: Path, master: MasterProc, server: Crashable, kills: int, report: dict) -> None:
    led = Ledger.create(VIDS, KEYS_PER_VID)
    rng = random.Random(f"{server.mode}{server.workers}{kills}")
    server.start()
    server.allocate(VIDS)
    report.update(mode=server.mode, workers=server.workers if server.workers is not None else "default")
    for i in range(kills):
        _load_then(server, led, rng, i, server.kill)
        server.start()
        _check(server, led)
        report.update(kills=i + 1, **_figures(led))  # so far, should a later round fail
        assert led.violations == [], f"after kill {i + 1}:\n" + "\n".join(led.violations[:30])
    _finish(tmp_path, master, server, led, report)


@pytest.mark.parametrize("kills", [pytest.param(2, id="fast"),
                                   pytest.param(LONG, id="long", marks=LONG_MARKS)])
def test_native_two_workers(tmp_path: Path, master: MasterProc, crashable, kills: int, report: dict) -> None:
    _whole_server_kills(tmp_path, master, crashable(master, "native", 2), kills, report)


@pytest.mark.parametrize("kills", [pytest.param(1, id="fast"),
                                   pytest.param(LONG, id="long", marks=LONG_MARKS)])
def test_native_one_worker(tmp_path: Path, master: MasterProc, crashable, kills: int, report: dict) -> None:
    _whole_server_kills(tmp_path, master, crashable(master, "native", 1), kills, report)


@pytest.mark.parametrize("kills", [pytest.param(1, id="fast"),
                                   pytest.param(LONG, id="long", marks=LONG_MARKS)])
def test_proxy_whole_server(tmp_path: Path, master: MasterProc, crashable, kills: int, report: dict) -> None:
    _whole_server_kills(tmp_path, master, crashable(master, "proxy", None), kills, report)


@pytest.mark.parametrize("kills", [pytest.param(1, id="fast"),
                                   pytest.param(LONG, id="long", marks=LONG_MARKS)])
def test_proxy_backend_only(tmp_path: Path, master: MasterProc, crashable, kills: int, report: dict) -> None:
    """The gateway stays up; its Go backend is SIGKILLed under load and started again by it."""
    server = crashable(master, "proxy", None)
    led = Ledger.create(VIDS, KEYS_PER_VID)
    rng = random.Random(f"backend{kills}")
    server.start()
    server.allocate(VIDS)
    report.update(mode="proxy", workers="default")
    for i in range(kills):
        killed: list[int] = []
        _load_then(server, led, rng, i, lambda: killed.append(server.kill_backend()))
        server.wait_backend_back(killed[0])
        _check(server, led)
        report.update(backend_kills=i + 1, **_figures(led))
        assert led.violations == [], f"after kill {i + 1}:\n" + "\n".join(led.violations[:30])
    _finish(tmp_path, master, server, led, report)


@pytest.mark.parametrize("torn", ["dat", "idx"])
def test_proxy_backend_starts_on_a_torn_tail(tmp_path: Path, master: MasterProc, crashable, torn: str,
                                             report: dict) -> None:
    """What Go leaves when it is killed between its `.dat` write and its `.idx` write (or inside
    the latter): the proxy's backend must still open the volume writable (Go alone serves it
    read-only: its load check refuses `.dat` bytes no row names, and a cut `.idx` row)."""
    server = crashable(master, "proxy", 1)
    server.start()
    server.allocate(VIDS[:1])
    led = Ledger.create(VIDS[:1], 3)
    octets = {"Content-Type": "application/octet-stream"}

    async def write() -> None:
        async with httpx.AsyncClient(timeout=20) as client:
            for key, st in led.keys.items():
                v = Value(key, 1000 + key)
                r = await client.post(f"{server.url}/{fid(st.vid, key)}", content=body(key, v), headers=octets)
                assert r.status_code == 201, r.text
                st.acked = v

    trio.run(write)
    server.stop()
    base = server.data_dir / str(VIDS[0])
    with open(f"{base}.{torn}", "ab") as f:
        f.write(b"\x01" * 777 if torn == "dat" else b"\x00" * 7)  # a cut record no row names / a cut row
    server.start()
    _check(server, led, VIDS[:1])
    assert led.violations == [], led.violations
    r = httpx.post(f"{server.url}/{VIDS[0]},{0x77:x}{0x1234:08x}", content=b"after", headers=octets, timeout=20)
    assert r.status_code == 201, r.text
    report.update(torn=torn, **log_counts(tmp_path))
