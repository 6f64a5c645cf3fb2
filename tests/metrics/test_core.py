"""weedpy.metrics and the meters, without processes: Go's number format, the text format, sums
over processes, what a replaced process leaves behind, and what each request counts."""

from __future__ import annotations

import math

import pytest

from difftool._engine import DiffEngine
from gateway.backend_args import BackendPorts, backend_argv
from difftool._metrics import differ_families
from tests.metrics.support import parse_exposition
from weedpy.metrics import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    ExitedProcesses,
    FamilySpec,
    MetricSet,
    go_float,
    render_text,
)
from weedpy.serve.metrics import VOLUME_FAMILIES, WEEDPY_FAMILIES, GoRequestMeter, RouteMeter
from weedpy.config import parse_volume_args
from weedpy.serve.routes import default_route_table

# Values as Go's client_golang wrote them in a scrape of weed 4.48 (strconv.FormatFloat 'g', -1).
GO_WRITES = {
    0.0001: "0.0001", 1048576.0: "1.048576e+06", 838.8608: "838.8608", 270553174016.0: "2.70553174016e+11",
    1796533379.0: "1.796533379e+09", 7.6293e-05: "7.6293e-05", 0.0014925659999999999: "0.0014925659999999999",
    0.0: "0", 1.0: "1", 4.0: "4", 1500.0: "1500", 123456.0: "123456", 1e6: "1e+06", math.inf: "+Inf",
    -2.5: "-2.5", 1e21: "1e+21",
}


@pytest.mark.parametrize("value", list(GO_WRITES))
def test_go_float(value: float) -> None:
    assert go_float(value) == GO_WRITES[value]


SPECS = (
    FamilySpec("x_failures", "Failures.", COUNTER),
    FamilySpec("x_requests_total", "Requests.", COUNTER, ("type", "code")),
    FamilySpec("x_in_flight", "In flight.", GAUGE, ("type",)),
    FamilySpec("x_seconds", "Latency.", HISTOGRAM, ("type",), (0.1, 1.0)),
)


def test_text_format_keeps_go_names_and_orders_as_go() -> None:
    m = MetricSet(SPECS)
    m["x_requests_total"].labels("GET", "404").inc()
    m["x_requests_total"].labels("GET", "200").inc(2)
    m["x_requests_total"].labels("DELETE", "202").inc()
    h = m["x_seconds"].labels("GET")
    for v in (0.05, 0.1, 0.5, 3):
        h.observe(v)
    text = render_text(m.collect()).decode()
    # a counter without _total keeps its name (prometheus-client's writer would append it)
    assert "# TYPE x_failures counter\nx_failures 0\n" in text
    # a labelled family with no child is left out, as a Go *Vec
    assert "x_in_flight" not in text
    # children sorted by the values of the sorted label names (code before type), as Go sorts them
    lines = [line for line in text.splitlines() if line.startswith("x_requests_total{")]
    assert lines == ['x_requests_total{code="200",type="GET"} 2', 'x_requests_total{code="202",type="DELETE"} 1',
                     'x_requests_total{code="404",type="GET"} 1']
    # cumulative buckets, `le` last, `le` is inclusive
    e = parse_exposition(text)
    assert e.value("x_seconds_bucket", type="GET", le="0.1") == 2
    assert e.value("x_seconds_bucket", type="GET", le="1") == 3
    assert e.value("x_seconds_bucket", type="GET", le="+Inf") == 4
    assert e.value("x_seconds_count", type="GET") == 4
    assert e.value("x_seconds_sum", type="GET") == pytest.approx(3.65)
    assert 'x_seconds_bucket{type="GET",le="0.1"} 2' in text


def test_sums_over_processes_and_keeps_what_exited_processes_counted() -> None:
    leader, w1, w2 = MetricSet(SPECS), MetricSet(SPECS), MetricSet(SPECS)
    for ms, n in ((leader, 1), (w1, 2), (w2, 4)):
        ms["x_failures"].labels().inc(n)
        ms["x_in_flight"].labels("GET").inc(n)
        ms["x_seconds"].labels("GET").observe(0.5)
    others = ExitedProcesses(leader.specs)
    others.update({101: w1.snapshot(), 102: w2.snapshot()})
    total = leader.copy()
    others.add_to(total)
    assert total["x_failures"].labels().value == 7
    assert total["x_in_flight"].labels("GET").value == 7
    assert total["x_seconds"].labels("GET").counts == [0, 3, 0]
    # worker 102 is replaced by 103: its counters stay, its gauges go
    others.update({101: w1.snapshot(), 103: MetricSet(SPECS).snapshot()})
    total = leader.copy()
    others.add_to(total)
    assert total["x_failures"].labels().value == 7
    assert total["x_in_flight"].labels("GET").value == 3
    assert total["x_seconds"].labels("GET").counts == [0, 3, 0]
    assert leader["x_failures"].labels().value == 1  # the leader's own values are untouched


