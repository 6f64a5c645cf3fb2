"""A stand-in master for the noise-control Go backend: configuration and heartbeats, nothing more.

A Go volume server does not serve until a master answers `GetMasterConfiguration`, and then
keeps a heartbeat stream open. The control must not join the real cluster (the master would see a
third server holding the same volumes), so it gets this one: it answers with the real master's
volume size limit (asked once at start), takes heartbeats and drops them. Other master calls
answer UNIMPLEMENTED (the control holds every volume the primary holds, so it has no lookups to do).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence

import trio

from proto import master_pb2
from proto.services import RPCS
from weedpy.grpc import Channel, ChannelOptions, GrpcError, Router, serve_listeners
from weedpy.logs import get_logger
from weedpy.tls import TlsListener, VolumeTls

__all__ = ["NullMaster", "DEFAULT_SIZE_LIMIT_MB"]

log = get_logger("difftool.null_master")
DEFAULT_SIZE_LIMIT_MB = 30 * 1000  # weed master's -volumeSizeLimitMB default
_S = "/master_pb.Seaweed/"


class NullMaster:
    """`tls`: with gRPC mTLS the control dials this master as any master (TLS, client certificate),
    and the real master is asked with the volume's client identity."""

    def __init__(self, size_limit_mb: int = DEFAULT_SIZE_LIMIT_MB, tls: VolumeTls = VolumeTls()) -> None:
        self.size_limit_mb = size_limit_mb
        self._tls = tls
        self.port = 0
        self.heartbeats = 0

    @property
    def address(self) -> str:
        """As a `-master` flag value: HTTP port 1 (never used), the gRPC port given explicitly."""
        return f"127.0.0.1:1.{self.port}"

    def router(self) -> Router:
        r = Router()

        async def configuration(req: master_pb2.GetMasterConfigurationRequest, ctx: object) -> master_pb2.GetMasterConfigurationResponse:
            return master_pb2.GetMasterConfigurationResponse(volume_size_limit_m_b=self.size_limit_mb)

        async def heartbeat(requests: AsyncIterator[master_pb2.Heartbeat], ctx: object) -> AsyncIterator[master_pb2.HeartbeatResponse]:
            async for _ in requests:
                self.heartbeats += 1
                yield master_pb2.HeartbeatResponse(volume_size_limit=self.size_limit_mb * 1024 * 1024)

        r.add(RPCS[_S + "GetMasterConfiguration"], configuration)
        r.add(RPCS[_S + "SendHeartbeat"], heartbeat)
        return r

    async def learn_limit(self, masters: Sequence[str]) -> None:
        """The real master's volume size limit, so the control fills volumes as the primary does."""
        for m in masters:
            host, _, port = m.rpartition(":")
            http_port, _, grpc = port.partition(".")
            try:
                gport = int(grpc) if grpc else int(http_port) + 10000
                with trio.move_on_after(5):
                    async with Channel(host, gport, options=ChannelOptions(tls=self._tls.grpc_client)) as ch:
                        resp = await ch.unary_unary(_S + "GetMasterConfiguration",
                                                    master_pb2.GetMasterConfigurationRequest(),
                                                    master_pb2.GetMasterConfigurationResponse, timeout=5)
                        if resp.volume_size_limit_m_b:
                            self.size_limit_mb = int(resp.volume_size_limit_m_b)
                        return
            except (GrpcError, ValueError, OSError) as exc:
                log.warning("cannot ask the master for its volume size limit", master=m, error=str(exc))

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners: list[trio.abc.Listener] = list(await trio.open_tcp_listeners(0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        if self._tls.loopback_server is not None:
            listeners = [TlsListener(listeners[0], self._tls.loopback_server)]
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_listeners, listeners, self.router()))
            task_status.started(self.port)
