"""Reed-Solomon over GF(2^8) with numpy, byte-identical to klauspost/reedsolomon's default codec.

Every operation is "outputs = M x inputs" for a small coefficient matrix M (parity rows of the
coding matrix to encode; rows of an inverted sub-matrix to reconstruct). `Combiner` evaluates
one such product over whole shard rows with table lookups, vectorised by numpy:

- inputs are taken two at a time: a uint16 index `b1 << 8 | b0` per byte position;
- outputs are produced up to four at a time: one 65536-entry uint32 table per (input pair,
  output group) holds the four output bytes' contributions, so a single gather (`np.take`,
  mode="clip", which skips bounds checks) and one XOR advance four outputs by two inputs;
- the interleaved uint32 accumulator is split back into output rows at the end.

For 10+4 that is 5 gathers per input byte position instead of 40 single-byte multiplications.
Tables are built once per matrix and cached (a 10+4 encoder holds 1.25 MiB of them).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._gf import EXP, LOG, SingularMatrix, coding_matrix, invert, mat_mul

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ReedSolomon", "Combiner", "TooFewShards", "as_u8"]

_OUT_DTYPES = {1: "u1", 2: "u2", 3: "u4", 4: "u4"}  # numpy dtypes (native byte order)


class TooFewShards(ValueError):
    """Fewer shards are present than data shards: nothing can be reconstructed."""


def _mul_table() -> np.ndarray:
    import numpy as np  # numpy: loaded by the first EC coding, not at start-up

    t = np.zeros((256, 256), dtype=np.uint8)
    for a in range(1, 256):
        la = LOG[a]
        t[a, 1:] = [EXP[la + LOG[b]] for b in range(1, 256)]
    return t


@functools.cache
def _mul() -> np.ndarray:
    """MUL[c, b] = c * b in GF(2^8), built on first use; read-only."""
    return _mul_table()


def as_u8(buf) -> np.ndarray:
    """A 1-D uint8 view of bytes-like data (no copy)."""
    import numpy as np  # numpy: loaded by the first EC coding, not at start-up

    if isinstance(buf, np.ndarray):
        return buf if buf.dtype == np.uint8 and buf.ndim == 1 else buf.reshape(-1).view(np.uint8)
    return np.frombuffer(buf, dtype=np.uint8)


class Combiner:
    """outputs[i] = XOR_j coef[i][j] * inputs[j], over rows of equal length."""

    def __init__(self, coefs: Sequence[Sequence[int]]) -> None:
        import numpy as np  # numpy: loaded by the first EC coding, not at start-up

        self.coefs = tuple(tuple(int(c) for c in row) for row in coefs)
        self.n_out = len(self.coefs)
        self.n_in = len(self.coefs[0]) if self.coefs else 0
        self._groups: list[tuple[range, np.dtype, list[np.ndarray]]] = []
        for start in range(0, self.n_out, 4):
            rows = range(start, min(start + 4, self.n_out))
            dtype = np.dtype(_OUT_DTYPES[len(rows)])
            tables = []
            for j in range(0, self.n_in, 2):
                tables.append(self._table(rows, j, dtype))
            self._groups.append((rows, dtype, tables))

    def _table(self, rows: range, j: int, dtype: np.dtype) -> np.ndarray:
        import numpy as np  # numpy: loaded by the first EC coding, not at start-up

        pair = j + 1 < self.n_in
        size = 65536 if pair else 256
        table = np.zeros(size, dtype=dtype)
        for shift, r in enumerate(rows):
            lo = _mul()[self.coefs[r][j]]
            if pair:
                hi = _mul()[self.coefs[r][j + 1]]
                part = (hi[:, None] ^ lo[None, :]).reshape(-1)
            else:
                part = lo
            table |= part.astype(dtype) << (8 * shift)
        return table

    def apply(self, inputs: Sequence, outputs: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Compute every output row (into `outputs` when given: writable uint8 arrays)."""
        import numpy as np  # numpy: loaded by the first EC coding, not at start-up

        ins = [as_u8(x) for x in inputs]
        if len(ins) != self.n_in:
            raise ValueError(f"expected {self.n_in} inputs, got {len(ins)}")
        n = len(ins[0]) if ins else 0
        if any(len(x) != n for x in ins):
            raise ValueError("input rows differ in length")
        outs = [np.empty(n, np.uint8) for _ in range(self.n_out)] if outputs is None else list(outputs)
        if n == 0:
            return outs
        indexes = []
        for j in range(0, self.n_in, 2):
            if j + 1 < self.n_in:
                idx = np.left_shift(ins[j + 1], 8, dtype=np.uint16)
                np.bitwise_or(idx, ins[j], out=idx)
                indexes.append(idx)
            else:
                indexes.append(ins[j])
        for rows, dtype, tables in self._groups:
            acc = np.empty(n, dtype)
            tmp = np.empty(n, dtype) if len(tables) > 1 else None
            for p, (table, idx) in enumerate(zip(tables, indexes)):
                if p == 0:
                    np.take(table, idx, out=acc, mode="clip")
                else:
                    np.take(table, idx, out=tmp, mode="clip")
                    np.bitwise_xor(acc, tmp, out=acc)
            width = dtype.itemsize
            as_bytes = acc.view(np.uint8)
            for shift, r in enumerate(rows):
                if width == 1:
                    outs[r][:] = as_bytes
                else:
                    outs[r][:] = as_bytes[shift::width]
        return outs


