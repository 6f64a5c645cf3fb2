"""Message-level serving: a `Router` maps method paths to protobuf handlers and is a `CallHandler`.

Handler shapes, by streaming kind (`ctx` is a `Context`):

    unary          async def h(request, ctx) -> response
    server stream  async def h(request, ctx) -> AsyncIterator[response]   (an async generator)
    client stream  async def h(requests: AsyncIterator, ctx) -> response
    bidi           async def h(requests: AsyncIterator, ctx) -> AsyncIterator[response]

Raise `GrpcError(status, message)` to end a call with a status. The deadline from grpc-timeout
and a client's RST_STREAM cancel the handler (trio cancellation).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import trio
from google.protobuf.message import DecodeError, Message

from ._metadata import Metadata, header_value
from ._server import ServerCall
from ._status import GrpcError, Status

__all__ = ["Context", "MethodSpec", "RpcHandler", "Router"]


class _Kind(Protocol):
    @property
    def client_streaming(self) -> bool: ...
    @property
    def server_streaming(self) -> bool: ...


class MethodSpec(Protocol):
    """What a handler registration needs to know; `proto.services.Rpc` satisfies it."""

    @property
    def path(self) -> str: ...
    @property
    def request(self) -> type[Message]: ...
    @property
    def response(self) -> type[Message]: ...
    @property
    def kind(self) -> _Kind: ...


@dataclass(frozen=True, slots=True)
class RpcHandler:
    path: str
    request_type: type[Message]
    response_type: type[Message]
    client_streaming: bool
    server_streaming: bool
    func: Callable[..., Any]

    @classmethod
    def for_method(cls, method: MethodSpec, func: Callable[..., Any]) -> RpcHandler:
        return cls(
            method.path, method.request, method.response, method.kind.client_streaming, method.kind.server_streaming, func
        )


class Context:
    """What a handler may know and do besides messages."""

    __slots__ = ("_call", "_trailing")

    def __init__(self, call: ServerCall) -> None:
        self._call = call
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()

    @property
    def method(self) -> str:
        return self._call.method

    @property
    def peer(self) -> str:
        """"ip:port" of the client's socket."""
        return self._call.peer

    @property
    def metadata(self) -> Metadata:
        return self._call.metadata

    @property
    def deadline(self) -> float:
        """trio clock deadline from grpc-timeout (math.inf without one)."""
        return self._call.deadline

    def time_remaining(self) -> float | None:
        if self._call.deadline == math.inf:
            return None
        return max(0.0, self._call.deadline - trio.current_time())

    def send_initial_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._call.send_initial_metadata(metadata)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        """Add trailing metadata; like grpc-go's SetTrailer, several calls merge."""
        self._trailing += tuple(metadata)

    @property
    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing

    def abort(self, status: Status, message: str = "") -> NoReturn:
        raise GrpcError(status, message, self._trailing)


class Router:
    """Dispatches calls to registered handlers; unknown methods get UNIMPLEMENTED like grpc-go."""

    def __init__(
        self, handlers: Iterable[RpcHandler] = (),
        unary_trailers: Callable[[ServerCall], Sequence[tuple[str, str | bytes]]] | None = None,
    ) -> None:
        """`unary_trailers(call)`: metadata every unary call ends with (a unary interceptor's SetTrailer)."""
        self._handlers: dict[str, RpcHandler] = {}
        self._unary_trailers = unary_trailers
        for h in handlers:
            self.register(h)

    def register(self, handler: RpcHandler) -> None:
        self._handlers[handler.path] = handler

    def add(self, method: MethodSpec, func: Callable[..., Any]) -> None:
        self.register(RpcHandler.for_method(method, func))

    @property
    def paths(self) -> Mapping[str, RpcHandler]:
        return dict(self._handlers)

    async def handle(self, call: ServerCall) -> None:
        h = self._handlers.get(call.method)
        if h is None:
            service, _, name = call.method.lstrip("/").partition("/")
            raise GrpcError(Status.UNIMPLEMENTED, f"unknown method {name} for service {service}")
        encoding = header_value(call.headers, b"grpc-encoding")
        if encoding is not None and encoding != b"identity":
            raise GrpcError(
                Status.UNIMPLEMENTED,
                f'grpc: Decompressor is not installed for grpc-encoding "{encoding.decode("latin-1")}"',
            )
        ctx = Context(call)
        if self._unary_trailers is not None and not h.client_streaming and not h.server_streaming:
            ctx.set_trailing_metadata(self._unary_trailers(call))
        try:
            await _invoke(h, call, ctx)
        except GrpcError as exc:
            if exc.trailing_metadata or not ctx.trailing_metadata:
                raise
            raise GrpcError(exc.status, exc.message, ctx.trailing_metadata) from exc  # as grpc-go's SetTrailer
        call.finish(Status.OK, metadata=ctx.trailing_metadata)


async def _invoke(h: RpcHandler, call: ServerCall, ctx: Context) -> None:
    arg: Any = _requests(call, h.request_type) if h.client_streaming else await _single_request(call, h.request_type)
    if h.server_streaming:
        responses = h.func(arg, ctx)
        async with contextlib.aclosing(responses):
            async for resp in responses:
                payload = resp.SerializeToString()
                del resp  # a large message is not kept twice while the peer's window or socket is slow
                await call.send_message(payload)
    else:
        resp = await h.func(arg, ctx)
        await call.send_message(resp.SerializeToString())


def _decode(payload: bytes, cls: type[Message]) -> Message:
    msg = cls()
    try:
        msg.ParseFromString(payload)
    except DecodeError as exc:
        raise GrpcError(Status.INTERNAL, f"grpc: error unmarshalling request: {exc}") from exc
    return msg


async def _single_request(call: ServerCall, cls: type[Message]) -> Message:
    payload = await call.receive_message()
    if payload is None:
        raise GrpcError(Status.INTERNAL, "grpc: server received no request message")
    if await call.receive_message() is not None:
        raise GrpcError(Status.INTERNAL, "grpc: too many requests received from client")
    return _decode(payload, cls)


async def _requests(call: ServerCall, cls: type[Message]) -> AsyncIterator[Message]:
    while (payload := await call.receive_message()) is not None:
        yield _decode(payload, cls)
