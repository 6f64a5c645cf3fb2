"""`weedpy volume -mode=native`: a volume server process with no Go in it.

Start-up: bind the admin, public and gRPC ports (a busy port fails at once), open the store, then
serve while the master client registers with the master (/healthz says 503 until it has). Every
HTTP request and gRPC call goes through the gateway's fronts with an all-native route table, so
each one logs one event with `route`, `target=native` and the table version.

Stop (SIGINT/SIGTERM): /healthz answers 503, the heartbeat stops (the master drops this server's
volumes), then after -preStopSeconds the listeners close and the store is flushed; exit 0.

`NativeParts` is the same server without sockets: gateway/app.py mounts it as the `native`
target of mixed mode (read-only view of Go's files, no heartbeat of its own).
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import socket
import sys
from collections.abc import Sequence

import trio

from weedpy.serve.grpc_front import GrpcFront, NamedTarget
from weedpy.serve.guard import Guard
from weedpy.serve.http_front import FrontState, HttpFront
from weedpy.serve.routes import Route, RouteTable, Target
from native.context import GO_COMMIT, NativeContext, ServerState, go_version
from native.grpc import Services, StateFile, build_router
from native.heartbeat import Identity, StoreSnapshot, snapshot_store
from native.http import admin
from native.http.app import NativeHttp
from native.master_client import MasterClient
from weedpy.config import VolumeConfig
from weedpy.grpc import Router, ServerOptions, serve_listeners
from weedpy.http1 import FastStream, UpstreamPool, serve_connection, serve_fast
from weedpy.logs import LineSink, get_logger, log_flushing
from weedpy.security import SecurityConfig

__all__ = ["run_native", "NativeParts", "build_parts", "open_store", "native_route_table"]

log = get_logger("native.server")

DISK_CHECK_SECONDS = 60.0
GRPC_OPTIONS = ServerOptions(max_send_message_length=None)


def native_route_table(routes: RouteTable | None) -> RouteTable:
    """The table of native mode: everything native unless the operator's table says `off`."""
    if routes is None or (routes.version == "builtin" and not routes.routes):
        return RouteTable(version="native", default=Route(Target.NATIVE), routes={})
    return routes


def _folder_tags(text: str, n: int) -> list[tuple[str, ...]]:
    """Go's parseVolumeTags: one `a:b` group per directory; a single group applies to all."""
    entries = text.split(",") if text.strip() else []

    def norm(group: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.strip().lower() for t in group.split(":") if t.strip()))

    if len(entries) == 1:
        return [norm(entries[0])] * n
    return [norm(entries[i]) if i < len(entries) else () for i in range(n)]


def open_store(cfg: VolumeConfig):
    """The store `weed volume -dir -max -disk -tags -minFreeSpace -dir.idx` describes (blocking)."""
    from native.storage import DEFAULT_OFFSET_BYTES, Store, parse_min_free_spaces

    n = len(cfg.dirs)
    frees = parse_min_free_spaces(cfg["minFreeSpace"], cfg["minFreeSpacePercent"], n)
    disk_text = cfg["disk"]
    disks = disk_text.split(",") if disk_text else [""]
    return Store.open(
        list(cfg.dirs), max_counts=list(cfg.max_counts), idx_directory=cfg["dir.idx"] or None,
        disk_types=disks, tags=_folder_tags(cfg["tags"], n), min_free_spaces=frees,
        offset_bytes=cfg["offsetBytes"] or DEFAULT_OFFSET_BYTES,
    )


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


@dataclasses.dataclass
class NativeParts:
    """A native volume server without its sockets: what the fronts dispatch to."""

    ctx: NativeContext
    http: NativeHttp
    router: Router
    master: MasterClient
    state_file: StateFile

    async def snapshot(self) -> StoreSnapshot:
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

        return await trio.to_thread.run_sync(work)


