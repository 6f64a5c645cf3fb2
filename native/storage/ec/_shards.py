"""EC shard counts and file names: what the EC store needs to find shards on disk, without
`_layout`'s record classes (loaded with the first EC volume, not at a server's start-up)."""

from __future__ import annotations

__all__ = ["LARGE_BLOCK", "SMALL_BLOCK", "DATA_SHARDS", "PARITY_SHARDS", "MAX_SHARDS", "shard_ext"]

LARGE_BLOCK = 1 << 30
SMALL_BLOCK = 1 << 20
DATA_SHARDS = 10
PARITY_SHARDS = 4
MAX_SHARDS = 32  # ShardBits is a uint32


def shard_ext(shard_id: int) -> str:
    return f".ec{shard_id:02d}"