def test_go_request_meter_counts_what_go_counts() -> None:
    m = MetricSet(VOLUME_FAMILIES)
    meter = GoRequestMeter(m)
    ns = "SeaweedFS_volumeServer_"
    slot = meter.begin("admin.read", b"GET", "native")
    assert m[ns + "in_flight_requests"].labels("GET").value == 1
    meter.end(slot, 200, 0.001)
    meter.end(meter.begin("admin.unsupported", b"PATCH", "native"), 400, 0.001)  # Go's "INVALID"
    meter.end(meter.begin("public.read", b"GET", "native"), 404, 0.001)  # the public port: not in flight
    assert meter.begin("admin.status", b"GET", "native") is None  # /status is not a store request
    assert m[ns + "in_flight_requests"].labels("GET").value == 0
    assert m[ns + "request_total"].labels("GET", "200").value == 1
    assert m[ns + "request_total"].labels("GET", "404").value == 1
    assert m[ns + "request_total"].labels("INVALID", "400").value == 1
    assert set(m[ns + "in_flight_requests"].children) == {("GET",), ("PATCH",)}
    assert sum(m[ns + "request_seconds"].labels("GET").counts) == 2


def test_route_meter_by_route_and_target() -> None:
    m = MetricSet(WEEDPY_FAMILIES)
    meter = RouteMeter(m, "grpc")
    meter.end(meter.begin("/volume_server_pb.VolumeServer/Ping", b"", "go"), "OK", 0.002)
    meter.end(meter.begin("/volume_server_pb.VolumeServer/Ping", b"", "go"), "UNAVAILABLE", 0.002)
    total = m["weedpy_grpc_requests_total"]
    assert total.labels("/volume_server_pb.VolumeServer/Ping", "go", "OK").value == 1
    assert total.labels("/volume_server_pb.VolumeServer/Ping", "go", "UNAVAILABLE").value == 1


def test_differ_families() -> None:
    engine = DiffEngine(default_route_table())
    engine.aggregator.drop("admin.read", "queue_full", 3)
    e = parse_exposition(render_text(differ_families(engine)).decode())
    assert e.value("weedpy_differ_dropped_total", route="admin.read", reason="queue_full") == 3
    assert e.value("weedpy_differ_samples_total", route="admin.read") == 0
    assert e.value("weedpy_differ_diverged_writes_total") == 0
    assert e.types["weedpy_differ_differences"] == "gauge"


def test_the_backend_gets_a_private_metrics_port() -> None:
    cfg = parse_volume_args(["-dir=/tmp", "-metricsPort=9999", "-metricsIp=0.0.0.0", "-mserver=127.0.0.1:9333"])
    argv = backend_argv(cfg, "weed", BackendPorts(http=1, grpc=2, public=None, metrics=12345), "127.0.0.1:1", None)
    assert "-metricsPort=12345" in argv and "-metricsIp=127.0.0.1" in argv
    assert not any(a.startswith(("-metricsPort=9999", "-metricsIp=0.0.0.0")) for a in argv), argv
    argv = backend_argv(cfg, "weed", BackendPorts(http=1, grpc=2, public=None), "127.0.0.1:1", None)
    assert not any(a.startswith(("-metricsPort", "-metricsIp")) for a in argv), argv


# -- the push to the master's push gateway (tests/metrics/test_push.py runs it with processes) ------


def test_push_instance_is_go_join_host_port() -> None:
    from weedpy.serve.metrics_push import push_instance

    assert push_instance("127.0.0.1", 8080) == "127.0.0.1:8080"
    assert push_instance("::1", 8080) == "[::1]:8080" and push_instance("[::1]", 8080) == "[::1]:8080"


def test_relay_keeps_the_push_gateway_from_the_backend() -> None:
    from gateway.heartbeat_relay import take_metrics_push
    from proto import master_pb2

    raw = master_pb2.GetMasterConfigurationResponse(
        metrics_address="10.0.0.9:9091", metrics_interval_seconds=7, leader="10.0.0.1:9333").SerializeToString()
    out, address, interval = take_metrics_push(raw)
    seen = master_pb2.GetMasterConfigurationResponse.FromString(out)
    assert (address, interval) == ("10.0.0.9:9091", 7)
    assert (seen.metrics_address, seen.metrics_interval_seconds, seen.leader) == ("", 0, "10.0.0.1:9333")
    plain = master_pb2.GetMasterConfigurationResponse(leader="10.0.0.1:9333").SerializeToString()
    assert take_metrics_push(plain) == (plain, "", 0)


async def test_push_loop_pushes_at_once_then_every_interval_and_survives_a_failure(autojump_clock) -> None:
    import trio

    from weedpy.serve.metrics_push import push_loop

    pushed: list[tuple[float, str, str, bytes]] = []

    async def push(gateway: str, instance: str, text: bytes) -> None:
        pushed.append((trio.current_time(), gateway, instance, text))
        if len(pushed) == 2:
            raise OSError("push gateway down")

    async def gather() -> bytes:
        return b"# TYPE x counter\nx %d\n" % len(pushed)

    with trio.move_on_after(10.5):
        await push_loop(gather, "127.0.0.1:9091", 3, "127.0.0.1:8080", push=push)
    assert [round(t - pushed[0][0]) for t, *_ in pushed] == [0, 3, 6, 9]  # a failed push did not stop the loop
    assert {(g, i) for _, g, i, _ in pushed} == {("127.0.0.1:9091", "127.0.0.1:8080")}
    assert pushed[3][3] == b"# TYPE x counter\nx 3\n"
    with trio.move_on_after(60):
        await push_loop(gather, "127.0.0.1:9091", 0, "127.0.0.1:8080", push=push)  # Go: interval 0, no push
        await push_loop(gather, "", 5, "127.0.0.1:8080", push=push)  # no gateway named
    assert len(pushed) == 4