def build_parts(
    cfg: VolumeConfig, security: SecurityConfig, store, *, heartbeat: bool = True, read_only_view: bool = False,
    weed_binary: str | None = None, version: tuple[str, str] | None = None,
) -> NativeParts:
    state = ServerState()
    state_file = StateFile(store.locations[0].idx_directory, follow=read_only_view)
    state.maintenance = state_file.maintenance
    identity = Identity(
        ip=cfg.ip, port=cfg.port, grpc_port=cfg.grpc_port, public_url=cfg.public_url, server_id=cfg.server_id,
        data_center=cfg["dataCenter"], rack=cfg["rack"],
    )
    parts_ref: list[NativeParts] = []

    async def snapshot() -> StoreSnapshot:
        return await parts_ref[0].snapshot()

    def on_limit(limit: int) -> None:
        store.volume_size_limit = limit

    async def on_configuration(resp) -> None:
        if resp.storage_backends and hasattr(store, "tier_backends") and not read_only_view:
            from native.s3 import s3_object_store
            from native.storage.tier import apply_storage_backends

            await trio.to_thread.run_sync(apply_storage_backends, store, list(resp.storage_backends), s3_object_store)

    master = MasterClient(
        cfg.masters, identity, state=state, snapshot=snapshot, state_proto=state_file.proto,
        on_volume_size_limit=on_limit, on_configuration=on_configuration, heartbeat=heartbeat,
    )
    short, full = version or (go_version(store.offset_bytes), f"{go_version(store.offset_bytes)} {GO_COMMIT}")
    ctx = NativeContext(
        cfg=cfg, security=security, store=store, version=short, master=master,
        http_pool=UpstreamPool(), state=state, full_version=full,
    )
    app = NativeHttp(ctx)
    admin.install(app, weed_binary=weed_binary)
    guard = Guard.from_entries(tuple(cfg.whitelist) + tuple(security.guard_white_list))
    router = build_router(Services(ctx, master, state_file, guard, read_only_view=read_only_view))
    parts = NativeParts(ctx, app, router, master, state_file)
    parts_ref.append(parts)
    return parts


def _bind(cfg: VolumeConfig) -> dict[str, socket.socket]:
    family = socket.AF_INET6 if ":" in cfg.bind_ip else socket.AF_INET
    ports = [("admin", cfg.port), ("grpc", cfg.grpc_port)]
    if cfg.split_public_port:
        ports.append(("public", cfg.public_port))
    socks: dict[str, socket.socket] = {}
    try:
        for kind, port in ports:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            socks[kind] = s
            s.bind((cfg.bind_ip, port))
    except OSError as exc:
        for s in socks.values():
            s.close()
        raise OSError(exc.errno, f"cannot bind {cfg.bind_ip}:{port}: {exc.strerror}") from exc
    return socks


async def run_native(
    cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable | None = None, log_sink: LineSink | None = None,
) -> int:
    routes = native_route_table(routes)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            socks = _bind(cfg)
        except OSError as exc:
            log.error("cannot bind", error=exc.strerror)
            print(f"weedpy: {exc.strerror}", file=sys.stderr)
            return 1
        try:
            try:
                store = await trio.to_thread.run_sync(open_store, cfg)
            except Exception as exc:  # noqa: BLE001 - any store failure ends start-up with its message
                log.error("cannot open the store", error=str(exc))
                print(f"weedpy: cannot open the store: {exc}", file=sys.stderr)
                return 1
            try:
                async with log_flushing(log_sink):
                    return await _serve(cfg, security, routes, store, socks, signals)
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(store.close)
        finally:
            for s in socks.values():
                s.close()


async def _serve(
    cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, store, socks: dict[str, socket.socket], signals,
) -> int:
    parts = build_parts(cfg, security, store, weed_binary=cfg.weed_binary)
    ctx = parts.ctx
    front_state = FrontState()
    guard = Guard.from_entries(tuple(cfg.whitelist) + tuple(security.guard_white_list))
    http_front = HttpFront(routes, {Target.NATIVE: parts.http.handle}, guard, ctx.server_header.encode(), front_state)
    grpc_front = GrpcFront(routes, {Target.NATIVE: NamedTarget("native", parts.router)})
    idle = float(cfg.idle_timeout) if cfg.idle_timeout > 0 else 1e9
    stop = trio.Event()

    async def watch_signals() -> None:
        async for signum in signals:
            log.info("signal received", signal=signal.Signals(signum).name)
            stop.set()

    async with trio.open_nursery() as root:
        root.start_soon(watch_signals)
        root.start_soon(_check_disks, store)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as listeners:
                for kind, sock in socks.items():
                    sock.listen(4096)
                    if kind == "grpc":
                        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                        await listeners.start(functools.partial(serve_listeners, [listener], grpc_front, options=GRPC_OPTIONS))
                    else:
                        listeners.start_soon(_serve_http, sock, http_front, idle, kind, connections)
                await root.start(parts.master.run)
                log.info(
                    "native volume server ready", port=cfg.port, grpc_port=cfg.grpc_port, public_port=cfg.public_port,
                    masters=list(cfg.masters), volumes=len(store.volumes()), version=ctx.full_version,
                    routes_v=routes.version,
                )
                await stop.wait()
                log.info("stopping", pre_stop_seconds=cfg.pre_stop_seconds)
                ctx.state.stopping = True
                front_state.stopping = True
                already = await parts.master.stop_heartbeat()
                if not already:
                    await trio.sleep(cfg.pre_stop_seconds)
                listeners.cancel_scope.cancel()
            connections.cancel_scope.cancel()
        await parts.ctx.http_pool.aclose()
        root.cancel_scope.cancel()
    log.info("stopped", exit_code=0)
    return 0


