"""Go's pb.ServerAddress: `host:port` or `host:port.grpcPort` (gRPC defaults to port + 10000)."""

from __future__ import annotations

import dataclasses

__all__ = ["ServerAddress", "MasterAddress", "GRPC_PORT_OFFSET", "peer_host"]

GRPC_PORT_OFFSET = 10000


@dataclasses.dataclass(frozen=True, slots=True)
class ServerAddress:
    host: str
    http_port: int
    grpc_port: int

    @classmethod
    def parse(cls, address: str) -> ServerAddress:
        """Raises ValueError for anything but `host:port[.grpcPort]` (IPv6 hosts in brackets)."""
        host, sep, ports = address.strip().rpartition(":")
        if not sep or not host:
            raise ValueError(f"server address {address!r} needs host:port")
        http_s, dot, grpc_s = ports.partition(".")
        try:
            http_port = int(http_s)
            grpc_port = int(grpc_s) if dot else http_port + GRPC_PORT_OFFSET
        except ValueError:
            raise ValueError(f"server address {address!r}: bad port") from None
        return cls(host.strip("[]"), http_port, grpc_port)

    @property
    def http(self) -> tuple[str, int]:
        return (self.host, self.http_port)

    @property
    def grpc(self) -> tuple[str, int]:
        return (self.host, self.grpc_port)

    def same_server(self, other: ServerAddress) -> bool:
        """Go's ServerAddress.Equals: the HTTP addresses match."""
        return self.http == other.http

    @property
    def dotted(self) -> str:
        """`host:port.grpcPort`, both ports spelled out (how logs name a master)."""
        return f"{self.host}:{self.http_port}.{self.grpc_port}"


# A master as Go names it (the heartbeat relay and the native master client use this name).
MasterAddress = ServerAddress


def peer_host(peer: str) -> str:
    """The host of a connection's `ip:port` / `[v6]:port` peer string."""
    if peer.startswith("["):
        return peer[1:].partition("]")[0]
    host, sep, _ = peer.rpartition(":")
    return host if sep else peer
