"""Record builders shared by the differ's unit tests."""

from __future__ import annotations

import json

from difftool import GrpcRequest, GrpcResponse, HttpRequest, HttpResponse, Outcome, Sample

GET = HttpRequest(b"GET", b"/status", ((b"Host", b"x"),))


def http_outcome(body: object, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = (), ms: float = 1.0,
                 version: str = "") -> Outcome:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    hs = ((b"Content-Type", b"application/json"), (b"Date", b"now")) + headers
    return Outcome(HttpResponse(status, b"OK", hs, raw), ms=ms, version=version)


def grpc_outcome(*messages: bytes, status: bytes = b"0") -> Outcome:
    head = ((b":status", b"200"), (b"content-type", b"application/grpc"))
    return Outcome(GrpcResponse(head, messages, ((b"grpc-status", status),)))


def sample(primary: Outcome, candidate: Outcome, secondary: Outcome | None = None, endpoint: str = "admin.status",
           request: HttpRequest | GrpcRequest = GET) -> Sample:
    return Sample(endpoint, request, primary, candidate, secondary, "v1", "label")
