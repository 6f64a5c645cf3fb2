"""A mixed-mode worker process: the proxy's worker (gateway/worker.py) plus the loopback hop.

The leader keeps everything that holds state: the Go backend's supervision, gRPC, the native
side (the read-only view of Go's files, or dual-run's own store) and the differ, whose mirror
lane keeps the order of writes. A worker decides each request's route from its copy of the
leader's table (switched before every change is acknowledged) and serves it:

- `go` routes: relayed straight to the Go backend, as a proxy-mode worker does; with dual-run
  routes in the table (the differ mirrors every write, whatever its route), over the hop instead;
- `native`, `shadow`, `native+verify` routes and the differ's API (`/weedpy/diff`): over the
  loopback hop to the leader (weedpy/serve/hop.py), which serves them on the target this worker
  decided, so every native read sees what the leader's own reads see;
- with volume owners (no dual-run): the file-id requests of the volumes native owns or that are
  being moved (the leader names them in `owners` messages, and waits until the requests this
  worker relayed straight to Go for them are done) over the hop, where the leader serves them
  by owner and holds them during a move; the owners' API (`/weedpy/volumes`) and the volume
  lists (`/status`, `/ui/index.html`: the leader merges native's volumes in) too. The request log
  names `native` as the target of a volume native owns.

What the front answered is counted here (`EvidenceTally`) and taken by the leader once a second
for the cutover rules (`evidence` control op).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import trio

from gateway.backend import BackendEndpoints
from gateway.worker import ProxyWorker, PublishedBackend
from weedpy.config import VolumeConfig
from weedpy.http1 import Exchange
from weedpy.security import SecurityConfig
from weedpy.serve.evidence import EvidenceTally
from weedpy.serve.hop import FRONT, HOP_HEADER, hop_value
from weedpy.serve.http_front import HttpTarget
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.routes import Target, request_path
from weedpy.serve.volume_owners import HOLD_LIMIT_S, VOLUMES_PREFIX, WorkerVolumes

__all__ = ["DIFF_API_PREFIX", "MixedWorker"]

DIFF_API_PREFIX = b"/weedpy/diff"  # the differ's admin API (difftool/_admin.py), the leader's
_HOPPED = (Target.NATIVE, Target.SHADOW, Target.NATIVE_VERIFY)


class MixedWorker(ProxyWorker):
    """A weedpy.serve `WorkerServer` for mixed mode (see the module docstring)."""

    def __init__(self, cfg: VolumeConfig, security: SecurityConfig, routes: LiveRoutes, init: dict[str, Any],
                 buffer_size: int) -> None:
        super().__init__(cfg, security, routes, init, buffer_size)
        host, port = init["hop"]
        self._leader = PublishedBackend(BackendEndpoints(http=(host, port), grpc=(host, port)))
        self._token = str(init["hop_token"])
        self._number = int(init["worker"])
        self._hop_all = bool(init.get("hop_all"))  # dual-run: the leader's go target mirrors writes
        # volume owners: the file-id requests of the volumes the leader names go to the leader
        self.volumes = WorkerVolumes(init.get("via_leader", ()), init.get("native_owned", ())) if init.get("owners") else None
        self._undrained: list[int] = []  # after the last `owners`: volumes with requests still at Go
        self.tally = EvidenceTally()

    def _hop(self, target: str) -> HttpTarget:
        """The relay to the leader for one target; the header names this request's route, read
        from the table the front used (no await comes between the front's read and this one)."""
        routes, token, number = self.routes, self._token, self._number

        def tag(exch: Exchange) -> tuple[bytes, bytes]:
            return HOP_HEADER, hop_value(token, number, exch.port_kind, target, exch.client_host,
                                         routes.table.version)

        return self.relay(self._leader, tag=tag).handle

    async def start(self, nursery: trio.Nursery) -> HttpTarget:
        targets = {t: self._hop(t.value) for t in _HOPPED}
        if self._hop_all:
            targets[Target.GO] = self._hop(Target.GO.value)
        else:
            direct = self.relay(self.backend, f"{self.cfg.ip}:{self.cfg.port}").handle
            targets[Target.GO] = direct if self.volumes is None else self.volumes.route(
                direct, self._hop(Target.GO.value))
        front = self.front(targets, self.tally, None if self.volumes is None else self.volumes.owner_of).handle
        apis = (DIFF_API_PREFIX,) * self._hop_all + (VOLUMES_PREFIX,) * (self.volumes is not None)
        if not apis:
            return front
        leader_front = self._hop(FRONT)

        def handle(exch: Exchange) -> Awaitable[None]:
            """The differ's and the owners' APIs are the leader's; everything else goes through the front."""
            if exch.port_kind == "admin" and exch.request.target.startswith(apis):
                path = request_path(exch.request.target)
                if any(path == p or path.startswith(p + b"/") for p in apis):
                    return leader_front(exch)
            return front(exch)

        return handle

    async def control(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if msg["op"] == "evidence":
            return {"evidence": self.tally.take()}
        if msg["op"] == "owners" and self.volumes is not None:
            self._undrained = await self.volumes.update(msg["via_leader"], msg.get("native_owned", ()), HOLD_LIMIT_S)
            return None
        if msg["op"] == "owners_undrained":
            return {"undrained": self._undrained}
        if msg["op"] == "resync" and self.volumes is not None:
            self.volumes.via = frozenset(msg.get("via_leader", ()))
            self.volumes.native = frozenset(msg.get("native_owned", ()))
        return await super().control(msg)
