"""Socket streams for the hot path: try the syscall first, park on trio only when it would block.

trio's SocketStream passes through the scheduler twice on every send and receive, even when the
kernel could complete the call at once; on a proxy that does four socket calls per request that
is most of the per-request cost. These streams call the non-blocking socket directly and only
wait (`trio.lowlevel.wait_readable/wait_writable`, both cancellable checkpoints) on EAGAIN. The
connection loops add one explicit checkpoint per request so a busy connection cannot starve the
others.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

__all__ = ["FastStream", "fast_connect", "serve_fast", "accept_forever", "listening_socket", "Spread", "SPREAD_DEFER"]


class FastStream:
    """A connected non-blocking TCP socket with the subset of trio's stream API we use."""

    __slots__ = ("sock", "_closed", "idle_deadline", "idle_reply", "write_timeout")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._closed = False
        # time.monotonic() after which an idle reaper may close the stream; 0 while not waiting.
        self.idle_deadline = 0.0
        self.idle_reply: bytes | None = None  # what the reaper sends before it closes (Go's 400)
        # Go's write deadline (the idle timeout, renewed by every write that goes out): a wait
        # for the client to take an answer stamps `idle_deadline` too; 0: no deadline
        self.write_timeout = 0.0

    @property
    def socket(self) -> socket.socket:
        return self.sock

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.sock.setsockopt(level, option, value)

    def receive_now(self, max_bytes: int = 65536) -> bytes | None:
        """What the kernel already holds (b"" at EOF), or None when a receive would block.

        Lets a caller skip setting up a timeout for the common case where the peer's bytes are
        already here; it is not a checkpoint.
        """
        try:
            return self.sock.recv(max_bytes)
        except BlockingIOError:
            return None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        except OSError as exc:
            raise self._broken(exc) from exc

    async def receive_after_wait(self, max_bytes: int = 65536) -> bytes:
        """Wait until the socket is readable, then receive: for a caller that has just found
        it empty (an immediate second recv would fail again; one syscall saved)."""
        await trio.lowlevel.wait_readable(self.sock)
        return await self.receive_some(max_bytes)

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        sock = self.sock
        while True:
            try:
                return sock.recv(max_bytes)
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            except OSError as exc:
                raise self._broken(exc) from exc
            await trio.lowlevel.wait_readable(sock)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise self._broken(exc) from exc
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            await self.wait_writable()
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise self._broken(exc) from exc
            view = view[sent:]

    async def wait_writable(self) -> None:
        """Wait until the client takes more; past `write_timeout` without it the run's idle
        reaper closes the stream (ClosedResourceError here), as Go's write deadline ends a
        handler whose client stopped reading."""
        timeout = self.write_timeout
        if not timeout:
            await trio.lowlevel.wait_writable(self.sock)
            return
        self.idle_reply = None
        self.idle_deadline = time.monotonic() + timeout
        try:
            await trio.lowlevel.wait_writable(self.sock)
        finally:
            self.idle_deadline = 0.0

    def _broken(self, exc: OSError) -> Exception:
        if self._closed or exc.errno == errno.EBADF:
            return trio.ClosedResourceError("stream closed")
        return trio.BrokenResourceError(str(exc))

    async def send_eof(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


async def fast_connect(host: str, port: int, timeout: float = 5.0, buffer_size: int = 0) -> FastStream:
    """Open a TCP connection without a resolver thread (addresses are numeric on this path).

    `buffer_size` caps both socket buffers (0 keeps the kernel's autotuning).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if buffer_size:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_size)
        rc = sock.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS):
            raise OSError(rc, f"connect {host}:{port}: {errno.errorcode.get(rc, rc)}")
        if rc:
            with trio.fail_after(timeout):
                await trio.lowlevel.wait_writable(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect {host}:{port}: {errno.errorcode.get(err, err)}")
    except BaseException:
        sock.close()
        raise
    return FastStream(sock)


async def _counted(handler: Callable[[FastStream], Awaitable[None]], stream: FastStream, spread: Spread) -> None:
    try:
        await handler(stream)
    finally:
        spread.closed()


def listening_socket(host: str, port: int, backlog: int = 4096) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class Spread(Protocol):
    """Connection counts shared with the other processes accepting on the same socket
    (weedpy/serve/spread.py)."""

    @property
    def defers(self) -> bool: ...  # this process leaves every new connection to another that accepts
    def should_wait(self) -> bool: ...
    def opened(self) -> None: ...
    def closed(self) -> None: ...


SPREAD_DEFER = 0.002  # how long a busier process leaves a new connection to a less busy one


async def serve_fast(
    listener: socket.socket,
    handler: Callable[[FastStream], Awaitable[None]],
    handler_nursery: trio.Nursery,
    send_buffer: int = 0,
    spread: Spread | None = None,
) -> None:
    """Accept forever on a listening socket; each connection runs `handler` in `handler_nursery`.

    Cancelling this task stops accepting and closes the listener; running handlers are untouched.
    `send_buffer` caps each connection's send buffer (0 keeps the kernel's autotuning). With
    `spread` (other processes accept on the same socket) a process holding more connections than
    another waits `SPREAD_DEFER` before each accept, so the less busy one takes what arrives.
    """

    def start(conn: socket.socket) -> None:
        if spread is None:
            handler_nursery.start_soon(handler, FastStream(conn))
        else:
            spread.opened()
            handler_nursery.start_soon(_counted, handler, FastStream(conn), spread)

    await accept_forever(listener, start, send_buffer, spread)


async def accept_forever(
    listener: socket.socket, on_socket: Callable[[socket.socket], None], send_buffer: int = 0,
    spread: Spread | None = None,
) -> None:
    """`serve_fast`'s accept loop: each accepted socket (non-blocking, TCP_NODELAY) goes to
    `on_socket`, which owns it from then on (and reports its end to `spread`, if any)."""
    listener.setblocking(False)
    try:
        while True:
            if spread is not None and spread.should_wait():
                if spread.defers:  # never while another process accepts: look again once one is queued
                    await trio.lowlevel.wait_readable(listener)
                    if spread.should_wait():
                        await trio.sleep(SPREAD_DEFER)  # the other process takes it meanwhile
                        continue
                else:
                    await trio.sleep(SPREAD_DEFER)
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await trio.sleep(0.1)
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                raise
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if send_buffer:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            except OSError:
                pass
            on_socket(conn)
    finally:
        trio.lowlevel.notify_closing(listener)
        listener.close()
