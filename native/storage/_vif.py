"""`.vif`: the volume's `VolumeInfo` protobuf as protojson.

Go writes it with EmitUnpopulated and two-space indent, and its protojson adds random spaces,
so files are never byte-compared. Reading is lenient the way protojson is: camelCase or
snake_case names, 64-bit integers as strings or numbers, `null` messages, and the pre-3.x
layout (`BytesOffset`, `DestroyTime`). An empty file counts as absent.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import OffsetWidthMismatch

__all__ = ["VolumeInfo", "load_volume_info", "save_volume_info", "width_mismatch"]

# proto field -> (json name, snake name, kind)
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("files", "files", "list"),
    ("version", "version", "u32"),
    ("replication", "replication", "str"),
    ("bytesOffset", "bytes_offset", "u32"),
    ("datFileSize", "dat_file_size", "i64"),
    ("expireAtSec", "expire_at_sec", "u64"),
    ("readOnly", "read_only", "bool"),
    ("ecShardConfig", "ec_shard_config", "msg"),
    ("readOnlyCanDelete", "read_only_can_delete", "bool"),
)
_OLD_NAMES = {"BytesOffset": "bytes_offset", "DestroyTime": "expire_at_sec"}


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeInfo:
    files: tuple[Mapping[str, Any], ...] = ()
    version: int = 0
    replication: str = ""
    bytes_offset: int = 0
    dat_file_size: int = 0
    expire_at_sec: int = 0
    read_only: bool = False
    ec_shard_config: Mapping[str, Any] | None = None
    read_only_can_delete: bool = False

    @property
    def has_remote_file(self) -> bool:
        return bool(self.files)

    @classmethod
    def parse(cls, raw: bytes | str) -> "VolumeInfo":
        """Parse protojson text; ValueError if it is not a VolumeInfo."""
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"volume info is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError("volume info is not a JSON object")
        names = {}
        for json_name, snake, kind in _FIELDS:
            names[json_name] = (snake, kind)
            names[snake] = (snake, kind)
        kinds = {snake: kind for _, snake, kind in _FIELDS}
        values: dict[str, Any] = {}
        for key, value in obj.items():
            if key in names:
                snake, kind = names[key]
            elif key in _OLD_NAMES:
                snake = _OLD_NAMES[key]
                kind = kinds[snake]
            else:
                raise ValueError(f"unknown volume info field {key!r}")
            values[snake] = _convert(key, value, kind)
        return cls(**values)

    def to_json(self) -> bytes:
        """protojson with every field, in proto order, two-space indented."""
        obj = {
            "files": [dict(f) for f in self.files],
            "version": self.version,
            "replication": self.replication,
            "bytesOffset": self.bytes_offset,
            "datFileSize": str(self.dat_file_size),
            "expireAtSec": str(self.expire_at_sec),
            "readOnly": self.read_only,
            "ecShardConfig": dict(self.ec_shard_config) if self.ec_shard_config is not None else None,
            "readOnlyCanDelete": self.read_only_can_delete,
        }
        return json.dumps(obj, indent=2, ensure_ascii=False).encode()

    def replace(self, **changes: Any) -> "VolumeInfo":
        return dataclasses.replace(self, **changes)


def _convert(key: str, value: Any, kind: str) -> Any:
    if kind == "list":
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ValueError(f"volume info {key!r} must be a list of objects")
        return tuple(value)
    if kind == "msg":
        if value is None or isinstance(value, dict):
            return value
        raise ValueError(f"volume info {key!r} must be an object or null")
    if kind == "str":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(f"volume info {key!r} must be a string")
        return value
    if kind == "bool":
        if value is None:
            return False
        if not isinstance(value, bool):
            raise ValueError(f"volume info {key!r} must be a boolean")
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"volume info {key!r} must be a number")
    if isinstance(value, str):
        try:
            value = int(value.strip(), 10)
        except ValueError:
            raise ValueError(f"volume info {key!r}: {value!r} is not an integer") from None
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"volume info {key!r}: {value!r} is not an integer")
        value = int(value)
    elif not isinstance(value, int):
        raise ValueError(f"volume info {key!r} must be a number")
    limits = {"u32": (0, 1 << 32), "u64": (0, 1 << 64), "i64": (-(1 << 63), 1 << 63)}[kind]
    if not limits[0] <= value < limits[1]:
        raise ValueError(f"volume info {key!r}: {value} out of range")
    return value


def load_volume_info(path: str | os.PathLike[str]) -> VolumeInfo | None:
    """The `.vif` at `path`, or None when it is missing or empty (Go treats both as absent)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    if not raw.strip():
        return None
    return VolumeInfo.parse(raw)


def save_volume_info(path: str | os.PathLike[str], info: VolumeInfo) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written `.vif`."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(info.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def width_mismatch(vid: int, vif_path: str, recorded: int, configured: int | None) -> OffsetWidthMismatch | None:
    """The error for a `.vif` whose recorded offset width this store cannot use (Go exits)."""
    if recorded not in (0, 4, 5):
        return OffsetWidthMismatch(f"{vif_path}: bytesOffset {recorded} is neither 4 nor 5")
    if recorded and configured is not None and recorded != configured:
        return OffsetWidthMismatch(
            f"volume {vid} was written with {recorded}-byte offsets ({vif_path}), "
            f"but this store uses {configured}-byte offsets; start with -offsetBytes={recorded} "
            f"(Go: the {'8000GB/5BytesOffset' if recorded == 5 else 'default 30GB'} build)"
        )
    return None
