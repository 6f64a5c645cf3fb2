"""How a volume server names itself to the master, and how often it heartbeats.

Kept apart from native.heartbeat so that building a server (before its ports listen) does not
load the heartbeat's messages and report records: the master client loads those in its preload
thread once the server answers (start-up time).
"""

from __future__ import annotations

import dataclasses

__all__ = ["Identity", "PULSE_SECONDS"]

PULSE_SECONDS = 5.0  # Go's constants.VolumePulsePeriod


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """How this server names itself to the master (what the master hands out to clients)."""

    ip: str
    port: int
    grpc_port: int
    public_url: str
    server_id: str
    data_center: str = ""
    rack: str = ""
