"""The master relay: the Go backend registers with the master under the gateway's front ports.

The backend is started with `-master=<relay>`, where the relay address is
`127.0.0.1:<httpPort>.<grpcPort>` (Go's ServerAddress form with an explicit gRPC port). The relay

* forwards every master rpc opaquely to the current master (GoRelay over pooled h2 connections),
  except `/master_pb.Seaweed/SendHeartbeat` (bidi), whose messages it decodes and rewrites:
  `Heartbeat` ip / port / grpc_port / public_url / id (each only when set, so delta heartbeats stay
  deltas) become the `FrontIdentity`; a `HeartbeatResponse` leader becomes the relay's own address,
  because Go compares it with the master it dialled and would otherwise bypass the relay;
* follows the leader itself: a response naming another leader moves the relay there and ends the
  heartbeat stream with UNAVAILABLE, so Go reconnects (through the relay) after a pulse; a master
  that cannot be reached moves the relay on to the next of `masters`;
* splices the HTTP port byte for byte to the current master's HTTP address, so `host:httpPort` in
  the relay address is a real master too;
* keeps Go's idea of itself consistent: Go recognises itself in lookup results by its own
  `ip:port`, which for the backend is the private one, so `LookupVolume` / `LookupEcVolume`
  answers show this server under the backend's address (otherwise Go would "replicate" or "proxy"
  to itself through the gateway), and `VolumeMarkReadonly` requests carry the front address;
* keeps the master's Prometheus push gateway (`GetMasterConfiguration`'s metrics address and
  interval) from the backend, which would push under its private address, and keeps it for the
  gateway, which pushes the front's metrics under the front's (`metrics_push`, `configured`).

In mixed mode with per-volume owners the relay also merges the volumes native serves into Go's
heartbeats (`merge`, a `VolumeMerge`; `merge_heartbeat` is the sans-IO part): each full heartbeat
lists Go's volumes and native's, Go's departures of a volume native owns or that is being moved
are not passed on (a volume in the middle of a move is reported as last seen), the volume digest
(which covers Go's volumes only) is removed and the master is told Go that it does not take
digests, so Go sends its whole list every pulse. The master sees one server holding every volume.

With gRPC mTLS in security.toml the relay speaks TLS on both sides: the backend dials it with the
volume's client certificate (it is the backend's master), it presents the volume's certificate
(`VolumeTls.loopback_server`), and it dials the master with the same client identity, so the
master sees the volume's certificate as it would from Go.

Use (gateway/app.py):

    relay = HeartbeatRelay(cfg.masters, front)
    master_arg = await nursery.start(relay.run)      # "127.0.0.1:41234.41235"
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Protocol

import trio
from google.protobuf.message import DecodeError

from gateway.backend import BackendEndpoints, BackendView, FrontIdentity
from gateway.grpc_proxy import BackendPools, GoRelay, forward_headers
from gateway.tcp_relay import serve_tcp_relay
from weedpy.addresses import MasterAddress
from proto import master_pb2
from weedpy.grpc import (
    DataReceived,
    GrpcError,
    InputEnded,
    MessageReader,
    ResponseStarted,
    ServerCall,
    Status,
    StreamHandle,
    StreamReset,
    TrailersReceived,
    encode_message,
    serve_listeners,
)
from weedpy.logs import get_logger
from weedpy.tls import TlsListener, VolumeTls

__all__ = [
    "rewrite_lookup",
    "rewrite_mark_readonly",
    "SEND_HEARTBEAT",
    "HeartbeatRelay",
    "LeaderTracker",
    "rewrite_heartbeat",
    "rewrite_heartbeat_response",
    "take_metrics_push",
    "VolumeMerge",
    "merge_heartbeat",
]

_log = get_logger("gateway.heartbeat_relay")

SEND_HEARTBEAT = "/master_pb.Seaweed/SendHeartbeat"
GET_CONFIGURATION = "/master_pb.Seaweed/GetMasterConfiguration"
MARK_READONLY = "/master_pb.Seaweed/VolumeMarkReadonly"
LOOKUPS = {
    "/master_pb.Seaweed/LookupVolume": master_pb2.LookupVolumeResponse,
    "/master_pb.Seaweed/LookupEcVolume": master_pb2.LookupEcVolumeResponse,
}


# -- sans-IO: addresses, leader tracking, message rewriting ----------------------------------------


class LeaderTracker:
    """Which master the relay talks to: the last leader heard of, else the seeds in turn."""

    def __init__(self, seeds: Sequence[MasterAddress]) -> None:
        if not seeds:
            raise ValueError("no master addresses")
        self._seeds = tuple(seeds)
        self._next_seed = 0
        self.current = self._seeds[0]

    def leader_hint(self, leader: str) -> bool:
        """A master named `leader`; True (and switched) if that is not the one we talk to."""
        try:
            addr = MasterAddress.parse(leader)
        except ValueError:
            return False
        if addr.same_server(self.current):
            return False
        self.current = addr
        return True

    def failed(self, master: MasterAddress) -> None:
        """`master` could not be reached (or dropped us): move on to the next seed."""
        if master != self.current:
            return
        self._next_seed = (self._next_seed + 1) % len(self._seeds)
        self.current = self._seeds[self._next_seed]


def rewrite_heartbeat(raw: bytes, front: FrontIdentity) -> bytes:
    """A Heartbeat with the backend's addresses replaced by the front's (only fields that are set)."""
    hb = master_pb2.Heartbeat()
    try:
        hb.ParseFromString(raw)
    except DecodeError as exc:
        raise GrpcError(Status.INTERNAL, f"heartbeat relay: undecodable Heartbeat: {exc}") from exc
    if hb.ip:
        hb.ip = front.ip
    if hb.port:
        hb.port = front.port
    if hb.grpc_port:
        hb.grpc_port = front.grpc_port
    if hb.public_url:
        hb.public_url = front.public_url
    if hb.id and front.server_id:
        hb.id = front.server_id
    return hb.SerializeToString()


class VolumeMerge(Protocol):
    """What the relay needs to report native's volumes with Go's (weedpy/volume_moves.py)."""

    def away_from_go(self) -> frozenset[int]:
        """Volumes native owns or that are being moved: Go's departures of them are not passed on."""

    async def native_volumes(self) -> tuple[list[master_pb2.VolumeInformationMessage], int]:
        """Every volume native serves now, and its largest file key."""

    def volume_size_limit(self, limit: int) -> None:
        """The master's volume size limit, for native's writes."""


