"""Needle records: the dataclass, and a sans-IO codec for versions 1, 2 and 3.

A record is `header(16) body tail padding`:

- header: cookie u32, id u64, Size i32 (big-endian, like everything here);
- body, v1: the data; v2/v3: nothing when the data is empty, else DataSize u32, data, flags u8,
  then by flag: name (u8 length), mime (u8 length), last-modified (5 bytes), TTL (2 bytes),
  pairs (u16 length);
- tail: CRC-32C of the stored data, then (v3 only) AppendAtNs u64;
- padding: 1..8 bytes to a multiple of 8. Go writes it from a reused scratch buffer, so it is not
  zeros; `encode` reproduces those bytes exactly so `.dat` files (and EC shards made from them)
  are byte-identical to Go's.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Mapping
from typing import Final

from ._crc import crc32c, crc_matches, etag
from ._errors import ChecksumMismatch, Corrupted
from ._ttl import EMPTY_TTL, TTL
from ._types import (
    CHECKSUM_SIZE,
    DATA_SIZE_SIZE,
    NEEDLE_HEADER_SIZE,
    PADDING_SIZE,
    SUPPORTED_VERSIONS,
    TIMESTAMP_SIZE,
    VERSION1,
    VERSION3,
    actual_size,
    padding_length,
)

__all__ = [
    "FLAG_GZIP",
    "FLAG_HAS_NAME",
    "FLAG_HAS_MIME",
    "FLAG_HAS_LAST_MODIFIED",
    "FLAG_HAS_TTL",
    "FLAG_HAS_PAIRS",
    "FLAG_CHUNK_MANIFEST",
    "PAIR_NAME_PREFIX",
    "NeedleHeader",
    "Needle",
    "encode_needle",
    "record_size",
    "parse_header",
    "decode_needle",
    "decode_meta",
    "go_json_pairs",
    "meta_span",
    "data_start",
    "LAST_MODIFIED_BYTES",
    "TTL_BYTES",
]

FLAG_GZIP: Final = 0x01
FLAG_HAS_NAME: Final = 0x02
FLAG_HAS_MIME: Final = 0x04
FLAG_HAS_LAST_MODIFIED: Final = 0x08
FLAG_HAS_TTL: Final = 0x10
FLAG_HAS_PAIRS: Final = 0x20
FLAG_CHUNK_MANIFEST: Final = 0x80
LAST_MODIFIED_BYTES: Final = 5
TTL_BYTES: Final = 2
PAIR_NAME_PREFIX: Final = "Seaweed-"
_MAX_NAME = 255
_MAX_MIME = 255
_MAX_PAIRS = 65535


@dataclasses.dataclass(frozen=True, slots=True)
class NeedleHeader:
    cookie: int
    id: int
    size: int  # int32: what the record's header says (0 for tombstones)


@dataclasses.dataclass(frozen=True, slots=True)
class Needle:
    """One stored file. `flags` decides which optional fields are written, as in Go: a needle
    uploaded over HTTP always has name, mime and last-modified flags even when they are empty.

    `checksum` defaults to the CRC-32C of `data` (the stored bytes: gzip bytes when gzipped).
    A tombstone carries the deleted needle's CRC with empty data, so it can be given explicitly.
    """

    id: int
    cookie: int
    data: bytes = b""
    flags: int = 0
    name: bytes = b""
    mime: bytes = b""
    last_modified: int = 0
    ttl: TTL = EMPTY_TTL
    pairs: bytes = b""
    checksum: int | None = None
    append_at_ns: int = 0

    def __post_init__(self) -> None:
        if self.checksum is None:
            object.__setattr__(self, "checksum", crc32c(self.data) if self.data else 0)

    @classmethod
    def create(
        cls,
        id: int,
        cookie: int,
        data: bytes = b"",
        *,
        name: bytes | str | None = None,
        mime: bytes | str | None = None,
        last_modified: int | None = None,
        ttl: TTL | str | None = None,
        pairs: bytes | Mapping[str, str] | None = None,
        gzipped: bool = False,
        chunk_manifest: bool = False,
        checksum: int | None = None,
        append_at_ns: int = 0,
    ) -> "Needle":
        """Build a needle with flags set for exactly the fields given (None = absent)."""
        flags = (FLAG_GZIP if gzipped else 0) | (FLAG_CHUNK_MANIFEST if chunk_manifest else 0)
        if name is not None:
            flags |= FLAG_HAS_NAME
        if mime is not None:
            flags |= FLAG_HAS_MIME
        if last_modified is not None:
            flags |= FLAG_HAS_LAST_MODIFIED
        if ttl is None:
            ttl = EMPTY_TTL
        else:
            if isinstance(ttl, str):
                ttl = TTL.parse(ttl)
            if ttl != EMPTY_TTL:
                flags |= FLAG_HAS_TTL
        if pairs is not None and isinstance(pairs, Mapping):
            pairs = go_json_pairs(pairs) if pairs else None
        if pairs is not None:
            flags |= FLAG_HAS_PAIRS
        if type(data) is not bytes:
            data = bytes(data)
        # What cls(...) builds (its __post_init__ included), set slot by slot: a frozen
        # dataclass's __init__ routes each of the 11 fields through object.__setattr__,
        # which made this the costliest step of a small upload.
        n = object.__new__(cls)
        _set_id(n, id)
        _set_cookie(n, cookie)
        _set_data(n, data)
        _set_flags(n, flags)
        _set_name(n, name if type(name) is bytes else _b(name))
        _set_mime(n, mime if type(mime) is bytes else _b(mime))
        _set_last_modified(n, last_modified or 0)
        _set_ttl(n, ttl)
        _set_pairs(n, pairs or b"")
        _set_checksum(n, checksum if checksum is not None else (crc32c(data) if data else 0))
        _set_append_at_ns(n, append_at_ns)
        return n

    @classmethod
    def uploaded(cls, id: int, cookie: int, data: bytes, name: bytes, mime: bytes, last_modified: int,
                 gzipped: bool) -> "Needle":
        """What `create(id, cookie, data, name=name, mime=mime, last_modified=last_modified,
        gzipped=gzipped)` builds (`data` bytes), without its keywords and general branches: the
        needle of every plain upload."""
        n = object.__new__(cls)
        _set_id(n, id)
        _set_cookie(n, cookie)
        _set_data(n, data)
        _set_flags(n, _UPLOAD_FLAGS | FLAG_GZIP if gzipped else _UPLOAD_FLAGS)
        _set_name(n, name)
        _set_mime(n, mime)
        _set_last_modified(n, last_modified)
        _set_ttl(n, EMPTY_TTL)
        _set_pairs(n, b"")
        _set_checksum(n, crc32c(data) if data else 0)
        _set_append_at_ns(n, 0)
        return n

    # flag accessors -------------------------------------------------------------------------

    @property
    def is_compressed(self) -> bool:
        return bool(self.flags & FLAG_GZIP)

    @property
    def has_name(self) -> bool:
        return bool(self.flags & FLAG_HAS_NAME)

    @property
    def has_mime(self) -> bool:
        return bool(self.flags & FLAG_HAS_MIME)

    @property
    def has_last_modified(self) -> bool:
        return bool(self.flags & FLAG_HAS_LAST_MODIFIED)

    @property
    def has_ttl(self) -> bool:
        return bool(self.flags & FLAG_HAS_TTL)

    @property
    def has_pairs(self) -> bool:
        return bool(self.flags & FLAG_HAS_PAIRS)

    @property
    def is_chunk_manifest(self) -> bool:
        return bool(self.flags & FLAG_CHUNK_MANIFEST)

    # derived values ---------------------------------------------------------------------------

    @property
    def data_size(self) -> int:
        return len(self.data)

    @property
    def etag(self) -> str:
        """`%08x` of the CRC; quote it for an HTTP header."""
        return etag(self.checksum or 0)

    def pairs_map(self) -> dict[str, str]:
        """The pairs JSON (`{"Foo":"bar"}`); Go serves each as a response header."""
        if not self.pairs:
            return {}
        value = json.loads(self.pairs)
        if not isinstance(value, dict):
            raise Corrupted(f"needle {self.id:x} pairs are not a JSON object")
        return {str(k): str(v) for k, v in value.items()}

    def expires_at_ns(self) -> int | None:
        """When a read stops finding this needle (Go: AppendAtNs + TTL, only with lastmod set)."""
        if not (self.has_ttl and self.has_last_modified) or self.ttl.minutes == 0:
            return None
        return self.append_at_ns + self.ttl.minutes * 60 * 1_000_000_000

    def is_expired(self, now_ns: int) -> bool:
        t = self.expires_at_ns()
        return t is not None and now_ns >= t

    def replace(self, **changes: object) -> "Needle":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def tombstone(self) -> "Needle":
        """The record a delete appends: same id and cookie, no data, this needle's CRC."""
        return Needle(id=self.id, cookie=self.cookie, checksum=self.checksum)


