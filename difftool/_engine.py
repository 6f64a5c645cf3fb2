"""The live differ's engine: runs the non-serving side and the comparisons off the serving path.

The dual-run targets hand it *jobs* after the client has its answer: the recorded request, the
serving side's recorded outcome, and a coroutine that runs the same request on the other side.
Two lanes, both bounded, neither ever blocks the serving path (a full lane drops the job and
counts it, by endpoint and reason):

* the **mirror lane** takes every request that writes volume files while any endpoint is
  dual-run. One task applies them to the other side in arrival order, so both stores receive the
  same writes in the same order. A dropped or skipped mirror means the stores may now differ: it
  is counted (`mirror_dropped`, ...) and `diverged` says so in every report.
* the **sample lane** takes sampled reads; a few workers run them, each after the mirror lane
  has applied every write that came before it (so a read after an upload finds it on both
  sides), and a write waits for the reads that came before it (so a read before a delete does
  not find it deleted). Reads run concurrently with each other; the order between reads and
  writes is the order in which the serving side answered them.

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

from difftool._aggregate import Aggregator, judge
from difftool._compare import Rules
from difftool._fixture import Fixture, fixture_to_json
from difftool._noise import DIFFY_DEFAULTS, NoiseThresholds
from difftool._records import Outcome, Request, Sample, Side
from gateway.routes import MUTATING_ENDPOINTS, RouteTable, Target
from weedpy.logs import get_logger

__all__ = ["EngineConfig", "DiffEngine", "Job", "DUAL_RUN_TARGETS"]

log = get_logger("difftool.engine")

DUAL_RUN_TARGETS = frozenset({Target.SHADOW, Target.NATIVE_VERIFY})


@dataclasses.dataclass(frozen=True, slots=True)
class EngineConfig:
    sample_queue: int = 256  # sampled reads waiting to be compared
    mirror_queue: int = 1024  # writes waiting to be applied to the other side
    workers: int = 2  # concurrent sample comparisons
    capture_limit: int = 1 << 20  # bytes of a body kept for comparison; longer ones are dropped
    mirror_limit: int = 64 << 20  # a mirrored write's body is buffered up to this
    mirror_budget: int = 256 << 20  # total bytes of mirrored writes waiting
    other_timeout: float = 60.0
    thresholds: NoiseThresholds = DIFFY_DEFAULTS


@dataclasses.dataclass(slots=True)
class Job:
    endpoint: str
    request: Request
    serving: Outcome
    serving_side: str  # "go" or "native"
    run_other: Callable[[], Awaitable[Outcome]]
    compare: bool  # judge and account it (sampled dual-run endpoint, or a mirrored write)
    size: int = 0  # bytes held (mirror budget)
    after: int = 0  # writes queued before this job (a read waits for them; a write's own index)
    routes_v: str = ""


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
        self._rng = rng or random.Random()
        self._samples_send, self._samples_recv = trio.open_memory_channel[Job](config.sample_queue)
        self._mirror_send, self._mirror_recv = trio.open_memory_channel[Job](config.mirror_queue)
        self._mirror_bytes = 0
        self._enqueued = 0  # mirror sequence numbers handed out
        self._applied = 0  # ... and applied on the other side
        self._applied_changed = trio.Event()
        self._reads_open: Counter[int] = Counter()  # sampled reads not yet done, by epoch (writes before them)
        self._reads_changed = trio.Event()
        self.diverged = 0  # writes that did not reach the other side
        self._busy = 0  # sample jobs being worked on
        self.started = time.time()

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

    def offer(self, job: Job) -> bool:
        """Queue a job; False (and counted) when its lane is full."""
        job.routes_v = job.routes_v or self.routes.version
        if self.is_mirrored(job.endpoint):
            if self._mirror_bytes + job.size > self.config.mirror_budget:
                self.drop(job.endpoint, "mirror_over_budget")
                return False
            try:
                self._mirror_send.send_nowait(job)
            except trio.WouldBlock:
                self.drop(job.endpoint, "mirror_queue_full")
                return False
            self._mirror_bytes += job.size
            job.after = self._enqueued
            self._enqueued += 1
            return True
        job.after = self._enqueued
        try:
            self._samples_send.send_nowait(job)
        except trio.WouldBlock:
            self.drop(job.endpoint, "queue_full")
            return False
        self._reads_open[job.after] += 1
        return True

    # -- background ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._mirror_lane)
            for _ in range(max(1, self.config.workers)):
                nursery.start_soon(self._sample_worker)
            task_status.started()

    async def _mirror_lane(self) -> None:
        async for job in self._mirror_recv:
            while self._reads_open and min(self._reads_open) <= job.after:
                await self._reads_changed.wait()
            try:
                other = await self._run_other(job)
                if job.compare:
                    self._account(job, other)
            finally:
                self._mirror_bytes -= job.size
                self._applied += 1
                self._applied_changed.set()
                self._applied_changed = trio.Event()

    async def _sample_worker(self) -> None:
        async for job in self._samples_recv:
            self._busy += 1
            try:
                while self._applied < job.after:
                    await self._applied_changed.wait()
                other = await self._run_other(job)
                self._account(job, other)
            finally:
                self._busy -= 1
                self._reads_open[job.after] -= 1
                if self._reads_open[job.after] <= 0:
                    del self._reads_open[job.after]
                self._reads_changed.set()
                self._reads_changed = trio.Event()
            await trio.lowlevel.checkpoint()

    async def _run_other(self, job: Job) -> Outcome:
        try:
            with trio.fail_after(self.config.other_timeout):
                return await job.run_other()
        except trio.TooSlowError:
            return Outcome(None, f"no answer in {self.config.other_timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - the other side's failure is a finding, not our crash
            log.exception("other side failed", route=job.endpoint)
            return Outcome(None, f"{type(exc).__name__}: {exc}")

    def rules_for(self, endpoint: str) -> Rules:
        r = self.routes.lookup(endpoint)
        return Rules.of(r.ignore_headers, r.ignore_fields)

    def _account(self, job: Job, other: Outcome) -> None:
        go, native = (job.serving, other) if job.serving_side == Side.PRIMARY else (other, job.serving)
        sample = Sample(job.endpoint, job.request, go, native, None, job.routes_v, f"served by {job.serving_side}")
        judgement = judge(sample, self.rules_for(job.endpoint))
        self.aggregator.add(sample, judgement)

    # -- reading ------------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        rep = self.aggregator.report({
            "scenario": "live", "routes_v": self.routes.version, "versions": self.versions,
            "mirroring": self.mirroring,
        })
        rep["stores"] = {"diverged_writes": self.diverged, "equal": None if self.diverged == 0 else False,
                         "mirror_pending": self._enqueued - self._applied}
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
        while True:
            s = self._samples_send.statistics()
            m = self._mirror_send.statistics()
            if (s.current_buffer_used == 0 and m.current_buffer_used == 0 and self._applied == self._enqueued
                    and self._busy == 0):
                return
            await trio.sleep(0.01)
