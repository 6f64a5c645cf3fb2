"""The kernel's view of TCP connections (Linux /proc/net/tcp and tcp6), so a test can wait for what
it depends on instead of sleeping: until a server has read every byte sent to it on a connection,
or until a server holds no client connection any more (every handler has finished)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

__all__ = ["TcpConn", "connections", "wait_read", "wait_no_connections"]

ESTABLISHED, CLOSE_WAIT = "01", "08"


@dataclasses.dataclass(frozen=True, slots=True)
class TcpConn:
    local_port: int
    remote_port: int
    state: str  # the kernel's hex state: 01 ESTABLISHED, 08 CLOSE_WAIT, 0A LISTEN, ...
    rx_queue: int  # bytes received and not yet read by the socket's owner


def connections(local_port: int) -> list[TcpConn]:
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, state, queues = f[1], f[2], f[3], f[4]
            if int(local.rsplit(":", 1)[1], 16) != local_port:
                continue
            out.append(TcpConn(local_port, int(remote.rsplit(":", 1)[1], 16), state, int(queues.split(":")[1], 16)))
    return out


def wait_read(server_port: int, client_port: int, timeout: float = 30.0) -> None:
    """Until the server has read everything the client at `client_port` sent it."""
    deadline = time.monotonic() + timeout
    while True:
        conns = [c for c in connections(server_port) if c.remote_port == client_port]
        if conns and all(c.rx_queue == 0 for c in conns):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"server :{server_port} left bytes from :{client_port} unread: {conns}")
        time.sleep(0.01)


def wait_no_connections(server_port: int, timeout: float = 30.0) -> None:
    """Until the server on `server_port` holds no client connection open (none established, none
    closed by the client but not yet by the server)."""
    deadline = time.monotonic() + timeout
    while True:
        held = [c for c in connections(server_port) if c.state in (ESTABLISHED, CLOSE_WAIT)]
        if not held:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"server :{server_port} still holds connections: {held}")
        time.sleep(0.05)
