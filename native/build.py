"""A native volume server without its sockets, built from a VolumeConfig: the store, the HTTP and
gRPC handlers, the master client (`NativeParts`, what the fronts dispatch to).

- native mode serves it on its own ports (native/server.py);
- mixed mode mounts it as the `native` target beside the Go backend: `build_follower` is a
  read-only view of Go's files with no heartbeat of its own; a dual-run opens it on its own
  directories with `open_store` + `build_parts(heartbeat=False)` (weedpy/mixed.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from native.context import GO_COMMIT, NativeContext, ServerState, go_version
from native.grpc import Services, StateFile
from native.identity import Identity
from native.http.app import NativeHttp
from native.master_client import MasterClient
from native.metrics import NativeMetrics
from native.offload import heartbeat_thread
from native.storage import DEFAULT_OFFSET_BYTES, Store, parse_min_free_spaces
from native.storage.tier import apply_storage_backends
from weedpy.config import VolumeConfig
from weedpy.grpc import CallHandler, Router, ServerCall, ServerOptions
from weedpy.http1 import UpstreamPool
from weedpy.logs import get_logger
from weedpy.security import SecurityConfig
from weedpy.sharedmem import ProcessShare
from weedpy.tls import VolumeTls, load_volume_tls
from weedpy.serve.guard import Guard
from weedpy.weedbin import weed_version

if TYPE_CHECKING:
    from native.heartbeat import StoreSnapshot

__all__ = [
    "GRPC_OPTIONS", "NativeParts", "build_parts", "build_follower", "open_store", "adjust_volume_max", "native_version",
]

log = get_logger("native.server")

GRPC_OPTIONS = ServerOptions(max_send_message_length=None)


def open_store(cfg: VolumeConfig, *, load: bool = True, discover: bool = True, idx_directory: str | None = None) -> Store:
    """The store `weed volume -dir -max -disk -tags -minFreeSpace -dir.idx` describes (blocking).
    With `load=False` its volumes are only discovered (`Store.load_pending` loads them), and with
    `discover=False` too not even that: a worker process follows its leader's volume table and
    must not take the leader's files in progress for leftovers (nor wait for volumes it skipped).
    `idx_directory` replaces -dir.idx (mixed mode's native folders)."""
    n = len(cfg.dirs)
    frees = parse_min_free_spaces(cfg["minFreeSpace"], cfg["minFreeSpacePercent"], n)
    disk_text = cfg["disk"]
    disks = disk_text.split(",") if disk_text else [""]
    store = Store.open(
        list(cfg.dirs), max_counts=list(cfg.max_counts), idx_directory=idx_directory or cfg["dir.idx"] or None,
        disk_types=disks, tags=cfg.folder_tags(), min_free_spaces=frees,
        offset_bytes=cfg["offsetBytes"] or DEFAULT_OFFSET_BYTES, load=load,
    )
    if not load and discover:
        try:
            store.discover()
        except BaseException:
            store.close()
            raise
    return store


def adjust_volume_max(store, volume_size_limit: int) -> bool:
    """Go's MaybeAdjustVolumeMax for `-max=0` directories: one slot per volume that fits."""
    if not volume_size_limit:
        return False
    changed = False
    for loc in store.locations:
        if loc.original_max_volume_count != 0:
            continue
        vols = loc.volumes()
        unused = 0
        for v in vols:
            if v.read_only:
                continue
            unused += max(0, volume_size_limit - (v.dat_size + v.idx_size))
        try:
            free = loc.status().free
        except OSError:
            continue
        unclaimed = free - unused
        count = len(vols) + (unclaimed // volume_size_limit if unclaimed > 0 else 0)
        count = max(1, count)
        changed = changed or count != loc.max_volume_count
        loc.max_volume_count = count
    return changed


def native_version(weed: str | Path | None) -> tuple[str, str]:
    """(short, full) Go version the native server answers as: the bundled weed's own
    (`8000GB 4.48`, `8000GB 4.48 pypi`), or this build's when there is no binary to ask."""
    full = weed_version(weed) if weed is not None else ""
    if not full:
        full = f"{go_version(5)} {GO_COMMIT}"
    return " ".join(full.split()[:2]), full


class RouterOnFirstCall:
    """The native handlers' router, built at the first gRPC call: the handler families are
    a good part of start-up's imports, and nothing calls a volume server's gRPC before it
    serves (the master learns of it from its heartbeat)."""

    __slots__ = ("_services", "_router")

    def __init__(self, services: Services) -> None:
        self._services = services
        self._router: Router | None = None

    @property
    def router(self) -> Router:
        if self._router is None:
            from native.grpc import build_router  # the handler families: loaded on first use (start-up time)

            self._router = build_router(self._services)
        return self._router

    async def handle(self, call: ServerCall) -> None:
        await self.router.handle(call)


@dataclasses.dataclass
class NativeParts:
    """A native volume server without its sockets: what the fronts dispatch to."""

    ctx: NativeContext
    http: NativeHttp
    router: CallHandler
    master: MasterClient
    state_file: StateFile

    async def snapshot(self) -> StoreSnapshot:
        from native.heartbeat import snapshot_store  # loaded with the master client's modules (start-up time)

        store = self.ctx.store

        def work() -> StoreSnapshot:
            limit = store.volume_size_limit
            adjust_volume_max(store, limit)
            for vid in store.expired_volumes():
                try:
                    store.delete_volume(vid)
                    log.info("expired volume deleted", volume=vid)
                except Exception as exc:  # noqa: BLE001 - keep heartbeating whatever one volume does
                    log.warning("cannot delete expired volume", volume=vid, error=str(exc))
            skip = [v.id for v in store.volumes() if v.expired(limit)]
            return snapshot_store(store, skip=skip)

        # the heartbeat's own thread: no queue behind calls that wait on a busy volume (native/offload.py)
        return await heartbeat_thread(work)

    async def close(self) -> None:
        """Close the handlers' HTTP pool and the store (blocking work in a thread)."""
        await self.ctx.http_pool.aclose()
        await trio.to_thread.run_sync(self.ctx.store.close)


def build_parts(
    cfg: VolumeConfig, security: SecurityConfig, store, *, heartbeat: bool = True, read_only_view: bool = False,
    weed_binary: str | None = None, version: tuple[str, str] | None = None, tls: VolumeTls | None = None,
    share: ProcessShare | None = None, state_changed: Callable[[], Awaitable[None]] | None = None,
    configured: Callable[[list[bytes]], Awaitable[None]] | None = None, state_dir: str | None = None,
) -> NativeParts:
    """`share`: this process's part of a server with worker processes (the flags and in-flight
    byte counts live there; `store` is already shared); `state_changed`: awaited by every rpc
    that changed the server's state before it answers (the workers apply it); `configured`:
    awaited with the master's storage backends (serialized) once they are applied here;
    `state_dir`: the folder of a `state.pb` the Go backend owns (mixed mode's writer store), read
    at every check and never written, so maintenance mode is Go's on both sides."""
    # gRPC peers and the master over mTLS, HTTP peers over HTTPS, as security.toml says (the
    # lifecycle has already refused files that cannot be used)
    tls = tls if tls is not None else load_volume_tls(security)
    state = ServerState(share.flags() if share is not None else None)
    state_file = StateFile(state_dir or store.locations[0].idx_directory, follow=read_only_view or state_dir is not None)
    state.maintenance = state_file.maintenance
    identity = Identity(
        ip=cfg.ip, port=cfg.port, grpc_port=cfg.grpc_port, public_url=cfg.public_url, server_id=cfg.server_id,
        data_center=cfg["dataCenter"], rack=cfg["rack"],
    )
    parts_ref: list[NativeParts] = []

    async def snapshot() -> StoreSnapshot:
        if state_changed is not None:  # the master never learns of a volume a worker cannot serve yet
            await state_changed()
        return await parts_ref[0].snapshot()

    def on_limit(limit: int) -> None:
        store.volume_size_limit = limit

    async def on_configuration(resp) -> None:
        if resp.storage_backends and hasattr(store, "tier_backends") and not read_only_view:
            from native.s3 import s3_object_store  # the S3 client (httpx) loads only for a storage backend

            await trio.to_thread.run_sync(apply_storage_backends, store, list(resp.storage_backends), s3_object_store)
        if configured is not None:
            await configured([b.SerializeToString() for b in resp.storage_backends])

    metrics = NativeMetrics()
    disconnections = metrics.family("master_disconnections")
    master = MasterClient(
        cfg.masters, identity, state=state, snapshot=snapshot, state_proto=state_file.proto,
        on_volume_size_limit=on_limit, on_configuration=on_configuration, heartbeat=heartbeat,
        tls=tls.grpc_client, on_disconnect=lambda name: disconnections.labels(name).inc(),
    )
    short, full = version or (go_version(store.offset_bytes), f"{go_version(store.offset_bytes)} {GO_COMMIT}")
    ctx = NativeContext(
        cfg=cfg, security=security, store=store, version=short, master=master,
        http_pool=UpstreamPool(tls=tls.https_client), state=state, full_version=full, tls=tls, share=share,
        metrics=metrics,
    )
    app = NativeHttp(ctx, weed_binary)
    guard = Guard.from_entries(tuple(cfg.whitelist) + tuple(security.guard_white_list))
    services = Services(ctx, master, state_file, guard, read_only_view=read_only_view)

    async def rpc_changed_state() -> None:
        """Before a state-changing rpc answers: the workers applied it, and the master was sent
        the heartbeat that reports the volumes it added or removed."""
        if state_changed is not None:
            await state_changed()
        await master.changes_reported()

    services.state_changed = rpc_changed_state
    parts = NativeParts(ctx, app, RouterOnFirstCall(services), master, state_file)
    parts_ref.append(parts)
    return parts


def build_follower(cfg: VolumeConfig, security: SecurityConfig, weed_binary: str) -> NativeParts:
    """Mixed mode's native side: a read-only view of Go's directories, no heartbeat of its own."""
    from native.follower import FollowerStore  # mixed mode's alone: native mode does not load it

    store = FollowerStore.for_config(cfg)
    return build_parts(cfg, security, store, heartbeat=False, read_only_view=True, weed_binary=weed_binary,
                       version=native_version(weed_binary))