_UPLOAD_FLAGS = FLAG_HAS_NAME | FLAG_HAS_MIME | FLAG_HAS_LAST_MODIFIED
(_set_id, _set_cookie, _set_data, _set_flags, _set_name, _set_mime, _set_last_modified, _set_ttl, _set_pairs,
 _set_checksum, _set_append_at_ns) = (getattr(Needle, f.name).__set__ for f in dataclasses.fields(Needle))


def _b(v: bytes | str | None) -> bytes:
    if v is None:
        return b""
    return v.encode() if isinstance(v, str) else bytes(v)


def go_json_pairs(pairs: Mapping[str, str]) -> bytes:
    """encode/json of a map[string]string: sorted keys, compact, `<>&` and U+2028/9 escaped."""
    text = json.dumps(dict(pairs), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text.encode()


# encoding ------------------------------------------------------------------------------------


def record_size(n: Needle, version: int) -> int:
    """The header's Size field for this needle written at `version`."""
    if version == VERSION1:
        return len(n.data)
    if not n.data:
        return 0
    size = DATA_SIZE_SIZE + len(n.data) + 1
    if n.has_name:
        size += 1 + min(len(n.name), _MAX_NAME)
    if n.has_mime:
        size += 1 + len(n.mime)
    if n.has_last_modified:
        size += LAST_MODIFIED_BYTES
    if n.has_ttl:
        size += TTL_BYTES
    if n.has_pairs:
        size += 2 + len(n.pairs)
    return size


def encode_needle(n: Needle, version: int, *, append_at_ns: int | None = None, size: int | None = None) -> bytes:
    """The exact record Go's writeNeedleV{1,2,3} produces, padding bytes included.

    `append_at_ns` stands in for the needle's own (a writer stamps the append time without
    copying the needle); `size` is `record_size(n, version)` when the caller has it already.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported needle version {version}")
    if len(n.mime) > _MAX_MIME:
        raise ValueError(f"mime type of {len(n.mime)} bytes exceeds {_MAX_MIME}")
    if len(n.pairs) > _MAX_PAIRS:
        raise ValueError(f"pairs of {len(n.pairs)} bytes exceed {_MAX_PAIRS}")
    if len(n.data) > 0xFFFFFFFF:
        raise ValueError("needle data exceeds 4 GiB")
    if size is None:
        size = record_size(n, version)
    if size > 0x7FFFFFFF:
        raise ValueError("needle record exceeds the int32 size field")
    if version == VERSION3:
        return _encode_v3(n, size, n.append_at_ns if append_at_ns is None else append_at_ns)
    return _encode_replay(n, version, size, append_at_ns)


_V3_HEAD = struct.Struct(">IQI")  # cookie, id, Size
_V3_TAIL = struct.Struct(">IQ")  # checksum, append time


def _encode_v3(n: Needle, size: int, append_at_ns: int) -> bytes:
    """Version 3 without the scratch replay: after the tail, Go's scratch buffer still holds
    the header's Size at bytes 12..15 and zeros after, so that is the padding."""
    size32 = size & 0xFFFFFFFF
    tail = _V3_TAIL.pack(n.checksum or 0, append_at_ns) + (size32.to_bytes(4, "big") + b"\0\0\0\0")[
        :padding_length(size, VERSION3)]
    head = _V3_HEAD.pack(n.cookie, n.id, size32)
    data = n.data
    if not data:
        return head + tail
    flags = n.flags
    out = [head, len(data).to_bytes(4, "big"), data, bytes((flags & 0xFF,))]
    if flags & FLAG_HAS_NAME:
        name = n.name[:_MAX_NAME]
        out.append(bytes((len(name),)) + name)
    if flags & FLAG_HAS_MIME:
        out.append(bytes((len(n.mime),)) + n.mime)
    if flags & FLAG_HAS_LAST_MODIFIED:
        out.append((n.last_modified & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")[8 - LAST_MODIFIED_BYTES:])
    if flags & FLAG_HAS_TTL:
        out.append(n.ttl.to_bytes()[:2])
    if flags & FLAG_HAS_PAIRS:
        out.append(len(n.pairs).to_bytes(2, "big") + n.pairs)
    out.append(tail)
    return b"".join(out)


_V3_HEAD_AND_DATA_SIZE = struct.Struct(">IQII")  # cookie, id, Size, DataSize
_PLAIN_META = FLAG_HAS_NAME | FLAG_HAS_MIME | FLAG_HAS_LAST_MODIFIED  # optional fields the fast encoder writes


def encode_appended(n: Needle, version: int, append_at_ns: int) -> tuple[int, bytes]:
    """(header Size, record) as `record_size` and `encode_needle` give them: the writer's call.

    A version-3 needle with data and at most a name, a mime type and a last-modified time (what
    every HTTP upload is) is laid out in one pass: the same bytes and the same refusals,
    without the general encoder's per-field calls."""
    flags = n.flags
    data = n.data
    if version != VERSION3 or not data or flags & ~(_PLAIN_META | FLAG_GZIP | FLAG_CHUNK_MANIFEST):
        size = record_size(n, version)
        return size, encode_needle(n, version, append_at_ns=append_at_ns, size=size)
    mime = n.mime
    if len(mime) > _MAX_MIME:
        raise ValueError(f"mime type of {len(mime)} bytes exceeds {_MAX_MIME}")
    if len(n.pairs) > _MAX_PAIRS:
        raise ValueError(f"pairs of {len(n.pairs)} bytes exceed {_MAX_PAIRS}")
    dlen = len(data)
    if dlen > 0xFFFFFFFF:
        raise ValueError("needle data exceeds 4 GiB")
    meta = bytes((flags & 0xFF,))
    if flags & FLAG_HAS_NAME:
        name = n.name[:_MAX_NAME]
        meta += bytes((len(name),)) + name
    if flags & FLAG_HAS_MIME:
        meta += bytes((len(mime),)) + mime
    if flags & FLAG_HAS_LAST_MODIFIED:
        meta += (n.last_modified & 0xFFFFFFFFFF).to_bytes(LAST_MODIFIED_BYTES, "big")
    size = DATA_SIZE_SIZE + dlen + len(meta)
    if size > 0x7FFFFFFF:
        raise ValueError("needle record exceeds the int32 size field")
    # the padding as _encode_v3 writes it (Size's bytes, then zeros): 1..8 bytes to the next 8
    pad = PADDING_SIZE - ((NEEDLE_HEADER_SIZE + size + CHECKSUM_SIZE + TIMESTAMP_SIZE) % PADDING_SIZE)
    tail = _V3_TAIL.pack(n.checksum or 0, append_at_ns) + (size.to_bytes(4, "big") + b"\0\0\0\0")[:pad]
    return size, b"".join((_V3_HEAD_AND_DATA_SIZE.pack(n.cookie, n.id, size, dlen), data, meta, tail))


def _encode_replay(n: Needle, version: int, size: int, append_at_ns: int | None) -> bytes:
    # Go builds the record through one 24-byte scratch buffer that starts as the header;
    # the padding is whatever that buffer holds afterwards, so we replay the same writes.
    scratch = bytearray(24)
    scratch[0:4] = n.cookie.to_bytes(4, "big")
    scratch[4:12] = n.id.to_bytes(8, "big")
    scratch[12:16] = (size & 0xFFFFFFFF).to_bytes(4, "big")
    out = [bytes(scratch[0:16])]
    crc = (n.checksum or 0).to_bytes(4, "big")
    pad = padding_length(size, version)
    if version == VERSION1:
        out.append(n.data)
        scratch[0:4] = crc
        out.append(bytes(scratch[0:CHECKSUM_SIZE + pad]))
        return b"".join(out)
    if n.data:
        out.append(len(n.data).to_bytes(4, "big"))
        scratch[0:4] = out[-1]
        out.append(n.data)
        scratch[0] = n.flags & 0xFF
        out.append(bytes((scratch[0],)))
        if n.has_name:
            name = n.name[:_MAX_NAME]
            scratch[0] = len(name)
            out.append(bytes((scratch[0],)) + name)
        if n.has_mime:
            scratch[0] = len(n.mime)
            out.append(bytes((scratch[0],)) + n.mime)
        if n.has_last_modified:
            scratch[0:8] = (n.last_modified & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
            out.append(bytes(scratch[8 - LAST_MODIFIED_BYTES:8]))
        if n.has_ttl:
            scratch[0:2] = n.ttl.to_bytes()
            out.append(bytes(scratch[0:2]))
        if n.has_pairs:
            scratch[0:2] = len(n.pairs).to_bytes(2, "big")
            out.append(bytes(scratch[0:2]) + n.pairs)
    scratch[0:4] = crc
    if version == VERSION3:
        scratch[4:12] = (n.append_at_ns if append_at_ns is None else append_at_ns).to_bytes(8, "big")
        out.append(bytes(scratch[0:CHECKSUM_SIZE + TIMESTAMP_SIZE + pad]))
    else:
        out.append(bytes(scratch[0:CHECKSUM_SIZE + pad]))
    return b"".join(out)


# decoding ------------------------------------------------------------------------------------


def parse_header(raw: bytes | memoryview) -> NeedleHeader:
    if len(raw) < NEEDLE_HEADER_SIZE:
        raise Corrupted(f"needle header needs {NEEDLE_HEADER_SIZE} bytes, got {len(raw)}")
    return NeedleHeader(
        cookie=int.from_bytes(raw[0:4], "big"),
        id=int.from_bytes(raw[4:12], "big"),
        size=int.from_bytes(raw[12:16], "big", signed=True),
    )


@dataclasses.dataclass(slots=True)
class _Meta:
    flags: int = 0
    name: bytes = b""
    mime: bytes = b""
    last_modified: int = 0
    ttl: TTL = EMPTY_TTL
    pairs: bytes = b""


def _parse_non_data(b: bytes | memoryview, nid: int) -> _Meta:
    """Flags and the optional fields, each read only while bytes remain (Go's leniency)."""
    m = _Meta()
    i, n = 0, len(b)
    if i < n:
        m.flags = b[i]
        i += 1
    if i < n and m.flags & FLAG_HAS_NAME:
        ln = b[i]
        i += 1
        if i + ln > n:
            raise Corrupted(f"needle {nid:x}: name overruns the record")
        m.name = bytes(b[i:i + ln])
        i += ln
    if i < n and m.flags & FLAG_HAS_MIME:
        ln = b[i]
        i += 1
        if i + ln > n:
            raise Corrupted(f"needle {nid:x}: mime overruns the record")
        m.mime = bytes(b[i:i + ln])
        i += ln
    if i < n and m.flags & FLAG_HAS_LAST_MODIFIED:
        if i + LAST_MODIFIED_BYTES > n:
            raise Corrupted(f"needle {nid:x}: last-modified overruns the record")
        m.last_modified = int.from_bytes(b[i:i + LAST_MODIFIED_BYTES], "big")
        i += LAST_MODIFIED_BYTES
    if i < n and m.flags & FLAG_HAS_TTL:
        if i + TTL_BYTES > n:
            raise Corrupted(f"needle {nid:x}: ttl overruns the record")
        m.ttl = TTL.from_bytes(b[i:i + TTL_BYTES])
        i += TTL_BYTES
    if i < n and m.flags & FLAG_HAS_PAIRS:
        if i + 2 > n:
            raise Corrupted(f"needle {nid:x}: pairs size overruns the record")
        ln = int.from_bytes(b[i:i + 2], "big")
        i += 2
        if i + ln > n:
            raise Corrupted(f"needle {nid:x}: pairs overrun the record")
        m.pairs = bytes(b[i:i + ln])
    return m


def decode_needle(
    raw: bytes | memoryview,
    version: int,
    *,
    expected_size: int | None = None,
    verify_crc: bool = True,
) -> Needle:
    """A whole record (at least `actual_size(Size)` bytes) -> Needle.

    `expected_size` is the `.idx` size; a header that disagrees means the index points at the
    wrong place. With data present the CRC is checked (Go also accepts the pre-3.09 masked
    form) and `checksum` is the computed value; with no data it is the stored one.
    """
    if version not in SUPPORTED_VERSIONS:
        raise Corrupted(f"unsupported needle version {version}")
    mv = memoryview(raw)
    h = parse_header(mv)
    if expected_size is not None and h.size != expected_size:
        raise Corrupted(f"needle {h.id:x}: header size {h.size} differs from index size {expected_size}")
    if h.size < 0:
        raise Corrupted(f"needle {h.id:x}: negative size {h.size} in record header")
    need = actual_size(h.size, version)
    if len(mv) < need:
        raise Corrupted(f"needle {h.id:x}: record needs {need} bytes, only {len(mv)} present")
    body = mv[NEEDLE_HEADER_SIZE:NEEDLE_HEADER_SIZE + h.size]
    meta = _Meta()
    if version == VERSION1:
        data = bytes(body)
    elif h.size > 0:
        if h.size < DATA_SIZE_SIZE:
            raise Corrupted(f"needle {h.id:x}: size {h.size} cannot hold a data size")
        data_size = int.from_bytes(body[0:4], "big")
        if DATA_SIZE_SIZE + data_size > h.size:
            raise Corrupted(f"needle {h.id:x}: data size {data_size} overruns the record")
        data = bytes(body[4:4 + data_size])
        meta = _parse_non_data(body[4 + data_size:], h.id)
    else:
        data = b""
    tail = mv[NEEDLE_HEADER_SIZE + h.size:]
    stored = int.from_bytes(tail[0:4], "big")
    checksum = stored
    if data:
        computed = crc32c(data)
        if verify_crc and not crc_matches(stored, computed):
            raise ChecksumMismatch(
                f"needle {h.id:x}: CRC {computed:08x} of the data differs from stored {stored:08x}"
            )
        checksum = computed
    append_at_ns = int.from_bytes(tail[4:12], "big") if version == VERSION3 else 0
    return Needle(
        id=h.id,
        cookie=h.cookie,
        data=data,
        flags=meta.flags,
        name=meta.name,
        mime=meta.mime,
        last_modified=meta.last_modified,
        ttl=meta.ttl,
        pairs=meta.pairs,
        checksum=checksum,
        append_at_ns=append_at_ns,
    )


def decode_meta(head: bytes | memoryview, rest: bytes | memoryview, version: int) -> tuple[Needle, int]:
    """Metadata without the data (Go's ReadNeedleMeta), for streaming large needles.

    `head` is the first 20 bytes of the record (header + DataSize); `rest` is everything after
    the data up to the end of the record. Returns (needle with empty data and the *stored*
    checksum, data size).
    """
    h = parse_header(head)
    if version == VERSION1:
        data_size = h.size
        meta = _Meta()
        tail = memoryview(rest)
    elif h.size > 0:
        data_size = int.from_bytes(head[16:20], "big")
        meta_len = h.size - DATA_SIZE_SIZE - data_size
        if meta_len < 0:
            raise Corrupted(f"needle {h.id:x}: data size {data_size} overruns the record")
        mv = memoryview(rest)
        meta = _parse_non_data(mv[:meta_len], h.id)
        tail = mv[meta_len:]
    else:
        data_size, meta, tail = 0, _Meta(), memoryview(rest)
    if len(tail) < CHECKSUM_SIZE + (TIMESTAMP_SIZE if version == VERSION3 else 0):
        raise Corrupted(f"needle {h.id:x}: record tail truncated")
    stored = int.from_bytes(tail[0:4], "big")
    n = Needle(
        id=h.id,
        cookie=h.cookie,
        data=b"",
        flags=meta.flags,
        name=meta.name,
        mime=meta.mime,
        last_modified=meta.last_modified,
        ttl=meta.ttl,
        pairs=meta.pairs,
        checksum=stored,
        append_at_ns=int.from_bytes(tail[4:12], "big") if version == VERSION3 else 0,
    )
    return n, data_size


def meta_span(size: int, data_size: int, version: int) -> tuple[int, int]:
    """(start, length) of the bytes after the data, relative to the record start."""
    if version == VERSION1:
        start = NEEDLE_HEADER_SIZE + size
    elif size > 0:
        start = NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE + data_size
    else:
        start = NEEDLE_HEADER_SIZE
    return start, actual_size(size, version) - start


def data_start(size: int, version: int) -> int:
    """Offset of the data within the record."""
    if version == VERSION1:
        return NEEDLE_HEADER_SIZE
    return NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE

