"""Refusals the maintenance and data rpcs share: maintenance mode, peer trust, peer addresses.

Peer trust is the project's rule from `weedpy.serve.peers` (a peer the master lists is trusted;
any other must pass Go's address check; the operator's
`-volume.allowUntrustedRemoteEndpoints` turns checking off). In native mode there is no Go
backend behind us to enforce it, so these handlers apply the same `PeerPolicy` themselves
(`Services.peers`, built by `native.grpc._services.peer_policy`).
"""

from __future__ import annotations

from native.grpc._common import go_error
from native.grpc._services import Services
from weedpy.addresses import GRPC_PORT_OFFSET
from weedpy.grpc import GrpcError
from weedpy.serve.peers import PeerPolicy, grpc_target

__all__ = ["check_maintenance", "check_peer", "grpc_target", "GRPC_PORT_OFFSET", "wrap_peer_error"]


def check_maintenance(svc: Services) -> None:
    """Go's CheckMaintenanceMode (a plain error: codes.Unknown)."""
    if svc.state_file.maintenance:
        raise go_error(f"volume server {svc.server_id} is in maintenance mode")


async def check_peer(policy: PeerPolicy | None, address: str, what: str) -> None:
    """Refuse a peer address as Go 4.48 does: `invalid <what> <address>: <reason>` (Unknown); an
    empty one too ("replica target is empty")."""
    if policy is None:
        return
    reason = await policy.peer_reason(address)
    if reason is not None:
        raise go_error(f"invalid {what} {address}: {reason}")


def wrap_peer_error(exc: GrpcError, prefix: str) -> GrpcError:
    """Wrap a peer's failure as Go's `fmt.Errorf("prefix, %w", err)`: the status code survives."""
    return GrpcError(exc.status, f"{prefix}{_rpc_error_text(exc)}")


def _rpc_error_text(exc: GrpcError) -> str:
    return f"rpc error: code = {_go_code_name(exc.status.name)} desc = {exc.message}"


def _go_code_name(name: str) -> str:
    """grpc-go's codes.Code.String(): CamelCase (`DeadlineExceeded`, `Unavailable`)."""
    special = {"OK": "OK", "CANCELLED": "Canceled"}
    if name in special:
        return special[name]
    return "".join(part.capitalize() for part in name.split("_"))
