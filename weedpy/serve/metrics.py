"""The metrics port (`-metricsPort`, `-metricsIp`): which families exist, how requests count, and
the endpoint that serves them (docs/metrics.md).

- `VOLUME_FAMILIES`: the `SeaweedFS_volumeServer_*` families a Go 4.48 volume server counts as
  it serves (names, help, labels, buckets as Go registers them); native mode keeps them
  (native/metrics.py adds the ones computed from the store when scraped).
- `WEEDPY_FAMILIES`: the gateway's own `weedpy_*` families (proxy and mixed modes).
- `GoRequestMeter`, `RouteMeter`: what the HTTP and gRPC fronts call per request. Each caches a
  slot per endpoint and method (or target) holding its children, so counting a request is one
  dict lookup to start it, one to end it, and a few additions.
- `MetricsEndpoint`: the HTTP handler of the metrics port: `/metrics` (gzip when asked, as Go's
  promhttp), Go's `404 page not found` for anything else.
- `gather_workers`: the other processes' snapshots (`-workers=N`), asked for over each worker's
  control channel when the port is scraped, so a scrape counts every request acknowledged before it.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from weedpy.http1 import Exchange, simple_response
from weedpy.metrics import (
    CONTENT_TYPE,
    COUNTER,
    GAUGE,
    HISTOGRAM,
    ExitedProcesses,
    FamilySpec,
    MetricSet,
    exponential_buckets,
)
from weedpy.serve.workers import WorkerPool

__all__ = [
    "VOLUME_FAMILIES", "WEEDPY_FAMILIES", "GO_COUNTED_ENDPOINTS", "GoRequestMeter", "RouteMeter", "MetricsEndpoint",
    "ServerMetrics", "gather_workers", "fetch_metrics_text", "go_request_type", "runtime_registry",
]

_NS = "SeaweedFS_volumeServer_"
_LATENCY = exponential_buckets(0.0001, 2, 24)


def _vs(name: str, help_text: str, kind: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = ()) -> FamilySpec:
    return FamilySpec(_NS + name, help_text, kind, labels, buckets)


# The families a Go 4.48 volume server updates as it works (weed/stats/metrics.go and its callers).
# The gauges Go sets from the store, the disks and the configuration are computed when scraped
# (native/metrics.py `STORE_FAMILIES`).
VOLUME_FAMILIES: tuple[FamilySpec, ...] = (
    _vs("request_total", "Counter of volume server requests.", COUNTER, ("type", "code")),
    _vs("handler_total", "Counter of volume server handlers.", COUNTER, ("type",)),
    _vs("request_seconds", "Bucketed histogram of volume server request processing time.", HISTOGRAM, ("type",), _LATENCY),
    _vs("in_flight_requests", "Current number of in-flight requests being handled by volume server.", GAUGE, ("type",)),
    _vs("vacuuming_compact_count", "Counter of volume vacuuming Compact counter", COUNTER, ("success",)),
    _vs("vacuuming_commit_count", "Counter of volume vacuuming commit counter", COUNTER, ("success",)),
    _vs("vacuuming_seconds", "Bucketed histogram of volume server vacuuming processing time.", HISTOGRAM, ("type",),
        _LATENCY),
    _vs("master_disconnections", "Number of master server disconnections.", COUNTER, ("address",)),
    _vs("file_read_failures", "Counter of overall failed file read requests from clients.", COUNTER),
    _vs("file_read_invalid_needles", "Counter of failed file read requests due to invalid needle IDs from clients.",
        COUNTER),
    _vs("file_write_failures", "Counter of overall failed file write requests from clients.", COUNTER),
    _vs("scrub_last_time_seconds", "Last scrub execution time, as seconds since UNIX epoch.", GAUGE, ("mode",)),
    _vs("scrub_volume_failures", "Counter of overall volumes with issues detected during scrubbing.", COUNTER, ("mode",)),
    _vs("scrub_shard_failures", "Counter of overall EC shards with issues detected during scrubbing.", COUNTER, ("mode",)),
    _vs("replication_operations_total",
        "Counter of replication operations by type (write, delete) and result (success, failure).", COUNTER,
        ("operation", "result")),
    _vs("replication_seconds", "Bucketed histogram of replication operation duration in seconds.", HISTOGRAM,
        ("operation",), _LATENCY),
    _vs("replication_targets", "Histogram of replica targets count per replication operation.", HISTOGRAM, (),
        (1, 2, 3, 4, 5)),
    _vs("replication_failures_total",
        "Counter of replication failures by operation and reason (timeout, connection_refused, context_cancelled, "
        "server_error).", COUNTER, ("operation", "reason")),
    _vs("ec_rebuild_seconds", "Bucketed histogram of EC shard rebuild/reconstruct duration by result.", HISTOGRAM,
        ("result",), exponential_buckets(0.01, 2, 20)),
    _vs("ec_rebuild_total", "Counter of EC shard rebuild operations by result.", COUNTER, ("result",)),
    _vs("storage_io_error_total", "Counter of storage read/write EIO errors on volumes and EC shards.", COUNTER),
)

WEEDPY_FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec("weedpy_http_requests_total", "HTTP requests the gateway answered, by route, target and status code.",
               COUNTER, ("route", "target", "code")),
    FamilySpec("weedpy_http_request_seconds", "HTTP request latency at the gateway, by route and target.", HISTOGRAM,
               ("route", "target"), _LATENCY),
    FamilySpec("weedpy_grpc_requests_total", "gRPC calls the gateway answered, by route, target and status.",
               COUNTER, ("route", "target", "code")),
    FamilySpec("weedpy_grpc_request_seconds", "gRPC call latency at the gateway, by route and target.", HISTOGRAM,
               ("route", "target"), _LATENCY),
    FamilySpec("weedpy_relay_errors_total",
               "Requests the gateway could not relay to the Go backend, by protocol and reason.", COUNTER,
               ("protocol", "reason")),
)

# Go counts the requests of its store handlers (admin "/" and public "/"), not /status, /healthz,
# the UI or static files; admin requests also count as in flight (privateStoreHandler).
GO_COUNTED_ENDPOINTS = frozenset({
    "admin.read", "admin.write", "admin.delete", "admin.options", "admin.unsupported",
    "public.read", "public.options", "public.other",
})
_IN_FLIGHT_ENDPOINTS = frozenset(e for e in GO_COUNTED_ENDPOINTS if e.startswith("admin."))
_SLOT_LIMIT = 4096  # slots cached per meter (methods are the client's: bound what a client can grow)


def go_request_type(endpoint: str, method: bytes) -> str:
    """The `type` label Go gives a request: its method, "INVALID" for one the admin port refuses."""
    return "INVALID" if endpoint == "admin.unsupported" else method.decode("latin-1")


class _Slot:
    """One (endpoint, method) or (route, target): its latency child, in-flight child, counters by status."""

    __slots__ = ("family", "labels", "latency", "in_flight", "by_status")

    def __init__(self, family, labels: tuple[str, ...], latency, in_flight) -> None:
        self.family = family
        self.labels = labels
        self.latency = latency
        self.in_flight = in_flight
        self.by_status: dict[Any, Any] = {}

    def counter(self, status: Any) -> Any:
        c = self.by_status.get(status)
        if c is None:
            c = self.by_status[status] = self.family.labels(*self.labels, str(status))
        return c


class GoRequestMeter:
    """Native mode: Go's request_total{type,code}, request_seconds{type}, in_flight_requests{type}."""

    def __init__(self, metrics: MetricSet) -> None:
        self._total = metrics[_NS + "request_total"]
        self._seconds = metrics[_NS + "request_seconds"]
        self._in_flight = metrics[_NS + "in_flight_requests"]
        self._slots: dict[tuple[str, bytes], _Slot | None] = {}

    def begin(self, endpoint: str, method: bytes, target: str) -> _Slot | None:
        slot = self._slots.get((endpoint, method), False)
        if slot is False:
            slot = self._new_slot(endpoint, method)
        if slot is not None and slot.in_flight is not None:
            slot.in_flight.value += 1
        return slot

    def _new_slot(self, endpoint: str, method: bytes) -> _Slot | None:
        slot = None
        if endpoint in GO_COUNTED_ENDPOINTS:
            kind = go_request_type(endpoint, method)
            in_flight = None
            if endpoint in _IN_FLIGHT_ENDPOINTS:
                in_flight = self._in_flight.labels(method.decode("latin-1"))
            slot = _Slot(self._total, (kind,), self._seconds.labels(kind), in_flight)
        if len(self._slots) < _SLOT_LIMIT:
            self._slots[(endpoint, method)] = slot
        return slot

    @staticmethod
    def end(slot: _Slot, status: int, seconds: float) -> None:
        if slot.in_flight is not None:
            slot.in_flight.value -= 1
        status = status or 200  # no answer written (a dropped connection): Go's recorder says 200
        c = slot.by_status.get(status)
        if c is None:
            c = slot.counter(status)
        c.value += 1
        latency = slot.latency  # its `observe`, inline: once per request, one call less
        latency.counts[bisect_left(latency.bounds, seconds)] += 1
        latency.sum += seconds