async def _check_disks(store) -> None:
    """Go re-checks free space every minute: low space makes the volumes read-only."""
    while True:
        await trio.sleep(DISK_CHECK_SECONDS)
        try:
            await trio.to_thread.run_sync(store.check_disk_space)
        except OSError as exc:
            log.warning("disk space check failed", error=str(exc))


async def _serve_http(sock: socket.socket, front: HttpFront, idle: float, kind: str, connections: trio.Nursery) -> None:
    async def on_connection(stream: FastStream) -> None:
        try:
            await serve_connection(stream, front.handle, idle_timeout=idle, port_kind=kind)
        except Exception:  # one connection's bug must not take the server down
            log.exception("http connection failed", port_kind=kind)

    await serve_fast(sock, on_connection, connections)


# -- mixed mode -----------------------------------------------------------------------------------

# Native endpoints mixed mode refuses, besides every endpoint that writes volume files: the Go
# backend owns the heartbeat, so only it knows whether it stopped heartbeating (Leave).
MIXED_GO_ONLY = frozenset({"admin.healthz"})


def mixed_route_problem(routes: RouteTable) -> str | None:
    """Why a route table is unsafe for mixed mode (None if it is fine).

    The Go backend writes the volume files and heartbeats; native handlers only read those
    files (native/follower.py). So every endpoint that writes must stay with Go, and so must
    /healthz, whose answer depends on Go's heartbeat state.
    """
    from weedpy.serve.routes import MUTATING_ENDPOINTS

    native = sorted(e for e in MUTATING_ENDPOINTS | MIXED_GO_ONLY if routes.lookup(e).target.serving_side == "native")
    if not native:
        return None
    return (
        "-mode=mixed keeps the Go backend the only writer of the volume files and the only heartbeat, "
        f"so these endpoints must stay on go: {', '.join(native[:6])}{' ...' if len(native) > 6 else ''} "
        "(use -mode=native to serve them natively)"
    )


def build_mixed(cfg: VolumeConfig, security: SecurityConfig, weed_binary: str, full_version: str) -> NativeParts:
    """Mixed mode's native side: a read-only view of Go's directories, no heartbeat of its own."""
    from native.follower import FollowerStore

    store = FollowerStore.for_config(cfg)
    short = " ".join(full_version.split()[:2])
    return build_parts(cfg, security, store, heartbeat=False, read_only_view=True, weed_binary=weed_binary,
                       version=(short, full_version))


def weed_full_version(weed) -> str:
    """Go's version.Version() of a weed binary (`8000GB 4.48 pypi`), from `weed version`."""
    import subprocess

    try:
        out = subprocess.run([str(weed), "version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    words = out.split()
    if len(words) >= 4 and words[0] == "version":
        return " ".join(words[1:4])
    return f"{go_version(5)} {GO_COMMIT}"


__all__ += ["mixed_route_problem", "build_mixed", "MIXED_GO_ONLY", "weed_full_version"]


def unsupported_targets(routes: RouteTable) -> Sequence[str]:
    """Endpoints a native-mode table sends somewhere native mode cannot serve (there is no Go)."""
    from weedpy.serve.routes import ALL_ENDPOINTS

    return sorted(e for e in ALL_ENDPOINTS if routes.lookup(e).target not in (Target.NATIVE, Target.OFF))


__all__.append("unsupported_targets")
