"""The live differ's engine: runs the non-serving side and the comparisons off the serving path.

The dual-run targets hand it *jobs* after the client has its answer: the recorded request, the
serving side's recorded outcome, and a coroutine that runs the same request on the other side.
Two lanes, both bounded, neither ever blocks the serving path (a full lane drops the job and
counts it, by endpoint and reason):

* the **mirror lane** takes every request that writes volume files while any endpoint is
  dual-run. One task applies them to the other side in arrival order, so both stores receive the
  same writes in the same order. Writes are not samples: when the lane is full, the write's
  connection waits (after its client has the answer) for room, up to `mirror_wait` seconds; that
  is the one way dual-run can slow clients, and it is counted (`mirror_waits`, seconds waited).
  A write that still cannot be queued, or is too large, is dropped: the stores may now differ,
  it is counted (`mirror_*`) and `diverged` says so in every report. A request served by the
  mirrored side (e.g. a `native+verify` read while Go owns the writes) first waits, bounded by
  `catch_up_wait`, until that side has applied the writes acknowledged before it arrived, so a
  client reads its own writes whichever side answers (`catch_up_waits`).
* the **sample lane** takes sampled reads; a few workers run them, each after the mirror lane
  has applied every write that came before it (so a read after an upload finds it on both
  sides), and a write waits for the reads before it (so a read before a delete does not find it
  deleted): for those a worker has taken, until they finish; for those still queued, at most
  `overtake_after` seconds. A read still queued when a later write starts would see a store the
  serving side never saw: it is dropped (`overtaken`), so writes never wait on a long backlog.
  Reads run concurrently with each other; the order between reads and writes is the order in
  which the serving side answered them. The workers spend at most
  `sample_share` of the wall time busy (after a job they pause in proportion), so on a shared
  CPU the comparisons take a bounded share from the serving path; what does not fit is dropped
  (`queue_full`).

Every outcome pair is judged (`judge`) with the route's ignore rules and accounted in the
`Aggregator`, whose report the admin API serves.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from difftool._aggregate import Aggregator, Judgement, judge
from difftool._compare import Verdict
from difftool._compare import Rules
from difftool._fixture import Fixture, fixture_to_json
from difftool._noise import DIFFY_DEFAULTS, NoiseThresholds
from difftool._records import Outcome, Request, Sample, Side
from weedpy.serve.routes import MUTATING_ENDPOINTS, RouteTable, Target
from weedpy.logs import get_logger

__all__ = ["EngineConfig", "DiffEngine", "Job", "DUAL_RUN_TARGETS"]

log = get_logger("difftool.engine")

DUAL_RUN_TARGETS = frozenset({Target.SHADOW, Target.NATIVE_VERIFY})


@dataclasses.dataclass(frozen=True, slots=True)
class EngineConfig:
    sample_queue: int = 256  # sampled reads waiting to be compared
    mirror_queue: int = 1024  # writes waiting to be applied to the other side
    workers: int = 2  # concurrent sample comparisons
    sample_share: float = 0.05  # at most this share of wall time spent on samples (all workers together)
    mirror_wait: float = 30.0  # how long a write may wait for room in a full mirror lane
    catch_up_wait: float = 5.0  # how long a request served by the mirrored side waits for earlier writes
    overtake_after: float = 1.0  # a write waits this long for earlier queued reads, then overtakes them
    capture_limit: int = 1 << 20  # bytes of a body kept for comparison; longer ones are dropped
    mirror_limit: int = 64 << 20  # a mirrored write's body is buffered up to this
    mirror_budget: int = 256 << 20  # total bytes of mirrored writes waiting
    other_timeout: float = 60.0
    thresholds: NoiseThresholds = DIFFY_DEFAULTS


@dataclasses.dataclass(slots=True)
class Job:
    endpoint: str
    request: Request
    serving: Outcome | Callable[[], Outcome]  # or how to build it from what was captured (off the serving path)
    serving_side: str  # "go" or "native"
    run_other: Callable[[], Awaitable[Outcome]]
    compare: bool  # judge and account it (sampled dual-run endpoint, or a mirrored write)
    size: int = 0  # bytes held (mirror budget)
    after: int = 0  # writes queued before this job (a read waits for them; a write's own index)
    routes_v: str = ""
    run_control: Callable[[], Awaitable[Outcome]] | None = None  # the second Go (noise control), if any


class DiffEngine:
    """One per gateway. `run()` inside a nursery; `offer()` from the dual-run targets."""

    def __init__(
        self, routes: RouteTable, config: EngineConfig = EngineConfig(), *, versions: dict[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.routes = routes
        self.config = config
        self.versions = dict(versions or {})
        self.aggregator = Aggregator(config.thresholds)
        self.mirroring = bool(routes.targets() & DUAL_RUN_TARGETS)
        self.write_owner = routes.owner_of_writes()
        self.control = False  # a second Go backend answers every compared request too (set by the wiring)  # "go" or "native": the side writes are served by
        self._rng = rng or random.Random()
        self._samples_send, self._samples_recv = trio.open_memory_channel[Job](config.sample_queue)
        self._mirror_send, self._mirror_recv = trio.open_memory_channel[Job](config.mirror_queue)
        self._mirror_bytes = 0
        self._enqueued = 0  # mirror sequence numbers handed out
        self._applied = 0  # ... and applied on the other side
        self._applied_changed = trio.Event()
        self._writes_started = 0  # mirrored writes whose application has begun
        self._reads_running: Counter[int] = Counter()  # sampled reads claimed by a worker, by epoch
        self._reads_open: Counter[int] = Counter()  # ... and those still queued
        self._write_waiting = False
        self._write_wait = trio.Event()
        self._reads_changed = trio.Event()
        self.diverged = 0  # writes that did not reach the other side
        self._samples_in = 0  # sample jobs accepted ...
        self._samples_out = 0  # ... and finished (compared or dropped)
        self.mirror_waits = 0  # writes that waited for room in the mirror lane
        self.mirror_wait_s = 0.0
        self.catch_up_waits = 0  # requests served by the mirrored side that waited for earlier writes
        self.catch_up_wait_s = 0.0
        self.started = time.time()
        # Set by the wiring (weedpy/cutover.py): told the endpoint, kind and request of every compared
        # sample (the request names its volume); adds to the report.
        self.observer: Callable[[str, str, Request], None] | None = None
        self.report_extra: Callable[[], dict[str, Any]] | None = None

    # -- serving path (never blocks) ----------------------------------------------------------------

    def sampled(self, pct: float) -> bool:
        return pct >= 100.0 or (pct > 0.0 and self._rng.random() * 100.0 < pct)

    def is_mirrored(self, endpoint: str) -> bool:
        return self.mirroring and endpoint in MUTATING_ENDPOINTS

    def drop(self, endpoint: str, reason: str) -> None:
        self.aggregator.drop(endpoint, reason)
        if reason.startswith("mirror_"):
            self.diverged += 1
            log.warning("write not mirrored: the stores may differ", route=endpoint, reason=reason)

    def behind(self, serving_side: str) -> bool:
        """Whether `serving_side` is the mirrored side and still has acknowledged writes to apply."""
        return self.mirroring and serving_side != self.write_owner and self._applied < self._enqueued

    async def catch_up(self) -> None:
        """Read-your-writes across sides: before the mirrored side answers, wait (bounded) until it
        has applied every write acknowledged before this request arrived."""
        target = self._enqueued
        t0 = time.perf_counter()
        with trio.move_on_after(self.config.catch_up_wait):
            while self._applied < target:
                await self._applied_changed.wait()
        self.catch_up_waits += 1
        self.catch_up_wait_s += time.perf_counter() - t0

    def has_room(self, endpoint: str) -> bool:
        """Whether a sample would be queued now; if not, it is counted as dropped and not taken."""
        stats = self._samples_send.statistics()
        if stats.current_buffer_used < stats.max_buffer_size:
            return True
        self.drop(endpoint, "queue_full")
        return False

    def offer(self, job: Job) -> bool:
        """Queue a sample (never waits); False, and counted, when the lane is full."""
        job.routes_v = job.routes_v or self.routes.version
        job.after = self._enqueued
        try:
            self._samples_send.send_nowait(job)
        except trio.WouldBlock:
            self.drop(job.endpoint, "queue_full")
            return False
        self._samples_in += 1
        self._reads_open[job.after] += 1
        return True

    async def submit(self, job: Job) -> bool:
        """Queue a job: samples as `offer`; a mirrored write waits for room (see the docstring)."""
        if not self.is_mirrored(job.endpoint):
            return self.offer(job)
        job.routes_v = job.routes_v or self.routes.version
        if self._mirror_bytes + job.size > self.config.mirror_budget:
            self.drop(job.endpoint, "mirror_over_budget")
            return False
        job.after = self._enqueued
        self._enqueued += 1
        self._mirror_bytes += job.size
        try:
            self._mirror_send.send_nowait(job)
            return True
        except trio.WouldBlock:
            pass
        t0 = time.perf_counter()
        with trio.move_on_after(self.config.mirror_wait):
            await self._mirror_send.send(job)
            self.mirror_waits += 1
            self.mirror_wait_s += time.perf_counter() - t0
            return True
        self._mirror_bytes -= job.size
        self._writes_started = max(self._writes_started, job.after + 1)
        self._mark_applied()  # its place in the order is given up
        self.drop(job.endpoint, "mirror_queue_full")
        return False

    def _mark_applied(self) -> None:
        self._applied += 1
        self._applied_changed.set()
        self._applied_changed = trio.Event()

    # -- background ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._mirror_lane)
            for _ in range(max(1, self.config.workers)):
                nursery.start_soon(self._sample_worker)
            task_status.started()

    async def _mirror_lane(self) -> None:
        async for job in self._mirror_recv:
            if self._reads_open and min(self._reads_open) <= job.after:
                self._write_waiting = True  # the workers stop pausing until the reads before it are done
                self._write_wait.set()
                with trio.move_on_after(self.config.overtake_after):  # earlier reads, queued or running
                    while self._reads_open and min(self._reads_open) <= job.after:
                        await self._reads_changed.wait()
                self._write_waiting = False
                self._write_wait = trio.Event()
            self._writes_started = max(self._writes_started, job.after + 1)  # no earlier read starts now
            while self._reads_running and min(self._reads_running) <= job.after:
                await self._reads_changed.wait()
            try:
                other, control = await self._run_sides(job)
                if job.compare:
                    self._account(job, other, control)
            finally:
                self._mirror_bytes -= job.size
                self._mark_applied()

    async def _sample_worker(self) -> None:
        share = min(1.0, max(0.001, self.config.sample_share))
        pause_factor = max(1, self.config.workers) / share - 1.0
        async for job in self._samples_recv:
            if self._writes_started > job.after:  # a later write is reaching the other store already
                self.aggregator.drop(job.endpoint, "overtaken")
                self._samples_out += 1
                self._read_done(self._reads_open, job.after)
                continue
            self._reads_running[job.after] += 1  # claimed: the next write waits for it
            busy = 0.0
            try:
                while self._applied < job.after:
                    await self._applied_changed.wait()
                t0 = time.perf_counter()
                other, control = await self._run_sides(job)
                self._account(job, other, control)
                busy = time.perf_counter() - t0
            finally:
                self._samples_out += 1
                self._read_done(self._reads_running, job.after)
                self._read_done(self._reads_open, job.after)
            if busy and not self._write_waiting:
                with trio.move_on_after(busy * pause_factor):  # cut short when a write waits for reads
                    await self._write_wait.wait()
            else:
                await trio.lowlevel.checkpoint()

    def _read_done(self, counter: Counter[int], epoch: int) -> None:
        counter[epoch] -= 1
        if counter[epoch] <= 0:
            del counter[epoch]
        self._reads_changed.set()
        self._reads_changed = trio.Event()

    async def _run_sides(self, job: Job) -> tuple[Outcome, Outcome | None]:
        """The other side's outcome, and the control's (run at the same time) when there is one."""
        if job.run_control is None:
            return await self._run_other(job, job.run_other), None
        results: list[Outcome] = []

        async def control() -> None:
            assert job.run_control is not None
            results.append(await self._run_other(job, job.run_control))

        async with trio.open_nursery() as n:
            n.start_soon(control)
            other = await self._run_other(job, job.run_other)
        return other, results[0]

    async def _run_other(self, job: Job, run: Callable[[], Awaitable[Outcome]]) -> Outcome:
        try:
            with trio.fail_after(self.config.other_timeout):
                return await run()
        except trio.TooSlowError:
            return Outcome(None, f"no answer in {self.config.other_timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - the other side's failure is a finding, not our crash
            log.exception("other side failed", route=job.endpoint)
            return Outcome(None, f"{type(exc).__name__}: {exc}")

    def rules_for(self, endpoint: str) -> Rules:
        r = self.routes.lookup(endpoint)
        return Rules.of(r.ignore_headers, r.ignore_fields)

    def _account(self, job: Job, other: Outcome, control: Outcome | None = None) -> None:
        serving = job.serving() if callable(job.serving) else job.serving
        resp = serving.response
        if resp is None or getattr(resp, "truncated", False):  # too long (or cut) to compare
            self.aggregator.drop(job.endpoint, "too_large" if resp is not None or "longer" in serving.error
                                 else "incomplete_answer")
            return
        go, native = (serving, other) if job.serving_side == Side.PRIMARY else (other, serving)
        sample = Sample(job.endpoint, job.request, go, native, control, job.routes_v, f"served by {job.serving_side}")
        judgement = judge(sample, self.rules_for(job.endpoint))
        self.aggregator.add(sample, judgement)
        if self.observer is not None:
            self.observer(job.endpoint, self._kind(job.endpoint, judgement), job.request)

    def _kind(self, endpoint: str, judgement: Judgement) -> str:
        """`match`, `ignored`, `real` or `noise`, as the fields' rates so far classify the sample."""
        cand = judgement.candidate
        if cand.verdict is not Verdict.MISMATCH:
            return "match" if cand.verdict is Verdict.MATCH else "ignored"
        noise = all(self.aggregator.is_noise(endpoint, key) for key in cand.keys)
        return "noise" if noise else "real"

    # -- reading ------------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        rep = self.aggregator.report({
            "scenario": "live", "routes_v": self.routes.version, "versions": self.versions,
            "mirroring": self.mirroring, "control": self.control,
        })
        if self.report_extra is not None:
            rep.update(self.report_extra())
        rep["stores"] = {"diverged_writes": self.diverged, "equal": None if self.diverged == 0 else False,
                         "mirror_pending": self._enqueued - self._applied, "mirror_waits": self.mirror_waits,
                         "mirror_wait_seconds": round(self.mirror_wait_s, 3), "catch_up_waits": self.catch_up_waits,
                         "catch_up_wait_seconds": round(self.catch_up_wait_s, 3)}
        return rep

    def fixture_ids(self) -> list[int]:
        return [sid for sid, _, _ in self.aggregator.real_mismatch_samples()]

    def fixture(self, sid: int) -> dict[str, Any] | None:
        found = self.aggregator.sample(sid)
        if found is None:
            return None
        sample, j = found
        return fixture_to_json(Fixture(sample, j.candidate.diffs, (), "live"))

    async def wait_idle(self) -> None:
        """Until both lanes are empty and every job finished (tests, orderly shutdown)."""
        while self._samples_in != self._samples_out or self._applied != self._enqueued:
            await trio.sleep(0.01)
