"""Recover the FileDescriptorProtos that a Go binary (the official `weed`) was built with.

protoc-gen-go keeps each .proto file's serialized FileDescriptorProto verbatim in the binary, so
the binary itself is the authoritative wire contract of its release. A serialized descriptor starts
with field 1 (the file name) followed by field 2 (the package); we find that prefix and read
top-level fields forward while they stay plausible: a FileDescriptorProto field number (1-14), a
varint or length-delimited wire type, and field numbers in the non-decreasing order protoc writes
them in. The last rule matters because descriptors are often laid out back to back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from google.protobuf import descriptor_pb2

__all__ = [
    "UPSTREAM_FILES",
    "EmbeddedDescriptorError",
    "find_file_descriptor",
    "read_file_descriptors",
]

# (upstream file name, package) of the contract files, dependencies first.
UPSTREAM_FILES: tuple[tuple[str, str], ...] = (
    ("remote.proto", "remote_pb"),
    ("volume_server.proto", "volume_server_pb"),
    ("master.proto", "master_pb"),
)

_WIRE_VARINT = 0
_WIRE_LEN = 2


class EmbeddedDescriptorError(LookupError):
    pass


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(blob: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); IndexError past the end, ValueError on an over-long varint."""
    value = shift = 0
    while True:
        byte = blob[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _descriptor_end(blob: bytes, start: int) -> int:
    """Offset just past the last plausible top-level field of a descriptor starting at `start`."""
    pos, last_field = start, 0
    while pos < len(blob):
        try:
            tag, after_tag = _read_varint(blob, pos)
            field, wire = tag >> 3, tag & 7
            if not 1 <= field <= 14 or wire not in (_WIRE_VARINT, _WIRE_LEN) or field < last_field:
                break
            value, after = _read_varint(blob, after_tag)
        except (IndexError, ValueError):
            break
        if wire == _WIRE_LEN:
            after += value
            if after > len(blob):
                break
        pos, last_field = after, field
    return pos


def find_file_descriptor(
    blob: bytes, name: str, package: str | None = None
) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor of file `name` (and `package`, when given) embedded somewhere in `blob`."""
    encoded = name.encode()
    needle = b"\n" + _varint(len(encoded)) + encoded + b"\x12"
    seen: list[str] = []
    pos = blob.find(needle)
    while pos >= 0:
        end = _descriptor_end(blob, pos)
        try:
            fd = descriptor_pb2.FileDescriptorProto.FromString(blob[pos:end])
        except Exception:  # noqa: BLE001 - a byte pattern that merely looks like a descriptor
            fd = None
        if fd is not None and fd.name == name:
            if package is None or fd.package == package:
                return fd
            seen.append(fd.package)
        pos = blob.find(needle, pos + 1)
    detail = f" (found packages {seen})" if seen else ""
    raise EmbeddedDescriptorError(f"no embedded descriptor for {name!r}{detail}")


def read_file_descriptors(
    binary: Path, wanted: Iterable[tuple[str, str]]
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """{file name: descriptor} for each (file name, package) pair, read from a binary on disk."""
    blob = Path(binary).read_bytes()
    return {name: find_file_descriptor(blob, name, package) for name, package in wanted}
