"""A volume server process from start to stop, the same in every mode.

`run_server(cfg, server)` does what each mode shares, in this order:

1. bind (not yet listen on) the admin, public and gRPC ports, so a busy port fails at once with
   `weedpy: cannot bind IP:PORT: REASON` and exit 1;
2. `server.start(nursery)`: the mode's start-up (open the store, start the Go backend, ...),
   cancelled by SIGINT/SIGTERM; it returns the handlers to serve, or raises `StartupError`
   (its message is printed, exit 1);
3. listen and serve: HTTP connections live in their own nursery, so they outlive the listeners
   while the server drains; gRPC connections end with their listener; gRPC and the admin port
   speak TLS when security.toml says so (`front_tls`, weedpy.tls: a file that cannot be used
   fails the start-up before any port is bound);
4. `server.serving(nursery)` (e.g. register with the master), then wait for SIGINT/SIGTERM;
   meanwhile SIGHUP reads the `-routes` file again and the admin API (`/weedpy/routes`) changes
   the running table (`Fronts.routes`, weedpy/serve/live_routes.py);
5. `server.stop(stop_listening)`: the mode's stop order (what it tells the master, how long it
   drains: -preStopSeconds), calling `stop_listening()` when the ports must close;
6. cancel the remaining connections, then `server.close()` (shielded), exit 0.

With `-workers=N` (default: every usable core) the leader (this process) spawns N-1 worker
processes that accept on the same admin and public sockets (inherited; the process holding the
fewest connections takes a new one: weedpy/serve/spread.py) while the leader alone serves gRPC, talks to
the master and owns the server's state (weedpy/serve/workers.py). `Fronts.workers` says what a
worker needs; a mode that cannot share its work leaves it None and runs alone. Each worker runs
`run_worker`: it serves HTTP until the leader says to stop, applying every state change the
leader sends before acknowledging it (a new route table too), and exits at once if the leader
goes away. A route API request that reaches a worker is answered by the leader (`LeaderLink`).
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from weedpy.config import VolumeConfig
from weedpy.grpc import CallHandler, ServerOptions, serve_listeners
from weedpy.http1 import Exchange, FastStream, Spread, serve_connection, serve_fast
from weedpy.logs import LineSink, fatal_line, get_logger, log_flushing
from weedpy.security import find_security_file, load_security
from weedpy.serve.control import ControlChannel, ControlClosed
from weedpy.serve.live_routes import LiveRoutes, RoutesApi, RoutesHttp
from weedpy.serve.routes import RouteTableError
from weedpy.serve.spread import ConnectionCounts
from weedpy.serve.workers import WorkerPool
from weedpy.tls import ServerTls, TlsConfigError, TlsListener, TlsStream, VolumeTls, load_volume_tls, serve_https

__all__ = [
    "Fronts", "HttpServe", "Server", "StartupError", "WorkerSpec", "WorkerServer", "bind_fronts", "front_ports",
    "front_tls",
    "run_server",
    "run_worker",
]

log = get_logger("serve.lifecycle")

LISTEN_BACKLOG = 4096
HttpHandler = Callable[[Exchange], Awaitable[None]]
# Serves one plain-HTTP listening socket in place of trio's connection loop (weedpy/serve/uv_host.py:
# proxy mode's uvloop relay in a worker, native mode's reads and uploads): (socket, port kind, the
# handler of what it hands over to trio's path, idle timeout, the nursery connections live in, the
# connection counts).
HttpServe = Callable[[socket.socket, str, HttpHandler, float, trio.Nursery, "Spread | None"], Awaitable[None]]


class StartupError(Exception):
    """The server cannot start; the message is the one line the operator sees, `exit_code` the status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerSpec:
    """How a mode shares its HTTP ports with worker processes."""

    count: int  # processes in all, the leader included
    init: Callable[[int], dict[str, Any]]  # what worker n's init message carries (JSON), built when it starts
    attach: Callable[[WorkerPool], None]  # hands the mode the pool it broadcasts state changes to
    extra_fds: tuple[int, ...] = ()  # descriptors every worker inherits (the shared block)
    # The leader leaves new HTTP connections to the workers, taking one only while none accepts
    # (proxy mode, whose workers relay on uvloop: gateway/uv_relay.py).
    leader_defers: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Fronts:
    """What the listeners serve: one HTTP handler for the admin and public ports, one gRPC handler."""

    http: HttpHandler
    grpc: CallHandler
    grpc_options: ServerOptions
    send_buffer: int = 0  # caps each HTTP connection's send buffer (0: the kernel's autotuning)
    workers: WorkerSpec | None = None  # None: this mode runs in one process
    routes: RoutesApi | None = None  # the running table's admin API (SIGHUP reloads it too)
    metrics: HttpHandler | None = None  # the -metricsPort listener's handler (weedpy/serve/metrics.py)
    # what serves the plain-HTTP ports instead of trio's loop (native mode on uvloop: weedpy/serve/uv_host.py)
    http_serve: HttpServe | None = None


