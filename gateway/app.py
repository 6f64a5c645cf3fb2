"""Proxy-mode lifecycle: reserve the front ports, relay heartbeats, bring up Go, serve, stop in order.

Order of start: bind (not yet listen) the front sockets so a busy port fails fast; start the
heartbeat relay (the backend's -master); start the backend and wait until it is ready; only then
listen, so nothing reaches the front before it can be served. On SIGINT/SIGTERM: stop accepting,
report unhealthy, wait -preStopSeconds while open connections finish, stop the backend, exit 0.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from gateway.backend import FrontIdentity
from gateway.backend_args import backend_argv, backend_environ, security_config_dir
from weedpy.serve.guard import Guard
from gateway.heartbeat_relay import HeartbeatRelay
from weedpy.serve.http_front import FrontState, HttpFront
from gateway.http_proxy import GoHttpTarget
from weedpy.serve.routes import GRPC_SERVICE, RouteTable, Target
from gateway.supervisor import BackendStartError, Supervisor
from gateway.grpc_proxy import PROXY_SERVER_OPTIONS, serve_grpc_proxy
from weedpy.serve.grpc_front import NamedTarget
from gateway.request_checks import request_checks
from weedpy.serve.peers import PeerPolicy, master_volume_servers
from gateway.tail_receiver import tail_into_backend
from weedpy.config import Mode, VolumeConfig
from weedpy.http1 import FastStream, UpstreamPool, serve_connection, serve_fast
from weedpy.logs import LineSink, get_logger, log_flushing
from weedpy.security import SecurityConfig

__all__ = ["run_proxy", "weed_version"]

log = get_logger("gateway.app")

# Socket buffers on both hops of the relay. Kernel autotuning would let each hop hold megabytes,
# so a client that stops reading would not stall Go as it does when connected directly (Go counts
# a download as in flight until its last write returns, which the throttling limits rely on).
RELAY_SOCKET_BUFFER = 128 << 10
DUAL_RUN_DRAIN_SECONDS = 10.0  # at stop, how long mirrored writes may take to reach the other store


def weed_version(weed: Path) -> str:
    """`8000GB 4.48` from `weed version` (what Go puts in its Server header)."""
    try:
        out = subprocess.run([str(weed), "version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.split()
    return " ".join(words[1:3]) if len(words) >= 3 and words[0] == "version" else "unknown"


async def run_proxy(
    cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, weed: Path, log_sink: LineSink | None = None,
) -> int:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        socks: dict[str, socket.socket] = {}
        try:
            for kind, port in _front_ports(cfg):
                sock = socket.socket(socket.AF_INET6 if ":" in cfg.bind_ip else socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks[kind] = sock
                try:
                    sock.bind((cfg.bind_ip, port))
                except OSError as exc:
                    log.error("cannot bind front port", port=port, bind_ip=cfg.bind_ip, error=exc.strerror)
                    print(f"weedpy: cannot bind {cfg.bind_ip}:{port}: {exc.strerror}", file=sys.stderr)
                    return 1
            async with log_flushing(log_sink):
                return await _run_bound(cfg, security, routes, weed, socks, signals)
        finally:
            for sock in socks.values():
                sock.close()


def _front_ports(cfg: VolumeConfig) -> list[tuple[str, int]]:
    ports = [("admin", cfg.port), ("grpc", cfg.grpc_port)]
    if cfg.split_public_port:
        ports.append(("public", cfg.public_port))
    return ports


async def _run_bound(
    cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, weed: Path,
    socks: dict[str, socket.socket], signals: AsyncIterator[int],
) -> int:
    state = FrontState()
    front = FrontIdentity(
        ip=cfg.ip, port=cfg.port, grpc_port=cfg.grpc_port, public_url=cfg.public_url, server_id=cfg.server_id,
    )
    server_header = f"SeaweedFS Volume {weed_version(weed)}".encode()
    config_dir = security_config_dir(cfg)
    guard = Guard.from_entries(cfg.whitelist + security.guard_white_list)
    stop = trio.Event()
    exit_code = 0

    async def watch_signals() -> None:
        async for signum in signals:
            log.info("signal received", signal=signal.Signals(signum).name)
            stop.set()

    async with trio.open_nursery() as root:
        root.start_soon(watch_signals)
        relay = HeartbeatRelay(cfg.masters, front)
        master_arg = await root.start(relay.run)
        supervisor = Supervisor(
            lambda ports: backend_argv(cfg, weed, ports, master_arg, config_dir),
            split_public=cfg.split_public_port,
            env=backend_environ(os.environ),
        )
        relay.set_backend(supervisor)
        policy = None if cfg["volume.allowUntrustedRemoteEndpoints"] else PeerPolicy(
            cfg.ip, functools.partial(master_volume_servers, cfg.masters),
        )
        checks = request_checks(policy, cfg.masters, master_arg, guard)
        dual_native = None
        if cfg.mode is Mode.MIXED:
            from difftool.gateway import DualRunConfigError, StoresDiffer, dual_run_requested, prepare_native

            if dual_run_requested(routes):
                from native.server import weed_full_version

                try:  # before Go starts: both stores must start equal
                    dual_native = await trio.to_thread.run_sync(
                        prepare_native, cfg, security, str(weed), weed_full_version(weed))
                except (DualRunConfigError, StoresDiffer, OSError) as exc:
                    log.error("dual-run cannot start", error=str(exc))
                    print(f"weedpy: {exc}", file=sys.stderr)
                    exit_code = 1
                    stop.set()
        with trio.CancelScope() as startup:
            root.start_soon(_cancel_on, stop, startup)
            try:
                await root.start(supervisor.run)
            except BackendStartError as exc:
                log.error("backend failed to start", error=str(exc))
                print(f"weedpy: the Go backend failed to start:\n{exc}", file=sys.stderr)
                exit_code = 1
                stop.set()
        pool = UpstreamPool(
            idle_ttl=max(1.0, min(15.0, cfg.idle_timeout / 2 if cfg.idle_timeout else 15.0)),
            buffer_size=RELAY_SOCKET_BUFFER,
        )
        native = None
        dual = None
        control: Supervisor | None = None
        if not stop.is_set() and cfg.mode is Mode.MIXED:
            from native.server import build_mixed, weed_full_version

            if dual_native is not None:
                from difftool.gateway import GatewayDualRun, control_argv, control_dirs
                from native.server import GRPC_OPTIONS

                native = dual_native
                if control_dirs(cfg):  # a second Go backend as the differ's noise control
                    control = Supervisor(
                        lambda ports: control_argv(backend_argv(cfg, weed, ports, master_arg, config_dir), cfg,
                                                   dual.null_master.address),
                        split_public=cfg.split_public_port, env=backend_environ(os.environ),
                    )
                dual = GatewayDualRun(routes, native, supervisor, cfg, weed_version(weed), native.ctx.full_version,
                                      guard, GRPC_OPTIONS, PROXY_SERVER_OPTIONS, control)
                await root.start(dual.run)
                if control is not None:
                    try:
                        await root.start(control.run)
                    except BackendStartError as exc:
                        log.error("control backend failed to start", error=str(exc))
                        print(f"weedpy: the control Go backend failed to start:\n{exc}", file=sys.stderr)
                        exit_code = 1
                        stop.set()
            else:
                native = build_mixed(cfg, security, str(weed), weed_full_version(weed))
        if not stop.is_set():
            go = GoHttpTarget(supervisor, pool, front_address=f"{cfg.ip}:{cfg.port}")
            http_targets = {Target.GO: go.handle}
            grpc_targets = {}
            if native is not None:
                http_targets[Target.NATIVE] = native.http.handle
                grpc_targets[Target.NATIVE] = NamedTarget("native", native.router)
            if dual is not None:
                control_http = GoHttpTarget(control, pool).handle if control is not None else None
                http_targets.update(dual.http_targets(go.handle, control_http))
            http_front = HttpFront(routes, http_targets, guard, server_header, state)
            http_handler = dual.admin(http_front.handle) if dual is not None else http_front
            idle = float(cfg.idle_timeout) if cfg.idle_timeout > 0 else 1e9
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as listeners:
                    for kind, sock in socks.items():
                        sock.listen(4096)
                        if kind == "grpc":
                            listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                            listeners.start_soon(functools.partial(
                                serve_grpc_proxy, listener, supervisor, routes=routes, targets=grpc_targets, checks=checks,
                                local={GRPC_SERVICE + "VolumeTailReceiver": tail_into_backend},
                                wrap_targets=dual.grpc_targets if dual is not None else None,
                                front_address=f"{cfg.ip}:{cfg.port}",
                            ))
                        else:
                            listeners.start_soon(_serve_http, sock, http_handler, idle, kind, connections)
                    log.info(
                        "gateway ready", mode=cfg.mode.value, port=cfg.port, grpc_port=cfg.grpc_port,
                        public_port=cfg.public_port, routes_v=routes.version, server=server_header.decode(),
                    )
                    await stop.wait()
                    log.info("stopping: no new connections", pre_stop_seconds=cfg.pre_stop_seconds)
                    state.stopping = True
                    listeners.cancel_scope.cancel()
                await trio.sleep(cfg.pre_stop_seconds)
                if dual is not None:  # let mirrored writes reach the native store before Go stops
                    with trio.move_on_after(DUAL_RUN_DRAIN_SECONDS):
                        await dual.engine.wait_idle()
                await supervisor.stop()
                connections.cancel_scope.cancel()
        await supervisor.stop()
        if control is not None:
            await control.stop()
        await pool.aclose()
        if native is None and dual_native is not None:
            native = dual_native
        if native is not None:
            await native.ctx.http_pool.aclose()
            native.ctx.store.close()
        root.cancel_scope.cancel()
    log.info("stopped", exit_code=exit_code)
    return exit_code


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _serve_http(
    listener: socket.socket, front: HttpFront, idle: float, kind: str, connections: trio.Nursery,
) -> None:
    async def on_connection(stream: FastStream) -> None:
        try:
            await serve_connection(stream, front.handle, idle_timeout=idle, port_kind=kind)
        except Exception:
            # A bug in one exchange must not take the volume server down; the connection is gone.
            log.exception("http connection failed", port_kind=kind)

    await serve_fast(listener, on_connection, connections, send_buffer=RELAY_SOCKET_BUFFER)
