"""Events of the HTTP/1.1 cores: immutable records with wire fields kept as bytes.

The per-message events (Request, Response, InformationalResponse, Data) are NamedTuples rather
than the frozen dataclasses the rest of the code base uses for records: one is built for every
request and body piece, and a frozen dataclass's __init__ (a guarded setattr per field) cost
about 15k instructions a request where a tuple costs 3k.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import NamedTuple

__all__ = [
    "Headers",
    "Request",
    "Response",
    "InformationalResponse",
    "Data",
    "EndOfMessage",
    "ConnectionClosed",
    "Sentinel",
    "NEED_DATA",
    "ProtocolError",
]

Headers = tuple[tuple[bytes, bytes], ...]


class Sentinel(enum.Enum):
    NEED_DATA = "need-data"


NEED_DATA = Sentinel.NEED_DATA


class ProtocolError(Exception):
    """The peer sent something we will not relay or serve; `status_hint` is what to answer, and
    `public` the detail Go's net/http adds to that answer's text (most refusals have none)."""

    def __init__(self, message: str, status_hint: int = 400, public: str = "") -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.public = public


class Request(NamedTuple):
    method: bytes
    target: bytes
    headers: Headers
    http_version: bytes
    keep_alive: bool
    # Body framing as received: a Content-Length, chunked, or neither (no body).
    content_length: int | None
    chunked: bool
    expect_continue: bool
    # The bytes the head arrived in, from its first byte on (what followed it too), when the whole
    # head came in one read, the request is HTTP/1.1 and it has no hop-by-hop header; else None.
    # weedpy.http1.canonical_head tells whether a relay may forward the head exactly as received.
    wire: bytes | None = None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def header(self, lower_name: bytes) -> bytes | None:
        """The first value of a header, by lower-case name."""
        for name, value in self.headers:
            if name.lower() == lower_name:
                return value
        return None


class Response(NamedTuple):
    status: int
    reason: bytes
    headers: Headers
    http_version: bytes
    keep_alive: bool
    content_length: int | None
    chunked: bool
    # True when the body runs until the connection closes (neither length nor chunked).
    until_close: bool


class InformationalResponse(NamedTuple):
    status: int
    reason: bytes
    headers: Headers


class Data(NamedTuple):
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class EndOfMessage:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionClosed:
    pass


END_OF_MESSAGE = EndOfMessage()
CONNECTION_CLOSED = ConnectionClosed()
__all__ += ["END_OF_MESSAGE", "CONNECTION_CLOSED"]
