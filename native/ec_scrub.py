"""EC scrubs that read shards across servers (FULL and READS), as weed 4.48 answers them.

Every live `.ecx` needle is located among the shards; each piece is read from a local shard,
else from a peer the master lists for it (VolumeEcShardRead). The reassembled record is then
parsed and CRC-checked.

- FULL (Go's Store.ScrubEcVolume): a piece that no holder serves marks its shard broken (with
  the piece's size) and the needle fails; EC data is not decoded to fill the gap, the point
  being to check that the shards themselves are readable.
- READS: the needle is read the way a client read would get it: a piece no holder serves is
  rebuilt from any `data_shards` other shards (its shard is still reported broken, without a
  detail line, as 4.48 does); only a needle that cannot be read or does not verify is an error.

A header that disagrees with the index only about being deleted is not corruption unless
`force_deleted_needles_check` asks for it. Nothing here writes.
"""

from __future__ import annotations

from typing import Any

import trio

from native.ec_net import EcReadError, read_local_shard, read_remote_shard, recover_interval, shard_locations
from native.storage import actual_size, read_bytes_error
from native.storage.ec import EcVolume, Interval, ecx_rows, go_list, scrub_ec_index
from proto import volume_server_pb2 as vs

__all__ = ["scrub_ec_distributed"]


async def _piece(ctx: Any, ev: EcVolume, iv: Interval, needle_id: int,
                 locs: dict[int, list[tuple[str, int]]]) -> bytes | None:
    data = await trio.to_thread.run_sync(read_local_shard, ctx, ev, iv.shard_id, iv.offset, iv.size)
    if data is not None:
        return data
    peers = locs.get(iv.shard_id)
    if peers:
        data, _ = await read_remote_shard(peers, ev, iv.shard_id, iv.offset, iv.size, needle_id, ctx.tls.grpc_client)
    return data


async def scrub_ec_distributed(ctx: Any, ev: EcVolume, *, recover: bool,
                               force_deleted_check: bool) -> tuple[int, list[vs.EcShardInfo], list[str]]:
    """(needles counted, broken shards, errors); `recover` selects READS over FULL."""
    try:
        locs = await shard_locations(ctx, ev)
    except EcReadError as exc:
        master = ctx.master.current_master() or ""
        return 0, [], [f"failed to locate shard via master grpc {master}: {exc}"]
    _, errs = await trio.to_thread.run_sync(scrub_ec_index, ev)
    count = 0
    broken: dict[int, vs.EcShardInfo] = {}
    width = ev.codec.offsets.width
    large_rows = ev.large_rows()
    rows = await trio.to_thread.run_sync(lambda: list(ecx_rows(ev)))
    for e in rows:
        count += 1
        if e.size == -1:
            continue
        want = actual_size(e.size, ev.version)
        intervals = ev.layout.locate(large_rows, e.offset * 8, want)
        shard_ids = go_list(sorted(iv.shard_id for iv in intervals))
        parts: list[bytes] = []
        for i, iv in enumerate(intervals, 1):
            data = await _piece(ctx, ev, iv, e.key, locs)
            if data is None:
                broken[iv.shard_id] = vs.EcShardInfo(shard_id=iv.shard_id, size=iv.size,
                                                     collection=ev.collection, volume_id=ev.vid)
                if recover:
                    try:
                        data, _ = await recover_interval(ctx, ev, iv, e.key, locs)
                    except EcReadError as exc:
                        errs.append(f"failed to read EC shard {iv.shard_id} for needle {e.key} on volume {ev.vid} "
                                    f"(interval {i}/{len(intervals)}): {exc}")
                        break
                else:
                    errs.append(f"failed to read EC shard {iv.shard_id} for needle {e.key} on volume {ev.vid} "
                                f"(interval {i}/{len(intervals)})")
                    break
            parts.append(data)
        raw = b"".join(parts)
        if len(raw) != want:
            errs.append(f"EC volume {ev.vid}, needle {e.key} on shards {shard_ids}: expected {want} bytes, got {len(raw)}")
            continue
        problem = read_bytes_error(raw, 0, e.size, ev.version, width)
        if problem is None:
            continue
        header_size = int.from_bytes(raw[12:16], "big", signed=True)
        delete_state = problem.startswith("size mismatch") and (e.size < 0) != (header_size == 0)
        if not delete_state or force_deleted_check:
            errs.append(f"EC volume {ev.vid}, needle {e.key} on shards {shard_ids}: {problem}")
    infos = [broken[sid] for sid in sorted(broken)]
    return count, infos, errs
