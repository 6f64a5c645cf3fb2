"""The receiving side of VolumeTailSender: pull the records a peer appended to a volume.

Both VolumeTailReceiver implementations use it: the native handler (which applies each record to
its own store) and the gateway's (which applies each one to the Go backend through its rpcs).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from native.storage import VERSION3
from proto import volume_server_pb2 as vs
from weedpy.grpc import Channel, ChannelOptions
from weedpy.serve.peers import grpc_target

__all__ = ["tail_from_source"]

_SENDER = "/volume_server_pb.VolumeServer/VolumeTailSender"


async def tail_from_source(
    req: vs.VolumeTailReceiverRequest, apply: Callable[[bytes, bytes, int], Awaitable[None]],
    tls: ssl.SSLContext | None = None,
) -> None:
    """The receiver's side of a tail: `await apply(needle header, rest of the record, version)`
    for each record VolumeTailSender on `req.source_volume_server` streams, its pieces joined.
    `tls`: dial the source with gRPC mTLS (weedpy.tls VolumeTls.grpc_client)."""
    host, port = grpc_target(req.source_volume_server)
    sender_req = vs.VolumeTailSenderRequest(
        volume_id=req.volume_id, since_ns=req.since_ns, idle_timeout_seconds=req.idle_timeout_seconds,
    )
    async with Channel(host, port, options=ChannelOptions(tls=tls)) as ch:
        async with ch.unary_stream(_SENDER, sender_req, vs.VolumeTailSenderResponse) as stream:
            it = stream.__aiter__()
            async for resp in it:
                if not resp.needle_header:
                    continue
                header, body, version = resp.needle_header, resp.needle_body, resp.version or VERSION3
                last = resp.is_last_chunk
                while not last:
                    try:
                        more = await it.__anext__()
                    except StopAsyncIteration:
                        break
                    body += more.needle_body
                    last = more.is_last_chunk
                await apply(header, body, version)
