"""Response building blocks shared by the native handlers, each matching a Go helper:
writeJson / writeJsonError, http.Error, SetEtag, the headers every handler response carries."""

from __future__ import annotations

from typing import Any

from native.http._gojson import marshal
from native.http._request import GoRequest
from native.offload import storage_call
from weedpy.http1 import GoHeader, GoResponse
from weedpy.serve.replies import request_id

__all__ = [
    "storage_call",
    "handler_header",
    "json_response",
    "json_error",
    "http_error",
    "empty",
    "set_etag",
    "body_allowed",
]


def handler_header(server: str, req: GoRequest) -> GoHeader:
    """What the mux wrappers set before the handler runs: request id, Server, CORS for Origin."""
    h = GoHeader()
    h.set("X-Amz-Request-Id", request_id())
    h.set("Server", server)
    if req.header("Origin") != "":
        h.set("Access-Control-Allow-Origin", "*")
        h.set("Access-Control-Allow-Credentials", "true")
    return h


def body_allowed(status: int) -> bool:
    return not (100 <= status <= 199 or status in (204, 304))


def json_response(h: GoHeader, req: GoRequest | None, status: int, obj: Any, *, pretty: bool | None = None) -> GoResponse:
    """writeJson: no body (and no JSON headers) for 1xx/204/304; `?pretty` indents (`pretty`
    says it for a caller without a GoRequest)."""
    if not body_allowed(status):
        return GoResponse(status, h)
    body = b""
    if obj is not None:
        if pretty is None:
            assert req is not None
            pretty = req.query.get("pretty") != ""
        body = marshal(obj, pretty=pretty)
    h.set("Content-Type", "application/json")
    h.set("X-Content-Type-Options", "nosniff")
    return GoResponse(status, h, body)


def json_error(h: GoHeader, req: GoRequest, status: int, message: str) -> GoResponse:
    return json_response(h, req, status, {"error": message})


def http_error(h: GoHeader, status: int, text: str) -> GoResponse:
    """http.Error: drops Content-Length, plain text with nosniff, message plus newline."""
    h.delete("Content-Length")
    h.set("Content-Type", "text/plain; charset=utf-8")
    h.set("X-Content-Type-Options", "nosniff")
    return GoResponse(status, h, text.encode("latin-1", "replace") + b"\n")


def empty(h: GoHeader, status: int) -> GoResponse:
    """w.WriteHeader(status) with nothing written."""
    return GoResponse(status, h)


def set_etag(h: GoHeader, etag: str) -> None:
    if etag:
        h.set("ETag", etag if etag.startswith('"') else f'"{etag}"')
