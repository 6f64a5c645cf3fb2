"""CRC-32C (Castagnoli) as Go's needle package computes, stores and compares it."""

from __future__ import annotations

from fastcrc.crc32 import iscsi as _iscsi  # CRC-32C; takes any buffer, releases the GIL

__all__ = ["crc32c", "crc32c_update", "legacy_crc_value", "crc_matches", "etag"]

crc32c = _iscsi  # crc32c(buffer) -> int: a view of a record's data is checked without copying it


def crc32c_update(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Continue a running CRC (for streamed reads of large needles)."""
    return _iscsi(data, crc)


def legacy_crc_value(crc: int) -> int:
    """The masked form servers before 3.09 stored: rotate right 15, plus 0xa282ead8."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def crc_matches(stored: int, computed: int) -> bool:
    return stored == computed or stored == legacy_crc_value(computed)


def etag(crc: int) -> str:
    """Go's Needle.Etag: the four big-endian CRC bytes in lower-case hex (unquoted)."""
    return f"{crc:08x}"
