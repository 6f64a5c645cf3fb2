"""A record body read the way Go's scanners read it (Needle.ReadNeedleBodyBytes), sans-IO.

`decode_needle` refuses a record that does not parse. Go's volume scans (ReadAllNeedles, the
append-time search behind incremental copy and tailing) instead keep the fields filled before
the first problem and carry on or fail with Go's own words. `read_body` gives both: the
fields as Go's needle holds them after the read, and the error text Go would report (None
when the body reads cleanly). A record whose data fails its CRC keeps its data but no
checksum, as in Go.
"""

from __future__ import annotations

import dataclasses

from ._crc import crc32c, crc_matches
from ._needle import FLAG_GZIP, FLAG_HAS_LAST_MODIFIED, FLAG_HAS_MIME, FLAG_HAS_NAME, FLAG_HAS_PAIRS, FLAG_HAS_TTL
from ._ttl import EMPTY_TTL, TTL
from ._types import CHECKSUM_SIZE, DATA_SIZE_SIZE, NEEDLE_HEADER_SIZE, VERSION1, VERSION3, format_needle_id_cookie

__all__ = ["BodyRead", "read_body", "needle_string", "CORRUPTED"]

CORRUPTED = "needle data corrupted"  # Go's ErrorCorrupted


@dataclasses.dataclass(frozen=True, slots=True)
class BodyRead:
    data: bytes = b""
    flags: int = 0
    name: bytes = b""
    mime: bytes = b""
    last_modified: int = 0
    ttl: TTL = EMPTY_TTL
    pairs: bytes = b""
    checksum: int = 0  # 0 when the read stopped before the checksum (or the CRC did not match)
    append_at_ns: int = 0
    error: str | None = None


def _out_of_range(number: int) -> str:
    return f"index out of range {number}: {CORRUPTED}"


def _v2_fields(part: bytes) -> tuple[dict, str | None]:
    """readNeedleDataVersion2 over the Size bytes: data, then the optional fields."""
    got: dict = {}
    n = len(part)
    i = 0
    if i < n:
        if n < DATA_SIZE_SIZE:  # Go slices past the end here (and panics); treated as the overrun
            return got, _out_of_range(1)
        data_size = int.from_bytes(part[0:DATA_SIZE_SIZE], "big")
        i = DATA_SIZE_SIZE
        if data_size + i > n:
            return got, _out_of_range(1)
        got["data"] = part[i:i + data_size]
        i += data_size
    rest = part[i:]
    m, j = len(rest), 0
    if j < m:
        got["flags"] = flags = rest[j]
        j += 1
    else:
        flags = 0
    for flag, key, number in ((FLAG_HAS_NAME, "name", 2), (FLAG_HAS_MIME, "mime", 3)):
        if j < m and flags & flag:
            length = rest[j]
            j += 1
            if length + j > m:
                return got, _out_of_range(number)
            got[key] = rest[j:j + length]
            j += length
    if j < m and flags & FLAG_HAS_LAST_MODIFIED:
        if 5 + j > m:
            return got, _out_of_range(4)
        got["last_modified"] = int.from_bytes(rest[j:j + 5], "big")
        j += 5
    if j < m and flags & FLAG_HAS_TTL:
        if 2 + j > m:
            return got, _out_of_range(5)
        got["ttl"] = TTL.from_bytes(rest[j:j + 2])
        j += 2
    if j < m and flags & FLAG_HAS_PAIRS:
        if 2 + j > m:
            return got, _out_of_range(6)
        length = int.from_bytes(rest[j:j + 2], "big")
        j += 2
        if length + j > m:
            return got, _out_of_range(7)
        got["pairs"] = rest[j:j + length]
    return got, None


def read_body(needle_id: int, size: int, body: bytes, version: int) -> BodyRead:
    """The needle fields Go's ReadNeedleBodyBytes leaves after reading `body` (everything after
    the 16-byte header up to the next record) of a record whose header says `size`."""
    if len(body) <= 0 or size < 0:
        return BodyRead()
    if version == VERSION1:
        got, problem = {"data": body[:size]}, None
    else:
        got, problem = _v2_fields(body[:size])
    if problem is not None:
        return BodyRead(**got, error=problem)
    tail = body[size:]
    stored = int.from_bytes(tail[0:CHECKSUM_SIZE], "big")
    data = got.get("data", b"")
    ts = int.from_bytes(tail[CHECKSUM_SIZE:CHECKSUM_SIZE + 8], "big") if version == VERSION3 else 0
    if data:
        computed = crc32c(data)
        if not crc_matches(stored, computed):
            return BodyRead(**got, error=f"invalid CRC for needle {needle_id:x} (got {computed:08x}, want "
                                         f"{stored:08x}), data on disk corrupted: {CORRUPTED}")
        return BodyRead(**got, checksum=computed, append_at_ns=ts)
    return BodyRead(**got, checksum=stored, append_at_ns=ts)


def needle_string(record: bytes, size: int, version: int) -> str:
    """Go's Needle.String() after `ReadBytes(record, offset, size, version)` stopped (its error
    messages print the needle): the header's id, cookie and size, and the data size, name, mime
    and compressed flag as far as the body read got (a header size other than `size` stops it
    before the body)."""
    cookie = int.from_bytes(record[0:4], "big")
    needle_id = int.from_bytes(record[4:12], "big")
    header_size = int.from_bytes(record[12:16], "big", signed=True)
    data_size, got = 0, {}
    if header_size == size and size > 0:
        body = record[NEEDLE_HEADER_SIZE:NEEDLE_HEADER_SIZE + size]
        if version == VERSION1:
            data_size = len(body)
        elif len(body) >= DATA_SIZE_SIZE:
            data_size = int.from_bytes(body[0:DATA_SIZE_SIZE], "big")  # set before Go's range check
            got, _ = _v2_fields(body)
    flags = got.get("flags", 0)
    name, mime = (got.get(k, b"").decode("utf-8", "replace") for k in ("name", "mime"))
    return (f"{format_needle_id_cookie(needle_id, cookie)} Size:{header_size}, DataSize:{data_size}, Name:{name}, "
            f"Mime:{mime} Compressed:{'true' if flags & FLAG_GZIP else 'false'}")
