"""Free loopback ports, for the gateway's private backend listeners, the differ's clusters,
tests and benchmarks.

A port found free can be taken by someone else before the server it is meant for binds it. Two
ways that happened (and failed a start with "address already in use"):

- the port came from the kernel's ephemeral range (bind to port 0 picks there), where the kernel
  also takes the local port of every outgoing connection on the machine;
- two processes (test workers, a gateway and a differ cluster) picked the same port at about the
  same time: nothing stops a second bind-to-0 probe from returning a port a first one has just
  released to its server.

So ports are taken below the ephemeral range, in turn from a ring that every process of this user
shares (a counter in the temp directory, advanced under an exclusive lock): a port comes round
again only after `SPAN` more picks on the machine. Each pick is still probed by binding it.
Without that range (an unusual `ip_local_port_range`) or without the counter file, picks fall
back to random ones, probed the same way.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

__all__ = ["free_port", "free_port_pair", "FIRST", "SPAN", "PAIR_OFFSET"]

FIRST = 10000  # single ports and the first of a pair: [FIRST, FIRST + SPAN)
SPAN = 10000
PAIR_OFFSET = 10000  # Go's default gRPC port offset; the second of a pair: [FIRST + SPAN, FIRST + 2 * SPAN)
_ATTEMPTS = 200


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _counter_file() -> Path:
    return Path(tempfile.gettempdir()) / f"weedpy-ports-{os.getuid()}.next"


def _next_slot() -> int:
    """The next slot of the shared ring, in [0, SPAN); a random one without the counter file."""
    try:
        fd = os.open(_counter_file(), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return random.randrange(SPAN)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            slot = int(os.pread(fd, 32, 0).decode()) % SPAN
        except ValueError:  # a new (empty) file: start anywhere
            slot = random.randrange(SPAN)
        os.pwrite(fd, b"%-16d" % ((slot + 1) % SPAN), 0)
        return slot
    except OSError:
        return random.randrange(SPAN)
    finally:
        os.close(fd)  # releases the lock


def _bindable(port: int) -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def _os_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ring_usable() -> bool:
    return _ephemeral_low() >= FIRST + SPAN + PAIR_OFFSET


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and that no other picker is handed soon."""
    if not _ring_usable():
        return _os_port()
    for _ in range(_ATTEMPTS):
        p = FIRST + _next_slot()
        if _bindable(p):
            return p
    raise OSError(f"no free loopback port in [{FIRST}, {FIRST + SPAN})")


def free_port_pair() -> tuple[int, int]:
    """A port P such that P and P+10000 are both free (Go's default gRPC port offset)."""
    for _ in range(_ATTEMPTS):
        p = free_port() if _ring_usable() else _os_port()
        if p + PAIR_OFFSET <= 65535 and _bindable(p + PAIR_OFFSET):
            return p, p + PAIR_OFFSET
    raise OSError("no free loopback port pair (P, P+10000)")
