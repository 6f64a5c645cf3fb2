"""One step of a scenario: a recorded request sent to every side (or a pause), sans-IO.

Scripted scenarios (`_scenario.py`, TOML) and seeded generators (`_generate.py`) both produce
`Step`s; the runner (`_run.py`) sends each to every side at once and judges the answers.
"""

from __future__ import annotations

import dataclasses

from google.protobuf.message import Message

from difftool._mask import ByteMask
from difftool._records import GrpcRequest, HttpRequest
from weedpy.grpc import format_timeout
from weedpy.serve.routes import GRPC_SERVICE, grpc_endpoint, http_endpoint, request_path

__all__ = ["Step", "endpoint_of", "grpc_request", "GRPC_METADATA"]

# What every gRPC step sends besides its messages (identical on every side).
GRPC_METADATA: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"application/grpc"), (b"te", b"trailers"), (b"user-agent", b"weedpy-diff"))


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    label: str
    request: HttpRequest | GrpcRequest | None  # None: a pause
    repeat: int = 1
    sleep: float = 0.0
    timeout: float = 30.0
    masks: tuple[ByteMask, ...] = ()  # byte ranges of the answer that hold clocks (generated steps)
    expect: str = ""  # what a generator's model predicts Go answers: "ok", "error", or "" (no guess)

    @property
    def endpoint(self) -> str:
        return endpoint_of(self.request) if self.request is not None else ""


def endpoint_of(req: HttpRequest | GrpcRequest) -> str:
    if isinstance(req, GrpcRequest):
        return grpc_endpoint(req.method)
    return http_endpoint(req.port_kind, req.method, request_path(req.target))


def grpc_request(method: str, message: Message, timeout: float | None = None) -> GrpcRequest:
    """A unary or server-streaming VolumeServer call with one request message."""
    metadata = GRPC_METADATA + (((b"grpc-timeout", format_timeout(timeout)),) if timeout is not None else ())
    path = method if method.startswith("/") else GRPC_SERVICE + method
    return GrpcRequest(path, metadata, (message.SerializeToString(deterministic=True),))
