"""Free loopback ports, for the gateway's private backend listeners, the differ's clusters,
tests and benchmarks. A port found free can be taken by someone else before it is bound:
callers that start a server on it must cope with that (they retry or report)."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_port_pair"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> tuple[int, int]:
    """A port P such that P and P+10000 are both free (Go's default gRPC port offset)."""
    for _ in range(200):
        p = free_port()
        if p + 10000 > 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 10000))
        except OSError:
            continue
        return p, p + 10000
    raise OSError("no free loopback port pair (P, P+10000)")
