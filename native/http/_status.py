"""The admin endpoints Go serves next to the store handler: /status and /healthz (/readyz).

/healthz and /readyz: 200 once the master connection is up and every volume is loaded; 503
before, once stopping, and after VolumeServerLeave (Go: the port only opens after the volumes
loaded and the master answered, and 503 when stopping or not heartbeating).
`/stats/counter|memory|disk` are commented out in Go 4.48, so they reach the read handler there
and here alike (400, or 401 under a read JWT).

/status is Go's map of DiskStatuses (protobuf json tags, omitempty, float32 percentages),
Version and Volumes (storage.VolumeInfo in declaration order), through writeJson (so `?pretty`
indents and `callback` is ignored).
"""

from __future__ import annotations

import os
import struct
from decimal import Decimal
from typing import TYPE_CHECKING

from native.http._common import empty, json_response
from native.http._gojson import Raw, Struct
from native.http._request import GoRequest
from native.offload import control_thread
from weedpy.http1 import GoHeader, GoResponse

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["status", "healthz", "go_float32"]

_F = struct.Struct("<f")


def go_float32(x: float) -> str:
    """encoding/json of a float32: the shortest digits that round-trip as float32, fixed notation
    inside [1e-6, 1e21), else Go's exponent form."""
    f = _F.unpack(_F.pack(x))[0]
    if f == 0:
        return "0"
    for prec in range(1, 10):
        text = f"{f:.{prec - 1}e}"
        if _F.unpack(_F.pack(float(text)))[0] == f:
            break
    d = Decimal(text)
    if 1e-6 <= abs(f) < 1e21:
        return format(d, "f")
    mant, exp = text.split("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    e = int(exp)
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e) if e < 0 else f'{e:02d}'}"


def _replica(rp) -> Struct:
    return Struct(("node", rp.same_rack, True), ("rack", rp.diff_rack, True), ("dc", rp.diff_data_center, True))


def _volume(v, disk_id: int, disk_type: str, remote_storage_name: str = "") -> Struct:
    return Struct(
        ("Collection", v.collection),
        ("DiskType", disk_type),
        ("RemoteStorageName", remote_storage_name),
        ("ReplicaPlacement", _replica(v.replica_placement)),
        ("Ttl", Struct(("Count", v.ttl.count), ("Unit", v.ttl.unit))),
        ("Size", v.content_size),
        ("DeletedByteCount", v.deleted_bytes),
        ("ModifiedAtSecond", v.modified_at_second),
        ("Id", v.id),
        ("DiskId", disk_id),
        ("CompactRevision", v.compaction_revision),
        ("FileCount", v.file_count),
        ("DeleteCount", v.delete_count),
        ("Version", v.version),
        ("ReadOnly", v.read_only),
        ("ReadOnlyCanDelete", bool(getattr(v.read_only_reasons, "no_write_can_delete", False))),
    )


async def status(app: "NativeHttp", req: GoRequest, h: GoHeader) -> GoResponse:
    """Built in a control thread (native/offload.py): statfs per disk and every volume's stats,
    which in a worker process may wait for a volume the leader just replaced to reopen."""
    return json_response(h, req, 200, await control_thread(_status_doc, app))


def _status_doc(app: "NativeHttp") -> dict:
    store = app.ctx.store
    disks = []
    for loc in store.locations:
        ds = loc.status()
        disks.append(Struct(
            ("dir", os.path.abspath(ds.dir), True), ("all", ds.all, True), ("used", ds.used, True),
            ("free", ds.free, True), ("percent_free", Raw(go_float32(ds.percent_free).encode()) if ds.percent_free else 0, True),
            ("percent_used", Raw(go_float32(ds.percent_used).encode()) if ds.percent_used else 0, True),
            ("disk_type", ds.disk_type, True),
        ))
    volumes = []
    for disk_id, loc in enumerate(store.locations):
        for v in loc.volumes():
            remote = getattr(v, "remote_storage", ("", ""))[0]  # a tiered volume's backend
            volumes.append((v.id, _volume(v.stats(), disk_id, loc.disk_type, remote)))
    volumes.sort(key=lambda t: t[0])
    doc = {
        "DiskStatuses": disks,
        "Version": app.ctx.full_version or app.ctx.version,
        "Volumes": [v for _, v in volumes] if volumes else None,
    }
    return doc


def healthz(app: "NativeHttp", h: GoHeader) -> GoResponse:
    st = app.ctx.state
    ok = st.master_connected and not st.stopping and not st.heartbeat_stopped
    loading = st.volumes_loading or getattr(app.ctx.store, "loading", False)  # native/loading.py
    return empty(h, 200 if ok and not loading else 503)
