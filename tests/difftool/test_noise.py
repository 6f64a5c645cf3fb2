"""Noise cancellation: fields that differ between two Go servers are learned as noise; a field is a
real difference only when its Go-vs-native rate clearly exceeds its Go-vs-Go rate."""

from __future__ import annotations

import pytest

from difftool import Aggregator, NoiseThresholds, Rules, classify_field, judge
from tests.difftool.records import http_outcome, sample


@pytest.mark.parametrize(("cand", "n", "noise", "nc", "is_noise"), [
    (10, 10, 10, 10, True),       # always differs on both: noise
    (5, 10, 9, 20, True),         # 50% vs 45%: within 20% relative
    (5, 10, 4, 10, True),         # 50% vs 40% of 10: too few samples to tell
    (600, 1000, 400, 1000, False),  # 60% vs 40% of 1000: clearly above
    (500, 1000, 450, 1000, True),
    (9, 10, 4, 10, False),        # 90% vs 40%: clearly above
    (3, 3, 2, 3, True),           # a clock that ticked in 2 of 3 control samples
    (1, 10, 0, 10, False),        # the control never saw it differ: real at any rate
    (1, 10_000, 0, 10_000, False),
    (3, 10, 1, 0, False),         # no control samples: real
    (31, 100_000, 10, 100_000, True),  # 0.031% vs 0.01%: relative yes, absolute (0.03 points) no
    (50, 100_000, 10, 100_000, False),
])
def test_thresholds(cand: int, n: int, noise: int, nc: int, is_noise: bool) -> None:
    assert classify_field(cand, n, noise, nc) is is_noise


def test_custom_thresholds() -> None:
    assert classify_field(560, 1000, 500, 1000) is True
    assert classify_field(560, 1000, 500, 1000, NoiseThresholds(relative=0.05, absolute=0.0)) is False


def test_wilson_upper_bound() -> None:
    from difftool._noise import wilson_upper

    assert wilson_upper(0, 0) == 1.0
    assert 0.4 < wilson_upper(400, 1000) < 0.44
    assert wilson_upper(2, 3) > 0.9 and wilson_upper(3, 3) == 1.0


def test_field_varying_between_two_go_servers_is_noise() -> None:
    agg = Aggregator()
    for i in range(20):
        go = http_outcome({"Version": "4.48", "Uptime": i})
        control = http_outcome({"Version": "4.48", "Uptime": i + 1})
        native = http_outcome({"Version": "4.48", "Uptime": i + 2})
        agg.add(s := sample(go, native, control), judge(s))
    counts = agg.counts("admin.status")
    assert counts == {"compared": 20, "matched": 0, "mismatched": 0, "noise": 20, "ignored": 0, "dropped": 0}
    report = agg.report()
    (ep,) = report["endpoints"]
    assert ep["verdict"] == "clean"
    assert [(f["field"], f["class"], f["rate"], f["noise_rate"]) for f in ep["fields"]] == [("body.Uptime", "noise", 1.0, 1.0)]


def test_real_difference_next_to_noise() -> None:
    agg = Aggregator()
    for i in range(10):
        go = http_outcome({"Version": "4.48", "Uptime": i})
        control = http_outcome({"Version": "4.48", "Uptime": i + 1})
        native = http_outcome({"Version": "4.49" if i == 3 else "4.48", "Uptime": i + 2})
        agg.add(s := sample(go, native, control), judge(s))
    assert agg.counts("admin.status")["mismatched"] == 1 and agg.counts("admin.status")["noise"] == 9
    fields = {f["field"]: f["class"] for f in agg.report()["endpoints"][0]["fields"]}
    assert fields == {"body.Uptime": "noise", "body.Version": "real"}
    (sid, s, j), = agg.real_mismatch_samples()
    assert j.candidate.keys == {"body.Uptime", "body.Version"}


def test_rates_reclassify_earlier_samples() -> None:
    """Whether a field is noise is decided from all samples so far, not at the time of each."""
    agg = Aggregator()
    agg.add(s := sample(http_outcome({"a": 1}), http_outcome({"a": 2})), judge(s))  # no control yet
    assert agg.counts("admin.status")["mismatched"] == 1
    for i in range(3):
        agg.add(s := sample(http_outcome({"a": i}), http_outcome({"a": i}), http_outcome({"a": i + 7})), judge(s))
    # a differed in 1 of 4 samples go-vs-native, in 3 of 3 go-vs-go: noise, including the first
    assert agg.counts("admin.status") == {"compared": 4, "matched": 3, "mismatched": 0, "noise": 1, "ignored": 0,
                                          "dropped": 0}


def test_ignored_and_dropped_counts() -> None:
    agg = Aggregator()
    rules = Rules.of(ignore_fields=["body.b"])
    agg.add(s := sample(http_outcome({"b": 1}), http_outcome({"b": 2})), judge(s, rules))
    agg.add(s := sample(http_outcome({"b": 1}), http_outcome({"b": 1})), judge(s, rules))
    agg.drop("admin.status", "queue_full", 3)
    c = agg.counts("admin.status")
    assert (c["ignored"], c["matched"], c["dropped"], c["mismatched"]) == (1, 1, 3, 0)
    ep = agg.report()["endpoints"][0]
    assert ep["dropped_by_reason"] == {"queue_full": 3}
    assert ep["fields"][0]["class"] == "ignored" and ep["verdict"] == "clean"


def test_latency_per_side() -> None:
    agg = Aggregator()
    for ms in (1.0, 2.0, 3.0, 100.0):
        agg.add(s := sample(http_outcome({}, ms=ms), http_outcome({}, ms=ms * 2)), judge(s))
    lat = agg.report()["endpoints"][0]["latency_ms"]
    assert lat["go"]["count"] == 4 and lat["go"]["max"] == 100.0 and lat["native"]["max"] == 200.0
    assert lat["go"]["p50"] <= 2.5 and lat["native"]["mean"] == pytest.approx(53.0)


def test_bounded_samples_and_fields() -> None:
    from difftool import Limits

    agg = Aggregator(limits=Limits(fields_per_endpoint=5, samples_per_signature=1, samples_per_endpoint=3))
    for i in range(50):
        agg.add(s := sample(http_outcome({f"k{i}": 1}), http_outcome({f"k{i}": 2})), judge(s))
    ep = agg.report()["endpoints"][0]
    assert len(ep["fields"]) == 6 and ep["fields"][0]["field"] == "<other fields>" and ep["fields"][0]["diffs"] == 45
    assert len(ep["samples"]) == 3 and ep["mismatched"] == 50
