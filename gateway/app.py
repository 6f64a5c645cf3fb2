"""Proxy mode: the front ports relay to a supervised Go backend (`ProxyServer`, run by weedpy.serve).

Start (after weedpy.serve bound the front ports): the heartbeat relay (the backend's -master),
then the backend, waiting until it is ready; only then do the ports listen, so nothing reaches
the front before it can be served. Stop (SIGINT/SIGTERM): stop accepting, report unhealthy, wait
-preStopSeconds while open connections finish, stop the backend, exit 0.

Mixed mode is this server plus a `ProxyExtension` (weedpy/mixed.py) that adds native targets
and the dual-run differ; the gateway knows it only through that interface (with worker
processes, the extension serves them its targets: `share`, `attach`).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import trio

from gateway.backend import BackendEndpoints, BackendView, FrontIdentity
from gateway.backend_args import backend_argv, backend_config_dir, managed_backend_environ
from gateway.grpc_proxy import PROXY_SERVER_OPTIONS, BackendPools, GoRelay
from gateway.heartbeat_relay import HeartbeatRelay
from gateway.http_proxy import GoHttpTarget
from gateway.relay_fault import relay_fault
from gateway.request_checks import backend_maintenance, request_checks
from gateway.supervisor import BackendStartError, Supervisor
from gateway.tail_receiver import tail_into_backend
from gateway.worker import endpoints_to_json, pool_ttl, relay_pool
from weedpy.config import VolumeConfig
from weedpy.http1 import UpstreamPool
from weedpy.logs import get_logger
from weedpy.security import SecurityConfig
from weedpy.serve.grpc_front import CallTarget, GrpcFront
from weedpy.serve.guard import Guard
from weedpy.serve.http_front import FrontState, HttpFront, HttpTarget
from weedpy.serve.http_loop import uvloop_http
from weedpy.serve.lifecycle import Fronts, StartupError, WorkerSpec
from weedpy.serve.evidence import Evidence
from weedpy.serve.live_routes import LiveRoutes, RoutesApi
from weedpy.serve.metrics import (
    WEEDPY_FAMILIES,
    MetricsEndpoint,
    RouteMeter,
    ServerMetrics,
    fetch_metrics_text,
    runtime_registry,
)
from weedpy.serve.peers import PeerPolicy, master_volume_servers
from weedpy.serve.routes import GRPC_SERVICE, RouteTable, Target
from weedpy.tls import load_volume_tls
from weedpy.serve.volume_owners import OwnedSide
from weedpy.serve.workers import WorkerPool
from weedpy.metrics import COUNTER, GAUGE, new_metric, render_text
from weedpy.serve.metrics_push import push_instance, push_loop
from weedpy.weedbin import weed_version

__all__ = ["ProxyServer", "ProxyExtension", "RELAY_SOCKET_BUFFER"]

log = get_logger("gateway.app")

# Socket buffers on both hops of the relay. Kernel autotuning would let each hop hold megabytes,
# so a client that stops reading would not stall Go as it does when connected directly (Go counts
# a download as in flight until its last write returns, which the throttling limits rely on).
RELAY_SOCKET_BUFFER = 128 << 10


class ProxyExtension(Protocol):
    """What mixed mode adds to the proxy: native targets, the differ (implemented in weedpy/mixed.py)."""

    async def before_backend(self, proxy: ProxyServer) -> None:
        """Runs before the Go backend starts (dual-run: the stores must start equal; volume owners:
        an interrupted move is resolved, native's writer store opens); StartupError ends it."""

    async def after_backend(self, nursery: trio.Nursery, proxy: ProxyServer) -> None:
        """The backend is ready: start what the extra targets need."""

    def http_targets(self, go: HttpTarget) -> Mapping[Target, HttpTarget]: ...

    def wrap_http(self, front: HttpTarget) -> HttpTarget: ...

    def grpc_targets(self, go: GoRelay) -> Mapping[Target, CallTarget]: ...

    def owned_side(self) -> OwnedSide | None:
        """Per-volume owners (the fronts route a volume's requests to its owner), or None."""

    def metrics(self) -> list:
        """Families of its own for the metrics port (the differ's), computed when scraped."""

    async def share(self, nursery: trio.Nursery, targets: Mapping[Target, HttpTarget],
                    front: HttpTarget) -> dict[str, Any]:
        """With worker processes: serve them what only this process can (`targets`, `front`) and
        return what each worker's init message carries for it."""

    def attach(self, pool: WorkerPool) -> None:
        """The worker processes, once they are started."""

    async def drain(self) -> None:
        """Before the backend stops: let work in flight reach it."""

    async def close(self) -> None: ...


class ProxyServer:
    """The gateway in proxy mode (a weedpy.serve `Server`)."""

    def __init__(
        self, cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, weed: Path,
        extension: ProxyExtension | None = None,
    ) -> None:
        self.cfg = cfg
        self.security = security
        self.routes = routes
        self.weed = weed
        self.extension = extension
        # The running table: SIGHUP and the admin API replace it (weedpy/serve/live_routes.py).
        self.live = LiveRoutes(routes, mode=cfg.mode.value, path=cfg.routes_file)
        self.evidence: Evidence | None = None  # mixed mode: what each side answered, for the cutover rules
        self.server_header = f"SeaweedFS Volume {weed_version(weed, 2) or 'unknown'}".encode()
        self.guard = Guard.from_entries(cfg.whitelist + security.guard_white_list)
        self.security = security
        # TLS ends at the front: the backend's ports on 127.0.0.1 are plain, what it dials uses
        # the operator's client certificates (its own security.toml, made in start()).
        self.tls = load_volume_tls(security)
        self._config_dirs: list[str] = []  # the backends' own config dirs not yet removed
        self.state = FrontState()
        self.master_arg = ""
        self.heartbeat_relay: HeartbeatRelay | None = None
        # Blocking, before every start of the backend: wait until Go may load every volume in -dir.
        self.before_backend_start: Callable[[], None] | None = None
        self.supervisor: Supervisor | None = None
        self.http_pool: UpstreamPool | None = None
        self._nursery: trio.Nursery | None = None
        self._pools: list[BackendPools] = []
        self.workers: WorkerPool | None = None
        self.metrics = ServerMetrics(WEEDPY_FAMILIES)  # the gateway's weedpy_* families (docs/metrics.md)
        # proxy mode in one process: trio as uvloop's guest, the plain HTTP requests relayed in
        # uvloop's callbacks by this process itself (gateway/uv_bridge.py; with workers they do it)
        self.uvloop = False
        self._runtime = runtime_registry(process=False)  # the backend's families carry process_*
        self._worker_extra: dict[str, Any] = {}  # what the extension adds to a worker's init message

    def backend_argv(self, ports, master_arg: str) -> list[str]:
        """A backend's command line, with a fresh `-config_dir` holding its security.toml (Go reads
        it once, at start: the directory goes as soon as a backend is ready, or at close)."""
        config_dir = str(backend_config_dir(self.cfg, self.security))
        self._config_dirs.append(config_dir)
        return backend_argv(self.cfg, self.weed, ports, master_arg, config_dir)

    def _remove_config_dirs(self) -> None:
        while self._config_dirs:
            shutil.rmtree(self._config_dirs.pop(), ignore_errors=True)

    def new_supervisor(self, argv=None, *, metrics: bool = False) -> Supervisor:
        """A backend supervisor with this proxy's flags (`argv(ports)` overrides them); `metrics`:
        the backend serves its families on a private port the front's metrics port scrapes."""
        return Supervisor(
            argv or (lambda ports: self.backend_argv(ports, self.master_arg)),
            split_public=self.cfg.split_public_port, env=managed_backend_environ(os.environ),
            before_start=self.recover_volumes, metrics=metrics,
        )

    def recover_volumes(self) -> None:
        """Before a backend starts: cut the torn tail a crash (of the server or of the backend
        alone) left on a volume's files, which Go would serve read-only, or, for a cut `.idx`
        row, not load at all (native/storage/_recover.py)."""
        from native.storage import repair_directory  # the storage engine loads only for a backend start

        if self.before_backend_start is not None:
            self.before_backend_start()
        for directory in self.cfg.dirs:
            repair_directory(directory, self.cfg["dir.idx"] or None)

    def relay_error_counter(self, protocol: str):
        """weedpy_relay_errors_total{protocol, reason} += 1, as a relay's `on_error`."""
        family = self.metrics.local["weedpy_relay_errors_total"]
        return lambda reason: family.labels(protocol, reason).inc()

    async def gather_metrics(self) -> bytes:
        """The metrics port: the backend's families as it serves them, then the gateway's own
        (every process's counts summed), then its python_* families."""
        parts: list[bytes] = []
        ep = self.supervisor.current() if self.supervisor is not None else None
        up = 0
        if ep is not None and ep.metrics is not None:
            text = await fetch_metrics_text(ep.metrics)
            if text is not None:
                up = 1
                parts.append(text if text.endswith(b"\n") or not text else text + b"\n")
        total = await self.metrics.total()
        families = [*total.collect(), *self._scraped_families(up)]
        if self.extension is not None:
            families += self.extension.metrics()
        families.sort(key=lambda m: m.name)
        families += self._runtime.collect()
        parts.append(render_text(families))
        return b"".join(parts)

    def _scraped_families(self, backend_up: int) -> list:
        restarts = self.supervisor.restarts if self.supervisor is not None else 0
        return [
            new_metric("weedpy_backend_restarts_total", "Times the gateway restarted the Go backend.", COUNTER,
                       [({"backend": "go"}, restarts)]),
            new_metric("weedpy_backend_metrics_up", "1 when the Go backend's families were scraped for this answer.",
                       GAUGE, [({}, backend_up)]),
            new_metric("weedpy_route_table_info", "The route table in force, by version (always 1).", GAUGE,
                       [({"version": self.live.table.version}, 1)]),
        ]

    async def _backend_moved(self, endpoints: BackendEndpoints | None) -> None:
        if endpoints is not None:  # it has read its configuration
            self._remove_config_dirs()
        if self.workers is not None:
            await self.workers.broadcast({"op": "backend", "endpoints": endpoints_to_json(endpoints)})

    def _worker_init(self, number: int) -> dict[str, Any]:
        assert self.supervisor is not None
        return {
            "mode": self.cfg.mode.value, "argv": list(self.cfg.argv), "config_dir": self.cfg.config_dir,
            "server_header": self.server_header.decode(), "backend": endpoints_to_json(self.supervisor.current()),
            **self._worker_extra,
        }

    def _attach(self, pool: WorkerPool) -> None:
        self.workers = pool
        self.metrics.pool = pool  # the metrics port sums every process's counts
        if self.extension is not None:
            self.extension.attach(pool)

    def go_http(self, backend: BackendView, front_address: str | None = None) -> HttpTarget:
        """The HTTP relay to a backend, over this proxy's connection pool."""
        assert self.http_pool is not None
        return GoHttpTarget(backend, self.http_pool, front_address=front_address,
                            on_error=self.relay_error_counter("http")).handle

    def go_relay(self, backend: BackendView, **kwargs) -> GoRelay:
        """The gRPC relay to a backend, with connection pools of its own (closed with the proxy)."""
        assert self._nursery is not None
        pools = BackendPools(self._nursery)
        self._pools.append(pools)
        return GoRelay(backend, pools, on_error=self.relay_error_counter("grpc"), **kwargs)

    @property
    def front_address(self) -> str:
        return f"{self.cfg.ip}:{self.cfg.port}"

    async def start(self, nursery: trio.Nursery) -> Fronts:
        cfg = self.cfg
        front = FrontIdentity(
            ip=cfg.ip, port=cfg.port, grpc_port=cfg.grpc_port, public_url=cfg.public_url, server_id=cfg.server_id,
        )
        relay = self.heartbeat_relay = HeartbeatRelay(cfg.masters, front, tls=self.tls)
        self.master_arg = await nursery.start(relay.run)
        # the backend's families on a private port, always: the front's metrics port and a push
        # gateway the master may name (known only once the backend has asked) both gather them
        supervisor = self.supervisor = self.new_supervisor(metrics=True)
        supervisor.on_change = self._backend_moved
        relay.set_backend(supervisor)
        if self.extension is not None:
            await self.extension.before_backend(self)
        faults: frozenset[str] = frozenset()
        if self.extension is None:
            try:  # proxy mode's test-only relay fault (gateway/relay_fault.py): its uvloop relays apply it
                faults = relay_fault(cfg.bind_ip) or frozenset()
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        try:
            await nursery.start(supervisor.run)
        except BackendStartError as exc:
            if exc.fatal:  # Go's own one-line reason (glog.Fatal), with Go's exit status
                raise StartupError(exc.fatal, exit_code=exc.returncode or 1) from None
            raise StartupError(f"the Go backend failed to start:\n{exc}") from None
        self.http_pool = relay_pool(cfg, RELAY_SOCKET_BUFFER)
        self._nursery = nursery
        policy = None if cfg["volume.allowUntrustedRemoteEndpoints"] else PeerPolicy(
            functools.partial(master_volume_servers, cfg.masters, https=self.tls.https_client),
        )
        relay_to_go = self.go_relay(
            supervisor, checks=request_checks(policy, cfg.masters, self.master_arg, self.guard,
                                              backend_maintenance(supervisor, cfg.server_id)),
            front_address=self.front_address,
            local={GRPC_SERVICE + "VolumeTailReceiver": functools.partial(tail_into_backend, tls=self.tls.grpc_client)},
        )
        go_http = self.go_http(supervisor, self.front_address)
        http_targets: dict[Target, HttpTarget] = {Target.GO: go_http}
        grpc_targets: dict[Target, CallTarget] = {Target.GO: relay_to_go}
        if self.extension is not None:
            await self.extension.after_backend(nursery, self)
            http_targets.update(self.extension.http_targets(go_http))
            grpc_targets.update(self.extension.grpc_targets(relay_to_go))
        nursery.start_soon(self._push_metrics, relay)
        local = self.metrics.local
        owned = self.extension.owned_side() if self.extension is not None else None
        http_front = HttpFront(self.live, http_targets, self.guard, self.server_header, self.state,
                               self.evidence, meter=RouteMeter(local, "http"),
                               owners=owned and owned.owners, owned=owned and owned.http,
                               status=owned and owned.status)
        http: HttpTarget = http_front.handle
        http_serve = None
        if self.uvloop and self.extension is None:
            from gateway.uv_bridge import UvHttp  # uvloop: loaded only by a process that runs on it

            errors = local["weedpy_relay_errors_total"]
            http_serve = UvHttp(http_front, supervisor, self.front_address, pool_ttl(cfg),
                                lambda reason: errors.labels("http", reason).inc(), RELAY_SOCKET_BUFFER, faults)
        if self.extension is not None:
            http = self.extension.wrap_http(http)
            if cfg.workers > 1:  # mixed mode's native side and differ live here: workers reach them
                self._worker_extra = await self.extension.share(nursery, http_targets, http)
        # proxy mode: the workers relay HTTP on uvloop, the leader keeps gRPC and the backend
        workers = WorkerSpec(cfg.workers, self._worker_init, self._attach,
                             leader_defers=self.extension is None and uvloop_http(os.environ))
        metrics = MetricsEndpoint(self.gather_metrics).handle if cfg["metricsPort"] else None
        grpc = GrpcFront(self.live, grpc_targets, self.evidence, meter=RouteMeter(local, "grpc"),
                         owners=owned and owned.owners, owned=owned and owned.grpc, split=owned and owned.split)
        return Fronts(http=http, grpc=grpc,
                      grpc_options=PROXY_SERVER_OPTIONS, send_buffer=RELAY_SOCKET_BUFFER, workers=workers,
                      routes=RoutesApi(self.live, self.guard), metrics=metrics, http_serve=http_serve)

    async def _push_metrics(self, relay: HeartbeatRelay) -> None:
        """Go's LoopPushingMetric for the front: when the master names a push gateway, push there
        what the metrics port serves (the backend's families and the gateway's), as job
        volumeServer, instance -ip:-port (the relay kept the gateway from the backend)."""
        await relay.configured.wait()
        address, interval = relay.metrics_push
        if address and interval:
            await push_loop(self.gather_metrics, address, interval, push_instance(self.cfg.ip, self.cfg.port))

    async def serving(self, nursery: trio.Nursery) -> None:
        cfg = self.cfg
        log.info(
            "gateway ready", mode=cfg.mode.value, port=cfg.port, grpc_port=cfg.grpc_port,
            public_port=cfg.public_port, routes_v=self.live.version, server=self.server_header.decode(),
        )

    async def stop(self, stop_listening) -> None:
        log.info("stopping: no new connections", pre_stop_seconds=self.cfg.pre_stop_seconds)
        self.state.stopping = True
        await stop_listening()
        await trio.sleep(self.cfg.pre_stop_seconds)
        if self.extension is not None:
            await self.extension.drain()
        if self.supervisor is not None:
            await self.supervisor.stop()

    async def close(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        for pools in self._pools:
            pools.close()
        if self.http_pool is not None:
            await self.http_pool.aclose()
        if self.extension is not None:
            await self.extension.close()
        self._remove_config_dirs()
