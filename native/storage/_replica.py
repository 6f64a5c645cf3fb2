"""Replica placement `xyz`: x other data centers, y other racks, z other servers in the rack."""

from __future__ import annotations

import dataclasses

__all__ = ["ReplicaPlacement"]


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicaPlacement:
    diff_data_center: int = 0
    diff_rack: int = 0
    same_rack: int = 0

    @classmethod
    def parse(cls, text: str) -> "ReplicaPlacement":
        """Go's NewReplicaPlacementFromString: left-padded to 3 digits, byte value at most 255."""
        t = text.rjust(3, "0") if len(text) < 3 else text
        counts = [0, 0, 0]
        for i, c in enumerate(t):
            n = ord(c) - ord("0")
            if n < 0:
                raise ValueError(f"unknown replication type: {t}")
            if i < 3:
                counts[i] = n
        rp = cls(counts[0], counts[1], counts[2])
        if rp.byte_value > 255:
            raise ValueError(f"unexpected replication type: {t}")
        return rp

    @classmethod
    def from_byte(cls, b: int) -> "ReplicaPlacement":
        return cls(b // 100, b // 10 % 10, b % 10)

    @property
    def byte_value(self) -> int:
        return self.diff_data_center * 100 + self.diff_rack * 10 + self.same_rack

    def to_byte(self) -> int:
        return self.byte_value & 0xFF

    @property
    def copy_count(self) -> int:
        return self.diff_data_center + self.diff_rack + self.same_rack + 1

    @property
    def has_replication(self) -> bool:
        return self.copy_count > 1

    def __str__(self) -> str:
        return "".join(chr(ord("0") + n) for n in (self.diff_data_center, self.diff_rack, self.same_rack))
