"""The leader's control channel to each worker process: small JSON messages on a socketpair.

Framing (sans-IO, `ControlDecoder`): a 4-byte big-endian length, then that many bytes of UTF-8
JSON holding one object. The leader sends requests carrying a `seq`; the worker answers each
with `{"ack": seq}` (or `{"ack": seq, "error": text}`), in order. The worker's only unsolicited
message is `{"ready": true}` once it serves.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import trio

__all__ = ["ControlDecoder", "ControlChannel", "ControlClosed", "encode_message", "MAX_MESSAGE"]

MAX_MESSAGE = 16 << 20
_HEAD = 4


class ControlClosed(Exception):
    """The other end is gone (it exited, or closed the channel)."""


def encode_message(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg, separators=(",", ":")).encode()
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"control message of {len(body)} bytes is over {MAX_MESSAGE}")
    return len(body).to_bytes(_HEAD, "big") + body


class ControlDecoder:
    """Bytes in (`receive_data`), whole messages out (`next_message`, None until one is complete)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> dict[str, Any] | None:
        if len(self._buf) < _HEAD:
            return None
        n = int.from_bytes(self._buf[:_HEAD], "big")
        if n > MAX_MESSAGE:
            raise ValueError(f"control message of {n} bytes is over {MAX_MESSAGE}")
        if len(self._buf) < _HEAD + n:
            return None
        body = bytes(self._buf[_HEAD:_HEAD + n])
        del self._buf[:_HEAD + n]
        msg = json.loads(body)
        if not isinstance(msg, dict):
            raise ValueError("a control message must be a JSON object")
        return msg


class ControlChannel:
    """The trio shell around one end of the socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self._decoder = ControlDecoder()
        self._send_lock = trio.Lock()

    async def send(self, msg: dict[str, Any]) -> None:
        async with self._send_lock:
            try:
                await self._stream.send_all(encode_message(msg))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ControlClosed(str(exc)) from exc

    async def receive(self) -> dict[str, Any]:
        while True:
            msg = self._decoder.next_message()
            if msg is not None:
                return msg
            try:
                data = await self._stream.receive_some(1 << 16)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ControlClosed(str(exc)) from exc
            if not data:
                raise ControlClosed("the other end closed the control channel")
            self._decoder.receive_data(data)

    async def aclose(self) -> None:
        await self._stream.aclose()
