"""The live differ's families for the metrics port (mixed mode with dual-run routes): samples
compared and matched, differences by class, requests not compared and writes that diverged,
per endpoint (`route`), read from the engine when scraped (docs/metrics.md).

Whether a difference is real or noise is decided from the rates seen so far (difftool/_noise.py),
so a sample counted as real can later count as noise: those are gauges, the rest counters.
"""

from __future__ import annotations

from difftool._engine import DiffEngine
from weedpy.metrics import COUNTER, GAUGE, new_metric

__all__ = ["differ_families"]


def differ_families(engine: DiffEngine) -> list:
    agg = engine.aggregator
    samples = new_metric("weedpy_differ_samples_total", "Requests the differ compared on both sides, by route.", COUNTER)
    matched = new_metric("weedpy_differ_matched_total", "Compared requests whose answers matched, by route.", COUNTER)
    differences = new_metric(
        "weedpy_differ_differences",
        "Compared requests that differed, by route and class: real (a difference the noise control does not "
        "explain), noise (explained by it), ignored (only in fields the route ignores).", GAUGE)
    dropped = new_metric("weedpy_differ_dropped_total", "Requests the differ did not compare, by route and reason.", COUNTER)
    for route in agg.endpoints():
        counts = agg.counts(route)
        samples.add_sample(samples.name, {"route": route}, counts["compared"])
        matched.add_sample(matched.name, {"route": route}, counts["matched"])
        for cls, key in (("real", "mismatched"), ("noise", "noise"), ("ignored", "ignored")):
            differences.add_sample(differences.name, {"route": route, "class": cls}, counts[key])
        for reason, n in sorted(agg.dropped(route).items()):
            dropped.add_sample(dropped.name, {"route": route, "reason": reason}, n)
    diverged = new_metric("weedpy_differ_diverged_writes_total",
                          "Mirrored writes that could not be applied to the other side (the stores may differ).",
                          COUNTER, [({}, engine.diverged)])
    return [m for m in (samples, matched, differences, dropped) if m.samples] + [diverged]
