"""TLS on trio streams: `TlsStream` (either side), the gRPC listener, the HTTPS accept loop, dialing.

The plaintext HTTP path keeps its raw-socket fast streams (weedpy.http1._fastio); a TLS
connection is a `trio.SSLStream` over a `trio.SocketStream`, wrapped so the code above sees what
it needs of a socket stream (`socket` for the peer address, no `sock`, so nothing sends a file
around the encryption). The handshake runs on first use, bounded by `HANDSHAKE_TIMEOUT`, then the
server checks the client's certificate name when security.toml restricts it.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable

import trio

from weedpy.logs import get_logger

from ._config import PeerNames, ServerTls

__all__ = [
    "HANDSHAKE_TIMEOUT", "TlsHandshakeError", "TlsStream", "TlsListener", "serve_https", "open_tls_stream",
    "HTTP_TO_HTTPS_REPLY",
]

log = get_logger("weedpy.tls")

HANDSHAKE_TIMEOUT = 30.0
# What Go's net/http answers a plaintext request on a TLS port (then it closes the connection).
HTTP_TO_HTTPS_REPLY = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
# Go's tlsRecordHeaderLooksLikeHTTP: the first five bytes of a plaintext HTTP request.
_HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO")


class TlsHandshakeError(trio.BrokenResourceError):
    """The TLS handshake failed, timed out, or the peer's certificate name is not allowed."""


class TlsStream(trio.abc.Stream):
    """A TLS connection over a socket stream; the handshake happens on first use (or `handshake()`)."""

    def __init__(
        self, transport: trio.SocketStream, context: ssl.SSLContext, *, server_side: bool,
        server_hostname: str | None = None, peer_names: PeerNames | None = None, http: bool = False,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        # http: tolerate a peer that closes without close_notify, as HTTP clients and servers do
        self._ssl = trio.SSLStream(
            transport, context, server_side=server_side, server_hostname=server_hostname, https_compatible=http,
        )
        self._transport = transport
        self._peer_names = peer_names
        self._timeout = handshake_timeout
        self._ready = False
        self._lock = trio.Lock()  # the reader and the writer of a connection may both start it
        self._failed: TlsHandshakeError | None = None

    @property
    def socket(self) -> trio.socket.SocketType:
        """The TCP socket underneath (peer and local addresses, socket options)."""
        return self._transport.socket

    def peer_common_name(self) -> str:
        """The subject common name of the peer's certificate ("" without one)."""
        cert = self._ssl.getpeercert() or {}
        names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
        return names[-1] if names else ""

    def peer_address(self) -> str:
        try:
            host, port = self.socket.getpeername()[:2]
        except OSError:
            return ""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def handshake(self) -> None:
        """Complete the handshake (and the name check); TlsHandshakeError on any failure."""
        if self._ready:
            return
        async with self._lock:
            if self._failed is not None:
                raise self._failed
            if not self._ready:
                try:
                    await self._handshake_once()
                except TlsHandshakeError as exc:
                    self._failed = exc
                    raise

    async def _handshake_once(self) -> None:
        try:
            with trio.fail_after(self._timeout):
                await self._ssl.do_handshake()
        except trio.TooSlowError:
            raise TlsHandshakeError("TLS handshake timed out") from None
        except trio.BrokenResourceError as exc:
            reason = exc.__cause__ or exc
            log.info("tls handshake failed", peer=self.peer_address(), error=str(reason))
            raise TlsHandshakeError(f"TLS handshake failed: {reason}") from exc
        if self._peer_names is not None:
            name = self.peer_common_name()
            if not self._peer_names.allows(name):
                log.error("tls peer refused", peer=self.peer_address(),
                          error=f"Authenticate: invalid subject client common name: {name}")
                raise TlsHandshakeError(f"client certificate name {name!r} is not allowed")
        self._ready = True

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._ready:
            await self.handshake()
        return await self._ssl.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if not self._ready:
            await self.handshake()
        await self._ssl.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._ssl.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        if self._ready:
            await self._ssl.aclose()
        else:  # never a handshake (or a failed one) just to say goodbye
            await self._transport.aclose()


class TlsListener(trio.abc.Listener[TlsStream]):
    """Accepts TCP connections and hands them out as server-side `TlsStream`s (handshake on first use)."""

    def __init__(self, transport: trio.SocketListener, tls: ServerTls) -> None:
        self.transport = transport
        self._tls = tls

    @property
    def socket(self) -> trio.socket.SocketType:
        return self.transport.socket

    async def accept(self) -> TlsStream:
        stream = await self.transport.accept()
        return TlsStream(stream, self._tls.context, server_side=True, peer_names=self._tls.peer_names)

    async def aclose(self) -> None:
        await self.transport.aclose()


async def serve_https(
    sock: socket.socket, tls: ServerTls, handler: Callable[[TlsStream], Awaitable[None]],
    handler_nursery: trio.Nursery, send_buffer: int = 0,
) -> None:
    """Accept forever on a listening socket; each connection runs `handler` in `handler_nursery`
    once its handshake is done. A plaintext HTTP request gets Go's 400 answer instead."""
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))

    async def one(stream: trio.SocketStream) -> None:
        if send_buffer:
            try:
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            except OSError:
                pass
        try:
            if await _looks_like_http(stream):
                await _refuse_plaintext(stream)
                return
            tls_stream = TlsStream(stream, tls.context, server_side=True, peer_names=tls.peer_names, http=True)
            await tls_stream.handshake()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError):
            await trio.aclose_forcefully(stream)
            return
        await handler(tls_stream)

    await trio.serve_listeners(one, [listener], handler_nursery=handler_nursery)


async def _refuse_plaintext(stream: trio.SocketStream) -> None:
    """Go's answer, then a lingering close: closing with the request unread would reset the
    connection and could destroy the answer before the client reads it."""
    await stream.send_all(HTTP_TO_HTTPS_REPLY)
    await stream.send_eof()
    with trio.move_on_after(1):
        while await stream.receive_some(1 << 16):
            pass
    await stream.aclose()


async def _looks_like_http(stream: trio.SocketStream) -> bool:
    """Peek at the first bytes without taking them: a plaintext request where TLS belongs."""
    sock = stream.socket
    with trio.fail_after(HANDSHAKE_TIMEOUT):
        while True:
            head = await sock.recv(5, socket.MSG_PEEK)
            if len(head) >= 5 or not head or head[0] == 0x16:  # 0x16: a TLS handshake record
                return head[:5] in _HTTP_STARTS
            await trio.sleep(0.01)  # a request trickling in: wait for the five bytes Go looks at


async def open_tls_stream(
    host: str, port: int, context: ssl.SSLContext, *, http: bool = False, connect_timeout: float = 5.0,
) -> TlsStream:
    """Dial and handshake; OSError (naming the address) on failure, TooSlowError past the timeout."""
    with trio.fail_after(connect_timeout):
        transport = await trio.open_tcp_stream(host, port)
    stream = TlsStream(transport, context, server_side=False, server_hostname=host, http=http,
                       handshake_timeout=connect_timeout)
    try:
        await stream.handshake()
    except TlsHandshakeError as exc:
        await trio.aclose_forcefully(transport)
        raise OSError(f"tls handshake with {host}:{port}: {exc}") from exc
    return stream
