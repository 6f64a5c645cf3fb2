"""What every native gRPC handler can reach: the server context and the master-facing side."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from weedpy.serve.guard import Guard
from native.context import NativeContext
from native.grpc._state import StateFile
from proto import master_pb2

__all__ = ["Services", "MasterSide"]


class MasterSide(Protocol):
    """The part of `native.master_client.MasterClient` the handlers use."""

    def notify_changed(self) -> None: ...

    def stop_heartbeat_nowait(self) -> bool: ...

    def is_known_master(self, target: str) -> bool: ...

    async def ping(self, target: str) -> int: ...

    async def mark_volume_readonly(self, req: master_pb2.VolumeMarkReadonlyRequest) -> None: ...


@dataclasses.dataclass(slots=True)
class Services:
    ctx: NativeContext
    master: MasterSide
    state_file: StateFile
    guard: Guard
    read_only_view: bool = False  # mixed mode: Go owns the files; mutating rpcs are refused

    @property
    def server_id(self) -> str:
        return self.ctx.cfg.server_id
