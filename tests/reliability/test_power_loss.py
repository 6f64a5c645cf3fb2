"""Simulated power loss: the storage's file operations go through `CrashFS`,
which at a random crash point keeps, of the writes since each file's last fsync, a random
subset, torn sector pieces, zero-filled extensions, nothing, or everything. Random plans of puts
(0 B to 70 kB, a third with fsync), deletes and syncs, 4- and 5-byte offsets.

After each crash: the volume loads writable (recovery cuts the torn tail), every write
acknowledged with fsync (and everything acknowledged before it) is there with its `.idx` row,
byte for byte; a key never reads as bytes nobody wrote (no bad-CRC needle is ever served); a
key with writes after the last sync point reads as one of the values it may hold, or fails its
CRC check, never another; a new write lands and survives a reload.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from native.storage import Volume
from tests.reliability.crashfs import CrashFS
from tests.reliability.ledger import Value, body
from tests.reliability.marks import LONG_MARKS
from tests.reliability.workload import COOKIE, VID, crash_once, enumerate_ops, needle, new_volume, random_plan

LOSSES = ("power", "power", "power", "nothing", "everything")


@pytest.mark.parametrize("points", [pytest.param(30, id="fast"),
                                    pytest.param(200, id="long", marks=LONG_MARKS)])
def test_power_loss(tmp_path: Path, points: int, report: dict) -> None:
    violations: list[str] = []
    errors = repaired = 0
    by_loss: dict[str, int] = {}
    for i in range(points):
        rng = random.Random(1000 + i)
        width = (4, 5)[i % 2]
        plan = random_plan(rng)
        ops = enumerate_ops(tmp_path, width, plan)
        crash_at = rng.randint(1, len(ops) + 1)
        op = ops[crash_at - 1] if crash_at <= len(ops) else None
        tear = rng.randrange(0, op.length) if op is not None and op.kind == "pwrite" and op.length else None
        loss = rng.choice(LOSSES)
        by_loss[loss] = by_loss.get(loss, 0) + 1
        label = f"point {i} (seed {1000 + i}, {width}-byte, op {crash_at}/{len(ops)}, tear {tear}, {loss})"
        checked = crash_once(tmp_path, width, plan, crash_at, tear, loss, rng, violations, label,
                             verify=loss != "power")
        errors += checked.errors_after_unsynced
        repaired += checked.repaired
    report.update(crash_points=points, repaired_tails=repaired, crc_refusals_of_unsynced=errors, by_loss=by_loss,
                  violations=len(violations))
    assert violations == [], "\n".join(violations[:30])


@pytest.mark.parametrize("width", [4, 5])
def test_fsync_write_keeps_its_index_row(tmp_path: Path, width: int) -> None:
    """Regression: `fsync=true` synced `.dat` only, so a power loss right after the
    acknowledgement kept the record and lost its `.idx` row (the needle was gone)."""
    new_volume(tmp_path / "v", width)
    fs = CrashFS()
    v = Volume.load(tmp_path / "v", VID, offset_bytes=width, files=fs)
    v.write_needle(needle(1, Value(1, 3000)), fsync=True)
    fs.crashed = True
    fs.apply_crash("nothing")  # nothing written since the last fsync reaches the disk
    again = Volume.load(tmp_path / "v", VID, offset_bytes=width)
    try:
        assert again.read_needle(1, COOKIE).data == body(1, Value(1, 3000))
        assert not again.read_only
    finally:
        again.close()


class _PausingFS(CrashFS):
    """Holds the next `.idx` write until told, once armed (an append caught half-way)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.at_idx = threading.Event()
        self.go_on = threading.Event()

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        if self.armed and self._paths[fd].endswith(".idx"):
            self.armed = False
            self.at_idx.set()
            self.go_on.wait(10)
        return super().pwrite(fd, data, offset)


def test_group_fsync_never_counts_a_row_not_written_yet(tmp_path: Path) -> None:
    """Regression: a group fsync that ran while another append had written its record but not
    its row counted that record as synced; the other append's own fsync then returned at once
    and its row was not durable when it was acknowledged."""
    new_volume(tmp_path / "v", 5)
    fs = _PausingFS()
    v = Volume.load(tmp_path / "v", VID, offset_bytes=5, files=fs)
    first = v.write_needle(needle(1, Value(1, 100)))
    fs.armed = True
    errors: list[BaseException] = []

    def run(fn) -> threading.Thread:
        def target() -> None:
            try:
                fn()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
        t = threading.Thread(target=target)
        t.start()
        return t

    writer = run(lambda: v.write_needle(needle(2, Value(2, 5000)), fsync=True))
    assert fs.at_idx.wait(10)
    syncer = run(lambda: v._sync_dat(first.offset + 1))  # an earlier writer's group fsync
    syncer.join(0.3)
    fs.go_on.set()
    writer.join(10)
    syncer.join(10)
    assert errors == []
    fs.crashed = True
    fs.apply_crash("nothing")
    again = Volume.load(tmp_path / "v", VID, offset_bytes=5)
    try:
        assert again.read_needle(2, COOKIE).data == body(2, Value(2, 5000))
    finally:
        again.close()
