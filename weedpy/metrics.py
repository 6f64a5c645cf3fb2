"""Prometheus families kept cheaply in one process, summed across processes, written as Go writes them.

A `MetricSet` holds one process's families, declared up front by `FamilySpec` (name, help, type,
label names, buckets). A child (`Counter`, `Gauge`, `Histogram`) is created once per label values
and cached: counting on a hot path is a dict lookup (or none, when the caller keeps the child)
and an addition, with no lock and no label formatting. Updates happen on the process's event
loop thread; code running in worker threads counts after it returns.

`MetricSet.collect()` yields `prometheus_client.Metric` families, so they render together with
prometheus-client's own collectors (process_*, python_*). prometheus-client itself loads only
when something is collected (a server without -metricsPort never does): counting needs none of it. A family without labels always has its
one child (Go exports those from the start); a labelled one appears with its first child, as a Go
`*Vec` does.

Processes of one server: `snapshot()` is a JSON-able copy of a process's values, `absorb()` adds
one into another set, and `ExitedProcesses` keeps what processes that exited had counted (the
counters and histograms of their last snapshot), so a server's totals never go backwards.

`render_text()` writes the Prometheus text format (0.0.4) the way Go's client_golang does: names
exactly as declared (Go's counters do not all end in `_total`, and prometheus-client's writer
would append it), label pairs sorted by name with `le` last, values formatted as Go's
`strconv.FormatFloat(v, 'g', -1, 64)`.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import Metric

__all__ = [
    "COUNTER", "GAUGE", "HISTOGRAM", "FamilySpec", "Counter", "Gauge", "Histogram", "Family", "MetricSet",
    "ExitedProcesses", "exponential_buckets", "gauge_metric", "new_metric", "go_float", "render_text", "CONTENT_TYPE",
]

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"  # what Go's promhttp answers


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """prometheus.ExponentialBuckets: `count` upper bounds from `start`, each `factor` times the last."""
    return tuple(start * factor ** i for i in range(count))


@dataclasses.dataclass(frozen=True, slots=True)
class FamilySpec:
    name: str
    help: str
    type: str  # COUNTER, GAUGE or HISTOGRAM
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms: the upper bounds, ascending (+Inf is implied)


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Gauge:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class Histogram:
    """Counts per bucket (not cumulative: one increment per observation), plus the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # first bound >= value: `le` is inclusive
        self.sum += value


Child = Counter | Gauge | Histogram


class Family:
    """One family's children by label values."""

    __slots__ = ("spec", "children")

    def __init__(self, spec: FamilySpec) -> None:
        self.spec = spec
        self.children: dict[tuple[str, ...], Any] = {}
        if not spec.labels:
            self.labels()

    def _new(self) -> Child:
        if self.spec.type == HISTOGRAM:
            return Histogram(self.spec.buckets)
        return Counter() if self.spec.type == COUNTER else Gauge()

    def labels(self, *values: str) -> Any:
        """The child for these label values (in the spec's label order), created on first use."""
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.spec.labels):
                raise ValueError(f"{self.spec.name} has labels {self.spec.labels}, got {values!r}")
            child = self.children[values] = self._new()
        return child

    def remove(self, *values: str) -> None:
        self.children.pop(values, None)

    def to_metric(self) -> Metric | None:
        """The family as prometheus-client sees one; None for a labelled family with no child yet."""
        spec = self.spec
        if not self.children:
            return None
        m = _metric(spec.name, spec.help, spec.type)
        names = spec.labels
        order = sorted(range(len(names)), key=names.__getitem__)  # Go sorts by the values of the sorted names
        for values in sorted(self.children, key=lambda vs: [vs[i] for i in order]):
            labels = dict(zip(names, values))
            child = self.children[values]
            if spec.type == HISTOGRAM:
                acc = 0
                for bound, n in zip((*spec.buckets, math.inf), child.counts):
                    acc += n
                    m.add_sample(spec.name + "_bucket", {**labels, "le": go_float(bound)}, acc)
                m.add_sample(spec.name + "_sum", labels, child.sum)
                m.add_sample(spec.name + "_count", labels, acc)
            else:
                m.add_sample(spec.name, labels, child.value)
        return m


class MetricSet:
    """One process's families, by name."""

    def __init__(self, specs: Iterable[FamilySpec]) -> None:
        self.families: dict[str, Family] = {}
        for spec in specs:
            if spec.name in self.families:
                raise ValueError(f"family {spec.name} declared twice")
            self.families[spec.name] = Family(spec)

    def __getitem__(self, name: str) -> Family:
        return self.families[name]

    @property
    def specs(self) -> list[FamilySpec]:
        return [f.spec for f in self.families.values()]

    def collect(self) -> Iterator[Metric]:
        for family in self.families.values():
            m = family.to_metric()
            if m is not None:
                yield m

    def snapshot(self, *, gauges: bool = True) -> dict[str, list[list[Any]]]:
        """Every child's values, JSON-able: `[*label values, value]`, or `[*label values, counts, sum]`
        for histograms. `gauges=False` leaves gauges out (what an exited process leaves behind)."""
        out: dict[str, list[list[Any]]] = {}
        for name, family in self.families.items():
            kind = family.spec.type
            if kind == GAUGE and not gauges:
                continue
            rows = []
            for values, child in family.children.items():
                if kind == HISTOGRAM:
                    rows.append([*values, list(child.counts), child.sum])
                else:
                    rows.append([*values, child.value])
            if rows:
                out[name] = rows
        return out

    def absorb(self, snapshot: Mapping[str, list[list[Any]]], *, gauges: bool = True) -> None:
        """Add another process's snapshot to these values (families this set lacks are skipped)."""
        for name, rows in snapshot.items():
            family = self.families.get(name)
            if family is None:
                continue
            spec = family.spec
            if spec.type == GAUGE and not gauges:
                continue
            n = len(spec.labels)
            for row in rows:
                child = family.labels(*(str(v) for v in row[:n]))
                if spec.type == HISTOGRAM:
                    counts = row[n]
                    if len(counts) == len(child.counts):
                        for i, c in enumerate(counts):
                            child.counts[i] += c
                        child.sum += row[n + 1]
                else:
                    child.value += row[n]

    def copy(self) -> MetricSet:
        other = MetricSet(self.specs)
        other.absorb(self.snapshot())
        return other


