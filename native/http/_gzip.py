"""gzip as Go's volume server writes and reads it (util.GzipData / DecompressData)."""

from __future__ import annotations

import zlib

__all__ = ["is_gzipped", "gzip_data", "gunzip_data", "GunzipError"]

# compress/gzip's header for BestSpeed: no name, mtime 0, XFL 4 (fastest), OS 255 (unknown).
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


class GunzipError(ValueError):
    pass


def is_gzipped(data: bytes) -> bool:
    return len(data) >= 2 and data[0] == 0x1F and data[1] == 0x8B


def gzip_data(data: bytes) -> bytes:
    """Level-1 gzip with Go's header bytes (the deflate stream itself is zlib's, not Go's)."""
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return _HEADER + body + (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")


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
