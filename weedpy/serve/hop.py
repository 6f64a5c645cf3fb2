"""The loopback hop of mixed mode's worker processes: a worker hands the leader the requests whose
target only the leader serves (native, the dual-run targets, the differ's API).

A worker's HTTP front decides the route as usual (its copy of the leader's table, logged with
the table's version); when the target is one of the leader's, it relays the request over HTTP/1.1
to the leader's hop listener, adding one header (`X-Weedpy-Hop`) that carries a secret token,
the worker's number, the port the client used, the target the worker decided, the client's
address and the table version. The leader serves the request on that target with the client's
address and port, and logs it (`hop`) with the same route, target and version.

The hop listens on 127.0.0.1 only (no other host can reach it) and answers 403 to a request
without the token (a local process that is not one of this server's workers). The token is
made by the leader and reaches the workers over their control channel only.

`hop_value` / `parse_hop` are the sans-IO encoding; `HopServer` is the leader's trio shell.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import secrets
import socket
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote

import trio

from weedpy.http1 import Exchange, FastStream, listening_socket, serve_connection, serve_fast
from weedpy.logs import FastEvent, get_logger
from weedpy.serve.http_front import HttpTarget
from weedpy.serve.replies import json_error
from weedpy.serve.routes import http_endpoint, request_path

__all__ = ["HOP_HEADER", "HOP_HOST", "Hop", "HopServer", "hop_value", "new_token", "parse_hop"]

log = get_logger("serve.hop")

HOP_HEADER = b"x-weedpy-hop"
HOP_HOST = "127.0.0.1"  # never another host's: the hop trusts the client address a worker names
FRONT = "front"  # the target name of the leader's whole front (the differ's API)
_IDLE = 3600.0  # a worker's pool drops its idle connections long before this


def new_token() -> str:
    return secrets.token_hex(16)


@dataclasses.dataclass(frozen=True, slots=True)
class Hop:
    """What a worker says about a request it hands on."""

    worker: int
    port_kind: str
    target: str
    client: str
    version: str


@functools.lru_cache(maxsize=64)
def _quoted(version: str) -> str:
    return quote(version, safe="")


def hop_value(token: str, worker: int, port_kind: str, target: str, client: str, version: str) -> bytes:
    """The header's value: `token;worker;port;target;client;version` (the version %-quoted)."""
    return f"{token};{worker};{port_kind};{target};{client};{_quoted(version)}".encode("latin-1")


def parse_hop(value: bytes | None, token: str) -> Hop | None:
    """The hop a header names, or None when it is missing, malformed or has another token."""
    if value is None:
        return None
    parts = value.decode("latin-1").split(";", 5)
    if len(parts) != 6 or not hmac.compare_digest(parts[0].encode("latin-1"), token.encode("latin-1")):
        return None
    _, worker, port_kind, target, client, version = parts
    if not worker.isdigit() or port_kind not in ("admin", "public") or not target or not client:
        return None
    return Hop(int(worker), port_kind, target, client, unquote(version))


class HopServer:
    """The leader's end: serves each hopped request on the target its worker decided.

    `targets` maps a target's name (`native`, `shadow`, `native+verify`, `go`, and `front` for
    the leader's whole front) to its handler. Requests are counted and metered by the worker's
    front, which saw them first; this end only logs them."""

    def __init__(self, token: str, targets: Mapping[str, HttpTarget]) -> None:
        self.token = token
        self._targets = dict(targets)
        self._log = FastEvent("serve.hop", "hop", ("route", "target", "routes_v", "method", "path", "status", "ms",
                                                   "client", "from_worker"), repeating=3,
                              types=(str, str, int, float, str, int)).emit

    def listen(self) -> socket.socket:
        """The hop's listening socket, on a free loopback port."""
        return listening_socket(HOP_HOST, 0)

    async def serve(self, sock: socket.socket, connections: trio.Nursery, send_buffer: int = 0) -> None:
        """Accept workers' connections until cancelled."""
        host, port = sock.getsockname()[:2]
        log.info("hop listening", host=host, port=port)
        await serve_fast(sock, self._connection, connections, send_buffer=send_buffer)

    async def _connection(self, stream: FastStream) -> None:
        try:
            await serve_connection(stream, self.handle, idle_timeout=_IDLE, port_kind="hop")
        except Exception:  # one connection's bug must not take the leader down
            log.exception("hop connection failed")

    async def handle(self, exch: Exchange) -> None:
        t0 = time.perf_counter()
        req = exch.request
        hop = parse_hop(req.header(HOP_HEADER), self.token)
        if hop is None:
            log.warning("hop refused: no valid token", client=exch.client_host)
            exch.close_after = True
            await exch.send(json_error(403, "forbidden", close=True))
            exch.status = 403
            return
        exch.request = req._replace(headers=[(n, v) for n, v in req.headers if n.lower() != HOP_HEADER])
        exch.port_kind = hop.port_kind
        exch.client_host = hop.client
        handler = self._targets.get(hop.target)
        try:
            if handler is None:
                await exch.send(json_error(503, f"routed to {hop.target}, which is not available"))
                exch.status = 503
            else:
                await handler(exch)
        finally:
            path = request_path(req.target)
            self._log(
                http_endpoint(hop.port_kind, req.method, path), hop.target, hop.version, req.method.decode("latin-1"),
                path.decode("latin-1"), exch.status, round((time.perf_counter() - t0) * 1000, 3), hop.client,
                hop.worker,
            )
