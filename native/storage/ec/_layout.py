"""Where a `.dat` byte lives among the EC shards (Go's ec_encoder.go / ec_locate.go), sans-IO.

The `.dat` is cut into rows. While at least `data_shards` large blocks (1 GiB) remain, a row is
`data_shards` large blocks, block i going to shard i; the rest is cut into rows of small blocks
(1 MiB), the last one zero-padded. Shard files hold their blocks in row order: all large rows,
then the small rows. So a shard of a volume of D bytes is `L * large_rows + S * small_rows`
bytes, with `large_rows = D // (L * k)` and `small_rows = ceil((D - large part) / (S * k))`.

Readers need `large_rows` to map an offset; Go takes it from the `.vif` `datFileSize` recorded
at encode time, or, for volumes encoded before that field existed, from `(shard size - 1) // L`
(the `- 1` resolves a shard size that is an exact multiple of L towards fewer large rows).
"""

from __future__ import annotations

import dataclasses

from ._shards import DATA_SHARDS, LARGE_BLOCK, MAX_SHARDS, PARITY_SHARDS, SMALL_BLOCK, shard_ext

__all__ = [
    "LARGE_BLOCK",
    "SMALL_BLOCK",
    "DATA_SHARDS",
    "PARITY_SHARDS",
    "MAX_SHARDS",
    "EcLayout",
    "Interval",
    "Row",
    "shard_ext",
]



@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    """`size` bytes at `offset` of shard `shard_id`."""

    shard_id: int
    offset: int
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One encoding row: `block` bytes per data shard, starting at `dat_offset` in the `.dat`
    and at `shard_offset` in every shard file."""

    dat_offset: int
    block: int
    shard_offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class EcLayout:
    data_shards: int = DATA_SHARDS
    parity_shards: int = PARITY_SHARDS
    large_block: int = LARGE_BLOCK
    small_block: int = SMALL_BLOCK

    def __post_init__(self) -> None:
        if self.data_shards <= 0 or self.parity_shards <= 0 or self.total_shards > MAX_SHARDS:
            raise ValueError(f"invalid EC ratio {self.data_shards}+{self.parity_shards}")

    @property
    def total_shards(self) -> int:
        return self.data_shards + self.parity_shards

    # encoding ----------------------------------------------------------------------------------

    def large_rows_for_dat(self, dat_size: int) -> int:
        return dat_size // (self.large_block * self.data_shards)

    def rows(self, dat_size: int) -> list[Row]:
        """Go's encodeDatFile order: large rows while a whole one remains, then small rows."""
        out = []
        remaining, pos, shard_pos = dat_size, 0, 0
        large_row = self.large_block * self.data_shards
        small_row = self.small_block * self.data_shards
        while remaining >= large_row:
            out.append(Row(pos, self.large_block, shard_pos))
            remaining -= large_row
            pos += large_row
            shard_pos += self.large_block
        while remaining > 0:
            out.append(Row(pos, self.small_block, shard_pos))
            remaining -= small_row
            pos += small_row
            shard_pos += self.small_block
        return out

    def shard_size(self, dat_size: int) -> int:
        rows = self.rows(dat_size)
        return rows[-1].shard_offset + rows[-1].block if rows else 0

    # reading -----------------------------------------------------------------------------------

    def large_rows_for_shard(self, shard_size: int) -> int:
        """The fallback when the encode-time `.dat` size is unknown (Go: `shard size - 1`)."""
        return max(0, shard_size - 1) // self.large_block

    def locate(self, large_rows: int, offset: int, size: int) -> list[Interval]:
        """The shard pieces holding `.dat` bytes [offset, offset + size)."""
        k = self.data_shards
        large_area = large_rows * self.large_block * k
        if offset < large_area:
            is_large = True
            block_index, inner = divmod(offset, self.large_block)
        else:
            is_large = False
            block_index, inner = divmod(offset - large_area, self.small_block)
        out: list[Interval] = []
        while size > 0:
            block = self.large_block if is_large else self.small_block
            take = min(size, block - inner)
            row, shard_id = divmod(block_index, k)
            if is_large:
                shard_offset = row * self.large_block + inner
            else:
                shard_offset = large_rows * self.large_block + row * self.small_block + inner
            out.append(Interval(shard_id, shard_offset, take))
            size -= take
            inner = 0
            block_index += 1
            if is_large and block_index == large_rows * k:
                is_large, block_index = False, 0
        return out
