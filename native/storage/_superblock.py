"""The 8-byte super block at the start of every `.dat` (plus an optional protobuf extra)."""

from __future__ import annotations

import dataclasses

from ._errors import Corrupted
from ._replica import ReplicaPlacement
from ._ttl import EMPTY_TTL, TTL
from ._types import CURRENT_VERSION, SUPER_BLOCK_SIZE, VERSION1

__all__ = ["SuperBlock"]


@dataclasses.dataclass(frozen=True, slots=True)
class SuperBlock:
    """Byte 0 version, 1 replica placement, 2-3 TTL, 4-5 compaction revision, 6-7 extra size."""

    version: int = CURRENT_VERSION
    replica_placement: ReplicaPlacement = ReplicaPlacement()
    ttl: TTL = EMPTY_TTL
    compaction_revision: int = 0
    extra: bytes = b""

    @classmethod
    def decode(cls, raw: bytes | memoryview) -> "SuperBlock":
        """Parse the header (and the extra, when `raw` holds it)."""
        if len(raw) < SUPER_BLOCK_SIZE:
            raise Corrupted(f"super block needs {SUPER_BLOCK_SIZE} bytes, got {len(raw)}")
        extra_size = int.from_bytes(raw[6:8], "big")
        extra = bytes(raw[SUPER_BLOCK_SIZE:SUPER_BLOCK_SIZE + extra_size])
        if extra_size and len(extra) != extra_size:
            raise Corrupted(f"super block extra of {extra_size} bytes is truncated")
        return cls(
            version=raw[0],
            replica_placement=ReplicaPlacement.from_byte(raw[1]),
            ttl=TTL.from_bytes(raw[2:4]),
            compaction_revision=int.from_bytes(raw[4:6], "big"),
            extra=extra,
        )

    @staticmethod
    def extra_size_of(raw: bytes | memoryview) -> int:
        return int.from_bytes(raw[6:8], "big")

    def encode(self) -> bytes:
        if len(self.extra) > 256 * 256 - 2:
            raise ValueError("super block extra too large")
        return (
            bytes((self.version, self.replica_placement.to_byte()))
            + self.ttl.to_bytes()
            + self.compaction_revision.to_bytes(2, "big")
            + len(self.extra).to_bytes(2, "big")
            + self.extra
        )

    @property
    def block_size(self) -> int:
        """Where the first needle starts (v1 ignores the extra)."""
        if self.version == VERSION1:
            return SUPER_BLOCK_SIZE
        return SUPER_BLOCK_SIZE + len(self.extra)
