"""Responses the gateway writes itself, shaped like Go's (JSON `{"error": ...}` bodies)."""

from __future__ import annotations

import json

from weedpy.http1 import simple_response

__all__ = ["json_error", "go_json"]


def go_json(value: object) -> bytes:
    """encoding/json's compact form with its HTML escaping of < > &."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def json_error(status: int, message: str, close: bool = False) -> bytes:
    return simple_response(
        status,
        go_json({"error": message}),
        [(b"Content-Type", b"application/json")],
        close=close,
    )
