"""VolumeTailReceiver for the Go backend, carried out by the gateway through the backend's own rpcs.

Go 4.48's receiver writes every tailed record through its normal write path, so a deletion (a
Size-0 record on the source) becomes an empty *live* needle on the receiver: the file still reads
200 after a move, and the next vacuum keeps it. The gateway does the receiver's work instead: it
pulls the records from the source's VolumeTailSender (the same code as the native receiver) and
applies each one to the backend, a deletion with `BatchDelete` (cookie check off; the backend
appends a tombstone as the source did) and anything else with `WriteNeedleBlob` (the record as
the source stored it). The backend stays the only process that writes its volume files, and its
`.dat`/`.idx` grow by the same records as the source's.

The gateway's checks (admin whitelist, peer trust) have run before this is called.
"""

from __future__ import annotations

import ssl

from native.storage import format_needle_id_cookie
from proto import volume_server_pb2 as vs
from weedpy.grpc import Channel, GrpcError, ServerCall, Status
from weedpy.serve.grpc_front import request_id_trailer
from weedpy.serve.tail import tail_from_source

__all__ = ["tail_into_backend"]

P = "/volume_server_pb.VolumeServer/"
_OK_DELETE = (202, 404)  # deleted, or not live on the receiver (nothing to do), as Go's receiver


async def tail_into_backend(
    call: ServerCall, raw: bytes, backend_grpc: tuple[str, int], *, tls: ssl.SSLContext | None = None,
) -> None:
    """Answer one VolumeTailReceiver call whose request message is `raw` (ending, as every unary
    call of Go's does, with the x-amz-request-id trailer). `tls`: dial the source with gRPC mTLS."""
    trailer = request_id_trailer(call)
    try:
        await _tail(raw, backend_grpc, tls)
    except GrpcError as exc:
        raise GrpcError(exc.status, exc.message, exc.trailing_metadata or trailer) from None
    await call.send_message(vs.VolumeTailReceiverResponse().SerializeToString())
    call.finish(Status.OK, metadata=trailer)


async def _tail(raw: bytes, backend_grpc: tuple[str, int], tls: ssl.SSLContext | None) -> None:
    req = vs.VolumeTailReceiverRequest.FromString(raw)
    vid = req.volume_id
    async with Channel(*backend_grpc) as backend:
        try:
            await backend.unary_unary(P + "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse)
        except GrpcError:
            raise GrpcError(Status.UNKNOWN, f"receiver not found volume id {vid}") from None

        async def apply(header: bytes, body: bytes, version: int) -> None:
            cookie = int.from_bytes(header[0:4], "big")
            needle_id = int.from_bytes(header[4:12], "big")
            size = int.from_bytes(header[12:16], "big", signed=True)
            if size < 0:
                raise GrpcError(Status.UNKNOWN, f"unexpected negative needle size {size}")
            if size > 0:
                await backend.unary_unary(P + "WriteNeedleBlob", vs.WriteNeedleBlobRequest(
                    volume_id=vid, needle_id=needle_id, needle_blob=header + body, size=size), vs.WriteNeedleBlobResponse)
                return
            fid = f"{vid},{format_needle_id_cookie(needle_id, cookie)}"
            resp = await backend.unary_unary(P + "BatchDelete", vs.BatchDeleteRequest(
                file_ids=[fid], skip_cookie_check=True), vs.BatchDeleteResponse)
            for result in resp.results:
                if result.status not in _OK_DELETE:
                    raise GrpcError(Status.UNKNOWN, f"delete {fid}: {result.error or result.status}")

        await tail_from_source(req, apply, tls=tls)
