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

Anything else that differs is either a real difference or noise the noise model must learn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["VARIABLE_HEADERS", "HTTP_VARIABLE_FIELDS", "HTTP_VARIABLE_LINES", "GRPC_VARIABLE_FIELDS", "HEARTBEAT_VARIABLE_FIELDS", "HEARTBEAT_OMITTED_FIELDS",
           "MASKED_VALUE", "SELF",
           "BOUNDARY", "mask_http", "mask_headers", "mask_text", "boundary_of", "grpc_variable_fields"]

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
    "ReadVolumeFileStatus": ("idx_file_timestamp_seconds", "dat_file_timestamp_seconds"),
    "CopyFile": ("modified_ts_ns",),
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
