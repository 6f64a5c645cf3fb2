"""gzip as Go's volume server writes and reads it (util.GzipData / DecompressData)."""

from __future__ import annotations

import zlib

from native.http._goflate import go_gzip

__all__ = ["is_gzipped", "gzip_data", "gunzip_data", "GunzipError"]

class GunzipError(ValueError):
    pass


def is_gzipped(data: bytes) -> bool:
    return len(data) >= 2 and data[0] == 0x1F and data[1] == 0x8B


def gzip_data(data: bytes) -> bytes:
    """util.GzipData: gzip at BestSpeed, byte-identical to Go's compress/gzip."""
    return go_gzip(data)


def gunzip_data(data: bytes, limit: int | None = None) -> bytes:
    """All gzip members of `data` (Go's multistream reader); raises GunzipError."""
    out = []
    pos = 0
    total = 0
    n = len(data)
    while True:
        if pos >= n:
            if pos == 0:
                raise GunzipError("EOF")
            break
        if n - pos < 10 or data[pos] != 0x1F or data[pos + 1] != 0x8B or data[pos + 2] != 8:
            if pos == 0 or n - pos < 10:
                raise GunzipError("gzip: invalid header" if n - pos >= 10 else "unexpected EOF")
            raise GunzipError("gzip: invalid header")
        d = zlib.decompressobj(16 + 15)
        try:
            chunk = d.decompress(data[pos:], limit - total + 1 if limit else 0)
        except zlib.error as exc:
            raise GunzipError(f"flate: corrupt input ({exc})") from None
        if limit is not None:
            total += len(chunk)
            if total > limit:
                raise GunzipError("gzip: output over limit")
        out.append(chunk)
        if not d.eof:
            raise GunzipError("unexpected EOF")
        pos = n - len(d.unused_data)
    return b"".join(out)
