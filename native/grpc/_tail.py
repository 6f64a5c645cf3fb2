"""Tailing rpcs: VolumeTailSender streams the records a volume appended after a timestamp,
VolumeTailReceiver pulls them from another server and applies them (Go's volume_grpc_tail.go).

The sender finds the first record after `since_ns` (binary search over `.idx`, see
`native.storage.locate_since`), sends every record from there to the end of `.dat` (header,
then the rest in 2 MiB pieces, the last one flagged), or a bare `is_last_chunk` heartbeat when
there is nothing new, then sleeps 2 s and looks again. With `idle_timeout_seconds` N it stops after N
consecutive passes that found nothing new (Go counts passes, not seconds); with 0 it never stops.

The receiver writes each needle through the normal write path with the cookie check off, as
Go does. A deletion (a Size-0 record) is applied as a deletion here, carrying the record's
cookie and CRC, so the `.dat`/`.idx` grow exactly as the source's did and the needle reads as
deleted; Go writes such a record as an empty live needle (reads answer 200, empty).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping

import trio

from native.grpc._common import check_admin, go_error
from native.grpc._guards import check_peer
from native.grpc._services import Handler, Services
from native.grpc._threads import next_batch
from native.storage import (
    CHECKSUM_SIZE,
    VERSION3,
    Corrupted,
    ScannedRecord,
    StorageError,
    decode_needle,
    locate_since,
    scan_records,
)
from native.offload import storage_call
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context
from weedpy.serve.tail import tail_from_source

__all__ = ["HANDLERS", "volume_tail_sender", "volume_tail_receiver", "tail_from_source", "POLL_SECONDS", "CHUNK"]

POLL_SECONDS = 2.0  # Go sleeps 2 s between passes
CHUNK = 2 * 1024 * 1024


def _record_ts(rec: ScannedRecord, version: int) -> int:
    if version != VERSION3:
        return 0
    at = max(rec.size, 0) + CHECKSUM_SIZE
    return int.from_bytes(rec.body[at:at + 8], "big")


def _messages(rec: ScannedRecord, version: int) -> list[vs.VolumeTailSenderResponse]:
    body = rec.body
    out = []
    for i in range(0, len(body), CHUNK):
        out.append(vs.VolumeTailSenderResponse(
            needle_header=rec.header, needle_body=body[i:i + CHUNK], is_last_chunk=i + CHUNK >= len(body), version=version,
        ))
    return out


async def _send_since(v, since_ns: int) -> AsyncIterator[vs.VolumeTailSenderResponse | int]:
    """One pass: the messages, then the AppendAtNs of the last record sent (or `since_ns`)."""
    try:
        start = await trio.to_thread.run_sync(locate_since, v, since_ns)
    except (StorageError, OSError) as exc:
        raise go_error(f"streamFollow: fail to locate by appendAtNs {since_ns}: {exc}") from None
    version = v.version
    if start is None:
        yield vs.VolumeTailSenderResponse(is_last_chunk=True, version=version)
        yield since_ns
        return
    last = 0
    fd, end = await storage_call(v.pinned_dat)
    try:
        records = scan_records(fd, version, start, end)
        while batch := await next_batch(records, size=lambda r: len(r.body)):
            for rec in batch:
                for msg in _messages(rec, version):
                    yield msg
                last = _record_ts(rec, version)
    finally:
        os.close(fd)
    yield last


async def volume_tail_sender(
    svc: Services, req: vs.VolumeTailSenderRequest, ctx: Context,
) -> AsyncIterator[vs.VolumeTailSenderResponse]:
    v = await storage_call(svc.store.find_volume, req.volume_id)
    if v is None:
        raise go_error(f"not found volume id {req.volume_id}")
    last_ts = req.since_ns
    idle = req.idle_timeout_seconds
    draining = idle
    while True:
        processed = last_ts
        async for item in _send_since(v, last_ts):
            if isinstance(item, int):
                processed = item
            else:
                yield item
        await trio.sleep(POLL_SECONDS)
        if idle == 0:
            last_ts = processed
            continue
        if processed == last_ts:
            draining -= 1
            if draining <= 0:
                return
        else:
            last_ts = processed
            draining = idle


def _apply(v, header: bytes, body: bytes, version: int) -> None:
    """Write one tailed record into `v`: a needle, or a deletion for a Size-0 record."""
    raw = header + body
    size = int.from_bytes(header[12:16], "big", signed=True)
    if size < 0:
        raise StorageError(f"unexpected negative needle size {size}")
    if size == 0:
        needle_id = int.from_bytes(header[4:12], "big")
        cookie = int.from_bytes(header[0:4], "big")
        v.apply_tombstone(needle_id, cookie, int.from_bytes(body[0:4], "big"))
        return
    n = decode_needle(raw, version)
    v.write_needle(n.replace(append_at_ns=0), check_cookie=False)


async def volume_tail_receiver(
    svc: Services, req: vs.VolumeTailReceiverRequest, ctx: Context,
) -> vs.VolumeTailReceiverResponse:
    check_admin(svc.guard, ctx)
    source = req.source_volume_server
    await check_peer(svc.peers, source, "source volume server")
    v = svc.store.find_volume(req.volume_id)
    if v is None:
        raise go_error(f"receiver not found volume id {req.volume_id}")

    async def apply_here(header: bytes, body: bytes, version: int) -> None:
        try:
            await trio.to_thread.run_sync(_apply, v, header, body, version)
        except (StorageError, Corrupted, OSError) as exc:
            raise go_error(str(exc)) from None

    await tail_from_source(req, apply_here, tls=svc.ctx.tls.grpc_client)
    return vs.VolumeTailReceiverResponse()


HANDLERS: Mapping[str, Handler] = {
    "VolumeTailSender": volume_tail_sender,
    "VolumeTailReceiver": volume_tail_receiver,
}
