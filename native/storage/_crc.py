"""CRC-32C (Castagnoli) as Go's needle package computes, stores and compares it."""

from __future__ import annotations

import google_crc32c

__all__ = ["crc32c", "crc32c_update", "legacy_crc_value", "crc_matches", "etag"]


def crc32c(data: bytes | bytearray | memoryview) -> int:
    # the C extension takes only `bytes`
    return google_crc32c.value(data if isinstance(data, bytes) else bytes(data))


def crc32c_update(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Continue a running CRC (for streamed reads of large needles)."""
    return google_crc32c.extend(crc, data if isinstance(data, bytes) else bytes(data))


def legacy_crc_value(crc: int) -> int:
    """The masked form servers before 3.09 stored: rotate right 15, plus 0xa282ead8."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def crc_matches(stored: int, computed: int) -> bool:
    return stored == computed or stored == legacy_crc_value(computed)


def etag(crc: int) -> str:
    """Go's Needle.Etag: the four big-endian CRC bytes in lower-case hex (unquoted)."""
    return f"{crc:08x}"
