"""Native mode's metrics: Go 4.48's `SeaweedFS_volumeServer_*` families (docs/metrics.md).

`NativeMetrics` is one process's counted families (weedpy.serve.metrics VOLUME_FAMILIES): the
HTTP front counts requests through its `meter`, handlers count failures and the handler kinds Go
counts (`handler`), the gRPC handlers count vacuum, scrub, EC rebuilds and replication. Every
process of a server keeps its own; the leader's `NativeExporter` sums them when scraped
(weedpy.serve.metrics ServerMetrics) and adds what Go sets from the store, the disks and the
configuration (`STORE_FAMILIES`), computed at the scrape from the leader's store: volumes and EC
shards per collection, read-only volumes by reason, disk sizes, disk resources and errors, the
volume limit, the in-flight byte limits and counts of every process, the start time and build info.
"""

from __future__ import annotations

import errno
import os
import platform
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from weedpy.metrics import gauge_metric, render_text
from weedpy.serve.metrics import VOLUME_FAMILIES, GoRequestMeter, ServerMetrics, runtime_registry

if TYPE_CHECKING:
    from prometheus_client import Metric

__all__ = ["NativeMetrics", "NativeExporter", "STORE_FAMILIES", "go_arch"]

NS = "SeaweedFS_volumeServer_"

# name -> (help, labels): the gauges computed from the store when scraped.
STORE_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    NS + "start_time_seconds": ("Start time of the volume server, as seconds since UNIX epoch.", ()),
    NS + "volumes": ("Number of volumes or shards.", ("collection", "type")),
    NS + "read_only_volumes": ("Number of read only volumes.", ("collection", "type")),
    NS + "max_volumes": ("Maximum number of volumes.", ()),
    NS + "total_disk_size": ("Actual disk size used by volumes.", ("collection", "type")),
    NS + "resource": ("Resource usage", ("name", "type")),
    NS + "disk_error_status": ("Disk error status", ("name", "type")),
    NS + "concurrent_download_limit": ("Limit total concurrent download size.", ()),
    NS + "concurrent_upload_limit": ("Limit total concurrent upload size.", ()),
    NS + "in_flight_download_size": ("In flight total download size.", ()),
    NS + "in_flight_upload_size": ("In flight total upload size.", ()),
    NS + "io_quarantine": ("Number of volumes or EC shards quarantined due to storage IO errors.", ("kind",)),
    "SeaweedFS_build_info": (
        "A metric with a constant '1' value labeled by version, commit, sizelimit, goos, and goarch from which "
        "SeaweedFS was built.", ("version", "commit", "sizelimit", "goos", "goarch")),
}

# Go's read-only reasons, as labels of read_only_volumes (weed/stats IsReadOnly, ...).
_READ_ONLY_TYPES = ("IsReadOnly", "noWriteOrDelete", "noWriteCanDelete", "isDiskSpaceLow")


def go_arch() -> str:
    """runtime.GOARCH for this machine."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386",
            "i386": "386", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(machine, machine)


class NativeMetrics:
    """One native process's counted families, and the shortcuts its handlers count through."""

    def __init__(self) -> None:
        self.server = ServerMetrics(VOLUME_FAMILIES)
        m = self.server.local
        self.meter = GoRequestMeter(m)
        self.read_failures = m[NS + "file_read_failures"].labels()
        self.read_invalid_needles = m[NS + "file_read_invalid_needles"].labels()
        self.write_failures = m[NS + "file_write_failures"].labels()
        self.io_errors = m[NS + "storage_io_error_total"].labels()
        self.replication_targets = m[NS + "replication_targets"].labels()
        self._handler = m[NS + "handler_total"]
        self._in_flight = m[NS + "in_flight_requests"]
        self._seconds = m[NS + "request_seconds"]
        self._timers: dict[str, tuple[Any, Any]] = {}
        self.started_at = time.time()

    def family(self, name: str):
        """A counted family by its name without the `SeaweedFS_volumeServer_` prefix."""
        return self.server.local[NS + name]

    def handler(self, kind: str) -> None:
        """handler_total{type=kind} += 1 (errorGetNotFound, readProxyRequest, errorCRC, ...)."""
        self._handler.labels(kind).value += 1

    def not_found(self, *, invalid: bool = False) -> None:
        """Go's NotFound(w): a failed read; `invalid`: the needle id was unknown (invalid_needles)."""
        if invalid:
            self.read_invalid_needles.value += 1
        self.read_failures.value += 1
        self.handler("errorGetNotFound")

    def internal_error(self, exc: BaseException | None = None) -> None:
        """Go's InternalError(w): a read that failed in the store."""
        self.read_failures.value += 1
        self.handler("errorGetInternal")
        self.storage_error(exc)

    def storage_error(self, exc: BaseException | None) -> None:
        """storage_io_error_total: an EIO from the disk."""
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            self.io_errors.value += 1

    def timed(self, kind: str) -> _Timed:
        """Go's in_flight_requests{type} and request_seconds{type} around a step (writeToLocalDisk,
        writeToReplicas): `with metrics.timed("writeToLocalDisk"):`."""
        return _Timed(*self.timer(kind))

    def timer(self, kind: str) -> tuple[Any, Any]:
        """(in_flight_requests{type=kind}, request_seconds{type=kind}): what `timed` counts, for a
        hot path that counts inline (kept per kind: a step's children never change)."""
        pair = self._timers.get(kind)
        if pair is None:
            pair = self._timers[kind] = (self._in_flight.labels(kind), self._seconds.labels(kind))
        return pair


