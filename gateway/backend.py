"""What the gateway's relays need to know about the managed Go backend: where it listens, if at all."""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = ["BackendEndpoints", "BackendView", "FrontIdentity"]


@dataclasses.dataclass(frozen=True, slots=True)
class BackendEndpoints:
    """The Go backend's private loopback listeners."""

    http: tuple[str, int]
    grpc: tuple[str, int]
    # The backend's public (read-only) listener when the front splits the public port, else None.
    public: tuple[str, int] | None = None
    # Its Prometheus listener (-metricsPort) when the front serves a metrics port, else None.
    metrics: tuple[str, int] | None = None


class BackendView(Protocol):
    def current(self) -> BackendEndpoints | None:
        """The backend's endpoints, or None while it is starting, restarting or stopped.

        Relays answer 503 (HTTP) / UNAVAILABLE (gRPC) at once when this is None: never a hang.
        """


@dataclasses.dataclass(frozen=True, slots=True)
class FrontIdentity:
    """The addresses the master and clients must see: the gateway's front ports, never the backend's."""

    ip: str
    port: int
    grpc_port: int
    public_url: str
    server_id: str