class Server(Protocol):
    async def start(self, nursery: trio.Nursery) -> Fronts:
        """Everything before the ports listen; long-lived tasks go into `nursery`."""

    async def serving(self, nursery: trio.Nursery) -> None:
        """The ports listen: what starts now (registering with the master), and the ready log line."""

    async def stop(self, stop_listening: Callable[[], Awaitable[None]]) -> None:
        """The mode's stop order after a signal; awaits `stop_listening()` when the ports must close."""

    async def close(self) -> None:
        """Release what `start` acquired (runs shielded, after every connection ended, even on failure)."""


def front_ports(cfg: VolumeConfig) -> list[tuple[str, int]]:
    """(kind, port) of each listener: admin, gRPC, public when it has a port of its own, and
    metrics with -metricsPort (on -metricsIp, else -ip.bind, else -ip: Go's order)."""
    ports = [("admin", cfg.port), ("grpc", cfg.grpc_port)]
    if cfg.split_public_port:
        ports.append(("public", cfg.public_port))
    if cfg["metricsPort"]:
        ports.append(("metrics", cfg["metricsPort"]))
    return ports


def bind_fronts(cfg: VolumeConfig) -> dict[str, socket.socket]:
    """Bound, not yet listening sockets by kind; StartupError names the port that is taken."""
    socks: dict[str, socket.socket] = {}
    ip = cfg.bind_ip
    try:
        for kind, port in front_ports(cfg):
            ip = (cfg["metricsIp"] or cfg.bind_ip) if kind == "metrics" else cfg.bind_ip
            sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
            socks[kind] = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
    except OSError as exc:
        for sock in socks.values():
            sock.close()
        raise StartupError(f"cannot bind {ip}:{port}: {exc.strerror}") from exc
    return socks


def front_tls(cfg: VolumeConfig) -> VolumeTls:
    """The TLS security.toml asks for (weedpy.tls); StartupError names a file that cannot be used."""
    try:
        return load_volume_tls(load_security(find_security_file(cfg.security_file, cfg.config_dir)))
    except TlsConfigError as exc:
        raise StartupError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read security configuration: {exc}") from None


