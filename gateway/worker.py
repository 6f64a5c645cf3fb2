"""A proxy-mode worker process: the HTTP front and relay to the one Go backend the leader supervises.

The leader keeps the backend, the heartbeat relay and the gRPC front; workers relay HTTP only.
Where the backend listens reaches them in the init message and, after each restart of the
backend, in a `backend` message (weedpy/serve/workers.py), acknowledged before the leader uses
the new endpoints itself; in between, `current()` is None and requests get the relay's 503.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import trio

from gateway.backend import BackendEndpoints, BackendView
from gateway.http_proxy import GoHttpTarget
from gateway.relay_fault import relay_fault
from weedpy.config import VolumeConfig
from weedpy.http1 import Exchange, UpstreamPool
from weedpy.security import SecurityConfig
from weedpy.serve.evidence import EvidenceTally
from weedpy.serve.guard import Guard
from weedpy.serve.http_front import FrontState, HttpFront, HttpTarget
from weedpy.serve.lifecycle import HttpServe
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.metrics import WEEDPY_FAMILIES, RouteMeter, ServerMetrics
from weedpy.serve.routes import Target

__all__ = ["ProxyWorker", "PublishedBackend", "endpoints_to_json", "endpoints_from_json", "pool_ttl", "relay_pool"]


def endpoints_to_json(ep: BackendEndpoints | None) -> dict[str, Any] | None:
    if ep is None:
        return None
    return {"http": list(ep.http), "grpc": list(ep.grpc), "public": list(ep.public) if ep.public else None}


def endpoints_from_json(doc: dict[str, Any] | None) -> BackendEndpoints | None:
    if doc is None:
        return None
    public = doc.get("public")
    return BackendEndpoints(http=tuple(doc["http"]), grpc=tuple(doc["grpc"]), public=tuple(public) if public else None)


def pool_ttl(cfg: VolumeConfig) -> float:
    """How long a backend connection stays idle in a pool: it goes before Go's -idleTimeout closes it."""
    return max(1.0, min(15.0, cfg.idle_timeout / 2 if cfg.idle_timeout else 15.0))


def relay_pool(cfg: VolumeConfig, buffer_size: int) -> UpstreamPool:
    """The keep-alive pool to the backend."""
    return UpstreamPool(idle_ttl=pool_ttl(cfg), buffer_size=buffer_size)


class PublishedBackend:
    """The backend's endpoints as the leader last published them (a BackendView)."""

    def __init__(self, endpoints: BackendEndpoints | None) -> None:
        self.endpoints = endpoints

    def current(self) -> BackendEndpoints | None:
        return self.endpoints


class ProxyWorker:
    """A weedpy.serve `WorkerServer`: the proxy's HTTP front in a worker process."""

    def __init__(self, cfg: VolumeConfig, security: SecurityConfig, routes: LiveRoutes, init: dict[str, Any],
                 buffer_size: int) -> None:
        self.cfg = cfg
        self.routes = routes
        self.guard = Guard.from_entries(cfg.whitelist + security.guard_white_list)
        self.server_header = init["server_header"].encode()
        self.backend = PublishedBackend(endpoints_from_json(init.get("backend")))
        self.state = FrontState()
        self.pool = relay_pool(cfg, buffer_size)
        self.buffer_size = buffer_size
        self.metrics = ServerMetrics(WEEDPY_FAMILIES)  # counted here, summed by the leader when scraped
        self.uvloop = False  # set before start: the process runs trio as uvloop's guest (gateway/uv_bridge.py)
        # what serves the plain-HTTP ports when not trio's loop (weedpy.serve.lifecycle.HttpServe)
        self.http_serve: HttpServe | None = None

    async def start(self, nursery: trio.Nursery) -> HttpTarget:
        address = f"{self.cfg.ip}:{self.cfg.port}"
        front = self.front({Target.GO: self.relay(self.backend, address).handle})
        if self.uvloop:
            from gateway.uv_bridge import UvHttp  # uvloop: loaded only by a process that runs on it

            errors = self.metrics.local["weedpy_relay_errors_total"]
            faults = relay_fault(self.cfg.bind_ip) or frozenset()  # the leader refused to start if malformed
            self.http_serve = UvHttp(front, self.backend, address, pool_ttl(self.cfg),
                                     lambda reason: errors.labels("http", reason).inc(), self.buffer_size, faults)
        return front.handle

    def relay(self, backend: BackendView, front_address: str | None = None,
              tag: Callable[[Exchange], tuple[bytes, bytes]] | None = None) -> GoHttpTarget:
        """An HTTP relay over this worker's pool, its errors counted (weedpy_relay_errors_total)."""
        errors = self.metrics.local["weedpy_relay_errors_total"]
        return GoHttpTarget(backend, self.pool, front_address=front_address,
                            on_error=lambda reason: errors.labels("http", reason).inc(), tag=tag)

    def front(self, targets: Mapping[Target, HttpTarget], evidence: EvidenceTally | None = None,
              owner_of: Callable[[int], str | None] | None = None) -> HttpFront:
        """`owner_of`: mixed mode's owners, the side that serves a volume when not the route's."""
        return HttpFront(self.routes, targets, self.guard, self.server_header, self.state, evidence,
                         meter=RouteMeter(self.metrics.local, "http"), owner_of=owner_of)

    async def control(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if msg["op"] == "metrics":
            return self.metrics.worker_reply()
        if msg["op"] == "backend":
            self.backend.endpoints = endpoints_from_json(msg.get("endpoints"))
        elif msg["op"] == "resync":  # carries what an init message would carry now
            self.backend.endpoints = endpoints_from_json(msg.get("backend"))
        else:
            raise ValueError(f"unknown control op {msg['op']!r}")
        return None

    def stopping(self) -> None:
        self.state.stopping = True

    async def close(self) -> None:
        await self.pool.aclose()
