"""THE mask: values that legitimately differ between two servers answering the same request.

This is the one place that lists them; the differ's defaults and every differential test
(tests/support/compare.py) use it:

- the values of `Date` and `X-Amz-Request-Id` (per response; presence and position still count;
  Go also sends the request id as a gRPC response header and trailer);
- the boundary of `multipart/byteranges` responses (random per response), in header and body;
- the answering server's own `ip:port` (Go puts it in some error texts), replaced by `<self>`
  in header values and bodies when the caller knows it; likewise any other per-server value the
  caller names as an alias `(value, placeholder)` (e.g. a peer's `ip:port`).

JSON bodies and gRPC messages: the fields in `HTTP_VARIABLE_FIELDS` / `GRPC_VARIABLE_FIELDS` (per method; dotted paths, `*` = every list
element or map value) hold clocks, live disk figures, directory paths and runtime memory; their
values are masked, but presence still counts. `HEARTBEAT_VARIABLE_FIELDS` is the same for the
heartbeats a volume server sends its master (used by the heartbeat differential tests).

Needle records carry the time they were appended (8 bytes after the CRC in a version 3 record),
stamped from each server's own clock. `mask_grpc_messages` zeroes them where an answer holds
records: ReadNeedleBlob's blob, CopyFile's `.dat`/`.cpd` content, VolumeIncrementalCopy's
records; it also compares a copied `.vif` as JSON (Go's protojson spaces its output at random).
A caller that knows more (the random generator knows where each record of an erasure-coded
volume went) passes `ByteMask`s: byte ranges of a response field, zeroed on both sides.

Anything else that differs is either a real difference or noise the noise model must learn.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Sequence

from google.protobuf.message import DecodeError

from native.storage import VERSION3, actual_size
from proto import volume_server_pb2 as vs

__all__ = ["VARIABLE_HEADERS", "HTTP_VARIABLE_FIELDS", "HTTP_VARIABLE_LINES", "GRPC_VARIABLE_FIELDS", "HEARTBEAT_VARIABLE_FIELDS", "HEARTBEAT_OMITTED_FIELDS",
           "MASKED_VALUE", "SELF",
           "BOUNDARY", "mask_http", "mask_headers", "mask_text", "boundary_of", "grpc_variable_fields",
           "ByteMask", "record_clock_ranges", "mask_grpc_messages", "CLOCK_RECORD_METHODS", "VIF_CLOCK_KEYS"]

VARIABLE_HEADERS = frozenset({b"date", b"x-amz-request-id"})

# Per VolumeServer method: response fields whose values differ between any two servers.
# Ping: its three clocks; VolumeServerStatus: disk figures and directory paths (different data
# directories, live free space) and the whole memory status (a Go runtime's numbers vs a Python
# process's); ReadVolumeFileStatus and CopyFile: the files' modification times.
GRPC_VARIABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "Ping": ("start_time_ns", "remote_time_ns", "stop_time_ns"),
    "VolumeServerStatus": (
        "disk_statuses.*.dir", "disk_statuses.*.all", "disk_statuses.*.used", "disk_statuses.*.free",
        "disk_statuses.*.percent_free", "disk_statuses.*.percent_used", "memory_status",
    ),
    "ReadVolumeFileStatus": ("idx_file_timestamp_seconds", "dat_file_timestamp_seconds",
                             "volume_info.ec_shard_config.encode_ts_ns", "volume_info.expire_at_sec"),
    "CopyFile": ("modified_ts_ns",),
    "ReadNeedleMeta": ("append_at_ns",),
    "VolumeCopy": ("last_append_at_ns",),
    "VacuumVolumeCompact": ("load_avg_1m",),
    "VolumeEcShardRead": ("encode_ts_ns",),
    "VolumeEcShardsInfo": ("ec_shard_config.encode_ts_ns",),
}
# Per HTTP endpoint: JSON body fields whose values differ between any two servers (the same disk
# figures as VolumeServerStatus); when only these differ, so may Content-Length.
HTTP_VARIABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "admin.status": (
        "DiskStatuses.*.dir", "DiskStatuses.*.all", "DiskStatuses.*.used", "DiskStatuses.*.free",
        "DiskStatuses.*.percent_free", "DiskStatuses.*.percent_used",
        # the second of a volume's last write: two servers (and a mirror) write at their own pace
        "Volumes.*.ModifiedAtSecond",
    ),
}
# Per HTTP endpoint: lines of text pages whose values differ between any two servers; a differing
# line is masked when both sides' lines match the same pattern. The UI's "Up Time" cell is Go's
# time.Since(start).Truncate(time.Second).String(): "0s", "59s", "1m5s", "2h0m3s".
HTTP_VARIABLE_LINES: dict[str, tuple[str, ...]] = {
    "admin.ui": (r"^\s*<td>(?:[0-9]+h)?(?:[0-9]+m)?[0-9]+s</td>\s*$",),
}

# Heartbeat fields: the sender's address fields (each server has its own ports), directory uuids,
# disk byte totals, volume modification times.
HEARTBEAT_VARIABLE_FIELDS: tuple[str, ...] = (
    "ip", "port", "grpc_port", "public_url", "id", "location_uuids", "disk_total_bytes", "disk_free_bytes",
    "volumes.*.modified_at_second",
)
# Left out of heartbeat comparisons altogether (a deliberate difference, not a per-server value):
# Go 4.48 sends `volume_digest`, a digest of its volume list; weedpy sends none (a master then takes
# every full heartbeat as the whole list, which every master version understands).
HEARTBEAT_OMITTED_FIELDS: tuple[str, ...] = ("volume_digest",)


def grpc_variable_fields(method_path: str) -> tuple[str, ...]:
    """The masked response fields of a gRPC method, as differ field patterns (`msg[*].a.*.b`)."""
    name = method_path.rsplit("/", 1)[-1]
    return tuple(f"msg[*].{p}" for p in GRPC_VARIABLE_FIELDS.get(name, ()))
MASKED_VALUE = b"*"
SELF = b"<self>"
BOUNDARY = b"BOUNDARY"
_BOUNDARY = re.compile(rb"boundary=([0-9A-Za-z'()+_,./:=?-]+)")


def boundary_of(content_type: bytes) -> bytes | None:
    m = _BOUNDARY.search(content_type)
    return m.group(1) if m else None


def mask_text(data: bytes, own_addrs: Iterable[bytes], aliases: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """Replace the server's own addresses by `<self>` and each alias value by its placeholder."""
    for own in own_addrs:
        if own:
            data = data.replace(own, SELF)
    for value, placeholder in aliases:
        if value:
            data = data.replace(value, placeholder)
    return data


