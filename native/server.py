"""`weedpy volume -mode=native`: a volume server process with no Go in it (a weedpy.serve `Server`).

Start-up (after weedpy.serve bound the admin, public and gRPC ports, so a busy port fails at
once): discover the store's volumes, then serve while they load in worker threads
(native/loading.py) and the master client registers with the master (/healthz says 503 until
every volume is loaded and the master answered). Every HTTP request and gRPC call goes through
the shared fronts with an all-native route table, so each one logs one event with `route`,
`target=native` and the table version.

Stop (SIGINT/SIGTERM): /healthz answers 503, the heartbeat stops (the master drops this server's
volumes), then after -preStopSeconds the listeners close and the store is flushed; exit 0.

With `-workers=N` (N > 1) this process is the leader: it creates the shared block (the volume
table, the server's flags, the in-flight byte counts), publishes every volume it mounts, serves
gRPC and talks to the master alone, and after every state-changing rpc, and as volumes finish
loading, has each worker (native/worker.py) apply the change before going on
(`Services.state_changed`).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import trio

from native.build import GRPC_OPTIONS, NativeParts, build_parts, open_store
from native.loading import load_volumes
from native.metrics import NativeExporter
from native.storage import VolumeTable
from weedpy.config import VolumeConfig
from weedpy.logs import get_logger
from weedpy.security import SecurityConfig
from weedpy.serve.grpc_front import GrpcFront, NamedTarget
from weedpy.serve.guard import Guard
from weedpy.serve.http_front import FrontState, HttpFront
from weedpy.serve.lifecycle import Fronts, StartupError, WorkerSpec
from weedpy.serve.live_routes import LiveRoutes, RoutesApi
from weedpy.serve.metrics import MetricsEndpoint
from weedpy.serve.metrics_push import push_instance, push_loop
from weedpy.serve.routes import RouteTable, Target
from weedpy.serve.workers import WorkerPool
from weedpy.sharedmem import ProcessShare, SharedBlock

__all__ = ["NativeServer", "check_disks"]

log = get_logger("native.server")

DISK_CHECK_SECONDS = 60.0


class NativeServer:
    """The native volume server on its own ports."""

    def __init__(self, cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, uvloop: bool = False) -> None:
        self.cfg = cfg
        self.uvloop = uvloop  # runs as uvloop's guest: reads and uploads served from its callbacks
        self.security = security
        self.routes = routes
        self.live = LiveRoutes(routes, mode="native", path=cfg.routes_file)  # SIGHUP and the admin API change it
        self.parts: NativeParts | None = None
        self._store = None
        self._front_state = FrontState()
        self._share = ProcessShare(SharedBlock.create(), 0, cfg.workers) if cfg.workers > 1 else None
        self._workers: WorkerPool | None = None
        self._sync_wanted = trio.Event()
        self._backends: list[str] = []  # the master's storage backends, for the workers (base64)
        self._metrics_exporter: NativeExporter | None = None

    async def start(self, nursery: trio.Nursery) -> Fronts:
        try:
            self._store = await trio.to_thread.run_sync(functools.partial(open_store, self.cfg, load=False))
        except Exception as exc:  # noqa: BLE001 - any store failure ends start-up with its message
            raise StartupError(f"cannot open the store: {exc}") from exc
        cfg = self.cfg
        share = self._share
        if share is not None:  # every volume mounted from now on (the loads below too) gets a slot
            self._store.share(VolumeTable(share.block, share.index), leader=True)
        parts = self.parts = build_parts(cfg, self.security, self._store, weed_binary=cfg.weed_binary, share=share,
                                         state_changed=self._sync_workers, configured=self._configured)
        guard = Guard.from_entries(tuple(cfg.whitelist) + tuple(self.security.guard_white_list))
        metrics = parts.ctx.metrics
        http = HttpFront(
            self.live, {Target.NATIVE: parts.http.handle}, guard, parts.ctx.server_header.encode(), self._front_state,
            meter=metrics.meter,
        )
        grpc = GrpcFront(self.live, {Target.NATIVE: NamedTarget("native", parts.router)})
        metrics_endpoint = MetricsEndpoint(self._exporter().gather).handle if cfg["metricsPort"] else None
        nursery.start_soon(check_disks, self._store)
        nursery.start_soon(load_volumes, self._store, self._volume_loaded, parts.ctx.state,
                           self._sync_workers if share is not None else None)
        workers = None
        if share is not None:
            workers = WorkerSpec(cfg.workers, self._worker_init, self._attach_workers, (share.block.fd,))
            nursery.start_soon(self._sync_when_wanted)
        http_serve = None
        if self.uvloop:
            from native.http.uv_serve import NativeUvHttp  # uvloop loads only for a server on it

            http_serve = NativeUvHttp(parts.http, http)
        return Fronts(http=http.handle, grpc=grpc, grpc_options=GRPC_OPTIONS, workers=workers,
                      routes=RoutesApi(self.live, guard), metrics=metrics_endpoint, http_serve=http_serve)

    def _exporter(self) -> NativeExporter:
        """What the metrics port serves and a push gateway gets (made on first use: it loads
        prometheus-client, which a server that does neither never imports)."""
        if self._metrics_exporter is None:
            parts = self.parts
            assert parts is not None
            sizelimit, version, commit = (parts.ctx.full_version.split() + ["", "", ""])[:3]
            self._metrics_exporter = NativeExporter(
                parts.ctx.metrics, self._store, self.cfg, lambda: (parts.http.upload, parts.http.download),
                (version, commit, sizelimit))
        return self._metrics_exporter

    async def _push_metrics(self) -> None:
        """Go's LoopPushingMetric: when the master's configuration names a push gateway, push
        there what the metrics port serves, as job volumeServer, instance -ip:-port."""
        assert self.parts is not None
        master = self.parts.master
        await master.configured.wait()
        if master.metrics_address and master.metrics_interval:
            await push_loop(self._exporter().gather, master.metrics_address, master.metrics_interval,
                            push_instance(self.cfg.ip, self.cfg.port))

    # worker processes --------------------------------------------------------------------------

    def _worker_init(self, number: int) -> dict[str, Any]:
        assert self._share is not None
        return {"mode": "native", "argv": list(self.cfg.argv), "config_dir": self.cfg.config_dir,
                "shared_fd": self._share.block.fd, "count": self._share.count, "backends": self._backends}

    def _attach_workers(self, pool: WorkerPool) -> None:
        self._workers = pool
        if self.parts is not None:  # the metrics port sums every process's counts
            self.parts.ctx.metrics.server.pool = pool

    async def _sync_workers(self) -> None:
        """Every worker has applied the leader's current state (the volume table, EC shards)."""
        if self._workers is not None:
            await self._workers.broadcast({"op": "sync"})

    async def _configured(self, backends: list[bytes]) -> None:
        """The master's storage backends reach the workers before this server registers."""
        self._backends = [base64.b64encode(b).decode() for b in backends]
        if self._workers is not None:
            await self._workers.broadcast({"op": "sync", "backends": self._backends})

    def _volume_loaded(self) -> None:
        assert self.parts is not None
        self.parts.master.notify_changed()
        self._sync_wanted.set()  # the workers serve it too, soon (coalesced with the next loads)

    async def _sync_when_wanted(self) -> None:
        while True:
            await self._sync_wanted.wait()
            self._sync_wanted = trio.Event()
            await self._sync_workers()

    async def serving(self, nursery: trio.Nursery) -> None:
        assert self.parts is not None
        await nursery.start(self.parts.master.run)
        nursery.start_soon(self._push_metrics)
        cfg = self.cfg
        log.info(
            "native volume server ready", port=cfg.port, grpc_port=cfg.grpc_port, public_port=cfg.public_port,
            masters=list(cfg.masters), volumes=len(self._store.volumes()), version=self.parts.ctx.full_version,
            routes_v=self.live.version,
        )

    async def stop(self, stop_listening) -> None:
        assert self.parts is not None
        log.info("stopping", pre_stop_seconds=self.cfg.pre_stop_seconds)
        self.parts.ctx.state.stopping = True
        self._front_state.stopping = True
        already = await self.parts.master.stop_heartbeat()
        if not already:
            await trio.sleep(self.cfg.pre_stop_seconds)
        await stop_listening()

    async def close(self) -> None:
        if self.parts is not None:
            await self.parts.close()
        elif self._store is not None:
            await trio.to_thread.run_sync(self._store.close)
        if self._share is not None:
            self._share.block.close()


async def check_disks(store) -> None:
    """Go re-checks free space every minute: low space makes the volumes read-only."""
    while True:
        await trio.sleep(DISK_CHECK_SECONDS)
        try:
            await trio.to_thread.run_sync(store.check_disk_space)
        except OSError as exc:
            log.warning("disk space check failed", error=str(exc))
