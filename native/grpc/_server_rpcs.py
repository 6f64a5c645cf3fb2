"""Server-level rpcs: state flags, status, Ping, Leave (weed 4.48's volume_grpc_state.go and the
server half of volume_grpc_admin.go)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import trio

from native.grpc._common import check_admin, disk_status, go_error, memory_status
from native.grpc._services import Handler, Services
from native.grpc._state import StateVersionMismatch
from native.master_client import go_rpc_error
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context, GrpcError, Status

__all__ = [
    "HANDLERS", "get_state", "set_state", "volume_server_status", "volume_server_leave", "ping",
    "MASTER_TYPE", "VOLUME_SERVER_TYPE", "FILER_TYPE",
]

MASTER_TYPE, VOLUME_SERVER_TYPE, FILER_TYPE = "master", "volumeServer", "filer"


async def get_state(svc: Services, req: vs.GetStateRequest, ctx: Context) -> vs.GetStateResponse:
    return vs.GetStateResponse(state=svc.state_file.proto())


async def set_state(svc: Services, req: vs.SetStateRequest, ctx: Context) -> vs.SetStateResponse:
    check_admin(svc.guard, ctx)
    try:
        state = await trio.to_thread.run_sync(
            lambda: svc.state_file.update(req.state if req.HasField("state") else None)
        )
    except StateVersionMismatch as exc:
        raise go_error(str(exc)) from None
    except OSError as exc:
        raise go_error(f"failed to write store state to {svc.state_file.path} : {exc}") from None
    svc.ctx.state.maintenance = state.maintenance
    return vs.SetStateResponse(state=state)


async def volume_server_status(
    svc: Services, req: vs.VolumeServerStatusRequest, ctx: Context,
) -> vs.VolumeServerStatusResponse:
    cfg = svc.ctx.cfg
    return vs.VolumeServerStatusResponse(
        disk_statuses=[disk_status(loc.directory) for loc in svc.store.locations],
        memory_status=memory_status(), version=svc.ctx.full_version,
        data_center=cfg["dataCenter"], rack=cfg["rack"], state=svc.state_file.proto(),
    )


async def volume_server_leave(
    svc: Services, req: vs.VolumeServerLeaveRequest, ctx: Context,
) -> vs.VolumeServerLeaveResponse:
    check_admin(svc.guard, ctx)
    svc.master.stop_heartbeat_nowait()
    return vs.VolumeServerLeaveResponse()


async def ping(svc: Services, req: vs.PingRequest, ctx: Context) -> vs.PingResponse:
    """Only a master this server knows may be pinged (Go checks the target against its masters)."""
    resp = vs.PingResponse(start_time_ns=time.time_ns())
    target, kind = req.target, req.target_type
    if target and not (kind == MASTER_TYPE and svc.master.is_known_master(target)):
        raise GrpcError(Status.INVALID_ARGUMENT, f"unknown ping target {target} of type {kind}")
    if kind == MASTER_TYPE:
        try:
            resp.remote_time_ns = await svc.master.ping(target)
        except GrpcError as exc:
            raise go_error(f"ping {kind} {target}: {go_rpc_error(exc)}") from None
        except (OSError, trio.TooSlowError) as exc:
            raise go_error(f"ping {kind} {target}: {exc}") from None
    resp.stop_time_ns = time.time_ns()
    return resp


HANDLERS: Mapping[str, Handler] = {
    "GetState": get_state,
    "SetState": set_state,
    "VolumeServerStatus": volume_server_status,
    "VolumeServerLeave": volume_server_leave,
    "Ping": ping,
}
