"""What a gRPC connection advertises: apart from the connection core, so that options can be
built (a server's, a channel's) without loading h2's connection machinery, which loads with the
first connection (start-up time)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConnectionSettings"]


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What we advertise. Windows bound the unacknowledged bytes a peer may push at us."""

    stream_window: int = 1 << 20
    connection_window: int = 16 << 20
    max_concurrent_streams: int = 1000
    max_frame_size: int = 1 << 14
    max_header_list_size: int = 1 << 20
    # h2's per-character header checks; off only towards a trusted peer (the Go backend)
    validate_inbound_headers: bool = True