async def run_server(cfg: VolumeConfig, server: Server, log_sink: LineSink | None = None) -> int:
    """Run `server` on the configured ports until SIGINT/SIGTERM (see the module docstring)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        try:
            tls = front_tls(cfg)
            socks = bind_fronts(cfg)
        except StartupError as exc:
            return _startup_failed(exc)
        try:
            async with log_flushing(log_sink):
                return await _run_bound(cfg, server, socks, signals, tls)
        finally:
            for sock in socks.values():
                sock.close()


async def _run_bound(
    cfg: VolumeConfig, server: Server, socks: dict[str, socket.socket], signals, tls: VolumeTls,
) -> int:
    stop = trio.Event()
    exit_code = 0
    serving: list[Fronts] = []  # the fronts once they serve (SIGHUP reloads their route table)

    async def watch_signals() -> None:
        async for signum in signals:
            log.info("signal received", signal=signal.Signals(signum).name)
            if signum != signal.SIGHUP:
                stop.set()
            elif serving and serving[0].routes is not None:
                root.start_soon(_reload_routes, serving[0].routes.live)
            else:
                log.warning("SIGHUP ignored: there is no route table to read again yet")

    try:
        async with trio.open_nursery() as root:
            root.start_soon(watch_signals)
            fronts = None
            with trio.CancelScope() as startup:
                root.start_soon(_cancel_on, stop, startup)
                try:
                    fronts = await server.start(root)
                except StartupError as exc:
                    exit_code = _startup_failed(exc)
            if fronts is not None and not stop.is_set():
                await _serve(cfg, server, fronts, socks, stop, root, tls, serving)
            root.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await server.close()
    log.info("stopped", exit_code=exit_code)
    return exit_code


async def _reload_routes(live: LiveRoutes) -> None:
    try:
        await live.reload("sighup")
    except RouteTableError:
        pass  # logged with the entry; the running table stays


def _share_routes(api: RoutesApi, pool: WorkerPool) -> None:
    """Every worker serves the leader's table: in its init message (`WorkerPool` init, see
    `_serve`), in each change (acknowledged before the change returns), and the route API's
    answers come from the leader."""
    live = api.live

    async def broadcast(_: LiveRoutes) -> None:
        await pool.broadcast({"op": "routes", "routes": live.message()})

    async def on_call(msg: dict[str, Any]) -> dict[str, Any]:
        if msg.get("op") != "routes_api":
            raise ValueError(f"unknown call {msg.get('op')!r}")
        status, doc = await api.answer(msg["method"], msg["path"], msg["body"].encode("latin-1"), msg["client"])
        return {"status": status, "doc": doc}

    live.subscribe(broadcast)
    pool.on_call = on_call


async def _serve(
    cfg: VolumeConfig, server: Server, fronts: Fronts, socks: dict[str, socket.socket], stop: trio.Event,
    root: trio.Nursery, tls: VolumeTls, serving: list[Fronts] | None = None,
) -> None:
    idle = _idle(cfg)
    for sock in socks.values():
        sock.listen(LISTEN_BACKLOG)
    pool = None
    spread: ConnectionCounts | None = None  # with workers: who holds how many connections
    spec = fronts.workers
    if spec is not None and spec.count > 1:
        http_socks = {kind: sock for kind, sock in socks.items() if kind in ("admin", "public")}
        init = spec.init
        if fronts.routes is not None:
            live = fronts.routes.live
            init = lambda number: {**spec.init(number), "routes": live.message()}  # noqa: E731
        spread = ConnectionCounts.create(spec.count, defers=spec.leader_defers)
        pool = WorkerPool(spec.count, http_socks, init, spec.extra_fds, spread)
        if fronts.routes is not None:
            _share_routes(fronts.routes, pool)
        spec.attach(pool)
    http = fronts.http if fronts.routes is None else RoutesHttp(fronts.routes.answer, fronts.http).handle
    if serving is not None:
        serving.append(fronts)
    async with trio.open_nursery() as connections:
        listening = await connections.start(
            functools.partial(_listen, socks, http, fronts.send_buffer, idle, connections, fronts, tls, spread=spread,
                              plain=fronts.http_serve))
        if spread is not None:
            spread.accepting(True)
        if pool is not None:
            await root.start(pool.run)
        await server.serving(root)
        await stop.wait()

        async def stop_listening() -> None:
            listening.cancel()
            if spread is not None:
                spread.accepting(False)
            if pool is not None:
                await pool.broadcast({"op": "stop_listening"})

        if pool is not None:
            await pool.broadcast({"op": "stopping"})
        await server.stop(stop_listening)
        listening.cancel()
        if pool is not None:
            await pool.stop()
        if spread is not None:
            spread.close()
        connections.cancel_scope.cancel()


async def _listen(
    socks: dict[str, socket.socket], http: HttpHandler, send_buffer: int, idle: float, connections: trio.Nursery,
    fronts: Fronts | None = None, tls: VolumeTls = VolumeTls(), *, spread: Spread | None = None,
    plain: HttpServe | None = None, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept on every socket until the scope handed to `task_status` is cancelled. HTTP
    connections live on in `connections` (they drain after the listeners close); gRPC ones end
    with their listener. `tls`: gRPC and the admin port speak TLS when security.toml says so.
    `plain`: what serves the HTTP ports that speak plain HTTP, instead of trio's loop."""
    async with trio.open_nursery() as listeners:
        for kind, sock in socks.items():
            if kind == "metrics":  # plain HTTP, as Go's metrics listener; the leader's alone
                if fronts is not None and fronts.metrics is not None:
                    listeners.start_soon(_serve_http, sock, fronts.metrics, 0, idle, kind, connections, None)
            elif kind == "grpc":
                assert fronts is not None
                listener: trio.abc.Listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                if tls.grpc_server is not None:
                    listener = TlsListener(listener, tls.grpc_server)
                await listeners.start(functools.partial(
                    serve_listeners, [listener], fronts.grpc, options=fronts.grpc_options))
            else:
                https = tls.https_server if kind == "admin" else None  # Go: the public port stays HTTP
                if https is None and plain is not None:
                    listeners.start_soon(plain, sock, kind, http, idle, connections, spread)
                else:
                    listeners.start_soon(_serve_http, sock, http, send_buffer, idle, kind, connections, https, spread)
        task_status.started(listeners.cancel_scope)


