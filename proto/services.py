"""Every gRPC method of the contract: path, message classes and streaming kind.

Derived from the generated descriptors (never typed by hand), so gRPC servers, clients and the
proxy can route and (de)serialize by method path without grpcio stubs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf import message as _message
from google.protobuf import message_factory
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor

from proto import master_pb2, volume_server_pb2

__all__ = [
    "MASTER",
    "RPCS",
    "VOLUME_SERVER",
    "Rpc",
    "StreamKind",
    "rpc_for_path",
]


class StreamKind(enum.Enum):
    UNARY = "unary"
    SERVER_STREAM = "server-stream"
    CLIENT_STREAM = "client-stream"
    BIDI = "bidi"

    @classmethod
    def of(cls, client_streaming: bool, server_streaming: bool) -> StreamKind:
        if client_streaming:
            return cls.BIDI if server_streaming else cls.CLIENT_STREAM
        return cls.SERVER_STREAM if server_streaming else cls.UNARY

    @property
    def client_streaming(self) -> bool:
        return self in (StreamKind.CLIENT_STREAM, StreamKind.BIDI)

    @property
    def server_streaming(self) -> bool:
        return self in (StreamKind.SERVER_STREAM, StreamKind.BIDI)


@dataclass(frozen=True, slots=True)
class Rpc:
    service: str  # full service name, e.g. "volume_server_pb.VolumeServer"
    name: str  # method name, e.g. "Ping"
    path: str  # HTTP/2 :path, e.g. "/volume_server_pb.VolumeServer/Ping"
    request: type[_message.Message]
    response: type[_message.Message]
    kind: StreamKind


def _rpc(method: MethodDescriptor) -> Rpc:
    service: ServiceDescriptor = method.containing_service
    return Rpc(
        service=service.full_name,
        name=method.name,
        path=f"/{service.full_name}/{method.name}",
        request=message_factory.GetMessageClass(method.input_type),
        response=message_factory.GetMessageClass(method.output_type),
        kind=StreamKind.of(method.client_streaming, method.server_streaming),
    )


def _service(file: FileDescriptor, name: str) -> tuple[Rpc, ...]:
    return tuple(_rpc(m) for m in file.services_by_name[name].methods)


VOLUME_SERVER: tuple[Rpc, ...] = _service(volume_server_pb2.DESCRIPTOR, "VolumeServer")
MASTER: tuple[Rpc, ...] = _service(master_pb2.DESCRIPTOR, "Seaweed")

# Every rpc keyed by its method path.
RPCS: Mapping[str, Rpc] = MappingProxyType({r.path: r for r in VOLUME_SERVER + MASTER})


def rpc_for_path(path: str) -> Rpc | None:
    """The rpc served at an HTTP/2 :path, or None for an unknown method."""
    return RPCS.get(path)
