"""What every native gRPC handler can reach: the server context, the master-facing side, and the
shape of a handler.

Each rpc is a module-level function taking the shared `Services` first:

    unary          async def h(svc, request, ctx) -> response
    server stream  async def h(svc, request, ctx) -> AsyncIterator[response]   (an async generator)
    client stream  async def h(svc, requests: AsyncIterator, ctx) -> response

Each family module lists its rpcs in a `HANDLERS` table (Go's method name -> function);
`build_router` binds `svc` to each and registers it under the method's path.
"""

from __future__ import annotations

import dataclasses
import functools
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from weedpy.serve.guard import Guard
from weedpy.serve.peers import PeerPolicy, master_volume_servers
from native.context import NativeContext
from native.grpc._state import StateFile
from proto.lazy import master_pb2

__all__ = ["Services", "MasterSide", "Handler", "peer_policy"]

Handler = Callable[..., Any]  # (svc, request or requests, ctx) -> response, or an async generator of them


class MasterSide(Protocol):
    """The part of `native.master_client.MasterClient` the handlers use."""

    def notify_changed(self) -> None: ...

    def stop_heartbeat_nowait(self) -> bool: ...

    def is_known_master(self, target: str) -> bool: ...

    async def ping(self, target: str) -> int: ...

    async def mark_volume_readonly(self, req: master_pb2.VolumeMarkReadonlyRequest) -> None: ...


def peer_policy(cfg: Any, https: ssl.SSLContext | None = None) -> PeerPolicy | None:
    """The peer policy for a server's configuration; None when the operator trusts every peer
    (`-volume.allowUntrustedRemoteEndpoints`). `https`: the master's listing is read over HTTPS."""
    if cfg["volume.allowUntrustedRemoteEndpoints"]:
        return None
    return PeerPolicy(functools.partial(master_volume_servers, cfg.masters, https=https))


@dataclasses.dataclass(slots=True)
class Services:
    ctx: NativeContext
    master: MasterSide
    state_file: StateFile
    guard: Guard
    read_only_view: bool = False  # mixed mode: Go owns the files; mutating rpcs are refused
    # Awaited after an rpc that changed the server's state, before it answers: a server with
    # worker processes makes every one of them apply the change first (native/server.py).
    state_changed: Callable[[], Awaitable[None]] = dataclasses.field(default=lambda: _nothing())
    # the peer-trust check of the rpcs that dial a caller-given peer (VolumeCopy,
    # VolumeEcShardsCopy, VolumeTailReceiver); one per server, so its master listing is cached
    peers: PeerPolicy | None = dataclasses.field(init=False, default=None)

    def __post_init__(self) -> None:
        self.peers = peer_policy(self.ctx.cfg, self.ctx.tls.https_client)

    @property
    def server_id(self) -> str:
        return self.ctx.cfg.server_id

    @property
    def store(self) -> Any:
        """The `native.storage.Store` every handler works on."""
        return self.ctx.store


async def _nothing() -> None:
    return None