class ExitedProcesses:
    """The leader's memory of its other processes' counts, keyed by pid: `update` takes the
    snapshots the live ones answered; a pid that is gone has its counters and histograms (not its
    gauges) kept for good, so a server-wide counter never goes backwards when a worker is replaced.
    Counts a process made after its last snapshot are lost with it."""

    def __init__(self, specs: Iterable[FamilySpec]) -> None:
        self._specs = list(specs)
        self._last: dict[int, dict[str, list[list[Any]]]] = {}
        self.exited = MetricSet(self._specs)

    def update(self, live: Mapping[int, dict[str, list[list[Any]]]]) -> None:
        for pid in list(self._last):
            if pid not in live:
                self.exited.absorb(self._last.pop(pid), gauges=False)
        self._last.update(live)

    def add_to(self, total: MetricSet) -> None:
        """Add every process's last snapshot and the exited ones' counts to `total`."""
        for snap in self._last.values():
            total.absorb(snap)
        total.absorb(self.exited.snapshot(gauges=False), gauges=False)


def _metric(name: str, help_text: str, kind: str) -> Metric:
    from prometheus_client import Metric  # deferred: only a scrape needs prometheus-client (~50 ms to import)

    return Metric(name, help_text, kind)


def new_metric(name: str, help_text: str, kind: str, rows: Iterable[tuple[Mapping[str, str], float]] = ()) -> Metric:
    """A family computed when scraped, with its samples (`name` and labels, value)."""
    m = _metric(name, help_text, kind)
    for labels, value in rows:
        m.add_sample(name, dict(labels), value)
    return m


def gauge_metric(name: str, help_text: str, labels: tuple[str, ...], rows: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    """A gauge family computed when scraped (from the store, the configuration, ...)."""
    m = _metric(name, help_text, GAUGE)
    order = sorted(range(len(labels)), key=labels.__getitem__)
    for values, value in sorted(rows, key=lambda row: [row[0][i] for i in order]):
        m.add_sample(name, dict(zip(labels, values)), value)
    return m


# -- the text format ------------------------------------------------------------------------------------


def go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64): the shortest digits that read back, in %e form
    when the decimal exponent is below -4 or at least 6 (Go's rule for the shortest form)."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    sign, digits, exponent = decimal.Decimal(repr(v)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp10 = exponent + len(digits) - 1  # the exponent of the first digit
    minus = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{minus}{mant}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    if exp10 < 0:
        return f"{minus}0.{'0' * (-exp10 - 1)}{ds}"
    if len(ds) <= exp10 + 1:
        return f"{minus}{ds}{'0' * (exp10 + 1 - len(ds))}"
    return f"{minus}{ds[:exp10 + 1]}.{ds[exp10 + 1:]}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_LAST = {"le": 1, "quantile": 1}


def _sample_line(name: str, labels: Mapping[str, str], value: float) -> str:
    if not labels:
        return f"{name} {go_float(value)}\n"
    pairs = ",".join(f'{k}="{_escape_value(str(v))}"' for k, v in sorted(labels.items(), key=lambda kv: (_LAST.get(kv[0], 0), kv[0])))
    return f"{name}{{{pairs}}} {go_float(value)}\n"


def render_text(metrics: Iterable[Metric]) -> bytes:
    """The families in the Prometheus text format, as Go's promhttp writes them.

    prometheus-client's own families (its counters are named without `_total` and carry
    `_created` samples) are written the way its writer would: the family named as its first
    sample, `_created` left out (Go has no such samples)."""
    out: list[str] = []
    for m in metrics:
        samples = [s for s in m.samples if not s.name.endswith("_created")]
        name = m.name
        mtype = {"unknown": "untyped", "info": "gauge", "stateset": "gauge"}.get(m.type, m.type)
        if m.type == COUNTER and samples and all(s.name != name for s in samples):
            name = samples[0].name  # prometheus-client's `x` family of `x_total` samples
        elif m.type == "info":
            name += "_info"
        out.append(f"# HELP {name} {_escape_help(m.documentation)}\n")
        out.append(f"# TYPE {name} {mtype}\n")
        for s in samples:
            out.append(_sample_line(s.name, s.labels, s.value))
    return "".join(out).encode()
