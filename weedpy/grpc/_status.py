"""gRPC status codes and the one error type that carries them.

Error hierarchy (everything a caller of weedpy.grpc sees):

    GrpcError(status, message, trailing_metadata)   a call ended with a non-OK status; raised by
                                                    clients, raised by handlers to end a call
    ProtocolError(GrpcError)                        the peer broke the gRPC/HTTP/2 rules (framing,
                                                    headers); carries INTERNAL unless told otherwise
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

__all__ = ["GrpcError", "ProtocolError", "Status", "grpc_error_in", "status_from_http", "status_from_reset"]


class Status(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class GrpcError(Exception):
    """A call ended (or must end) with `status`; `message` travels percent-encoded in grpc-message."""

    def __init__(
        self,
        status: Status | int,
        message: str = "",
        trailing_metadata: Sequence[tuple[str, str | bytes]] = (),
    ) -> None:
        try:
            status = Status(status)
        except ValueError:
            status = Status.UNKNOWN
        super().__init__(status, message)
        self.status: Status = status
        self.message = message
        self.trailing_metadata = tuple(trailing_metadata)

    def __str__(self) -> str:
        return f"{self.status.name}: {self.message}" if self.message else self.status.name

    def __repr__(self) -> str:
        return f"GrpcError({self.status.name}, {self.message!r})"


class ProtocolError(GrpcError):
    """The peer sent something gRPC forbids; the call ends with `status` (INTERNAL by default)."""

    def __init__(self, message: str, status: Status = Status.INTERNAL) -> None:
        super().__init__(status, message)


# HTTP/2 RST_STREAM error code -> gRPC status, as the gRPC spec (PROTOCOL-HTTP2.md) maps them.
_RESET_STATUS = {
    0x0: Status.INTERNAL,  # NO_ERROR before the trailers arrived
    0x1: Status.INTERNAL,
    0x2: Status.INTERNAL,
    0x3: Status.INTERNAL,
    0x4: Status.INTERNAL,
    0x5: Status.INTERNAL,
    0x6: Status.INTERNAL,
    0x7: Status.UNAVAILABLE,  # REFUSED_STREAM: never processed, safe to retry
    0x8: Status.CANCELLED,
    0x9: Status.INTERNAL,
    0xA: Status.INTERNAL,
    0xB: Status.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: Status.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}

# HTTP status without grpc-status -> gRPC status (grpc-go's httpStatusConvTab).
_HTTP_STATUS = {
    400: Status.INTERNAL,
    401: Status.UNAUTHENTICATED,
    403: Status.PERMISSION_DENIED,
    404: Status.UNIMPLEMENTED,
    429: Status.UNAVAILABLE,
    502: Status.UNAVAILABLE,
    503: Status.UNAVAILABLE,
    504: Status.UNAVAILABLE,
}


def status_from_reset(error_code: int) -> Status:
    return _RESET_STATUS.get(error_code, Status.INTERNAL)


def status_from_http(http_status: int) -> Status:
    return _HTTP_STATUS.get(http_status, Status.UNKNOWN)


def grpc_error_in(exc: BaseException) -> GrpcError | None:
    """The GrpcError itself, or the first one inside an exception group (from a handler's nursery)."""
    if isinstance(exc, GrpcError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = grpc_error_in(inner)
            if found is not None:
                return found
    return None
