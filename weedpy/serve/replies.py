"""Replies the serving layer writes itself (503 while stopping, 401 from the guard, an unavailable
target), shaped like Go's: the headers every Go handler response carries and `{"error": ...}`."""

from __future__ import annotations

import json
import random
import time

from weedpy.http1 import http_date, simple_response

__all__ = ["request_id", "request_id_bits", "handler_headers", "json_error", "go_json", "date_header"]

_RNG = random.Random()  # request ids need uniqueness, not secrecy
request_id_bits = _RNG.getrandbits  # request_id()'s random part, for a caller that formats it inline


def request_id() -> str:
    """weed/util/request_id: %X of the time in ns, then 4 random bytes as %08X."""
    return "%X%08X" % (time.time_ns(), _RNG.getrandbits(32))


def date_header() -> tuple[bytes, bytes]:
    return (b"Date", http_date().encode())


def handler_headers(server: bytes, origin: bool) -> list[tuple[bytes, bytes]]:
    """Server, X-Amz-Request-Id and, for a request with Origin, the CORS pair; Go sorts by name."""
    hs = []
    if origin:
        hs += [(b"Access-Control-Allow-Credentials", b"true"), (b"Access-Control-Allow-Origin", b"*")]
    hs += [(b"Server", server), (b"X-Amz-Request-Id", request_id().encode())]
    return hs


def go_json(value: object) -> bytes:
    """encoding/json's compact form with its HTML escaping of < > &."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def json_error(status: int, message: str, close: bool = False) -> bytes:
    return simple_response(status, go_json({"error": message}), [(b"Content-Type", b"application/json")], close=close)