def _idle(cfg: VolumeConfig) -> float:
    return float(cfg.idle_timeout) if cfg.idle_timeout > 0 else 1e9


async def _serve_http(
    sock: socket.socket, handler: HttpHandler, send_buffer: int, idle: float, kind: str, connections: trio.Nursery,
    https: ServerTls | None = None, spread: Spread | None = None,
) -> None:

    async def on_connection(stream: FastStream | TlsStream) -> None:
        try:
            await serve_connection(stream, handler, idle_timeout=idle, port_kind=kind)
        except Exception:  # one connection's bug must not take the server down; the connection is gone
            log.exception("http connection failed", port_kind=kind)

    if https is not None:
        await serve_https(sock, https, on_connection, connections, send_buffer=send_buffer)
    else:
        await serve_fast(sock, on_connection, connections, send_buffer=send_buffer, spread=spread)


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _startup_failed(exc: StartupError) -> int:
    log.error("cannot start", error=str(exc))
    fatal_line(str(exc))
    return exc.exit_code


# -- worker processes ------------------------------------------------------------------------------


class WorkerServer(Protocol):
    """What a mode runs in a worker process: HTTP only, on the leader's sockets. Its HTTP front
    serves from `routes`, which follows the leader's table."""

    routes: LiveRoutes

    async def start(self, nursery: trio.Nursery) -> HttpHandler:
        """Everything before accepting (open the store view, the relay pools, ...)."""

    async def control(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """Apply a state change the leader broadcast (`op` says which); done when it returns.
        A question (`metrics`) is answered by the dict returned, sent with the acknowledgement."""

    def stopping(self) -> None:
        """The leader is stopping: /healthz answers 503 from now on."""

    async def close(self) -> None: ...


def _plain_http(server: WorkerServer) -> HttpServe | None:
    """A worker server may serve its plain-HTTP ports itself: its `http_serve` attribute, when set
    (an `HttpServe`; proxy mode's uvloop relay)."""
    return getattr(server, "http_serve", None)


class LeaderLink:
    """A worker's calls to its leader over the control channel (`{"call": n, ...}` answered by
    `{"reply": n, ...}`; `_follow_leader` hands the replies in)."""

    CALL_TIMEOUT = 120.0  # a route change waits for every worker to apply it

    def __init__(self, channel: ControlChannel) -> None:
        self._channel = channel
        self._next = 0
        self._waiting: dict[int, list[Any]] = {}

    async def call(self, msg: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        n = self._next
        slot: list[Any] = [trio.Event(), None]
        self._waiting[n] = slot
        try:
            await self._channel.send({**msg, "call": n})
            with trio.fail_after(self.CALL_TIMEOUT):
                await slot[0].wait()
        finally:
            self._waiting.pop(n, None)
        return slot[1]

    def resolve(self, msg: dict[str, Any]) -> None:
        slot = self._waiting.get(msg.get("reply"))
        if slot is not None:
            slot[1] = msg
            slot[0].set()

    async def routes_api(self, method: str, path: str, body: bytes, client: str) -> tuple[int, dict[str, Any]]:
        """The route API, answered by the leader (the only process that changes the table)."""
        try:
            reply = await self.call({"op": "routes_api", "method": method, "path": path,
                                     "body": body.decode("latin-1"), "client": client})
        except (ControlClosed, trio.TooSlowError) as exc:
            return 503, {"error": f"the leader did not answer: {exc}"}
        if "error" in reply:
            return 500, {"error": reply["error"]}
        return int(reply["status"]), reply["doc"]


async def run_worker(
    cfg: VolumeConfig, server: WorkerServer, channel: ControlChannel, socks: dict[str, socket.socket],
    send_buffer: int = 0, log_sink: LineSink | None = None, spread: ConnectionCounts | None = None,
) -> int:
    """Serve HTTP on the inherited `socks` for the leader until it says `stop` (exit 0) or goes
    away (exit 1: whatever it was doing, this process must not go on serving alone)."""
    idle = _idle(cfg)
    exit_code = 0
    try:
        tls = front_tls(cfg)
    except StartupError as exc:
        await channel.send({"ready": False, "error": str(exc)})
        return 1
    try:
        async with log_flushing(log_sink):
            async with trio.open_nursery() as root:
                try:
                    handler = await server.start(root)
                except StartupError as exc:
                    await channel.send({"ready": False, "error": str(exc)})
                    return 1
                await channel.send({"ready": True})
                link = LeaderLink(channel)
                handler = RoutesHttp(link.routes_api, handler).handle
                async with trio.open_nursery() as connections:
                    try:
                        await _follow_leader(server, channel, socks, handler, send_buffer, idle, connections, tls,
                                             link, spread)
                    except ControlClosed:
                        log.error("the leader is gone: stopping this worker")
                        exit_code = 1
                    connections.cancel_scope.cancel()
                root.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await server.close()
    return exit_code


async def _follow_leader(
    server: WorkerServer, channel: ControlChannel, socks: dict[str, socket.socket], handler: HttpHandler,
    send_buffer: int, idle: float, connections: trio.Nursery, tls: VolumeTls = VolumeTls(),
    link: LeaderLink | None = None, spread: ConnectionCounts | None = None,
) -> None:
    listening = trio.CancelScope()
    while True:
        msg = await channel.receive()
        if "reply" in msg:  # the leader's answer to one of this worker's calls
            if link is not None:
                link.resolve(msg)
            continue
        op = msg.get("op")
        error = None
        if "routes" in msg and op in ("routes", "resync"):  # the leader's table, validated there
            try:
                server.routes.adopt(msg["routes"])
            except Exception as exc:  # noqa: BLE001 - reported to the leader, which replaces this worker
                log.exception("cannot apply the leader's route table")
                error = f"{type(exc).__name__}: {exc}"
            if op == "routes" or error is not None:
                await channel.send({"ack": msg.get("seq"), **({"error": error} if error else {})})
                continue
        answer: dict[str, Any] | None = None
        if op == "serve":
            listening = await connections.start(
                functools.partial(_listen, socks, handler, send_buffer, idle, connections, None, tls, spread=spread,
                                  plain=_plain_http(server)))
            if spread is not None:
                spread.accepting(True)
        elif op == "stopping":
            server.stopping()
        elif op == "stop_listening":
            listening.cancel()
            if spread is not None:
                spread.accepting(False)
        elif op == "stop":
            await channel.send({"ack": msg.get("seq")})
            return
        else:
            try:
                answer = await server.control(msg)
            except Exception as exc:  # noqa: BLE001 - reported to the leader, which replaces this worker
                log.exception("cannot apply a state change", op=op)
                error = f"{type(exc).__name__}: {exc}"
        reply: dict[str, Any] = {"ack": msg.get("seq")}
        if answer:
            reply.update(answer)
        if error is not None:
            reply["error"] = error
        await channel.send(reply)
