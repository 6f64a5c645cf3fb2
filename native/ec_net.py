"""EC needle reads and deletes that may cross servers (Go's store_ec.go / store_ec_delete.go).

Each interval of a needle is read from a local shard if this server holds it, else from a peer
that the master's LookupEcVolume lists for that shard (VolumeEcShardRead, which also answers
"deleted"), else rebuilt from any `data_shards` other shards, local or remote. Shard locations
are cached on the EcVolume with Go's freshness rules (11 s while fewer than k shards are known,
7 min with at least k, 37 min with all of them).
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import trio

from native.storage import (
    Corrupted,
    Deleted,
    NotFound,
    StorageError,
    actual_size,
    decode_needle,
    needle_string,
    read_bytes_error,
)
from native.offload import storage_call
from native.storage.ec import EcVolume, Interval, ReedSolomon, TooFewShards
from proto import master_pb2
from proto import volume_server_pb2 as vs
from weedpy.grpc import Channel, ChannelOptions, GrpcError

__all__ = [
    "read_ec_needle", "read_ec_record", "delete_ec_needle", "shard_locations", "read_local_shard", "read_remote_shard",
    "recover_interval", "EcReadError",
]

P = "/volume_server_pb.VolumeServer/"


class EcReadError(StorageError):
    pass


def _peer(url: str, grpc_port: int) -> tuple[str, int]:
    host, _, port = url.rpartition(":")
    return host, grpc_port or int(port) + 10000


async def shard_locations(ctx: Any, ev: EcVolume) -> dict[int, list[tuple[str, int]]]:
    """shard id -> [(host, grpc port)] from the master (cached on the volume)."""
    n, age = len(ev.shard_locations), time.monotonic() - ev.shard_locations_at
    k, total = ev.layout.data_shards, ev.layout.total_shards
    fresh = (n < k and age < 11) or (n == total and age < 37 * 60) or (n >= k and age < 7 * 60)
    if ev.shard_locations_at and fresh:
        return ev.shard_locations
    call = getattr(ctx.master, "call", None)
    if call is None:
        return ev.shard_locations
    try:
        resp = await call("LookupEcVolume", master_pb2.LookupEcVolumeRequest(volume_id=ev.vid),
                          master_pb2.LookupEcVolumeResponse)
    except (GrpcError, OSError, trio.TooSlowError) as exc:
        raise EcReadError(f"failed to locate shard via master grpc: lookup ec volume {ev.vid}: {exc}") from None
    me = ctx.self_url
    found: dict[int, list[tuple[str, int]]] = {}
    for sl in resp.shard_id_locations:
        peers = [_peer(loc.url, loc.grpc_port) for loc in sl.locations if loc.url != me]
        found[sl.shard_id] = peers
    ev.shard_locations = found
    ev.shard_locations_at = time.monotonic()
    return found


def read_local_shard(ctx: Any, ev: EcVolume, sid: int, offset: int, size: int) -> bytes | None:
    """The whole range from a shard this server holds for the same encode run, else None."""
    hit = ctx.store.ec.find_shard(ev.vid, sid)
    if hit is None:
        return None
    owner, shard = hit
    if ev.encode_ts_ns and owner.encode_ts_ns != ev.encode_ts_ns:
        return None
    try:
        data = shard.read_at(size, offset)
    except OSError:
        return None
    return data if len(data) == size else None


async def read_remote_shard(peers: list[tuple[str, int]], ev: EcVolume, sid: int, offset: int, size: int,
                            needle_id: int, tls: ssl.SSLContext | None = None) -> tuple[bytes | None, bool]:
    """(bytes or None, deleted) from the first peer that serves the whole interval (`tls`: dial
    with gRPC mTLS, NativeContext.tls.grpc_client)."""
    req = vs.VolumeEcShardReadRequest(volume_id=ev.vid, shard_id=sid, offset=offset, size=size,
                                      file_key=needle_id, encode_ts_ns=ev.encode_ts_ns)
    for host, port in peers:
        parts, deleted = [], False
        try:
            async with Channel(host, port, options=ChannelOptions(tls=tls)) as ch:
                async with ch.unary_stream(P + "VolumeEcShardRead", req, vs.VolumeEcShardReadResponse, timeout=30) as rs:
                    async for msg in rs:
                        if ev.encode_ts_ns and msg.encode_ts_ns != ev.encode_ts_ns:
                            raise EcReadError("ec shard from a different encode run")
                        deleted = deleted or msg.is_deleted
                        parts.append(msg.data)
        except (GrpcError, OSError, EcReadError, trio.TooSlowError, BaseExceptionGroup):
            continue
        data = b"".join(parts)
        if deleted:
            return None, True
        if len(data) == size:
            return data, False
    return None, False


async def _read_interval(ctx: Any, ev: EcVolume, iv: Interval, needle_id: int) -> tuple[bytes, bool]:
    data = await trio.to_thread.run_sync(read_local_shard, ctx, ev, iv.shard_id, iv.offset, iv.size)
    if data is not None:
        return data, False
    locs = await shard_locations(ctx, ev)
    if locs.get(iv.shard_id):
        data, deleted = await read_remote_shard(locs[iv.shard_id], ev, iv.shard_id, iv.offset, iv.size, needle_id,
                                                ctx.tls.grpc_client)
        if deleted:
            return b"", True
        if data is not None:
            return data, False
    return await recover_interval(ctx, ev, iv, needle_id, locs)


async def recover_interval(ctx: Any, ev: EcVolume, iv: Interval, needle_id: int,
                           locs: dict[int, list[tuple[str, int]]]) -> tuple[bytes, bool]:
    """(the interval rebuilt from the other shards, local or remote, deleted); EcReadError when
    fewer than `data_shards` of them answer."""
    import numpy as np  # numpy: loaded by the first EC read that rebuilds, not at start-up

    lay = ev.layout
    shards: list = [None] * lay.total_shards
    deleted = False

    async def fetch(sid: int) -> None:
        nonlocal deleted
        data = await trio.to_thread.run_sync(read_local_shard, ctx, ev, sid, iv.offset, iv.size)
        if data is None and locs.get(sid):
            data, gone = await read_remote_shard(locs[sid], ev, sid, iv.offset, iv.size, needle_id, ctx.tls.grpc_client)
            deleted = deleted or gone
            if data is None:
                ev.shard_locations.pop(sid, None)
        if data is not None:
            shards[sid] = np.frombuffer(data, np.uint8)

    async with trio.open_nursery() as nursery:
        for sid in range(lay.total_shards):
            if sid != iv.shard_id:
                nursery.start_soon(fetch, sid)
    if deleted:
        return b"", True
    have = [i for i, s in enumerate(shards) if s is not None]
    try:
        got = ReedSolomon(lay.data_shards, lay.parity_shards).reconstruct(shards, [iv.shard_id])
    except TooFewShards:
        missing = [i for i in range(lay.total_shards) if i not in have]
        raise EcReadError(f"cannot recover shard {ev.vid}.{iv.shard_id}: only {len(have)} shards available "
                          f"{_go_list(have)}, need at least {lay.data_shards} (missing: {_go_list(missing)})") from None
    return got[iv.shard_id].tobytes(), False


def _go_list(items: list[int]) -> str:
    """A list as Go's %v prints a slice: [1 2 3]."""
    return "[" + " ".join(str(i) for i in items) + "]"


