"""In-process volume workloads over a `CrashFS`, with a model of what each key may hold after
a crash, and the checks of a volume recovered from one.

The model keeps each key's operations in order with a global sequence number; an operation is
acknowledged when its call returned, in flight when the crash came inside it. A sync point is
the end of a call that fsynced both files (a write with `fsync`, `Volume.sync`, a compaction
commit). After a crash a key may hold:

- `process` (kill -9): exactly its last acknowledged value, or the in-flight operation's;
- `power`: its last value acknowledged before the last sync point, or any value after it.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

from native.storage import Needle, Volume
from native.storage._disk import DiskLocation
from native.storage._errors import Corrupted, Deleted, NotFound, StorageError
from native.storage._vacuum import commit_compact, compact_steps
from native.storage.verify import verify_volume
from tests.reliability.crashfs import CrashFS, SimulatedCrash
from tests.reliability.ledger import ABSENT, DELETED, Value, body

__all__ = ["Model", "run_workload", "recover_and_check", "Plan", "random_plan", "crash_point_plan", "COOKIE", "VID"]

COOKIE = 0xC0DE
VID = 7


@dataclasses.dataclass
class Model:
    history: dict[int, list[tuple[int, Value, bool]]] = dataclasses.field(default_factory=dict)  # key -> (seq, value, acked)
    seq: int = 0
    synced_through: int = 0  # every operation up to this sequence number is durable
    in_flight: tuple[int, Value] | None = None

    def begin(self, key: int, value: Value) -> int:
        self.seq += 1
        self.history.setdefault(key, []).append((self.seq, value, False))
        self.in_flight = (key, value)
        return self.seq

    def ack(self, key: int, seq: int, *, synced: bool = False) -> None:
        h = self.history[key]
        s, v, _ = h[-1]
        assert s == seq
        h[-1] = (s, v, True)
        self.in_flight = None
        if synced:
            self.synced_through = seq

    def sync_point(self) -> None:
        self.synced_through = self.seq

    def allowed(self, key: int, loss: str) -> tuple[Value, ...]:
        """What the key may hold after the crash; the first is what it must hold if nothing newer is allowed."""
        h = self.history.get(key, [])
        acked = [v for _, v, ok in h if ok]
        last_acked = acked[-1] if acked else ABSENT
        if loss == "process":
            out = [last_acked]
            if h and not h[-1][2]:
                out.append(h[-1][1])
            return tuple(out)
        durable = ABSENT
        for s, v, ok in h:
            if s <= self.synced_through and ok:
                durable = v
        later = [v for s, v, _ in h if s > self.synced_through]
        return (durable, *later)


def needle(key: int, v: Value) -> Needle:
    return Needle.create(key, COOKIE, body(key, v), name=f"k{key}", mime="application/octet-stream")


# plans: lists of steps, each ("put", key, size, fsync) | ("del", key) | ("sync",) | ("compact", [steps during]) | ("commit",)

Plan = list[tuple]


def random_plan(rng: random.Random, steps: int = 24, keys: int = 10) -> Plan:
    plan: Plan = []
    for _ in range(steps):
        r = rng.random()
        key = rng.randint(1, keys)
        if r < 0.6:
            size = rng.choice((0, 1, rng.randint(2, 600), rng.randint(600, 5000), rng.randint(5000, 70000)))
            plan.append(("put", key, size, rng.random() < 0.35))
        elif r < 0.85:
            plan.append(("del", key))
        else:
            plan.append(("sync",))
    return plan


def crash_point_plan() -> Plan:
    """Every kind of step once or more: appends of 0 B to 70 kB (several 512 B sectors), an
    overwrite, deletes, fsync writes, then a compaction with writes and deletes running
    during it (makeupDiff carries them into the new files), its commit, and writes after."""
    return [
        ("put", 1, 3000, False), ("put", 2, 0, False), ("put", 3, 1, True), ("put", 4, 70000, False),
        ("put", 1, 1500, False), ("del", 2), ("put", 5, 700, True), ("del", 3), ("sync",),
        ("compact", [("put", 6, 2000, False), ("del", 4), ("put", 1, 600, True), ("put", 7, 0, False)]),
        ("commit",),
        ("put", 8, 5000, False), ("del", 5), ("put", 6, 1200, True),
    ]


def run_workload(directory: Path, width: int, plan: Plan, fs: CrashFS, model: Model) -> Volume | None:
    """Run `plan` on volume VID in `directory` (created beforehand) through `fs`; returns the
    volume, or None when the crash came (the volume is then abandoned, as a killed process's)."""
    v = None
    try:
        v = Volume.load(directory, VID, offset_bytes=width, files=fs)
        _run_steps(v, plan, model)
        return v
    except SimulatedCrash:
        return None


def _run_steps(v: Volume, plan: Plan, model: Model) -> None:
    for step in plan:
        kind = step[0]
        if kind == "put":
            _, key, size, fsync = step
            val = Value(model.seq + 1, size)
            seq = model.begin(key, val)
            v.write_needle(needle(key, val), fsync=fsync)
            model.ack(key, seq, synced=fsync)
        elif kind == "del":
            key = step[1]
            seq = model.begin(key, DELETED)
            try:
                v.delete_needle(key, COOKIE)
            except (NotFound, Deleted):
                pass
            model.ack(key, seq)
        elif kind == "sync":
            v.sync()
            model.sync_point()
        elif kind == "compact":
            steps = compact_steps(v)
            during = list(step[1])
            try:
                while True:
                    next(steps)
                    if during:
                        _run_steps(v, [during.pop(0)], model)
            except StopIteration:
                pass
            _run_steps(v, during, model)
        elif kind == "commit":
            commit_compact(v)
            model.sync_point()  # makeupDiff fsyncs both new files before the swap


def new_volume(directory: Path, width: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    v = Volume.create(directory, VID, offset_bytes=width)
    v.sync()
    v.close()


@dataclasses.dataclass
class Checked:
    keys: int = 0
    errors_after_unsynced: int = 0  # reads that failed their CRC check, of keys with unsynced later writes
    repaired: bool = False


def recover_and_check(directory: Path, width: int, model: Model, loss: str, violations: list[str],
                      label: str, *, verify: bool) -> Checked:
    """Start as the server does (`DiskLocation`: interrupted compactions settled, volumes loaded
    and repaired), then: the volume is there and writable, every key holds what the model allows
    (byte for byte; a CRC failure only for a key with writes after the last sync point under
    power loss), `weedpy verify` passes (`verify`), and a new write lands and survives a reload."""
    out = Checked()
    loc = DiskLocation(directory, offset_bytes=width)
    loc.load_existing_volumes()
    v = loc.find_volume(VID)
    if v is None:
        violations.append(f"{label}: volume does not load: {loc.load_errors}")
        return out
    try:
        out.repaired = any("recovered from a crash" in w for w in v.warnings)
        if v.read_only:
            violations.append(f"{label}: loads read-only ({v.integrity_error})")
        for key in sorted(model.history):
            out.keys += 1
            allowed = model.allowed(key, loss)
            try:
                n = v.read_needle(key, COOKIE)
                got: Value | str = next((a for a in allowed if a.live and n.data == body(key, a)), "other bytes")
            except (NotFound, Deleted):
                got = next((a for a in allowed if not a.live), "absent")
            except (Corrupted, StorageError) as exc:
                if loss == "power" and len(allowed) > 1:
                    out.errors_after_unsynced += 1
                    continue
                got = f"error {exc}"
            if isinstance(got, str):
                violations.append(f"{label}: key {key} reads {got}, allowed {allowed}")
        if verify:
            rep = verify_volume(str(directory), str(VID), offset_bytes=width)
            if not rep.ok:
                violations.append(f"{label}: weedpy verify: {rep.summary()} {rep.errors[:3]}")
        if not v.read_only:
            v.write_needle(needle(999, Value(999, 100)))
    finally:
        loc.close()
    again = Volume.load(directory, VID, offset_bytes=width)
    try:
        if again.read_only or again.warnings:
            violations.append(f"{label}: a second load is not clean: ro={again.read_only} {again.warnings}")
        elif again.read_needle(999, COOKIE).data != body(999, Value(999, 100)):
            violations.append(f"{label}: the write after recovery did not survive a reload")
    finally:
        again.close()
    return out


def enumerate_ops(tmp: Path, width: int, plan: Plan) -> list:
    """The operations a plan makes (one run without a crash)."""
    d = tmp / "enumerate"
    if d.exists():
        shutil.rmtree(d)
    new_volume(d, width)
    fs = CrashFS()
    v = run_workload(d, width, plan, fs, Model())
    assert v is not None
    v.close()
    return fs.ops


def crash_once(tmp: Path, width: int, plan: Plan, crash_at: int, tear: int | None, loss: str,
               rng: random.Random, violations: list[str], label: str, *, verify: bool) -> Checked:
    d = tmp / "crash"
    if d.exists():
        shutil.rmtree(d)
    new_volume(d, width)
    fs = CrashFS(crash_at=crash_at, tear=tear)
    model = Model()
    v = run_workload(d, width, plan, fs, model)
    if v is not None:  # the plan ended before the crash point
        fs.crashed = True
    fs.apply_crash(loss, rng)
    # keeping every write since the last fsync is what kill -9 leaves; anything less, a power loss
    rules = "process" if loss in ("process", "everything") else "power"
    return recover_and_check(d, width, model, rules, violations, label, verify=verify)