def mask_http(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes, own_addrs: Iterable[bytes] = (),
    aliases: Iterable[tuple[bytes, bytes]] = (),
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) with the per-response values masked; names and order untouched."""
    owns = tuple(o for o in own_addrs if o)
    subs = tuple(aliases)
    body = mask_text(body, owns, subs)
    out: list[tuple[bytes, bytes]] = []
    for k, v in headers:
        v = mask_text(v, owns, subs)
        lk = k.lower()
        if lk in VARIABLE_HEADERS:
            v = MASKED_VALUE
        elif lk == b"content-type" and (b := boundary_of(v)) is not None:
            body = body.replace(b, BOUNDARY)
            v = v.replace(b, BOUNDARY)
        out.append((k, v))
    return status, out, body


def mask_headers(
    headers: Iterable[tuple[bytes, bytes]], own_addrs: Iterable[bytes] = (), aliases: Iterable[tuple[bytes, bytes]] = (),
) -> list[tuple[bytes, bytes]]:
    """Header or trailer values masked as in `mask_http` (gRPC metadata: no body, no boundary)."""
    owns = tuple(o for o in own_addrs if o)
    subs = tuple(aliases)
    return [(k, MASKED_VALUE if k.lower() in VARIABLE_HEADERS else mask_text(v, owns, subs)) for k, v in headers]


# -- append times inside needle records --------------------------------------------------------

_TIMESTAMP = 8
_CHECKSUM = 4
_HEADER = 16


@dataclasses.dataclass(frozen=True, slots=True)
class ByteMask:
    """Byte ranges `[start, end)` of one bytes field of a response, counted over the field's
    bytes in all its messages joined (a stream cuts a file at its own boundaries)."""

    field: str
    ranges: tuple[tuple[int, int], ...]


def record_clock_ranges(content: bytes | memoryview, *, super_block: bool) -> list[tuple[int, int]]:
    """Where the append times are in a run of version 3 needle records (a `.dat` when
    `super_block`, else records from a record boundary); a record cut short is masked as far as
    it goes. Anything that does not read as records ends the walk."""
    pos = 0
    if super_block:
        if len(content) < 8 or content[0] != VERSION3:
            return []
        pos = 8 + int.from_bytes(content[6:8], "big")
    out: list[tuple[int, int]] = []
    end = len(content)
    while pos + _HEADER <= end:
        size = int.from_bytes(content[pos + 12:pos + 16], "big", signed=True)
        if size < 0:
            break
        ts = pos + _HEADER + size + _CHECKSUM
        if ts >= end:
            break
        out.append((ts, min(ts + _TIMESTAMP, end)))
        pos += actual_size(size, VERSION3)
    return out


def _one_record(blob: bytes) -> list[tuple[int, int]]:
    """A blob that is exactly one version 3 record (by its own header's size)."""
    if len(blob) < _HEADER:
        return []
    size = int.from_bytes(blob[12:16], "big", signed=True)
    if size < 0 or actual_size(size, VERSION3) != len(blob):
        return []
    ts = _HEADER + size + _CHECKSUM
    return [(ts, ts + _TIMESTAMP)]


def _zero(data: bytearray, ranges: Iterable[tuple[int, int]]) -> None:
    for start, end in ranges:
        start, end = max(0, start), min(len(data), end)
        if start < end:
            data[start:end] = bytes(end - start)


Ranges = Callable[[bytes], list[tuple[int, int]]]


def _mask_field(messages: Sequence[bytes], cls: type, field: str, ranges: Ranges | None,
                extra: Sequence[tuple[int, int]] = ()) -> tuple[bytes, ...] | None:
    """Zero `ranges(joined field bytes)` and `extra` across a stream's messages; None if a
    message does not decode."""
    decoded = []
    for m in messages:
        msg = cls()
        try:
            msg.ParseFromString(m)
        except DecodeError:
            return None
        decoded.append(msg)
    parts = [getattr(msg, field) for msg in decoded]
    joined = bytearray(b"".join(parts))
    _zero(joined, (ranges(bytes(joined)) if ranges is not None else []) + list(extra))
    out, pos = [], 0
    for msg, part in zip(decoded, parts):
        setattr(msg, field, bytes(joined[pos:pos + len(part)]))
        pos += len(part)
        out.append(msg.SerializeToString(deterministic=True))
    return tuple(out)


def _canonical_json(messages: Sequence[bytes]) -> tuple[bytes, ...] | None:
    """A copied `.vif`: its JSON with sorted keys and no spacing, in the first message."""
    decoded = []
    for m in messages:
        msg = vs.CopyFileResponse()
        try:
            msg.ParseFromString(m)
        except DecodeError:
            return None
        decoded.append(msg)
    try:
        doc = json.loads(b"".join(msg.file_content for msg in decoded))
    except ValueError:
        return None
    _mask_json_clocks(doc)
    for i, msg in enumerate(decoded):
        msg.file_content = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() if i == 0 else b""
    return tuple(msg.SerializeToString(deterministic=True) for msg in decoded)


# `.vif` keys holding clocks: when an EC volume was encoded, when a TTL volume expires.
VIF_CLOCK_KEYS = frozenset({"encodeTsNs", "expireAtSec"})


def _mask_json_clocks(doc: object) -> None:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in VIF_CLOCK_KEYS:
                doc[k] = MASKED_VALUE.decode()
            else:
                _mask_json_clocks(v)
    elif isinstance(doc, list):
        for v in doc:
            _mask_json_clocks(v)


# Methods whose answers hold needle records (so append times), and how to find them.
CLOCK_RECORD_METHODS = ("ReadNeedleBlob", "CopyFile", "VolumeIncrementalCopy")


def mask_grpc_messages(method_path: str, request: Sequence[bytes], messages: Sequence[bytes],
                       masks: Sequence[ByteMask] = ()) -> tuple[bytes, ...]:
    """A response's messages with the append times in its records zeroed (see the module
    docstring) and the caller's `masks` applied; unchanged when nothing applies."""
    name = method_path.rsplit("/", 1)[-1]
    out: tuple[bytes, ...] | None = tuple(messages)
    if name == "ReadNeedleBlob":
        out = _mask_field(messages, vs.ReadNeedleBlobResponse, "needle_blob", _one_record)
    elif name == "VolumeIncrementalCopy":
        out = _mask_field(messages, vs.VolumeIncrementalCopyResponse, "file_content",
                          lambda b: record_clock_ranges(b, super_block=False))
    elif name == "CopyFile" and request:
        req = vs.CopyFileRequest()
        try:
            req.ParseFromString(request[0])
        except DecodeError:
            req = vs.CopyFileRequest()
        if req.ext in (".dat", ".cpd"):
            out = _mask_field(messages, vs.CopyFileResponse, "file_content",
                              lambda b: record_clock_ranges(b, super_block=True))
        elif req.ext == ".vif":
            out = _canonical_json(messages)
    if out is None:
        out = tuple(messages)
    for mask in masks:
        cls = _RESPONSES.get(name)
        if cls is None:
            break
        out = _mask_field(out, cls, mask.field, None, mask.ranges) or out
    return out


_RESPONSES: dict[str, type] = {
    "VolumeEcShardRead": vs.VolumeEcShardReadResponse,
    "CopyFile": vs.CopyFileResponse,
    "ReadNeedleBlob": vs.ReadNeedleBlobResponse,
    "VolumeIncrementalCopy": vs.VolumeIncrementalCopyResponse,
}
