"""A TCP listener that only counts: every connection it accepts is recorded and closed at once.

The SSRF tests point a server at it (an S3 endpoint, a Host header, an absolute request target)
and then read how many connections the server made: 0 where Go's secure default refuses.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

__all__ = ["CountingListener", "counting_listeners"]


class CountingListener:
    """One listening socket on `host`, accepting in a thread and counting what it accepted."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self._lock = threading.Lock()
        self._count = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._count

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._count += 1
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)


def _bindable(host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


@contextlib.contextmanager
def counting_listeners(hosts: tuple[str, ...] = ("127.0.0.1", "127.0.0.2", "::1")) -> Iterator[dict[str, CountingListener]]:
    """A listener on each of `hosts` the OS lets this process bind (127.0.0.1 always)."""
    out: dict[str, CountingListener] = {}
    try:
        for h in hosts:
            if h == "127.0.0.1" or _bindable(h):
                out[h] = CountingListener(h)
        yield out
    finally:
        for lst in out.values():
            lst.close()
