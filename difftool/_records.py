"""Recorded exchanges: what one side was asked and what it answered, as immutable bytes.

The comparison engine, the noise model, the reports and the fixtures all work on these records
and nothing else, so they can be built from captured wire bytes, from a live gateway's tee or from
a JSON fixture alike. Wire fields stay `bytes`; bodies are de-framed (chunking removed) but never
content-decoded, so a gzip body is compared as the bytes the client got.
"""

from __future__ import annotations

import dataclasses
from typing import Union

__all__ = [
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "GrpcRequest",
    "GrpcResponse",
    "Request",
    "Response",
    "Outcome",
    "Sample",
    "Side",
]

Headers = tuple[tuple[bytes, bytes], ...]


class Side:
    """Names of the sides of a comparison (strings, because they appear in every report)."""

    PRIMARY = "go"  # the reference: what a client of Go gets
    CANDIDATE = "native"  # the implementation under test
    SECONDARY = "go-control"  # a second Go, to learn what differs on its own


@dataclasses.dataclass(frozen=True, slots=True)
class HttpRequest:
    method: bytes
    target: bytes
    headers: Headers = ()
    body: bytes = b""
    port_kind: str = "admin"  # "admin" or "public": which listener it was sent to

    def header(self, lower_name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == lower_name), None)


@dataclasses.dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    reason: bytes = b""
    headers: Headers = ()
    body: bytes = b""
    truncated: bool = False  # the capture stopped at its byte cap; the body is a prefix

    def header(self, lower_name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == lower_name), None)


@dataclasses.dataclass(frozen=True, slots=True)
class GrpcRequest:
    method: str  # full path, "/volume_server_pb.VolumeServer/Ping"
    metadata: Headers = ()  # request headers other than pseudo-headers
    messages: tuple[bytes, ...] = ()  # serialized request messages, in order


@dataclasses.dataclass(frozen=True, slots=True)
class GrpcResponse:
    headers: Headers = ()  # response headers (":status", content-type, initial metadata)
    messages: tuple[bytes, ...] = ()
    trailers: Headers = ()  # for a trailers-only response: the headers block that ended it
    trailers_only: bool = False
    reset_code: int | None = None  # RST_STREAM error code, when the stream was reset
    truncated: bool = False

    def trailer(self, lower_name: bytes) -> bytes | None:
        return next((v for k, v in self.trailers if k == lower_name), None)


Request = Union[HttpRequest, GrpcRequest]
Response = Union[HttpResponse, GrpcResponse]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """One side's answer to a request, or the reason there is none."""

    response: Response | None
    error: str = ""  # transport failure: refused, reset, timed out, handler crashed
    ms: float = 0.0  # time to the complete response
    own_addrs: tuple[bytes, ...] = ()  # "ip:port" this server calls itself (masked in texts)
    version: str = ""  # what answered, e.g. "weed 8000GB 4.48" or "weedpy 0.1.0 native"
    aliases: tuple[tuple[bytes, bytes], ...] = ()  # other per-server values: (value, placeholder)


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One request and every side's outcome: the unit the differ compares."""

    endpoint: str
    request: Request
    primary: Outcome
    candidate: Outcome
    secondary: Outcome | None = None
    routes_v: str = ""
    label: str = ""  # e.g. the scenario step, for people reading a report
