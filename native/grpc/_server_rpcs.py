"""Server-level rpcs: state flags, status, Ping, Leave (weed 4.48's volume_grpc_state.go and the
server half of volume_grpc_admin.go)."""

from __future__ import annotations

import time

import trio

from native.grpc._common import check_admin, disk_status, go_error, memory_status
from native.grpc._services import Services
from native.grpc._state import StateVersionMismatch
from native.master_client import go_rpc_error
from proto import volume_server_pb2 as vs
from proto.services import RPCS
from weedpy.grpc import Context, GrpcError, Router, Status

__all__ = ["register", "MASTER_TYPE", "VOLUME_SERVER_TYPE", "FILER_TYPE"]

P = "/volume_server_pb.VolumeServer/"
MASTER_TYPE, VOLUME_SERVER_TYPE, FILER_TYPE = "master", "volumeServer", "filer"


def register(router: Router, svc: Services) -> None:
    ctx_ = svc.ctx

    async def get_state(req: vs.GetStateRequest, ctx: Context) -> vs.GetStateResponse:
        return vs.GetStateResponse(state=svc.state_file.proto())

    async def set_state(req: vs.SetStateRequest, ctx: Context) -> vs.SetStateResponse:
        check_admin(svc.guard, ctx)
        try:
            state = await trio.to_thread.run_sync(
                lambda: svc.state_file.update(req.state if req.HasField("state") else None)
            )
        except StateVersionMismatch as exc:
            raise go_error(str(exc)) from None
        except OSError as exc:
            raise go_error(f"failed to write store state to {svc.state_file.path} : {exc}") from None
        ctx_.state.maintenance = state.maintenance
        return vs.SetStateResponse(state=state)

    async def server_status(req: vs.VolumeServerStatusRequest, ctx: Context) -> vs.VolumeServerStatusResponse:
        cfg = ctx_.cfg

        def collect() -> vs.VolumeServerStatusResponse:
            return vs.VolumeServerStatusResponse(
                disk_statuses=[disk_status(loc.directory) for loc in ctx_.store.locations],
                memory_status=memory_status(), version=ctx_.full_version,
                data_center=cfg["dataCenter"], rack=cfg["rack"], state=svc.state_file.proto(),
            )

        return collect()

    async def leave(req: vs.VolumeServerLeaveRequest, ctx: Context) -> vs.VolumeServerLeaveResponse:
        check_admin(svc.guard, ctx)
        svc.master.stop_heartbeat_nowait()
        return vs.VolumeServerLeaveResponse()

    async def ping(req: vs.PingRequest, ctx: Context) -> vs.PingResponse:
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

    router.add(RPCS[P + "GetState"], get_state)
    router.add(RPCS[P + "SetState"], set_state)
    router.add(RPCS[P + "VolumeServerStatus"], server_status)
    router.add(RPCS[P + "VolumeServerLeave"], leave)
    router.add(RPCS[P + "Ping"], ping)