def merge_heartbeat(
    hb: master_pb2.Heartbeat, away: frozenset[int], native: Sequence[master_pb2.VolumeInformationMessage],
    native_max_file_key: int, last_seen: MutableMapping[int, master_pb2.VolumeInformationMessage],
) -> None:
    """Go's heartbeat `hb` as one server's with native's volumes (in place; see the module doc).
    `last_seen` keeps each volume's latest report, for a volume neither side lists mid-move."""
    if any(v.id in away for v in hb.deleted_volumes):
        kept = [v.SerializeToString() for v in hb.deleted_volumes if v.id not in away]
        hb.ClearField("deleted_volumes")
        hb.deleted_volumes.extend(master_pb2.VolumeShortInformationMessage.FromString(raw) for raw in kept)
    hb.ClearField("volume_digest")
    if not (hb.volumes or hb.has_no_volumes):
        return  # a delta (new or deleted volumes only), or changes only (Go is told digests are off)
    if _leaving(hb):
        return  # VolumeServerLeave or a stop: the master is to drop every volume of this server
    listed = {v.id for v in hb.volumes}
    for v in native:
        if v.id not in listed:
            hb.volumes.append(v)
            listed.add(v.id)
    for vid in sorted(away - listed):
        seen = last_seen.get(vid)
        if seen is not None:
            hb.volumes.append(seen)
    for v in hb.volumes:
        kept_copy = master_pb2.VolumeInformationMessage()
        kept_copy.CopyFrom(v)
        last_seen[v.id] = kept_copy
    hb.has_no_volumes = not hb.volumes
    hb.max_file_key = max(hb.max_file_key, native_max_file_key)


def _leaving(hb: master_pb2.Heartbeat) -> bool:
    """Go's last heartbeat (Leave, stop): no volumes and none of a full heartbeat's disk fields."""
    return hb.has_no_volumes and not hb.volumes and not hb.max_volume_counts and not hb.location_uuids


def rewrite_lookup(raw: bytes, response_type: type, front_url: str, backend: BackendEndpoints | None) -> bytes:
    """Lookup answers with this server's front address replaced by the backend's own."""
    if backend is None:
        return raw
    resp = response_type.FromString(raw)
    groups = resp.volume_id_locations if hasattr(resp, "volume_id_locations") else resp.shard_id_locations
    url = f"{backend.http[0]}:{backend.http[1]}"
    changed = False
    for group in groups:
        for loc in group.locations:
            if loc.url == front_url:
                loc.url = url
                loc.public_url = url
                loc.grpc_port = backend.grpc[1]
                changed = True
    return resp.SerializeToString() if changed else raw


