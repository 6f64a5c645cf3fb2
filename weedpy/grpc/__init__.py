"""gRPC on h2 + trio: one sans-IO connection core for both directions, thin trio shells.

Layers (each usable on its own):

* `GrpcConnection` (sans-IO): HTTP/2 + gRPC request screening, flow-controlled send queues,
  explicit acknowledgement of received DATA; `MessageReader` / `encode_message`: message framing.
* `H2Transport` / `StreamHandle` (trio): run a connection over a stream.
* Server: `serve_listeners` / `serve_connection` hand each call, as a `ServerCall`, to a
  `CallHandler` (`async def handle(call)`); `Router` is the message-level one (protobuf handlers).
* Client: `Channel` (message level) over `ConnectionPool` (raw streams, also used by the gateway).
"""

from typing import TYPE_CHECKING, Any

from ._client import Channel, ChannelOptions, ClientCall, ConnectionPool, request_headers
from ._settings import ConnectionSettings
from ._events import (
    ConnectionClosed,
    DataReceived,
    InputEnded,
    OutputDrained,
    RequestStarted,
    ResponseStarted,
    StreamReset,
    TrailersReceived,
)
from ._framing import DEFAULT_MAX_MESSAGE, MessageReader, encode_message
from ._metadata import (
    RESERVED_HEADERS,
    Metadata,
    decode_metadata,
    encode_metadata,
    format_timeout,
    header_value,
    parse_timeout,
    percent_decode,
    percent_encode,
)
from ._router import Context, MethodSpec, Router, RpcHandler
from ._server import CallHandler, ServerCall, ServerOptions, peer_of, serve_connection, serve_listeners
from ._status import GrpcError, ProtocolError, Status, grpc_error_in, status_from_http, status_from_reset
from ._transport import H2Transport, StreamHandle

if TYPE_CHECKING:
    from ._connection import GrpcConnection

__all__ = [
    "CallHandler",
    "Channel",
    "ChannelOptions",
    "ClientCall",
    "ConnectionClosed",
    "ConnectionPool",
    "ConnectionSettings",
    "Context",
    "DEFAULT_MAX_MESSAGE",
    "DataReceived",
    "GrpcConnection",
    "GrpcError",
    "H2Transport",
    "InputEnded",
    "MessageReader",
    "Metadata",
    "MethodSpec",
    "OutputDrained",
    "ProtocolError",
    "RESERVED_HEADERS",
    "RequestStarted",
    "ResponseStarted",
    "Router",
    "RpcHandler",
    "ServerCall",
    "ServerOptions",
    "Status",
    "StreamHandle",
    "StreamReset",
    "TrailersReceived",
    "decode_metadata",
    "encode_message",
    "encode_metadata",
    "format_timeout",
    "grpc_error_in",
    "header_value",
    "load_connection_core",
    "parse_timeout",
    "peer_of",
    "percent_decode",
    "percent_encode",
    "request_headers",
    "serve_connection",
    "serve_listeners",
    "status_from_http",
    "status_from_reset",
]


def load_connection_core() -> None:
    """Import h2's connection machinery now rather than with the first connection: from a
    worker thread, so that an event loop goes on serving meanwhile (its import takes ~10 ms)."""
    from ._connection import GrpcConnection  # noqa: F401 - the import is the point (start-up time)


def __getattr__(name: str) -> Any:
    if name == "GrpcConnection":
        from ._connection import GrpcConnection  # h2's connection machinery loads with the first connection (start-up time)

        return GrpcConnection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