class _Timed:
    __slots__ = ("_gauge", "_hist", "_t0")

    def __init__(self, gauge, hist) -> None:
        self._gauge = gauge
        self._hist = hist
        self._t0 = 0.0

    def __enter__(self) -> _Timed:
        self._gauge.value += 1
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._gauge.value -= 1
        self._hist.observe(time.perf_counter() - self._t0)


class NativeExporter:
    """The leader's /metrics: every process's counted families plus the store's gauges, then this
    process's python_* and process_* families (prometheus-client's collectors; Go's registry has
    go_* and process_* of its own process in their place)."""

    def __init__(self, metrics: NativeMetrics, store, cfg, limits: Callable[[], tuple[Any, Any]],
                 build: tuple[str, str, str]) -> None:
        self.metrics = metrics
        self.store = store
        self.cfg = cfg
        self._limits = limits  # () -> (upload InflightLimit, download InflightLimit)
        self._build = build  # Go's version, commit and size limit ("4.48", "pypi", "8000GB")
        self._runtime = runtime_registry()

    async def gather(self) -> bytes:
        total = await self.metrics.server.total()
        store_metrics = await trio.to_thread.run_sync(self.store_metrics)
        families = sorted([*total.collect(), *store_metrics], key=lambda m: m.name)
        families.extend(self._runtime.collect())
        return render_text(families)

    def store_metrics(self) -> list[Metric]:
        """The families Go sets from the store, its disks and the configuration (blocking: statfs)."""
        store, cfg = self.store, self.cfg
        volumes: dict[tuple[str, str], float] = {}
        sizes: dict[tuple[str, str], float] = {}
        read_only: dict[tuple[str, str], float] = {}
        resource: list[tuple[tuple[str, str], float]] = []
        disk_error: list[tuple[tuple[str, str], float]] = []
        max_volumes = 0
        names = list(cfg.dirs)
        for i, loc in enumerate(store.locations):
            name = os.path.expanduser(names[i]) if i < len(names) else loc.directory
            max_volumes += loc.max_volume_count
            try:
                st = loc.status()
            except OSError:
                disk_error.append(((name, "error"), 1))
            else:
                disk_error.append(((name, "error"), 0))
                avail = loc.min_free_space.available(st.free, st.all)
                resource += [((name, "all"), st.all), ((name, "used"), st.used), ((name, "free"), st.free),
                             ((name, "avail"), avail)]
            for v in loc.volumes():
                try:
                    s = v.stats()
                except Exception:  # noqa: BLE001 - a volume closed under us: not held any more
                    continue
                col = s.collection
                volumes[(col, "volume")] = volumes.get((col, "volume"), 0) + 1
                sizes[(col, "normal")] = sizes.get((col, "normal"), 0) + s.dat_size
                sizes[(col, "deleted_bytes")] = sizes.get((col, "deleted_bytes"), 0) + s.deleted_bytes
                for t in _READ_ONLY_TYPES:
                    read_only.setdefault((col, t), 0)
                r = s.read_only_reasons
                if r.read_only:
                    read_only[(col, "IsReadOnly")] += 1
                    read_only[(col, "noWriteOrDelete")] += r.no_write_or_delete
                    read_only[(col, "noWriteCanDelete")] += r.no_write_can_delete
                    read_only[(col, "isDiskSpaceLow")] += r.disk_space_low
        ec = getattr(store, "ec", None)
        for report in (ec.reports() if ec is not None else ()):
            col, bits, shard_sizes = report[1], report[4], report[5]
            volumes[(col, "ec_shards")] = volumes.get((col, "ec_shards"), 0) + bin(bits).count("1")
            sizes[(col, "ec")] = sizes.get((col, "ec"), 0) + sum(shard_sizes)
        upload, download = self._limits()

        def one(key: str, value: float) -> Metric:
            return gauge_metric(NS + key, STORE_FAMILIES[NS + key][0], (), [((), value)])

        def many(key: str, rows) -> Metric:
            help_text, labels = STORE_FAMILIES[key]
            return gauge_metric(key, help_text, labels, list(rows))

        out = [
            one("start_time_seconds", int(self.metrics.started_at)),
            one("max_volumes", max_volumes),
            one("concurrent_download_limit", download.limit),
            one("concurrent_upload_limit", upload.limit),
            one("in_flight_download_size", download.inflight),
            one("in_flight_upload_size", upload.inflight),
            many(NS + "resource", resource),
            many(NS + "disk_error_status", disk_error),
            many(NS + "io_quarantine", [(("ec_shard",), 0), (("volume",), 0)]),  # weedpy quarantines nothing
            many("SeaweedFS_build_info", [((*self._build, platform.system().lower(), go_arch()), 1)]),
        ]
        for key, rows in ((NS + "volumes", volumes), (NS + "total_disk_size", sizes),
                          (NS + "read_only_volumes", read_only)):
            if rows:
                out.append(many(key, rows.items()))
        return [m for m in out if m.samples]
