"""The rpc tables of the native handler families and the router built from them (see the
package docstring)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import trio

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
from native.grpc._services import Handler, Services
from proto.services import RPCS
from weedpy.grpc import Router
from weedpy.serve.grpc_front import request_id_trailer

__all__ = ["build_router", "READ_ONLY_RPCS", "HANDLERS", "STATE_CHANGING_RPCS"]

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

# The rpcs whose effect other processes of the server must apply before the caller hears back:
# every one that writes server state or replaces volume files. Appends (BatchDelete,
# WriteNeedleBlob, ...) are not here: every process follows the `.idx` itself.
STATE_CHANGING_RPCS = frozenset({
    "AllocateVolume", "VolumeMount", "VolumeUnmount", "VolumeDelete", "DeleteCollection", "VolumeConfigure",
    "VolumeMarkReadonly", "VolumeMarkWritable", "SetState", "VolumeServerLeave", "VacuumVolumeCommit",
    "VacuumVolumeCleanup", "VolumeCopy", "ReceiveFile", "VolumeConsolidateIndex", "VolumeTierMoveDatToRemote",
    "VolumeTierMoveDatFromRemote", "VolumeEcShardsGenerate", "VolumeEcShardsRebuild", "VolumeEcShardsCopy",
    "VolumeEcShardsDelete", "VolumeEcShardsMount", "VolumeEcShardsUnmount", "VolumeEcBlobDelete",
    "VolumeEcShardsToVolume", "ScrubVolume", "ScrubEcVolume",
})


def build_router(svc: Services) -> Router:
    # mixed mode's read-only follower holds no EC volumes of its own
    holds_ec = getattr(svc.ctx.store, "ec", None) is not None
    router = Router(unary_trailers=request_id_trailer)
    for name, handler in HANDLERS.items():
        path = P + name
        if svc.read_only_view and path not in READ_ONLY_RPCS or name in _EC_RPCS and not holds_ec:
            continue
        bound = functools.partial(handler, svc)
        if name in STATE_CHANGING_RPCS:
            kind = _ThenStateChangedStream if RPCS[path].kind.server_streaming else _ThenStateChanged
            bound = kind(bound, svc)
        router.add(RPCS[path], bound)
    return router


class _ThenStateChanged:
    """A handler, then `svc.state_changed()` before the answer goes out, failed or not (a failed
    rpc may have changed something too; a cancelled one as well: the wait is shielded)."""

    __slots__ = ("_bound", "_svc")

    def __init__(self, bound: Handler, svc: Services) -> None:
        self._bound = bound
        self._svc = svc

    async def __call__(self, request: Any, ctx: Any) -> Any:
        try:
            return await self._bound(request, ctx)
        finally:
            with trio.CancelScope(shield=True):
                await self._svc.state_changed()


class _ThenStateChangedStream(_ThenStateChanged):
    """The same for a server stream: after its last message, before its trailers."""

    async def __call__(self, request: Any, ctx: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        try:
            async for msg in self._bound(request, ctx):
                yield msg
        finally:
            with trio.CancelScope(shield=True):
                await self._svc.state_changed()
