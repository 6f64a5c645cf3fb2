"""The native volume server's gRPC handlers (control plane), registered on a `weedpy.grpc.Router`.

    router = build_router(Services(ctx, master_client, state_file, guard))

Unregistered VolumeServer methods answer UNIMPLEMENTED (the router's default), never a fake
success. In mixed mode (`Services.read_only_view`) only the rpcs that write nothing are
registered: Go owns every file and the heartbeat.
"""

from __future__ import annotations

from native.grpc import _copy, _data, _ec, _query, _remote, _scrub, _server_rpcs, _tail, _tier, _vacuum, _volumes
from native.grpc._services import MasterSide, Services
from native.grpc._state import StateFile, StateVersionMismatch
from weedpy.grpc import Router
from weedpy.serve.grpc_front import request_id_trailer

__all__ = ["build_router", "Services", "MasterSide", "StateFile", "StateVersionMismatch", "READ_ONLY_RPCS"]

P = "/volume_server_pb.VolumeServer/"
READ_ONLY_RPCS = frozenset(P + m for m in (
    "GetState", "VolumeServerStatus", "Ping", "VolumeStatus", "ReadVolumeFileStatus", "VolumeNeedleStatus",
))


def build_router(svc: Services) -> Router:
    full = Router(unary_trailers=request_id_trailer)
    _server_rpcs.register(full, svc)
    _volumes.register(full, svc)
    # maintenance and data plane: vacuum, needle blobs, batch delete, copies, tailing
    for module in (_vacuum, _data, _copy, _tail):
        module.register(full, svc)
    _ec.register(full, svc)  # erasure coding
    _scrub.register(full, svc)  # integrity checks of volumes and EC volumes
    _query.register(full, svc)
    _tier.register(full, svc)  # remote tiering, index consolidation
    _remote.register(full, svc)  # FetchAndWriteNeedle
    if not svc.read_only_view:
        return full
    return Router((h for path, h in full.paths.items() if path in READ_ONLY_RPCS), unary_trailers=request_id_trailer)
