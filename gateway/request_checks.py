"""Checks and rewrites the gateway applies to a few gRPC requests before relaying them to Go.

**Peer trust.** The managed backend is started with `-volume.allowUntrustedRemoteEndpoints`, so
the gateway applies weedpy's peer rule (weedpy.serve.peers.PeerPolicy) to the rpcs that make
the server dial an address the caller supplies (VolumeCopy, VolumeEcShardsCopy,
VolumeTailReceiver, FetchAndWriteNeedle; for the latter, the endpoint each remote type dials,
gcs token exchange included: weedpy.serve.remote_endpoints). Refusals carry Go's gRPC status (Unknown) and message
(and, for unary rpcs, the x-amz-request-id trailer Go's interceptor adds: GoRelay). A refused
request never reaches the backend, so the one check Go 4.48 runs before the peer's is applied
here too: a VolumeCopy or VolumeEcShardsCopy while the backend is in maintenance mode gets Go's
maintenance refusal (the backend's GetState says; asked only when the peer is refused). Go
refuses the peer before its other checks (an EC copy's disk_id, the tail receiver's volume),
and an empty source as any other ("replica target is empty"). Go checks a
FetchAndWriteNeedle's remote endpoint only after maintenance mode and the volume, so that refusal
is left to the backend's turn: the request goes on with a remote type no store has, carrying the
refusal, and the backend's "remote storage type ... not found" answer is turned back into it
(`restore_refusal`, applied by the relay to that rpc's trailers).

**Admin whitelist.** The backend only ever sees the gateway's loopback address, so Go's
checkGrpcAdminAuth is applied here, on the real caller.

**Master pings.** Go answers `Ping` for a master target only if it is one of its own masters;
the backend's only master is the gateway's heartbeat relay, so a Ping naming one of the
operator's `-master` addresses is rewritten to name the relay, which forwards it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.backend import BackendView
from proto import volume_server_pb2 as vs_pb
from weedpy.addresses import peer_host
from weedpy.grpc import Channel, GrpcError, ServerCall, Status
from weedpy.logs import get_logger
from weedpy.serve.guard import Guard
from weedpy.serve.peers import PeerPolicy, http_address
from weedpy.serve.remote_endpoints import remote_conf_refusal
from weedpy.serve.routes import GRPC_SERVICE

__all__ = ["ADMIN_RPCS", "backend_maintenance", "request_checks", "restore_refusal", "REFUSAL_RESTORED"]

log = get_logger("gateway.request_checks")

Check = Callable[[ServerCall, bytes], Awaitable[bytes | None]]
# Go's maintenance-mode refusal when the backend is in maintenance mode, else None.
Maintenance = Callable[[], Awaitable[str | None]]


async def _not_in_maintenance() -> str | None:
    return None


def _refuse(message: str) -> GrpcError:
    return GrpcError(Status.UNKNOWN, message)


_REFUSED = re.compile("\x00weedpy-refused:(.*?)\x00", re.S)


def _deferred_refusal(message: str) -> str:
    """A remote type that makes the backend fail where Go would check the endpoint, naming `message`."""
    return f"\x00weedpy-refused:{message}\x00"


def restore_refusal(message: str) -> str | None:
    """The refusal a backend error carries (see the module docstring), None if it carries none."""
    found = _REFUSED.search(message)
    return found.group(1) if found else None


# The rpcs whose backend answers may carry a deferred refusal.
REFUSAL_RESTORED = frozenset({GRPC_SERVICE + "FetchAndWriteNeedle"})


# The rpcs Go 4.48 runs checkGrpcAdminAuth on: only whitelisted callers, when a whitelist is set.
ADMIN_RPCS = frozenset(GRPC_SERVICE + m for m in (
    "AllocateVolume", "BatchDelete", "DeleteCollection", "FetchAndWriteNeedle", "ReadAllNeedles", "ScrubEcVolume",
    "ScrubVolume", "SetState", "VacuumVolumeCleanup", "VacuumVolumeCommit", "VacuumVolumeCompact", "VolumeConfigure",
    "VolumeConsolidateIndex", "VolumeCopy", "VolumeDelete", "VolumeEcShardsCopy", "VolumeEcShardsDelete",
    "VolumeEcShardsGenerate", "VolumeEcShardsRebuild", "VolumeEcShardsToVolume", "VolumeEcShardsUnmount",
    "VolumeMarkReadonly", "VolumeMarkWritable", "VolumeMount", "VolumeNeedleStatus", "VolumeServerLeave",
    "VolumeTailReceiver", "VolumeTierMoveDatFromRemote", "VolumeTierMoveDatToRemote", "VolumeUnmount",
))


def request_checks(
    policy: PeerPolicy | None, masters: Sequence[str], relay_master: str, guard: Guard | None = None,
    maintenance: Maintenance = _not_in_maintenance,
) -> Mapping[str, Check]:
    """The gRPC proxy's `checks` table. `policy` None means the operator allowed every endpoint.

    With a restricting `guard` (the -whiteList and security.toml guard), the admin rpcs are refused
    to other callers first, as Go does: the backend only ever sees the gateway's loopback address.
    `maintenance` (`backend_maintenance`) is asked before a copy's source is refused.
    """
    checks = _peer_checks(policy, masters, relay_master, maintenance)
    if guard is None or not guard.restricts:
        return checks

    def admin(then: Check | None) -> Check:
        async def check(call: ServerCall, raw: bytes) -> bytes | None:
            host = peer_host(call.peer)
            if not guard.allows(host):
                raise GrpcError(Status.PERMISSION_DENIED, f"not authorized: {host}")
            return await then(call, raw) if then is not None else None

        return check

    return {**checks, **{m: admin(checks.get(m)) for m in ADMIN_RPCS}}


def backend_maintenance(backend: BackendView, server_id: str) -> Maintenance:
    """Asks the backend's GetState; Go's refusal names the server's id (the front's, not the backend's).
    A backend that cannot answer counts as not in maintenance (the peer is refused then)."""

    async def maintenance() -> str | None:
        endpoints = backend.current()
        if endpoints is None:
            return None
        try:
            async with Channel(*endpoints.grpc) as ch:
                resp = await ch.unary_unary(GRPC_SERVICE + "GetState", vs_pb.GetStateRequest(), vs_pb.GetStateResponse,
                                            timeout=10)
        except (GrpcError, OSError) as exc:
            log.warning("backend state unknown", error=str(exc))
            return None
        return f"volume server {server_id} is in maintenance mode" if resp.state.maintenance else None

    return maintenance


def _peer_checks(
    policy: PeerPolicy | None, masters: Sequence[str], relay_master: str, maintenance: Maintenance,
) -> dict[str, Check]:
    own_masters = {http_address(m) for m in masters}

    async def ping(call: ServerCall, raw: bytes) -> bytes | None:
        req = vs_pb.PingRequest.FromString(raw)
        if req.target_type == "master" and req.target and http_address(req.target) in own_masters:
            req.target = relay_master
            return req.SerializeToString()
        return None

    checks: dict[str, Check] = {GRPC_SERVICE + "Ping": ping}
    if policy is None:
        return checks

    def peer_check(message_type: type, field: str, what: str, after_maintenance: bool = False) -> Check:
        async def check(call: ServerCall, raw: bytes) -> bytes | None:
            address = getattr(message_type.FromString(raw), field)
            reason = await policy.peer_reason(address)
            if reason is not None:
                refusal = await maintenance() if after_maintenance else None
                raise _refuse(refusal or f"invalid {what} {address}: {reason}")
            return None

        return check

    async def fetch_and_write(call: ServerCall, raw: bytes) -> bytes | None:
        req = vs_pb.FetchAndWriteNeedleRequest.FromString(raw)
        refusal = await remote_conf_refusal(req.remote_conf)
        if refusal is not None:  # after the backend's own earlier checks
            req.remote_conf.type = _deferred_refusal(refusal)
            return req.SerializeToString()
        for replica in req.replicas:
            reason = await policy.peer_reason(replica.url)
            if reason is not None:
                raise _refuse(f"invalid replica {replica.url}: {reason}")
        return None

    checks.update({
        GRPC_SERVICE + "VolumeCopy": peer_check(
            vs_pb.VolumeCopyRequest, "source_data_node", "source data node", after_maintenance=True),
        GRPC_SERVICE + "VolumeEcShardsCopy": peer_check(
            vs_pb.VolumeEcShardsCopyRequest, "source_data_node", "source data node", after_maintenance=True),
        GRPC_SERVICE + "VolumeTailReceiver": peer_check(
            vs_pb.VolumeTailReceiverRequest, "source_volume_server", "source volume server"),
        GRPC_SERVICE + "FetchAndWriteNeedle": fetch_and_write,
    })
    return checks