class RouteMeter:
    """Proxy and mixed modes: requests and latency by route (endpoint) and target, for one protocol."""

    def __init__(self, metrics: MetricSet, protocol: str) -> None:
        self._total = metrics[f"weedpy_{protocol}_requests_total"]
        self._seconds = metrics[f"weedpy_{protocol}_request_seconds"]
        self._slots: dict[tuple[str, str], _Slot] = {}

    def begin(self, endpoint: str, method: bytes, target: str) -> _Slot | None:
        slot = self._slots.get((endpoint, target))
        if slot is None:
            slot = _Slot(self._total, (endpoint, target), self._seconds.labels(endpoint, target), None)
            if len(self._slots) < _SLOT_LIMIT:
                self._slots[(endpoint, target)] = slot
        return slot

    @staticmethod
    def end(slot: _Slot, status: Any, seconds: float) -> None:
        c = slot.by_status.get(status)
        if c is None:
            c = slot.counter(status)
        c.value += 1
        latency = slot.latency  # its `observe`, inline: once per request, one call less
        latency.counts[bisect_left(latency.bounds, seconds)] += 1
        latency.sum += seconds


def runtime_registry(*, process: bool = True):
    """prometheus-client's collectors of this Python process: python_info and python_gc_*, and
    process_* (CPU, memory, descriptors, start time) unless `process` is off (the gateway leaves
    them to the Go backend, whose process_* families it serves)."""
    from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector  # deferred: ~50 ms

    registry = CollectorRegistry(auto_describe=False)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    if process:
        ProcessCollector(registry=registry)
    return registry


