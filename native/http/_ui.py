"""`/ui/index.html`: the status page (our own template, with Go's title, links and tables)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from native.offload import control_thread
from weedpy.http1 import GoHeader, GoResponse

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = ["ui_page", "render_ui", "volume_row"]

_START = time.monotonic()


async def ui_page(app: "NativeHttp", h: GoHeader) -> GoResponse:
    """The page is built in a control thread: every volume's stats and statfs, none on the event
    loop (native/offload.py)."""
    return GoResponse(200, h, (await control_thread(render_ui, app)).encode("utf-8"))


def _human(n: int) -> str:
    """Go's util.BytesToHumanReadable: 1024-based, two decimals."""
    unit = 1024
    if n < unit:
        return f"{n} B"
    div, exp = unit, 0
    m = n // unit
    while m >= unit:
        div *= unit
        exp += 1
        m //= unit
    return f"{n / div:.2f} {'KMGTPE'[exp]}iB"


def _uptime() -> str:
    secs = int(time.monotonic() - _START)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"


def volume_row(s, disk_type: str, disk_id: int) -> str:
    """One row of the Volumes table: a volume's stats (native.storage VolumeStats)."""
    import html  # with its entity tables: only for the status page (start-up time)

    e = html.escape
    return (f"<tr><td><code>{s.id}</code></td><td>{e(s.collection)}</td><td>{e(disk_type or 'hdd')}</td>"
            f"<td>{_human(s.content_size)}</td><td>{s.file_count}</td><td>{s.delete_count} / {_human(s.deleted_bytes)}</td>"
            f"<td>{e(str(s.ttl))}</td><td>{'yes' if s.read_only else ''}</td><td>{disk_id}</td></tr>")


def render_ui(app: "NativeHttp") -> str:
    ctx = app.ctx
    import html  # with its entity tables: only for the status page (start-up time)

    e = html.escape
    version = ctx.full_version or ctx.version
    masters = ", ".join(e(m) for m in ctx.cfg.masters)
    disks = []
    volumes = []
    for disk_id, loc in enumerate(ctx.store.locations):
        try:
            st = loc.status()
        except OSError:
            continue
        pct = st.used / st.all * 100 if st.all else 0.0
        disks.append(
            f"<tr><td>{e(os.path.abspath(loc.directory))}</td><td>{e(loc.disk_type or 'hdd')}</td>"
            f"<td>{_human(st.all)}</td><td>{_human(st.free)}</td><td>{pct:.2f}%</td></tr>"
        )
        for v in loc.volumes():
            s = v.stats()
            volumes.append((s.id, volume_row(s, loc.disk_type, disk_id)))
    rows = "\n".join(r for _, r in sorted(volumes))
    return f"""<!DOCTYPE html>
<html>

<head>
    <title>SeaweedFS {e(version)}</title>
    <link rel="stylesheet" href="/seaweedfsstatic/bootstrap/3.3.1/css/bootstrap.min.css">
    <script type="text/javascript" src="/seaweedfsstatic/javascript/jquery-3.6.0.min.js"></script>
    <script type="text/javascript"
        src="/seaweedfsstatic/javascript/jquery-sparklines/2.1.2/jquery.sparkline.min.js"></script>
    <style>
        #jumbotron {{ margin-top: 10px; }}
        .table-condensed td, .table-condensed th {{ padding: 2px 6px; }}
        td code {{ white-space: nowrap; }}
    </style>
</head>

<body>
    <div class="container">
        <div class="page-header">
            <h1><a href="https://github.com/seaweedfs/seaweedfs"><img src="/seaweedfsstatic/seaweed50x50.png"></img></a>
                SeaweedFS <small>{e(version)}</small></h1>
        </div>
        <div class="row">
            <div class="col-sm-6">
                <h2>Disk Stats</h2>
                <table class="table table-striped">
                    <thead><tr><th>Path</th><th>Disk</th><th>Total</th><th>Free</th><th>Usage</th></tr></thead>
                    <tbody>
{chr(10).join(disks)}
                    </tbody>
                </table>
            </div>
            <div class="col-sm-6">
                <h2>System Stats</h2>
                <table class="table table-condensed table-striped">
                    <tr><th>Masters</th><td>{masters}</td></tr>
                    <tr><th>Up Time</th><td>{_uptime()}</td></tr>
                </table>
            </div>
        </div>
        <div class="row">
            <h2>Volumes</h2>
            <table class="table table-striped">
                <thead><tr><th>Id</th><th>Collection</th><th>Disk</th><th>Data Size</th><th>Files</th><th>Trash</th><th>TTL</th><th>ReadOnly</th><th>Disk Id</th></tr></thead>
                <tbody>
{rows}
                </tbody>
            </table>
        </div>
        <div class="row">
            <h2>Remote Volumes</h2>
            <table class="table table-striped">
                <thead><tr><th>Id</th><th>Collection</th><th>Size</th><th>Files</th><th>Trash</th><th>Remote</th><th>Key</th></tr></thead>
                <tbody>
                </tbody>
            </table>
        </div>
        <div class="row">
            <h2>Erasure Coding Shards</h2>
            <table class="table table-striped">
                <thead><tr><th>Id</th><th>Collection</th><th>Total Size</th><th>Shard Details</th><th>CreatedAt</th></tr></thead>
                <tbody>
                </tbody>
            </table>
        </div>
    </div>
</body>

</html>
"""
