"""Per-endpoint accounting of judged samples, and the report built from it.

`Aggregator` is the only mutable object of the differ's core; one lives in each `weedpy diff run`
and in each gateway. Everything it keeps is bounded: field counters per endpoint, distinct
mismatch signatures (the set of differing fields of a sample), examples per field, and stored
samples (count per signature and a total byte budget). Whether a mismatch is *noise* is decided
when the report is built, from the rates accumulated so far (see `_noise.py`), so a field learned
as noise later also reclassifies the samples seen before.

`report()` returns a JSON-able dict (schema in docs/differ.md); the JSON, HTML and JUnit writers
and the admin API all render that dict.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from difftool._codec import sample_to_json
from difftool._compare import NO_RULES, Comparison, FieldDiff, Rules, Verdict, compare_outcomes
from difftool._mask import ByteMask
from difftool._noise import DIFFY_DEFAULTS, NoiseThresholds, classify_field
from difftool._records import GrpcRequest, GrpcResponse, HttpResponse, Outcome, Sample, Side

__all__ = ["Judgement", "judge", "Aggregator", "Limits", "LatencyHistogram", "REPORT_FORMAT"]

REPORT_FORMAT = "weedpy-diff-report/1"
OVERFLOW_FIELD = "<other fields>"
OVERFLOW_SIGNATURE = frozenset({"<other signatures>"})


@dataclasses.dataclass(frozen=True, slots=True)
class Judgement:
    candidate: Comparison  # primary vs candidate
    control: Comparison | None = None  # primary vs secondary (the noise sample)


def judge(sample: Sample, rules: Rules = NO_RULES, masks: Sequence[ByteMask] = ()) -> Judgement:
    """`masks`: byte ranges of the answer known to hold clocks (a generated step's)."""
    req = sample.request if isinstance(sample.request, GrpcRequest) else None
    method = req.method if req is not None else ""
    cand = compare_outcomes(method, sample.primary, sample.candidate, rules, sample.endpoint, req, masks)
    ctrl = None
    if sample.secondary is not None:
        ctrl = compare_outcomes(method, sample.primary, sample.secondary, NO_RULES, sample.endpoint, req, masks)
    return Judgement(cand, ctrl)


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    fields_per_endpoint: int = 200
    signatures_per_endpoint: int = 256
    examples_per_field: int = 3
    samples_per_signature: int = 2
    samples_per_endpoint: int = 40
    sample_bytes_total: int = 64 << 20  # full samples kept (fixtures need every byte)
    report_body_limit: int = 16 << 10  # bytes of each body shown in a report


class LatencyHistogram:
    """Log-bucketed latencies (4 buckets per doubling, 10 µs to ~3 h): bounded, mergeable."""

    __slots__ = ("counts", "n", "total", "max")
    _BASE = 0.01  # ms
    _PER_DOUBLING = 4

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, ms: float) -> None:
        b = 0 if ms <= self._BASE else int(math.log2(ms / self._BASE) * self._PER_DOUBLING) + 1
        self.counts[b] += 1
        self.n += 1
        self.total += ms
        self.max = max(self.max, ms)

    def _upper(self, b: int) -> float:
        return self._BASE * 2 ** (b / self._PER_DOUBLING)

    def quantile(self, q: float) -> float:
        if not self.n:
            return 0.0
        rank = q * self.n
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return min(self._upper(b), self.max)
        return self.max

    def summary(self) -> dict[str, float]:
        if not self.n:
            return {"count": 0}
        return {"count": self.n, "mean": round(self.total / self.n, 3), "p50": round(self.quantile(0.5), 3),
                "p90": round(self.quantile(0.9), 3), "p99": round(self.quantile(0.99), 3), "max": round(self.max, 3)}


@dataclasses.dataclass(slots=True)
class _FieldAcc:
    diffs: int = 0  # samples where primary and candidate differ here (not ignored)
    ignored: int = 0
    noise_diffs: int = 0  # samples where primary and secondary differ here
    examples: list[tuple[int, FieldDiff, str]] = dataclasses.field(default_factory=list)  # (sample id, diff, side)


@dataclasses.dataclass(slots=True)
class _Stored:
    sample: Sample
    judgement: Judgement
    signature: frozenset[str]
    size: int


class _EndpointAcc:
    __slots__ = ("compared", "matched", "ignored", "control_compared", "signatures", "fields", "dropped",
                 "latency", "sample_ids", "per_signature_kept", "ignored_signatures")

    def __init__(self) -> None:
        self.compared = 0
        self.matched = 0
        self.ignored = 0
        self.control_compared = 0
        self.signatures: Counter[frozenset[str]] = Counter()
        self.ignored_signatures: Counter[frozenset[str]] = Counter()
        self.fields: dict[str, _FieldAcc] = {}
        self.dropped: Counter[str] = Counter()
        self.latency: dict[str, LatencyHistogram] = {}
        self.sample_ids: list[int] = []
        self.per_signature_kept: Counter[frozenset[str]] = Counter()


