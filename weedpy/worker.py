"""`python -m weedpy.worker`: one worker process of a weedpy volume server, started by its leader.

It reads the leader's init message from the control descriptor named by WEEDPY_CONTROL_FD,
parses the server's own arguments again (so its configuration is the leader's), and runs the
mode's worker server on the inherited listening sockets (weedpy/serve/lifecycle.py run_worker).
Nobody starts it by hand: it exits at once when its leader is gone.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

from weedpy.imports import imports_without_gc, libraries_mapped_here, stand_in
from weedpy.serve.http_loop import uvloop_http

# start-up time: see weedpy/imports.py (trio imports idna for host names that are not ASCII)
with imports_without_gc(), libraries_mapped_here(), stand_in("idna"):
    from weedpy.codecache import GeneratedCode

    GENERATED_CODE = GeneratedCode().install()  # weedpy/codecache.py; `main` hands the compile step back

    import trio

    from weedpy.config import parse_volume_args
    from weedpy.logs import configure_logging
    from weedpy.procs import die_with_parent
    from weedpy.security import find_security_file, load_security
    from weedpy.serve.control import ControlChannel, ControlDecoder
    from weedpy.serve.lifecycle import WorkerServer, run_worker
    from weedpy.serve.spread import ConnectionCounts
    from weedpy.serve.live_routes import LiveRoutes
    from weedpy.serve.routes import load_route_table, native_route_table
    from weedpy.serve.workers import CONTROL_FD_ENV

__all__ = ["main"]


def _read_init(sock: socket.socket) -> dict[str, Any]:
    """The first message, read before the event loop starts (the leader sends nothing else first)."""
    decoder = ControlDecoder()
    while (msg := decoder.next_message()) is None:
        data = sock.recv(1 << 16)
        if not data:
            raise SystemExit("weedpy worker: the leader closed the control channel before init")
        decoder.receive_data(data)
    if msg.get("op") != "init":
        raise SystemExit(f"weedpy worker: expected init, got {msg!r}")
    return msg


def main() -> int:
    die_with_parent(os.environ)  # the leader spawned this process without arming it (weedpy/procs.py)
    fd = os.environ.pop(CONTROL_FD_ENV, None)
    if fd is None:
        print("weedpy worker: started without a leader (it is started by `weedpy volume -workers=N`)", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(fd))
    init = _read_init(control)
    cfg = parse_volume_args(init["argv"], config_dir=init.get("config_dir"))
    sink = configure_logging(cfg.log_level, worker=init["worker"])
    security = load_security(find_security_file(cfg.security_file, cfg.config_dir))
    mode = init["mode"]
    if "routes" in init:  # the leader's running table (SIGHUP or the route API may have changed it)
        routes = LiveRoutes(load_route_table(None), mode=mode)
        routes.adopt(init["routes"])
    else:
        table = load_route_table(cfg.routes_file)
        routes = LiveRoutes(native_route_table(None if cfg.routes_file is None else table) if mode == "native"
                            else table, mode=mode)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the leader reloads the table and tells this process
    socks = {kind: socket.socket(fileno=n) for kind, n in init["fds"].items()}
    server: WorkerServer
    send_buffer = 0
    # proxy and native modes: trio as uvloop's guest, the common HTTP requests answered from uvloop's
    # callbacks (weedpy/serve/uv_host.py)
    on_uvloop = False
    if mode in ("proxy", "mixed"):
        with imports_without_gc():
            from gateway.app import RELAY_SOCKET_BUFFER  # each mode imports only its own worker server (start-up time)
            from gateway.worker import ProxyWorker  # likewise
            from weedpy.mixed_worker import MixedWorker  # likewise

        if mode == "proxy":
            on_uvloop = uvloop_http(os.environ)
            server = proxy = ProxyWorker(cfg, security, routes, init, RELAY_SOCKET_BUFFER)
            proxy.uvloop = on_uvloop
        else:
            server = MixedWorker(cfg, security, routes, init, RELAY_SOCKET_BUFFER)
        send_buffer = RELAY_SOCKET_BUFFER
    elif mode == "native":
        with imports_without_gc():
            from native.worker import NativeWorker  # each mode imports only its own worker server (start-up time)

        on_uvloop = uvloop_http(os.environ)
        server = native = NativeWorker(cfg, security, routes, init)
        native.uvloop = on_uvloop
    else:
        print(f"weedpy worker: unknown mode {mode!r}", file=sys.stderr)
        return 2
    spread = (ConnectionCounts.attach(init["spread_fd"], init["processes"], init["worker"])
              if "spread_fd" in init else None)
    args = (cfg, server, ControlChannel(control), socks, send_buffer, sink, spread)
    if on_uvloop:
        with imports_without_gc():
            from weedpy.serve.uv_host import run_trio_on_uvloop  # uvloop loads only for a process on it

        GENERATED_CODE.finish()
        return run_trio_on_uvloop(run_worker, *args)
    GENERATED_CODE.finish()
    return trio.run(run_worker, *args)


if __name__ == "__main__":
    raise SystemExit(main())