async def gather_workers(pool: WorkerPool | None) -> dict[int, dict[str, Any]]:
    """Each live worker's snapshot, by pid (none without workers)."""
    if pool is None:
        return {}
    replies = await pool.ask({"op": "metrics"})
    return {r["pid"]: r["metrics"] for r in replies if isinstance(r.get("metrics"), dict) and "pid" in r}


class ServerMetrics:
    """A process's counted families, and in the leader the sum over the server's processes."""

    def __init__(self, specs: Iterable[FamilySpec]) -> None:
        self.local = MetricSet(specs)
        self._others = ExitedProcesses(self.local.specs)
        self.pool: WorkerPool | None = None  # the leader's workers, once they start

    def worker_reply(self) -> dict[str, Any]:
        """What a worker answers to the leader's `metrics` request."""
        return {"pid": os.getpid(), "metrics": self.local.snapshot()}

    async def total(self) -> MetricSet:
        """This process's values plus every other process's (the leader's view of the server)."""
        self._others.update(await gather_workers(self.pool))
        total = self.local.copy()
        self._others.add_to(total)
        return total


class MetricsEndpoint:
    """The metrics port's handler: `gather()` returns the text for /metrics."""

    def __init__(self, gather: Callable[[], Awaitable[bytes]]) -> None:
        self._gather = gather

    async def handle(self, exch: Exchange) -> None:
        req = exch.request
        path = req.target.split(b"?", 1)[0]
        date = (b"Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()).encode())
        if path != b"/metrics":
            body = b"404 page not found\n"
            await exch.send(simple_response(404, body, [
                (b"Content-Type", b"text/plain; charset=utf-8"), (b"X-Content-Type-Options", b"nosniff"), date]))
            exch.started, exch.status = True, 404
            return
        text = await self._gather()
        headers = [(b"Content-Type", CONTENT_TYPE.encode()), date]
        accept = req.header(b"accept-encoding") or b""
        if b"gzip" in accept.lower():
            import gzip  # loads with the first gzip scrape, not with every server (start-up time)

            text = gzip.compress(text, compresslevel=1)
            headers.insert(0, (b"Content-Encoding", b"gzip"))
        resp = simple_response(200, text, headers)
        await exch.send(resp[: len(resp) - len(text)] if req.method == b"HEAD" else resp)
        exch.started, exch.status = True, 200


async def fetch_metrics_text(addr: tuple[str, int], timeout: float = 5.0) -> bytes | None:
    """GET /metrics from a loopback exporter (the Go backend's private metrics port); None when it
    does not answer 200 in time."""
    with trio.move_on_after(timeout):
        try:
            stream = await trio.open_tcp_stream(*addr)
        except OSError:
            return None
        async with stream:
            try:
                await stream.send_all(b"GET /metrics HTTP/1.0\r\nHost: %s:%d\r\nAccept-Encoding: identity\r\n\r\n"
                                      % (addr[0].encode(), addr[1]))
                data = bytearray()
                while chunk := await stream.receive_some(1 << 16):
                    data += chunk
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return None
        head, sep, body = bytes(data).partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"HTTP/") or head.split(b" ", 2)[1:2] != [b"200"]:
            return None
        return body
    return None
