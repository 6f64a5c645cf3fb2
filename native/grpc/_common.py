"""Pieces the native gRPC handlers share: Go-shaped errors, the admin whitelist check, the
disk / memory status messages (filled the way Go's weed/stats fills them), and whole writes of
received file content."""

from __future__ import annotations

import functools
import os
import struct
import threading

from weedpy.serve.guard import Guard
from proto import volume_server_pb2 as vs
from weedpy.addresses import peer_host
from weedpy.grpc import Context, GrpcError, Status

__all__ = [
    "go_error",
    "negative_offset",
    "check_admin",
    "disk_status",
    "memory_status",
    "float32",
    "go_proto_text",
    "write_all",
]


def go_error(message: str, status: Status = Status.UNKNOWN) -> GrpcError:
    """An error as a Go handler returns it: fmt.Errorf(...) travels as codes.Unknown."""
    return GrpcError(status, message)


def negative_offset(path: str) -> str:
    """What Go's os.File.ReadAt says for a negative offset (handlers pass it on as is)."""
    return f"readat {path}: negative offset"


def check_admin(guard: Guard, ctx: Context) -> None:
    """Go's checkGrpcAdminAuth: destructive rpcs only from whitelisted peers (all, if none listed)."""
    if not guard.restricts:
        return
    host = peer_host(ctx.peer)
    if not guard.allows(host):
        raise GrpcError(Status.PERMISSION_DENIED, f"not authorized: {host}")


def float32(value: float) -> float:
    """Round to float32 as Go's `float32(x)` does."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def disk_status(directory: str, disk_type: str | None = None) -> vs.DiskStatus:
    """stats.NewDiskStatus(abs dir): statfs totals, free for unprivileged users, float32 percents."""
    d = vs.DiskStatus(dir=os.path.abspath(directory))
    try:
        st = os.statvfs(d.dir)
    except OSError:
        return d
    total = st.f_blocks * st.f_bsize
    free = st.f_bavail * st.f_bsize
    d.all, d.free, d.used = total, free, total - free
    if total:
        d.percent_free = free / total * 100
        d.percent_used = (total - free) / total * 100
    if disk_type is not None:
        d.disk_type = disk_type
    return d


_PAGE = os.sysconf("SC_PAGE_SIZE")


@functools.cache
def _statm_fd() -> int:
    """/proc/self/statm, opened once: re-read with pread at offset 0 (no open per call)."""
    return os.open("/proc/self/statm", os.O_RDONLY)


def _rss() -> int:
    try:
        return int(os.pread(_statm_fd(), 128, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def memory_status() -> vs.MemStatus:
    """Go's stats.MemStat, in Python terms: threads for goroutines, the process RSS for its heap,
    and the machine's RAM as sysinfo reports it (Go reads totalram/freeram; glibc's
    _SC_PHYS_PAGES/_SC_AVPHYS_PAGES are the same two figures)."""
    m = vs.MemStatus(goroutines=threading.active_count())
    try:
        total = os.sysconf("SC_PHYS_PAGES") * _PAGE
        free = os.sysconf("SC_AVPHYS_PAGES") * _PAGE
    except (OSError, ValueError):
        total = free = 0
    m.all, m.free, m.used = total, free, max(0, total - free)
    rss = _rss()
    m.self, m.heap = rss, rss
    return m


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_proto_text(msg) -> str:
    """A request as Go's `%v` prints it (prototext, compact): `volume_id:99  replication:"001"`.

    The 4.48 binary's prototext puts two spaces between fields (protobuf-go's detrand picks one
    extra space per binary); only set scalar fields appear, in field-number order.
    """
    parts = []
    for field, value in msg.ListFields():
        if field.type == field.TYPE_MESSAGE:
            parts.append(f"{field.name}:{{{go_proto_text(value)}}}")
        elif field.type == field.TYPE_STRING:
            parts.append(f"{field.name}:{_go_quote(value)}")
        elif field.type == field.TYPE_BOOL:
            parts.append(f"{field.name}:{'true' if value else 'false'}")
        else:
            parts.append(f"{field.name}:{value}")
    return "  ".join(parts)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a short write is not an error)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