async def read_ec_record(ctx: Any, vid: int, needle_id: int) -> tuple[EcVolume, bytes, int]:
    """(volume, raw record bytes, Size) of a live needle; Deleted/NotFound/EcReadError."""
    ev, raw, _, size = await _read_ec_record(ctx, vid, needle_id)
    return ev, raw, size


async def _read_ec_record(ctx: Any, vid: int, needle_id: int) -> tuple[EcVolume, bytes, int, int]:
    """(volume, raw record bytes, its offset in the volume, Size)."""
    ev = ctx.store.ec.find_volume(vid)
    if ev is None:
        raise NotFound(f"ec shard {vid} not found")
    loc = await storage_call(ev.locate, needle_id)
    if loc.size < 0:
        raise Deleted(f"needle {needle_id:x} deleted")
    parts = []
    for iv in loc.intervals:
        data, deleted = await _read_interval(ctx, ev, iv, needle_id)
        if deleted:
            raise Deleted(f"needle {needle_id:x} deleted")
        parts.append(data)
    return ev, b"".join(parts), loc.offset, loc.size


def _decode(ev: EcVolume, raw: bytes, offset: int, size: int):
    """The needle in `raw`, or Go's ReadEcShardNeedle refusal of it (the needle as far as its
    read got, printed into the message)."""
    problem = read_bytes_error(raw, offset, size, ev.version, ev.codec.offsets.width)
    if problem is not None:
        raise Corrupted(f"ec volume {ev.vid} needle {needle_string(raw, size, ev.version)} offset {offset} "
                        f"size {size}: {problem}")
    return decode_needle(raw, ev.version, expected_size=size)


async def read_ec_needle(ctx: Any, vid: int, needle_id: int):
    """The needle (CRC-checked), as Go's ReadEcShardNeedle."""
    ev, raw, offset, size = await _read_ec_record(ctx, vid, needle_id)
    return _decode(ev, raw, offset, size)


async def delete_ec_needle(ctx: Any, vid: int, needle_id: int, cookie: int | None) -> int:
    """Go's DeleteEcShardNeedle: read (cookie check), then journal the delete on exactly one
    holder of the needle's first data shard (this server when it holds it), falling back to
    any other shard's holder. Returns Go's count (see below), which HTTP reports as the size."""
    ev, raw, offset, size = await _read_ec_record(ctx, vid, needle_id)
    n = _decode(ev, raw, offset, size)
    # Go counts the bytes it read, and its locate applies GetActualSize twice: report that
    record_len = actual_size(len(raw), ev.version)
    if cookie is not None and cookie != 0 and cookie != n.cookie:
        raise StorageError(f"unexpected cookie {cookie:x}")
    loc = await storage_call(ev.locate, needle_id)
    if not loc.intervals:
        raise NotFound("needle not found")
    primary = loc.intervals[0].shard_id
    order = [primary] + [s for s in range(ev.layout.total_shards) if s != primary]
    locs: dict[int, list[tuple[str, int]]] | None = None
    last: Exception | None = None
    for sid in order:
        hit = ctx.store.ec.find_shard(vid, sid)
        if hit is not None:
            await trio.to_thread.run_sync(hit[0].delete_needle, needle_id)
            return record_len
        if locs is None:
            try:
                locs = await shard_locations(ctx, ev)
            except EcReadError as exc:
                last, locs = exc, {}
        for host, port in locs.get(sid, []):
            try:
                async with Channel(host, port, options=ctx.peer_grpc) as ch:
                    await ch.unary_unary(P + "VolumeEcBlobDelete", vs.VolumeEcBlobDeleteRequest(
                        volume_id=vid, collection=ev.collection, file_key=needle_id, version=ev.version),
                        vs.VolumeEcBlobDeleteResponse, timeout=30)
                return record_len
            except (GrpcError, OSError, trio.TooSlowError, BaseExceptionGroup) as exc:
                last = exc
    raise StorageError(f"delete needle {needle_id:x} from ec volume {vid}: {last}")