class ReedSolomon:
    """`reedsolomon.New(data_shards, parity_shards)`: encode parity, reconstruct lost shards."""

    def __init__(self, data_shards: int, parity_shards: int) -> None:
        self.data_shards = data_shards
        self.parity_shards = parity_shards
        self.total_shards = data_shards + parity_shards
        self.matrix = coding_matrix(data_shards, parity_shards)
        self._encoder = Combiner(self.matrix[data_shards:])

    def encode(self, data: Sequence, parity_out: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Parity rows for `data_shards` equal-length data rows."""
        if len(data) != self.data_shards:
            raise ValueError(f"expected {self.data_shards} data rows, got {len(data)}")
        return self._encoder.apply(data, parity_out)

    def reconstruct(self, shards: Sequence, wanted: Sequence[int] | None = None) -> dict[int, np.ndarray]:
        """The missing shards in `wanted` (default: all missing) from the present ones (None =
        missing). Like klauspost's Reconstruct, the first `data_shards` present shards are used."""
        present = [i for i, s in enumerate(shards) if s is not None]
        if len(shards) != self.total_shards:
            raise ValueError(f"expected {self.total_shards} shard slots, got {len(shards)}")
        missing = [i for i, s in enumerate(shards) if s is None]
        want = tuple(sorted(set(missing if wanted is None else wanted)))
        if not want:
            return {}
        if any(shards[i] is not None for i in want):
            raise ValueError("asked to reconstruct a shard that is present")
        if len(present) < self.data_shards:
            raise TooFewShards(f"too few shards given: {len(present)} present, {self.data_shards} needed")
        chosen = tuple(present[: self.data_shards])
        combiner = self._decoder(chosen, want)
        outs = combiner.apply([shards[i] for i in chosen])
        return dict(zip(want, outs))

    @functools.lru_cache(maxsize=64)
    def _decoder(self, chosen: tuple[int, ...], want: tuple[int, ...]) -> Combiner:
        sub = [list(self.matrix[i]) for i in chosen]
        try:
            decode = invert(sub)  # chosen shards -> data shards
        except SingularMatrix as exc:  # cannot happen for a Vandermonde-derived matrix
            raise ValueError(str(exc)) from None
        rows = []
        for w in want:
            if w < self.data_shards:
                rows.append(decode[w])
            else:
                rows.append(mat_mul([list(self.matrix[w])], decode)[0])
        return Combiner(rows)
