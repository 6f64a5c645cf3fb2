"""Chunk manifests (weed/operation/chunked_file.go): the JSON record, and a content source that
assembles the file by fetching each chunk from the volume server the master names for it."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from native.http._content import ContentError
from native.http._gzip import GunzipError, gunzip_data, is_gzipped

__all__ = ["ChunkInfo", "ChunkManifest", "ManifestError", "load_chunk_manifest", "ChunkedContent"]


class ManifestError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkInfo:
    fid: str
    offset: int
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkManifest:
    name: str
    mime: str
    size: int
    chunks: tuple[ChunkInfo, ...]


def _fold(key: str) -> str:
    return key.replace("\u017f", "s").replace("\u212a", "k").lower()


def _go_str(v: object, field: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ManifestError(f"json: cannot unmarshal {_kind(v)} into Go struct field {field} of type string")
    return v.encode("utf-8", "surrogatepass").decode("latin-1")


def _go_int(v: object, field: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise ManifestError(f"json: cannot unmarshal {_kind(v)} into Go struct field {field} of type int64")
    return int(v)


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def load_chunk_manifest(data: bytes, compressed: bool) -> ChunkManifest:
    """LoadChunkManifest: gunzip if flagged, json.Unmarshal (case-insensitive keys), chunks by offset."""
    if compressed and is_gzipped(data):
        try:
            data = gunzip_data(data)
        except GunzipError:
            data = b""  # DecompressData returns nil on a gunzip failure
    try:
        doc = json.loads(data, object_pairs_hook=list)
    except (ValueError, UnicodeDecodeError) as exc:
        if not data.strip():
            raise ManifestError("unexpected end of JSON input") from None
        raise ManifestError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, list) or (doc and not isinstance(doc[0], tuple)):
        if doc == []:
            doc = []
        else:
            raise ManifestError(f"json: cannot unmarshal {_kind(doc)} into Go value of type operation.ChunkManifest")
    name = mime = ""
    size = 0
    chunks: list[ChunkInfo] = []
    for k, v in doc:
        f = _fold(k)
        if f == "name":
            name = _go_str(v, "ChunkManifest.name")
        elif f == "mime":
            mime = _go_str(v, "ChunkManifest.mime")
        elif f == "size":
            size = _go_int(v, "ChunkManifest.size")
        elif f == "chunks":
            if v is None:
                chunks = []
                continue
            if not isinstance(v, list):
                raise ManifestError(f"json: cannot unmarshal {_kind(v)} into Go struct field ChunkManifest.chunks of type operation.ChunkList")
            chunks = []
            for item in v:
                if item is None:
                    raise ManifestError("chunk manifest has a null chunk")
                if not isinstance(item, list):
                    raise ManifestError(f"json: cannot unmarshal {_kind(item)} into Go struct field ChunkManifest.chunks of type operation.ChunkInfo")
                fid, off, sz = "", 0, 0
                for ck, cv in item:
                    cf = _fold(ck)
                    if cf == "fid":
                        fid = _go_str(cv, "ChunkManifest.chunks.fid")
                    elif cf == "offset":
                        off = _go_int(cv, "ChunkManifest.chunks.offset")
                    elif cf == "size":
                        sz = _go_int(cv, "ChunkManifest.chunks.size")
                chunks.append(ChunkInfo(fid, off, sz))
    chunks.sort(key=lambda c: c.offset)
    return ChunkManifest(name, mime, size, tuple(chunks))


# (fid) -> url of a server holding it, or raises ContentError with Go's lookup error text
LookupUrl = Callable[[str], Awaitable[str]]
# (url, range offset) -> (status, body chunks)
GetChunk = Callable[[str, int], Awaitable[tuple[int, AsyncIterator[bytes]]]]


class ChunkedContent:
    """The file a manifest describes: total size = sum of chunk sizes, read chunk by chunk."""

    __slots__ = ("chunk_list", "size", "_lookup", "_get")

    def __init__(self, chunks: tuple[ChunkInfo, ...], lookup: LookupUrl, get: GetChunk) -> None:
        self.chunk_list = chunks
        self.size = sum(c.size for c in chunks)
        self._lookup = lookup
        self._get = get

    async def chunks_from(self, pos: int) -> AsyncIterator[bytes]:
        idx = -1
        start_in_chunk = 0
        for i, c in enumerate(self.chunk_list):
            if c.offset <= pos < c.offset + c.size:
                idx, start_in_chunk = i, pos - c.offset
                break
        if idx < 0:
            raise ContentError("Invalid range")
        for c in self.chunk_list[idx:]:
            url = await self._lookup(c.fid)
            status, body = await self._get(url, start_in_chunk)
            if status == 416:
                raise ContentError("Invalid range")
            if status == 200 and start_in_chunk > 0:
                raise ContentError("Range requests are not supported by the remote server")
            if status not in (200, 206):
                raise ContentError(f"Read chunk needle error: [{status}] {url}")
            async for piece in body:
                yield piece
            start_in_chunk = 0

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """io.CopyN(w, reader, length) after Seek(offset): stops at `length`, EOF early is an error."""
        if length <= 0:
            return
        if offset > self.size:
            raise ContentError("Invalid range")
        left = length
        async for piece in self.chunks_from(offset):
            if len(piece) >= left:
                yield piece[:left]
                return
            left -= len(piece)
            yield piece
        raise ContentError("EOF")


def pick_location(urls: list[str]) -> str:
    return urls[random.randrange(len(urls))]