def rewrite_mark_readonly(raw: bytes, front: FrontIdentity) -> bytes:
    req = master_pb2.VolumeMarkReadonlyRequest.FromString(raw)
    req.ip, req.port = front.ip, front.port
    return req.SerializeToString()


def take_metrics_push(raw: bytes) -> tuple[bytes, str, int]:
    """(the GetMasterConfigurationResponse without its push gateway, the gateway's address and
    interval). The backend must not push under its private address: the front pushes for it."""
    resp = master_pb2.GetMasterConfigurationResponse()
    try:
        resp.ParseFromString(raw)
    except DecodeError as exc:
        raise GrpcError(Status.INTERNAL, f"heartbeat relay: undecodable GetMasterConfigurationResponse: {exc}") from exc
    address, interval = resp.metrics_address, resp.metrics_interval_seconds
    if not address and not interval:
        return raw, "", 0
    resp.metrics_address, resp.metrics_interval_seconds = "", 0
    return resp.SerializeToString(), address, interval


def rewrite_heartbeat_response(raw: bytes, relay_address: str, merge: VolumeMerge | None = None) -> tuple[bytes, str]:
    """(the response with `leader` pointing at the relay, the leader the master named or ""). With
    a `merge`: Go is not told that the master takes volume digests, and native learns the limit."""
    resp = master_pb2.HeartbeatResponse()
    try:
        resp.ParseFromString(raw)
    except DecodeError as exc:
        raise GrpcError(Status.INTERNAL, f"heartbeat relay: undecodable HeartbeatResponse: {exc}") from exc
    leader = resp.leader
    changed = False
    if merge is not None:
        if resp.volume_size_limit:
            merge.volume_size_limit(resp.volume_size_limit)
        if resp.volume_digest_supported:
            resp.volume_digest_supported = False
            changed = True
    if not leader and not changed:
        return raw, ""
    if leader:
        resp.leader = relay_address
    return resp.SerializeToString(), leader


# -- trio shell ----------------------------------------------------------------------------------


class _CurrentMaster:
    """The tracker's master as a BackendView, so GoRelay can forward the other rpcs to it."""

    def __init__(self, tracker: LeaderTracker) -> None:
        self._tracker = tracker

    def current(self) -> BackendEndpoints:
        m = self._tracker.current
        return BackendEndpoints(http=m.http, grpc=m.grpc)


class HeartbeatRelay:
    """Serve the relay on loopback; `run` reports the `-master` argument for the Go backend."""

    def __init__(
        self, masters: Sequence[str], front: FrontIdentity, *, host: str = "127.0.0.1", tls: VolumeTls = VolumeTls(),
    ) -> None:
        self.tracker = LeaderTracker([MasterAddress.parse(m) for m in masters])
        self.front = front
        self.host = host
        # With gRPC mTLS the backend dials the relay as it dials any master (TLS, its client
        # certificate), and the relay dials the master with the same client identity.
        self._tls = tls
        self.address = ""  # the relay's own ServerAddress once running
        self._relay: GoRelay | None = None
        self._pools: BackendPools | None = None
        self._backend: BackendView | None = None
        self._front_url = f"{front.ip}:{front.port}"
        # The master's push gateway (address, interval), from the backend's GetMasterConfiguration;
        # `configured` is set once one went through.
        self.metrics_push: tuple[str, int] = ("", 0)
        self.configured = trio.Event()
        self.merge: VolumeMerge | None = None  # mixed mode's volume owners: native's volumes
        self._last_seen: dict[int, master_pb2.VolumeInformationMessage] = {}

    def set_backend(self, backend: BackendView) -> None:
        """Where the Go backend listens now (its address changes on every restart)."""
        self._backend = backend

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        grpc_listener: trio.abc.Listener = (await trio.open_tcp_listeners(0, host=self.host))[0]
        grpc_port = grpc_listener.socket.getsockname()[1]
        if self._tls.loopback_server is not None:
            grpc_listener = TlsListener(grpc_listener, self._tls.loopback_server)
        http_listener = (await trio.open_tcp_listeners(0, host=self.host))[0]
        http_port = http_listener.socket.getsockname()[1]
        self.address = f"{self.host}:{http_port}.{grpc_port}"
        async with trio.open_nursery() as nursery:
            pools = BackendPools(nursery, tls=self._tls.grpc_client)
            try:
                self._relay = GoRelay(_CurrentMaster(self.tracker), pools, checks={MARK_READONLY: self._mark_readonly})
                self._pools = pools
                await nursery.start(serve_listeners, [grpc_listener], self)
                nursery.start_soon(serve_tcp_relay, http_listener, lambda: self.tracker.current.http)
                _log.info("heartbeat relay ready", relay=self.address, master=self.tracker.current.dotted)
                task_status.started(self.address)
                await trio.sleep_forever()
            finally:
                pools.close()

    async def handle(self, call: ServerCall) -> None:
        """CallHandler for the relay's gRPC port."""
        assert self._relay is not None and self._pools is not None, "serve through run()"
        lookup_type = LOOKUPS.get(call.method)
        if lookup_type is not None:
            await self._relay_rewriting(call, lambda raw: rewrite_lookup(
                raw, lookup_type, self._front_url, self._backend.current() if self._backend else None))
            return
        if call.method == GET_CONFIGURATION:
            await self._relay_rewriting(call, self._configuration)
            return
        if call.method != SEND_HEARTBEAT:
            await self._relay.handle(call)
            return
        await self._relay_rewriting(call, None)

    def _configuration(self, raw: bytes) -> bytes:
        raw, address, interval = take_metrics_push(raw)
        self.metrics_push = (address, interval)
        self.configured.set()
        return raw

    async def _mark_readonly(self, call: ServerCall, raw: bytes) -> bytes:
        return rewrite_mark_readonly(raw, self.front)

    async def _relay_rewriting(self, call: ServerCall, transform: Callable[[bytes], bytes] | None) -> None:
        """Relay one call message by message; heartbeats (transform None) get the heartbeat rewrites."""
        assert self._pools is not None
        master = self.tracker.current
        try:
            upstream = await self._pools.get(master.grpc).open_stream(forward_headers(call.headers))
        except GrpcError:
            self.tracker.failed(master)
            raise
        heartbeat = transform is None
        if heartbeat:
            _log.info("heartbeat stream open", master=master.dotted, peer=call.peer)
        error: GrpcError | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._requests_up, call, upstream, heartbeat)
                try:
                    await self._responses_down(call, upstream, master, transform)
                except GrpcError as exc:
                    error = exc
                nursery.cancel_scope.cancel()
        finally:
            upstream.release()
            if heartbeat:
                _log.info("heartbeat stream closed", master=master.dotted, error=str(error) if error else None)
        if error is not None:
            raise error

    async def _requests_up(self, call: ServerCall, upstream: StreamHandle, heartbeat: bool) -> None:
        while (msg := await call.receive_message()) is not None:
            if heartbeat:
                msg = rewrite_heartbeat(msg, self.front)
                if self.merge is not None:
                    msg = await self._merged(msg)
            try:
                await upstream.send_data(encode_message(msg))
            except GrpcError:
                return  # the master side ended; _responses_down reports how
        try:
            upstream.end()
        except GrpcError:
            pass

    async def _merged(self, raw: bytes) -> bytes:
        assert self.merge is not None
        hb = master_pb2.Heartbeat.FromString(raw)
        full = bool(hb.volumes or hb.has_no_volumes) and not _leaving(hb)
        native, max_key = await self.merge.native_volumes() if full else ([], 0)
        merge_heartbeat(hb, self.merge.away_from_go(), native, max_key, self._last_seen)
        return hb.SerializeToString()

    async def _responses_down(
        self, call: ServerCall, upstream: StreamHandle, master: MasterAddress,
        transform: Callable[[bytes], bytes] | None,
    ) -> None:
        reader = MessageReader(max_length=None)
        while True:
            try:
                ev = await upstream.receive()
            except GrpcError:
                self.tracker.failed(master)
                raise
            if isinstance(ev, DataReceived):
                reader.feed(ev.data, ev.flow_len)
                while (msg := reader.next_message()) is not None:
                    if transform is not None:
                        await call.send_data(encode_message(transform(msg)))
                        continue
                    out, leader = rewrite_heartbeat_response(msg, self.address, self.merge)
                    await call.send_data(encode_message(out))
                    if leader and self.tracker.leader_hint(leader):
                        _log.info("master leader moved", leader=leader)
                        raise GrpcError(Status.UNAVAILABLE, f"master leader is now {leader}; reconnect to the relay")
                upstream.acknowledge(reader.releasable())
            elif isinstance(ev, ResponseStarted):
                call.send_headers(ev.headers, end_stream=ev.end_stream)
                if ev.end_stream:
                    return
            elif isinstance(ev, TrailersReceived):
                call.send_trailers(ev.headers)
                return
            elif isinstance(ev, StreamReset):
                call.reset(ev.error_code)
                return
            elif isinstance(ev, InputEnded):
                raise GrpcError(Status.UNAVAILABLE, "master ended the heartbeat stream without trailers")


