"""A native-mode worker process: the HTTP data path over the volumes the leader publishes.

The worker opens the same data directories as its leader without loading or repairing anything
itself: it follows the leader's volume table (native/storage/_shared.py), opening each volume
the leader mounted, closing each one it removed and reopening each one whose files it replaced,
at start and on every `sync` the leader sends (after any state-changing rpc, and as volumes
finish loading). Reads follow the `.idx` appends of every process; appends take the volume's
shared lock. gRPC, the master heartbeat and volume lifecycle stay with the leader; the worker's
master client only looks volumes up (proxied and redirected reads, replication).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import trio

from native.build import NativeParts, build_parts, open_store
from native.server import check_disks
from native.storage import VolumeTable
from native.storage.tier import apply_storage_backends
from proto import master_pb2
from weedpy.config import VolumeConfig
from weedpy.security import SecurityConfig
from weedpy.serve.guard import Guard
from weedpy.serve.http_front import FrontState, HttpFront, HttpTarget
from weedpy.serve.lifecycle import HttpServe, StartupError
from weedpy.serve.live_routes import LiveRoutes
from weedpy.serve.routes import Target
from weedpy.sharedmem import ProcessShare, SharedBlock

__all__ = ["NativeWorker"]


class NativeWorker:
    """A weedpy.serve `WorkerServer` for native mode."""

    def __init__(self, cfg: VolumeConfig, security: SecurityConfig, routes: LiveRoutes, init: dict[str, Any]) -> None:
        self.cfg = cfg
        self.security = security
        self.routes = routes
        self.init = init
        self.share = ProcessShare(SharedBlock.attach(init["shared_fd"]), init["worker"], init["count"])
        self.parts: NativeParts | None = None
        self._front_state = FrontState()
        self.uvloop = False  # set before start: the process runs trio as uvloop's guest (weedpy/serve/uv_host.py)
        # what serves the plain-HTTP ports when not trio's loop (weedpy.serve.lifecycle.HttpServe)
        self.http_serve: HttpServe | None = None

    async def start(self, nursery: trio.Nursery) -> HttpTarget:
        cfg = self.cfg
        try:
            store = await trio.to_thread.run_sync(functools.partial(open_store, cfg, load=False, discover=False))
        except Exception as exc:  # noqa: BLE001 - any store failure ends start-up with its message
            raise StartupError(f"cannot open the store: {exc}") from exc
        table = VolumeTable(self.share.block, self.share.index)
        table.forget_syncs()  # a worker restarted in a dead one's place: none of its syncs runs
        store.share(table, leader=False)
        await trio.to_thread.run_sync(store.sync_shared)
        parts = self.parts = build_parts(cfg, self.security, store, heartbeat=False, weed_binary=cfg.weed_binary,
                                         share=self.share)
        guard = Guard.from_entries(tuple(cfg.whitelist) + tuple(self.security.guard_white_list))
        nursery.start_soon(check_disks, store)
        await self._apply_backends(self.init.get("backends") or [])
        front = HttpFront(self.routes, {Target.NATIVE: parts.http.handle}, guard, parts.ctx.server_header.encode(),
                          self._front_state, meter=parts.ctx.metrics.meter)
        if self.uvloop:
            from native.http.uv_serve import NativeUvHttp  # uvloop loads only for a process on it

            self.http_serve = NativeUvHttp(parts.http, front)
        return front.handle

    async def control(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if msg["op"] == "metrics":  # the leader sums every process's counts when scraped
            assert self.parts is not None
            return self.parts.ctx.metrics.server.worker_reply()
        if msg["op"] not in ("sync", "resync"):
            raise ValueError(f"unknown control op {msg['op']!r}")
        assert self.parts is not None
        await trio.to_thread.run_sync(self.parts.ctx.store.sync_shared)
        if "backends" in msg:
            await self._apply_backends(msg["backends"])
        return None

    async def _apply_backends(self, encoded: list[str]) -> None:
        """The master's storage backends, as the leader applied them (tiered volumes read there)."""
        if not encoded:
            return
        from native.s3 import s3_object_store  # the S3 client (httpx) loads only for a storage backend

        backends = [master_pb2.StorageBackend.FromString(base64.b64decode(b)) for b in encoded]
        assert self.parts is not None
        await trio.to_thread.run_sync(apply_storage_backends, self.parts.ctx.store, backends, s3_object_store)

    def stopping(self) -> None:
        self._front_state.stopping = True
        if self.parts is not None:
            self.parts.ctx.state.stopping = True

    async def close(self) -> None:
        if self.parts is not None:
            await self.parts.close()
        self.share.block.close()
