"""GF(2^8) arithmetic and the coding matrix klauspost/reedsolomon builds (what Go's `weed` uses).

The field is GF(2)[x] / (x^8 + x^4 + x^3 + x^2 + 1) (0x11d, generator 2). `reedsolomon.New(k, m)`
(no options) builds a (k+m) x k Vandermonde matrix, row r = (r^0, r^1, ..., r^(k-1)) with
0^0 = 1, and multiplies it by the inverse of its top k x k square, so the top rows become the
identity (data shards are stored as is) and the bottom m rows produce the parity shards. Any k
rows of the result are invertible, which is what reconstruction relies on.

Matrices here are small (at most 32 x 32): plain lists of bytes are fast enough.
"""

from __future__ import annotations

import functools

__all__ = ["EXP", "LOG", "mul", "inv", "exp", "Matrix", "coding_matrix", "invert", "mat_mul", "SingularMatrix"]

POLYNOMIAL = 0x11D

Matrix = list[list[int]]


def _tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    exp_t = [0] * 510
    log_t = [0] * 256
    x = 1
    for i in range(255):
        exp_t[i] = x
        log_t[x] = i
        x <<= 1
        if x & 0x100:
            x ^= POLYNOMIAL
    for i in range(255, 510):  # doubled so log a + log b needs no modulo
        exp_t[i] = exp_t[i - 255]
    return tuple(exp_t), tuple(log_t)


EXP, LOG = _tables()


class SingularMatrix(ValueError):
    pass


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def exp(a: int, n: int) -> int:
    """a**n, with 0**0 = 1 (klauspost's galExp)."""
    if n == 0:
        return 1
    if a == 0:
        return 0
    return EXP[(LOG[a] * n) % 255]


def mat_mul(a: Matrix, b: Matrix) -> Matrix:
    cols = len(b[0])
    out = []
    for row in a:
        r = [0] * cols
        for k, coef in enumerate(row):
            if coef:
                brow = b[k]
                for c in range(cols):
                    if brow[c]:
                        r[c] ^= mul(coef, brow[c])
        out.append(r)
    return out


def invert(m: Matrix) -> Matrix:
    """Gauss-Jordan inverse over GF(2^8); SingularMatrix when there is none."""
    n = len(m)
    work = [list(row) + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(m)]
    for r in range(n):
        if work[r][r] == 0:
            for below in range(r + 1, n):
                if work[below][r]:
                    work[r], work[below] = work[below], work[r]
                    break
        if work[r][r] == 0:
            raise SingularMatrix("matrix is singular")
        if work[r][r] != 1:
            scale = inv(work[r][r])
            work[r] = [mul(v, scale) for v in work[r]]
        for other in range(n):
            if other != r and work[other][r]:
                f = work[other][r]
                pivot = work[r]
                work[other] = [v ^ mul(f, p) for v, p in zip(work[other], pivot)]
    return [row[n:] for row in work]


@functools.lru_cache(maxsize=64)
def coding_matrix(data_shards: int, parity_shards: int) -> tuple[tuple[int, ...], ...]:
    """The (k+m) x k systematic matrix of `reedsolomon.New(k, m)`."""
    if data_shards <= 0 or parity_shards < 0 or data_shards + parity_shards > 256:
        raise ValueError(f"invalid shard counts {data_shards}+{parity_shards}")
    total = data_shards + parity_shards
    vm = [[exp(r, c) for c in range(data_shards)] for r in range(total)]
    top_inv = invert([row[:] for row in vm[:data_shards]])
    return tuple(tuple(row) for row in mat_mul(vm, top_inv))
