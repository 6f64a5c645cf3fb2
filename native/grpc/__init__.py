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

The families and the router load with the first gRPC call (`build_router` and the tables are
imported on first use): a server that has not been called over gRPC yet has not paid for them.
"""

from __future__ import annotations

from typing import Any

from native.grpc._services import MasterSide, Services
from native.grpc._state import StateFile, StateVersionMismatch

__all__ = [
    "build_router", "Services", "MasterSide", "StateFile", "StateVersionMismatch", "READ_ONLY_RPCS", "HANDLERS",
    "STATE_CHANGING_RPCS",
]

_ROUTER_NAMES = frozenset({"build_router", "READ_ONLY_RPCS", "HANDLERS", "STATE_CHANGING_RPCS"})


def __getattr__(name: str) -> Any:
    if name in _ROUTER_NAMES:
        from native.grpc import _router  # the handler families load on first use (start-up time)

        return getattr(_router, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
