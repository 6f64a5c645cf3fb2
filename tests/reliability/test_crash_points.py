"""Every crash point of a volume's appends, index appends, fsyncs, deletes and compaction commit
as kill -9 leaves them: the page cache survives, so the files hold exactly
what was written up to the crash, and the operation in flight landed partly: before and after
every file operation, a `.dat` write torn at every 512 B boundary of its data, an `.idx` row at
every byte. Writes and deletes run during the compaction (makeupDiff carries them into the new
files), and it is committed. 4- and 5-byte offsets.

After each crash, loading as the server does: the volume is writable, holds exactly the
acknowledged set (plus the in-flight operation only when whole), `weedpy verify` passes, and a
new write lands and survives a reload. The fast set takes a seeded sample of the points.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.reliability.crashfs import SECTOR
from tests.reliability.marks import LONG_MARKS
from tests.reliability.workload import crash_once, crash_point_plan, enumerate_ops

FAST_SAMPLE = 40


def crash_points(ops) -> list[tuple[int, int | None]]:
    """(operation number, bytes of it that land): before each, torn inside each write, and the
    end of the plan (after the last operation)."""
    points: list[tuple[int, int | None]] = []
    for op in ops:
        points.append((op.n, None))
        if op.kind == "pwrite":
            step = 1 if op.path.endswith((".idx", ".cpx")) else SECTOR
            points.extend((op.n, t) for t in range(step, op.length, step))
    points.append((len(ops) + 1, None))
    return points


@pytest.mark.parametrize("width", [4, 5], ids=["4-byte", "5-byte"])
@pytest.mark.parametrize("sample", [pytest.param(FAST_SAMPLE, id="fast"),
                                    pytest.param(None, id="long", marks=LONG_MARKS)])
def test_every_crash_point(tmp_path: Path, width: int, sample: int | None, report: dict) -> None:
    plan = crash_point_plan()
    ops = enumerate_ops(tmp_path, width, plan)
    points = crash_points(ops)
    rng = random.Random(width)
    chosen = points if sample is None else sorted(rng.sample(points, sample), key=lambda p: (p[0], p[1] or 0))
    violations: list[str] = []
    repaired = 0
    kinds: dict[str, int] = {}
    for n, tear in chosen:
        kind = ops[n - 1].kind if n <= len(ops) else "end"
        kinds[kind] = kinds.get(kind, 0) + 1
        label = f"crash at op {n} ({kind} {ops[n - 1].path.rsplit('/', 1)[-1] if n <= len(ops) else ''}, {tear} bytes landed)"
        checked = crash_once(tmp_path, width, plan, n, tear, "process", rng, violations, label, verify=True)
        repaired += checked.repaired
    report.update(width=width, operations=len(ops), crash_points=len(chosen), of_points=len(points),
                  repaired_tails=repaired, by_kind=kinds, violations=len(violations))
    assert violations == [], "\n".join(violations[:30])