def _size(o: Outcome | None) -> int:
    r = None if o is None else o.response
    if isinstance(r, HttpResponse):
        return len(r.body) + sum(len(k) + len(v) for k, v in r.headers)
    if isinstance(r, GrpcResponse):
        return sum(map(len, r.messages)) + 256
    return 64


class Aggregator:
    def __init__(
        self, thresholds: NoiseThresholds = DIFFY_DEFAULTS, limits: Limits = Limits(),
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc),
    ) -> None:
        self.thresholds = thresholds
        self.limits = limits
        self._clock = clock
        self._endpoints: dict[str, _EndpointAcc] = {}
        self._samples: dict[int, _Stored] = {}
        self._next_id = 1
        self._stored_bytes = 0
        self.started_at = clock()

    def _ep(self, endpoint: str) -> _EndpointAcc:
        acc = self._endpoints.get(endpoint)
        if acc is None:
            acc = self._endpoints[endpoint] = _EndpointAcc()
        return acc

    def _field(self, acc: _EndpointAcc, key: str) -> _FieldAcc:
        f = acc.fields.get(key)
        if f is None:
            if len(acc.fields) >= self.limits.fields_per_endpoint:
                key = OVERFLOW_FIELD
                f = acc.fields.get(key)
            if f is None:
                f = acc.fields[key] = _FieldAcc()
        return f

    def drop(self, endpoint: str, reason: str, n: int = 1) -> None:
        """A request that was not compared (queue full, too large, body incomplete, ...)."""
        self._ep(endpoint).dropped[reason] += n

    def add(self, sample: Sample, judgement: Judgement) -> int | None:
        """Account one judged sample; returns its id when it was kept for the report."""
        acc = self._ep(sample.endpoint)
        acc.compared += 1
        for side, outcome in ((Side.PRIMARY, sample.primary), (Side.CANDIDATE, sample.candidate),
                              (Side.SECONDARY, sample.secondary)):
            if outcome is not None:
                acc.latency.setdefault(side, LatencyHistogram()).add(outcome.ms)
        cand = judgement.candidate
        sid = self._next_id
        self._next_id += 1
        if judgement.control is not None:
            acc.control_compared += 1
            for key in {d.key for d in judgement.control.diffs + judgement.control.ignored}:
                f = self._field(acc, key)
                f.noise_diffs += 1
            for d in judgement.control.diffs + judgement.control.ignored:
                f = self._field(acc, d.key)
                if len(f.examples) < self.limits.examples_per_field and not any(e[2] == Side.SECONDARY for e in f.examples):
                    f.examples.append((sid, d, Side.SECONDARY))
        for key in {d.key for d in cand.ignored}:
            self._field(acc, key).ignored += 1
        for key in cand.keys:
            self._field(acc, key).diffs += 1
        for d in cand.diffs + cand.ignored:
            f = self._field(acc, d.key)
            if len(f.examples) < self.limits.examples_per_field:
                f.examples.append((sid, d, Side.CANDIDATE))
        if cand.verdict is Verdict.MATCH:
            acc.matched += 1
            return None
        if cand.verdict is Verdict.IGNORED:
            acc.ignored += 1
            sig = frozenset(d.key for d in cand.ignored)
            acc.ignored_signatures[sig] += 1
            keep = acc.ignored_signatures[sig] == 1
        else:
            sig = cand.keys
            if sig not in acc.signatures and len(acc.signatures) >= self.limits.signatures_per_endpoint:
                sig = OVERFLOW_SIGNATURE
            acc.signatures[sig] += 1
            keep = acc.per_signature_kept[sig] < self.limits.samples_per_signature
        if not keep or len(acc.sample_ids) >= self.limits.samples_per_endpoint:
            return None
        size = _size(sample.primary) + _size(sample.candidate) + _size(sample.secondary)
        if self._stored_bytes + size > self.limits.sample_bytes_total:
            return None
        acc.per_signature_kept[sig] += 1
        self._samples[sid] = _Stored(sample, judgement, sig, size)
        self._stored_bytes += size
        acc.sample_ids.append(sid)
        return sid

    # -- reading -----------------------------------------------------------------------------------

    def sample(self, sid: int) -> tuple[Sample, Judgement] | None:
        s = self._samples.get(sid)
        return None if s is None else (s.sample, s.judgement)

    def is_noise(self, endpoint: str, key: str) -> bool:
        acc = self._endpoints.get(endpoint)
        if acc is None or key not in acc.fields:
            return False
        f = acc.fields[key]
        return classify_field(f.diffs, acc.compared, f.noise_diffs, acc.control_compared, self.thresholds)

    def real_mismatch_samples(self) -> list[tuple[int, Sample, Judgement]]:
        """Stored samples whose differences are not all explained (fixture candidates)."""
        out = []
        for sid, s in sorted(self._samples.items()):
            if s.judgement.candidate.verdict is Verdict.MISMATCH and not all(
                self.is_noise(s.sample.endpoint, k) for k in s.signature
            ):
                out.append((sid, s.sample, s.judgement))
        return out

    def counts(self, endpoint: str) -> dict[str, int]:
        acc = self._endpoints.get(endpoint) or _EndpointAcc()
        noise = mismatched = 0
        for sig, n in acc.signatures.items():
            if sig != OVERFLOW_SIGNATURE and all(self.is_noise(endpoint, k) for k in sig):
                noise += n
            else:
                mismatched += n
        return {"compared": acc.compared, "matched": acc.matched, "mismatched": mismatched, "noise": noise,
                "ignored": acc.ignored, "dropped": sum(acc.dropped.values())}

    def endpoints(self) -> list[str]:
        return sorted(self._endpoints)

    def dropped(self, endpoint: str) -> dict[str, int]:
        """Requests of `endpoint` not compared, by reason."""
        acc = self._endpoints.get(endpoint)
        return dict(acc.dropped) if acc is not None else {}

    def report(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        lim = self.limits.report_body_limit
        endpoints = []
        totals = Counter()
        for name in self.endpoints():
            acc = self._endpoints[name]
            counts = self.counts(name)
            totals.update(counts)
            fields = []
            for key, f in sorted(acc.fields.items(), key=lambda kv: (-kv[1].diffs, -kv[1].ignored, kv[0])):
                noise = self.is_noise(name, key)
                cls = "real" if f.diffs and not noise else "noise" if f.diffs else "ignored" if f.ignored else "control-only"
                fields.append({
                    "field": key, "class": cls, "diffs": f.diffs, "ignored": f.ignored,
                    "rate": round(f.diffs / acc.compared, 6) if acc.compared else 0.0,
                    "noise_diffs": f.noise_diffs,
                    "noise_rate": round(f.noise_diffs / acc.control_compared, 6) if acc.control_compared else None,
                    "examples": [{"sample": sid if sid in self._samples else None, "side": side, "path": d.path,
                                  "left": d.left, "right": d.right} for sid, d, side in f.examples],
                })
            signatures = []
            for sig, n in acc.signatures.most_common():
                noise = sig != OVERFLOW_SIGNATURE and all(self.is_noise(name, k) for k in sig)
                signatures.append({"fields": sorted(sig), "count": n, "class": "noise" if noise else "mismatch"})
            for sig, n in acc.ignored_signatures.most_common():
                signatures.append({"fields": sorted(sig), "count": n, "class": "ignored"})
            verdict = "no-data" if not acc.compared else "mismatch" if counts["mismatched"] else "clean"
            endpoints.append({
                "endpoint": name, **counts, "verdict": verdict,
                "dropped_by_reason": dict(sorted(acc.dropped.items())),
                "control_compared": acc.control_compared,
                "latency_ms": {side: h.summary() for side, h in sorted(acc.latency.items())},
                "fields": fields, "signatures": signatures, "samples": list(acc.sample_ids),
            })
        samples = {}
        for sid, s in sorted(self._samples.items()):
            j = s.judgement
            if j.candidate.verdict is Verdict.IGNORED:
                cls = "ignored"
            elif all(self.is_noise(s.sample.endpoint, k) for k in s.signature) and s.signature != OVERFLOW_SIGNATURE:
                cls = "noise"
            else:
                cls = "mismatch"
            samples[str(sid)] = {
                **sample_to_json(s.sample, lim), "class": cls,
                "diffs": [dataclasses.asdict(d) for d in j.candidate.diffs],
                "ignored_diffs": [dataclasses.asdict(d) for d in j.candidate.ignored],
                "control_diffs": None if j.control is None else [dataclasses.asdict(d) for d in j.control.diffs + j.control.ignored],
            }
        return {
            "format": REPORT_FORMAT,
            "generated_at": self._clock().isoformat(timespec="seconds"),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "meta": dict(meta or {}),
            "thresholds": {"relative": self.thresholds.relative, "absolute": self.thresholds.absolute},
            "totals": {k: totals.get(k, 0) for k in ("compared", "matched", "mismatched", "noise", "ignored", "dropped")},
            "endpoints": endpoints,
            "samples": samples,
        }
