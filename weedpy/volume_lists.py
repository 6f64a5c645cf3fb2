"""Mixed mode's volume lists with owners: `/status` and `/ui/index.html` list both sides' volumes.

The route's target (the Go relay, or native's read-only view of Go's files) answers the request
into a buffer, with no move of a volume starting or running meanwhile (`VolumeMoves.steady`);
native's writer store adds its volumes to that answer (native/http/volume_lists.py), and the
client gets the merged answer with the target's status and headers (its length set again). So
each volume is listed once, as one Go server holding all of them would list it. An answer that
is not the expected page (an error, a request with a body) goes to the client as it is.
gRPC's `VolumeServerStatus` has no volume list (its disk statuses are per `-dir`, whose file
system the native folders share): it needs no merging.
"""

from __future__ import annotations

import trio

from native.build import NativeParts
from native.http.volume_lists import ListedVolume, merge_status, merge_ui, store_volumes
from weedpy.http1 import (
    LAST_CHUNK,
    Exchange,
    Response,
    ServerConnection,
    chunk,
    read_whole_response,
    response_head,
)
from weedpy.logs import get_logger
from weedpy.serve.http_front import HttpTarget
from weedpy.serve.routes import http_endpoint, request_path
from weedpy.volume_moves import VolumeMoves

__all__ = ["VolumeLists"]

log = get_logger("volume_lists")

GO_CHUNKING = 2048  # net/http's bufferBeforeChunkingSize: a longer answer has no Content-Length
_FRAMING = (b"content-length", b"transfer-encoding")


class _Capture:
    """The stream under the target's answer: every byte sent is kept."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        return b""

    async def aclose(self) -> None:
        pass


class VolumeLists:
    """The `StatusMerge` of mixed mode's fronts (weedpy/serve/volume_owners.py)."""

    def __init__(self, moves: VolumeMoves, owned: NativeParts) -> None:
        self._moves = moves
        self._store = owned.ctx.store

    async def serve(self, exch: Exchange, handler: HttpTarget) -> None:
        req = exch.request
        if req.has_body:
            await handler(exch)
            return
        async with self._moves.steady() as steady:
            if not steady:
                log.warning("a volume move is still running: the volume list may miss the moving volume")
            inner, stream = self._inner(exch)
            await handler(inner)
            volumes = await trio.to_thread.run_sync(store_volumes, self._store)
        exch.close_after = exch.close_after or inner.close_after
        raw = bytes(stream.data)
        answer = read_whole_response(raw)
        merged = self._merge(exch, answer, volumes) if answer is not None and volumes else None
        if answer is not None and (merged is not None or exch.request.method == b"HEAD"):
            head, body = answer
            await self._send(exch, head, body if merged is None else merged)
            return
        await exch.send(raw)  # nothing to add, or not the page expected: as the target answered
        exch.started, exch.status = True, inner.status

    @staticmethod
    def _inner(exch: Exchange) -> tuple[Exchange, _Capture]:
        """The request again, as GET (a HEAD gets the length of the merged body), answered into a buffer."""
        req = exch.request
        method = b"GET" if req.method == b"HEAD" else req.method
        conn = ServerConnection()
        conn.receive_data(b"%s %s HTTP/%s\r\n%s\r\n" % (method, req.target, req.http_version,
                                                         b"".join(b"%s: %s\r\n" % h for h in req.headers)))
        head = conn.next_event()
        stream = _Capture()
        inner = Exchange(head, conn, stream, 30.0, exch.client_host, exch.local_port, exch.port_kind)  # type: ignore[arg-type]
        return inner, stream

    @staticmethod
    def _merge(exch: Exchange, answer: tuple[Response, bytes], volumes: list[ListedVolume]) -> bytes | None:
        if answer[0].status != 200:
            return None
        req = exch.request
        endpoint = http_endpoint(exch.port_kind, req.method, request_path(req.target))
        body = answer[1]
        merged = merge_status(body, volumes) if endpoint == "admin.status" else merge_ui(body, volumes)
        if merged is None:
            log.warning("volume list not merged: the answer is not the expected page", route=endpoint)
        return merged

    @staticmethod
    async def _send(exch: Exchange, head: Response, body: bytes) -> None:
        """The target's head with the merged body, framed as net/http frames a handler's answer."""
        is_head = exch.request.method == b"HEAD"
        framing: tuple[bytes, bytes] | None
        if len(body) < GO_CHUNKING:
            framing, payload = (b"Content-Length", b"%d" % len(body)), b"" if is_head else body
        elif is_head:
            framing, payload = None, b""
        elif exch.request.http_version != b"1.0":
            framing, payload = (b"Transfer-Encoding", b"chunked"), chunk(body) + LAST_CHUNK
        else:  # an HTTP/1.0 client: the body runs to the close
            exch.close_after = True
            framing, payload = None, body
        headers: list[tuple[bytes, bytes]] = []
        for name, value in head.headers:  # the new framing where the target's was
            if name.lower() not in _FRAMING:
                headers.append((name, value))
            elif framing is not None:
                headers.append(framing)
                framing = None
        if framing is not None:
            headers.append(framing)
        await exch.send(response_head(head.status, head.reason, headers) + payload)
        exch.started, exch.status = True, head.status
