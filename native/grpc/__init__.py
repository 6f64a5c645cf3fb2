"""The native volume server's gRPC handlers (control plane), registered on a `weedpy.grpc.Router`.

    router = build_router(Services(ctx, master_client, state_file, guard))

Each rpc is a module-level function named after it (`VolumeEcShardsGenerate` ->
`volume_ec_shards_generate(svc, req, ctx)`), listed in its family module's `HANDLERS` table:

    _server_rpcs  state flags, status, Ping, Leave
    _volumes      volume lifecycle and status
    _vacuum       compaction
    _data         needle blobs, batch delete, ReadAllNeedles
    _copy         whole-file and incremental copies, CopyFile, ReceiveFile
    _tail         VolumeTailSender / VolumeTailReceiver
    _ec_encode    erasure coding: generate, rebuild
    _ec_shards    erasure coding: shard copy, mount, unmount, delete, read, blob delete, info
    _ec_decode    erasure coding: back to a normal volume
    _scrub        integrity checks of volumes and EC volumes
    _query        Query
    _tier         remote tiering, index consolidation
    _remote       FetchAndWriteNeedle

Unregistered VolumeServer methods answer UNIMPLEMENTED (the router's default), never a fake
success. In mixed mode (`Services.read_only_view`) only the rpcs that write nothing are
registered: Go owns every file and the heartbeat.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from native.grpc import (
    _copy,
    _data,
    _ec_decode,
    _ec_encode,
    _ec_shards,
    _query,
    _remote,
    _scrub,
    _server_rpcs,
    _tail,
    _tier,
    _vacuum,
    _volumes,
)
from native.grpc._services import Handler, MasterSide, Services
from native.grpc._state import StateFile, StateVersionMismatch
from proto.services import RPCS
from weedpy.grpc import Router
from weedpy.serve.grpc_front import request_id_trailer

__all__ = ["build_router", "Services", "MasterSide", "StateFile", "StateVersionMismatch", "READ_ONLY_RPCS", "HANDLERS"]

P = "/volume_server_pb.VolumeServer/"
READ_ONLY_RPCS = frozenset(P + m for m in (
    "GetState", "VolumeServerStatus", "Ping", "VolumeStatus", "ReadVolumeFileStatus", "VolumeNeedleStatus",
))

_FAMILIES = (_server_rpcs, _volumes, _vacuum, _data, _copy, _tail, _ec_encode, _ec_shards, _ec_decode, _scrub, _query,
             _tier, _remote)
_EC_FAMILIES = (_ec_encode, _ec_shards, _ec_decode)  # served only by a store that holds EC volumes

# Every rpc served here: Go's method name -> handler (see the module docstring).
HANDLERS: Mapping[str, Handler] = {name: h for family in _FAMILIES for name, h in family.HANDLERS.items()}

_EC_RPCS = frozenset(name for family in _EC_FAMILIES for name in family.HANDLERS)


def build_router(svc: Services) -> Router:
    # mixed mode's read-only follower holds no EC volumes of its own
    holds_ec = getattr(svc.ctx.store, "ec", None) is not None
    router = Router(unary_trailers=request_id_trailer)
    for name, handler in HANDLERS.items():
        path = P + name
        if svc.read_only_view and path not in READ_ONLY_RPCS or name in _EC_RPCS and not holds_ec:
            continue
        router.add(RPCS[path], functools.partial(handler, svc))
    return router
