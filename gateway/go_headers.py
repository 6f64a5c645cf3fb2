"""Headers Go's volume server puts on every handler response, for replies the gateway writes itself."""

from __future__ import annotations

import email.utils
import os
import time

__all__ = ["request_id", "http_date", "handler_headers"]


def request_id() -> bytes:
    """weed/util/request_id: %X of the time in ns followed by 4 random bytes as %08X."""
    return b"%X%08X" % (time.time_ns(), int.from_bytes(os.urandom(4), "big"))


def http_date() -> bytes:
    return email.utils.formatdate(usegmt=True).encode()


def handler_headers(server: bytes, origin: bool) -> list[tuple[bytes, bytes]]:
    """Server, X-Amz-Request-Id and, for a request with Origin, the CORS pair; Go sorts by name."""
    hs = []
    if origin:
        hs += [(b"Access-Control-Allow-Credentials", b"true"), (b"Access-Control-Allow-Origin", b"*")]
    hs += [(b"Server", server), (b"X-Amz-Request-Id", request_id())]
    return hs
