"""The gateway's gRPC relay to the Go backend, behind the shared gRPC front (weedpy.serve.GrpcFront).

Entry point (gateway/app.py builds the same from its parts):

    await serve_grpc_proxy(listener, backend)                     # everything relayed to Go
    await serve_grpc_proxy(listener, backend, routes=table, targets={Target.NATIVE: native},
                           checks={"/volume_server_pb.VolumeServer/VolumeCopy": check})
    # task_status.started() once the listener is being served.

* `routes` and `targets` are the front's (weedpy.serve.GrpcFront: route by full method path, one
  log event per call); `Target.GO` is always `GoRelay`.
* `GoRelay` forwards each call to `backend.current().grpc` over pooled h2 connections as opaque
  bytes: request headers (minus connection-specific ones; grpc-timeout unchanged), DATA both ways,
  response headers / trailers / trailers-only responses unchanged (but for Go naming its private
  ip:port: in grpc-message, and in BatchDelete's results; and for a refusal a check left to the
  backend's turn), RST_STREAM both ways. Client DATA
  is acknowledged only once the backend's window took it, backend DATA only once the client's window
  took it, so a 1 GiB CopyFile holds a few windows of memory, never the file.
* `checks` is the request hook (gateway/request_checks.py): for the listed methods the relay first
  reads the (first) request message and calls `await check(call, raw_message_bytes)`, which may
  decode it and raise `GrpcError` to refuse (a unary call's refusal ends with Go's
  x-amz-request-id trailer), or return replacement bytes to forward instead (None forwards the
  message unchanged); then it relays the rest.
* `local` lists the few methods the gateway answers itself instead of relaying, after the check,
  using the backend's own rpcs (gateway/tail_receiver.py: VolumeTailReceiver, whose Go 4.48
  version turns tailed deletions into live empty needles).
* The call's deadline (grpc-timeout) is enforced by the serving shell: DEADLINE_EXCEEDED to the
  client, the backend stream reset.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence

import trio
from google.protobuf.message import DecodeError

from gateway.backend import BackendEndpoints, BackendView
from gateway.request_checks import REFUSAL_RESTORED, restore_refusal
from proto import volume_server_pb2 as vs
from weedpy.grpc import (
    ConnectionPool,
    ConnectionSettings,
    DataReceived,
    GrpcError,
    InputEnded,
    ResponseStarted,
    ServerCall,
    ServerOptions,
    Status,
    StreamHandle,
    StreamReset,
    TrailersReceived,
    encode_message,
    percent_decode,
    percent_encode,
    serve_listeners,
)
from weedpy.serve.grpc_front import CallTarget, GrpcFront, request_id_trailer
from weedpy.serve.routes import RouteTable, Target, default_route_table

__all__ = [
    "BackendPools",
    "GoRelay",
    "LocalHandler",
    "RequestCheck",
    "forward_headers",
    "serve_grpc_proxy",
]

# Never forwarded: hop-by-hop headers (h2 already refuses most of them from clients).
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"})

RequestCheck = Callable[[ServerCall, bytes], Awaitable[bytes | None]]
# Answers a call itself, through the backend's own rpcs at the given gRPC address.
LocalHandler = Callable[[ServerCall, bytes, tuple[str, int]], Awaitable[None]]

# No message limits on the relay path (bytes are opaque); the check hook reads one message of up to 4 MiB.
PROXY_SERVER_OPTIONS = ServerOptions(max_send_message_length=None)
BACKEND_SETTINGS = ConnectionSettings(validate_inbound_headers=False)  # our own Go backend
BACKEND_CONNECT_TIMEOUT = 2.0


def forward_headers(headers: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """Request headers for the backend: everything but hop-by-hop headers, order kept."""
    return [(k, v) for k, v in headers if k not in _HOP_BY_HOP and not (k == b"te" and v != b"trailers")]


class BackendPools:
    """One ConnectionPool per backend gRPC address; a new address (backend restarted) retires the old.
    `tls`: dial with gRPC mTLS (the heartbeat relay's pools to the real master)."""

    def __init__(
        self, nursery: trio.Nursery, settings: ConnectionSettings = BACKEND_SETTINGS, tls: ssl.SSLContext | None = None,
    ) -> None:
        self._nursery = nursery
        self._settings = settings
        self._tls = tls
        self._pools: dict[tuple[str, int], ConnectionPool] = {}

    def get(self, address: tuple[str, int]) -> ConnectionPool:
        pool = self._pools.get(address)
        if pool is None:
            for stale in self._pools.values():
                stale.close()
            self._pools.clear()
            pool = self._pools[address] = ConnectionPool(
                address[0], address[1], self._nursery, settings=self._settings, connect_timeout=BACKEND_CONNECT_TIMEOUT,
                tls=self._tls,
            )
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


class GoRelay:
    """Relays calls to the Go backend as opaque HTTP/2 streams."""

    name = "go"

    def __init__(
        self, backend: BackendView, pools: BackendPools, checks: Mapping[str, RequestCheck] = {},
        front_address: str | None = None, local: Mapping[str, LocalHandler] = {},
        on_error: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        self._backend = backend
        self._on_error = on_error  # a call that could not reach the backend, by reason
        self._pools = pools
        self._checks = dict(checks)
        self._local = dict(local)
        # Go names itself (its private ip:port) in some error messages; clients must see the front.
        self._front_address = front_address.encode() if front_address else None

    def _aliases(self, endpoints: BackendEndpoints) -> tuple[bytes, bytes] | None:
        if self._front_address is None:
            return None
        return b"%s:%d" % (endpoints.http[0].encode(), endpoints.http[1]), self._front_address

    async def handle(self, call: ServerCall) -> None:
        endpoints = self._backend.current()
        if endpoints is None:
            self._on_error("backend_unavailable")
            raise GrpcError(Status.UNAVAILABLE, "volume server backend is not available")
        first: bytes | None = None
        check = self._checks.get(call.method)
        local = self._local.get(call.method)
        if check is not None or local is not None:
            first = await call.receive_message()
            if first is not None and check is not None:
                try:
                    replacement = await check(call, first)
                except GrpcError as exc:  # as Go's handler refuses: its unary interceptor's trailer
                    if exc.trailing_metadata or not _unary(call.method):
                        raise
                    raise GrpcError(exc.status, exc.message, request_id_trailer(call)) from None
                if replacement is not None:
                    first = replacement
        if local is not None and first is not None:
            await local(call, first, endpoints.grpc)
            return
        try:
            upstream = await self._pools.get(endpoints.grpc).open_stream(forward_headers(call.headers))
        except (GrpcError, OSError):
            self._on_error("connect_failed")
            raise
        error: GrpcError | None = None
        try:
            if await _relay_requests(call, upstream, first, ready_only=True):
                await _relay_responses(call, upstream, self._aliases(endpoints))  # the request is through: no second task
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_relay_requests, call, upstream, None)
                try:
                    await _relay_responses(call, upstream, self._aliases(endpoints))
                except GrpcError as exc:  # raised after the nursery, unwrapped
                    error = exc
                nursery.cancel_scope.cancel()  # the call is over; the client may still be sending
        finally:
            upstream.release()  # resets the backend stream unless it ended cleanly
        if error is not None:
            raise error


async def _relay_requests(call: ServerCall, upstream: StreamHandle, first: bytes | None, ready_only: bool = False) -> bool:
    """Client DATA to the backend, acknowledged to the client only once the backend took it.

    With `ready_only`, relay only what has already arrived; True once the request has ended
    (a unary request usually has: then the call needs no second task).
    """
    try:
        if first is not None:
            await upstream.send_data(encode_message(first))
        while not (ready_only and not call.input_ready):
            ev = await call.receive_data()
            if ev is None:
                upstream.end()
                return True
            await upstream.send_data(ev.data)
            call.acknowledge(ev.flow_len)
    except GrpcError:
        # The backend stream or connection went away: the response side reports how it ended.
        return True
    return False


@functools.cache
def _unary(method: str) -> bool:
    """Neither side streams (Go's unary interceptor runs on these)."""
    service, _, name = method.lstrip("/").partition("/")
    for svc in vs.DESCRIPTOR.services_by_name.values():
        if svc.full_name == service and name in svc.methods_by_name:
            m = svc.methods_by_name[name]
            return not (m.client_streaming or m.server_streaming)
    return False


def _unalias(headers: Sequence[tuple[bytes, bytes]], aliases: tuple[bytes, bytes] | None) -> Sequence[tuple[bytes, bytes]]:
    """grpc-message with the backend's private address replaced by the front's."""
    if aliases is None:
        return headers
    old, new = aliases
    return [(k, v.replace(old, new)) if k == b"grpc-message" and old in v else (k, v) for k, v in headers]


def _restore_refusals(method: str, headers: Sequence[tuple[bytes, bytes]]) -> Sequence[tuple[bytes, bytes]]:
    """A refusal the gateway left to the backend's turn (gateway/request_checks.py), as its message."""
    if method not in REFUSAL_RESTORED:
        return headers
    out = []
    for k, v in headers:
        if k == b"grpc-message":
            refusal = restore_refusal(percent_decode(v))
            if refusal is not None:
                v = percent_encode(refusal)
        out.append((k, v))
    return out


def _unalias_batch_delete(raw: bytes, old: bytes, new: bytes) -> bytes:
    """BatchDelete names the server in a result's error ("volume N not found on ip:port")."""
    msg = vs.BatchDeleteResponse()
    msg.ParseFromString(raw)
    o, n = old.decode(), new.decode()
    for r in msg.results:
        if o in r.error:
            r.error = r.error.replace(o, n)
    return msg.SerializeToString()


# Methods whose response messages (small, unary) name the backend: rewritten whole.
_MESSAGE_UNALIAS: Mapping[str, Callable[[bytes, bytes, bytes], bytes]] = {
    "/volume_server_pb.VolumeServer/BatchDelete": _unalias_batch_delete,
}


def _unalias_messages(data: bytes, rewrite: Callable[[bytes, bytes, bytes], bytes], aliases: tuple[bytes, bytes]) -> bytes:
    """Length-prefixed messages with each one rewritten (a compressed or torn one passes as is)."""
    out, pos = bytearray(), 0
    while pos + 5 <= len(data):
        flag, length = data[pos], int.from_bytes(data[pos + 1:pos + 5], "big")
        if flag != 0 or pos + 5 + length > len(data):
            break
        body = data[pos + 5:pos + 5 + length]
        try:
            out += encode_message(rewrite(body, *aliases) if aliases[0] in body else body)
        except DecodeError:
            out += data[pos:pos + 5 + length]
        pos += 5 + length
    return bytes(out + data[pos:])


async def _relay_responses(call: ServerCall, upstream: StreamHandle, aliases: tuple[bytes, bytes] | None = None) -> None:
    """Backend headers, DATA and trailers to the client, unchanged but for `_unalias` (and the
    whole messages of `_MESSAGE_UNALIAS` methods, held until the trailers)."""
    rewrite = _MESSAGE_UNALIAS.get(call.method) if aliases is not None else None
    held = bytearray()
    while True:
        ev = await upstream.receive()
        if isinstance(ev, DataReceived):
            if rewrite is not None:
                held += ev.data
            else:
                await call.send_data(ev.data)
            upstream.acknowledge(ev.flow_len)
        elif isinstance(ev, ResponseStarted):
            headers = _restore_refusals(call.method, _unalias(ev.headers, aliases)) if ev.end_stream else ev.headers
            call.send_headers(headers, end_stream=ev.end_stream)
            if ev.end_stream:
                return
        elif isinstance(ev, TrailersReceived):
            if held:
                assert rewrite is not None and aliases is not None
                await call.send_data(_unalias_messages(bytes(held), rewrite, aliases))
            call.send_trailers(_restore_refusals(call.method, _unalias(ev.headers, aliases)))
            return
        elif isinstance(ev, StreamReset):
            call.reset(ev.error_code)
            return
        elif isinstance(ev, InputEnded):
            raise GrpcError(Status.INTERNAL, "backend ended the stream without trailers")


async def serve_grpc_proxy(
    listener: trio.SocketListener,
    backend: BackendView,
    *,
    routes: RouteTable | None = None,
    targets: Mapping[Target, CallTarget] | None = None,
    checks: Mapping[str, RequestCheck] | None = None,
    local: Mapping[str, LocalHandler] | None = None,
    wrap_targets: Callable[[GoRelay], Mapping[Target, CallTarget]] | None = None,
    front_address: str | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gRPC front on `listener` until cancelled (see the module docstring).

    `wrap_targets(relay)` (dual-run) returns targets built around the Go relay; they are added
    last, so they may replace the plain `go` target.
    """
    async with trio.open_nursery() as nursery:
        pools = BackendPools(nursery)
        try:
            all_targets: dict[Target, CallTarget] = dict(targets or {})
            relay = all_targets[Target.GO] = GoRelay(backend, pools, checks or {}, front_address, local or {})
            if wrap_targets is not None:
                all_targets.update(wrap_targets(relay))
            front = GrpcFront(routes or default_route_table(), all_targets)
            await nursery.start(functools.partial(serve_listeners, [listener], front, options=PROXY_SERVER_OPTIONS))
            task_status.started()
            await trio.sleep_forever()
        finally:
            pools.close()
