"""`.ecsum`: the bitrot sidecar weed 4.48 writes next to freshly encoded shards.

    magic "ECSU" (u32 BE) | format version 1 (u16) | payload length (u32) | CRC-32C of payload (u32)
    payload = EcBitrotProtection protobuf: CRC-32C of every 16 MiB block of every shard
              (packed little-endian u32s), the covered size, the ratio, a random encode uuid.

It is optional in Go (absent = unprotected); when present Go's rebuild verifies the shards it
reads against it and refuses a sidecar that does not parse. So we write a correct one on encode
and remove it wherever Go removes it.
"""

from __future__ import annotations

import os
import struct

from google.protobuf.message import DecodeError

from proto import volume_server_pb2 as vs

from .._crc import crc32c, crc32c_update

__all__ = ["SIDECAR_EXT", "BLOCK_SIZE", "ChecksumBuilder", "build_protection", "save_sidecar", "load_sidecar",
           "SidecarError", "remove_sidecars", "shard_block_crcs"]

SIDECAR_EXT = ".ecsum"
BLOCK_SIZE = 16 << 20
_MAGIC = 0x45435355
_VERSION = 1
_HEADER = struct.Struct(">IHII")


class SidecarError(ValueError):
    pass


class ChecksumBuilder:
    """CRC-32C of each BLOCK_SIZE block of one shard's byte stream, fed in any chunk sizes."""

    __slots__ = ("block", "cur", "cur_len", "total", "blocks")

    def __init__(self, block: int = BLOCK_SIZE) -> None:
        self.block = block
        self.cur = 0
        self.cur_len = 0
        self.total = 0
        self.blocks: list[int] = []

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            n = min(len(view), self.block - self.cur_len)
            self.cur = crc32c_update(self.cur, view[:n])
            self.cur_len += n
            self.total += n
            view = view[n:]
            if self.cur_len == self.block:
                self.blocks.append(self.cur)
                self.cur, self.cur_len = 0, 0

    def finish(self) -> tuple[int, bytes]:
        if self.cur_len:
            self.blocks.append(self.cur)
            self.cur, self.cur_len = 0, 0
        return self.total, b"".join(struct.pack("<I", c) for c in self.blocks)


def build_protection(data_shards: int, parity_shards: int, builders: list[ChecksumBuilder],
                     small_block: int) -> vs.EcBitrotProtection:
    prot = vs.EcBitrotProtection(
        algorithm=vs.CHECKSUM_CRC32C, block_size=BLOCK_SIZE, generation=0,
        ec_shard_config=vs.EcShardConfig(data_shards=data_shards, parity_shards=parity_shards, block_size=small_block),
        encode_uuid=os.urandom(16),
    )
    for i, b in enumerate(builders):
        covered, packed = b.finish()
        prot.shards.add(shard_id=i, covered_size=covered, block_crc32c=packed)
    return prot


def save_sidecar(path: str, prot: vs.EcBitrotProtection) -> None:
    payload = prot.SerializeToString()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(_HEADER.pack(_MAGIC, _VERSION, len(payload), crc32c(payload)) + payload)
    os.replace(tmp, path)


def load_sidecar(path: str) -> vs.EcBitrotProtection:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _HEADER.size:
        raise SidecarError(f"bitrot sidecar {path} too short ({len(data)} bytes)")
    magic, version, length, crc = _HEADER.unpack_from(data)
    payload = data[_HEADER.size:]
    if magic != _MAGIC:
        raise SidecarError(f"bitrot sidecar {path} bad magic {magic:#x}")
    if version != _VERSION:
        raise SidecarError(f"bitrot sidecar {path} unsupported format version {version}")
    if length != len(payload):
        raise SidecarError(f"bitrot sidecar {path} length mismatch: header {length}, actual {len(payload)}")
    if crc32c(payload) != crc:
        raise SidecarError(f"bitrot sidecar {path} self-integrity CRC mismatch")
    try:
        return vs.EcBitrotProtection.FromString(payload)
    except DecodeError as exc:
        raise SidecarError(f"unmarshal bitrot sidecar {path}: {exc}") from None


def shard_block_crcs(path: str, block: int = BLOCK_SIZE) -> tuple[int, bytes]:
    """(size, packed CRCs) of a shard file as a sidecar would record it."""
    b = ChecksumBuilder(block)
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            b.write(chunk)
    return b.finish()


def remove_sidecars(base: str) -> None:
    """`<base>.ecsum` and any versioned `<base>.ecsum.v<N>`."""
    directory, name = os.path.split(base)
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return
    for n in names:
        if n == name + SIDECAR_EXT or n.startswith(name + SIDECAR_EXT + ".v"):
            try:
                os.remove(os.path.join(directory, n))
            except FileNotFoundError:
                pass
