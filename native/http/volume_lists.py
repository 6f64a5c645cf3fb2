"""The volume lists of `/status` and `/ui/index.html` with another store's volumes merged in.

In mixed mode with volume owners one server's volumes are held by two sides, Go and native's
writer store (docs/volume-ownership.md); the master sees one server with all of them, and so must
whoever reads the status pages. The route's target (Go, or native's read-only view of Go's
files) answers as usual; `merge_status` and `merge_ui` then add the owned store's volumes to
that answer in the answer's own form: Go's JSON (`/status`: `Volumes` sorted by id, each entry
as native's own /status renders it, every other byte as the target wrote it) or the page's rows
(Go's template or native's page). A volume listed by both (a view that has not yet seen a move)
is listed once, as the owned store has it. Sans-IO on the answers; `store_volumes` reads a store
(blocking: every volume's stats).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

from native.http._gojson import Raw, Struct, marshal
from native.http._status import _volume
from native.http._ui import _human, volume_row

__all__ = ["ListedVolume", "store_volumes", "merge_status", "merge_ui"]


@dataclasses.dataclass(frozen=True, slots=True)
class ListedVolume:
    """One volume as the status pages list it."""

    id: int
    status: Struct  # its `/status` entry (Go's storage.VolumeInfo)
    remote: bool  # tiered: Go's page lists it under Remote Volumes, not Volumes
    go_row: bytes  # its row in Go's page
    native_row: bytes  # its row in native's page


def store_volumes(store: Any) -> list[ListedVolume]:
    """Every volume of `store` (disk ids in `-dir` order, as Go's), by id. Blocking."""
    out = []
    for disk_id, loc in enumerate(store.locations):
        for v in loc.volumes():
            s = v.stats()
            remote = getattr(v, "remote_storage", ("", ""))[0]
            out.append(ListedVolume(s.id, _volume(s, disk_id, loc.disk_type, remote), bool(remote),
                                    _go_row(s, loc.disk_type), _native_row(s, loc.disk_type, disk_id)))
    return sorted(out, key=lambda lv: lv.id)


# -- /status -------------------------------------------------------------------------------------


def _go_text(s: str) -> str:
    """A decoded JSON string as the Go byte string `marshal` takes (latin-1 text of its UTF-8)."""
    return s.encode("utf-8", "surrogatepass").decode("latin-1") if not s.isascii() else s


def _convert(v: Any) -> Any:
    if type(v) is str:
        return _go_text(v)
    if type(v) is list:
        return [_convert(x) for x in v]
    return v


def _go_object(pairs: list[tuple[str, Any]]) -> Struct:
    return Struct(*[(_go_text(k), _convert(v)) for k, v in pairs])


def _entry_id(entry: Any) -> int | None:
    if isinstance(entry, Struct):
        for f in entry.fields:
            if f[0] == "Id" and type(f[1]) is int:
                return f[1]
    return None


def merge_status(body: bytes, volumes: Sequence[ListedVolume]) -> bytes | None:
    """Go's `/status` JSON `body` with `volumes` in its `Volumes` (sorted by id, as Go sorts its
    own), indented when `body` is (`?pretty`); None when `body` is not such a document."""
    try:  # numbers as written (the float32 percentages keep Go's digits), objects in their order
        doc = json.loads(body, object_pairs_hook=_go_object, parse_float=lambda t: Raw(t.encode()))
    except ValueError:
        return None
    if not isinstance(doc, Struct):
        return None
    fields = list(doc.fields)
    at = next((i for i, f in enumerate(fields) if f[0] == "Volumes"), None)
    if at is None or not isinstance(fields[at][1], (list, type(None))):
        return None
    ours = {v.id for v in volumes}
    listed = [(_entry_id(e), e) for e in fields[at][1] or ()]
    if any(vid is None for vid, _ in listed):
        return None
    merged = sorted([(vid, e) for vid, e in listed if vid not in ours] + [(v.id, v.status) for v in volumes],
                    key=lambda t: t[0])
    fields[at] = ("Volumes", [e for _, e in merged] or None)
    return marshal(Struct(*fields), pretty=body.startswith(b"{\n"))


# -- /ui/index.html ------------------------------------------------------------------------------

_GO_INDENT, _GO_CELL = b" " * 20, b" " * 24
_GO_ROW = re.compile(rb"\n {20}<tr>\n {24}<td><code>(\d+)</code></td>\n.*?\n {20}</tr>\n {20}", re.S)
_NATIVE_ROW = re.compile(rb"<tr><td><code>(\d+)</code></td>[^\n]*</tr>")
# html/template's escaping of text (htmlEscaper)
_HTML = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "+": "&#43;", "\0": "\ufffd"}


def _html(s: str) -> bytes:
    text = s.encode("latin-1", "replace").decode("utf-8", "replace") if not s.isascii() else s
    return "".join(_HTML.get(c, c) for c in text).encode("utf-8")


def _go_row(s: Any, disk_type: str) -> bytes:
    """One iteration of Go's volume.html `{{ range .Volumes }}` block."""
    cells = [
        b"<code>%d</code>" % s.id, _html(s.collection), _html(disk_type), _human(s.content_size).encode(),
        b"%d" % s.file_count, b"%d / %s" % (s.delete_count, _human(s.deleted_bytes).encode()),
        _html(str(s.ttl)), b"true" if s.read_only else b"false", b"%d" % s.version,
    ]
    return (b"\n" + _GO_INDENT + b"<tr>\n" + b"".join(_GO_CELL + b"<td>" + c + b"</td>\n" for c in cells)
            + _GO_INDENT + b"</tr>\n" + _GO_INDENT)


def _native_row(s: Any, disk_type: str, disk_id: int) -> bytes:
    """A row of native's own page."""
    return volume_row(s, disk_type, disk_id).encode("utf-8")


def merge_ui(page: bytes, volumes: Sequence[ListedVolume]) -> bytes | None:
    """The status page `page` (Go's or native's) with `volumes` among the rows of its Volumes
    table, by id; None when the page does not have that table as expected. A tiered volume of
    `volumes` is not added (Go's page lists those in a table of their own)."""
    start = page.find(b"<h2>Volumes</h2>")
    body = page.find(b"<tbody>", start) + len(b"<tbody>")
    end = page.find(b"</tbody>", body)
    if start < 0 or body < len(b"<tbody>") or end < 0:
        return None
    go = b"<th>Version</th>" in page[start:body]
    head, tail = (b"\n" + _GO_INDENT, b"\n" + b" " * 16) if go else (b"\n", b"\n" + b" " * 16)
    segment = page[body:end]
    if not (segment.startswith(head) and segment.endswith(tail)) or len(segment) < len(head) + len(tail):
        return None
    middle = segment[len(head):len(segment) - len(tail)]
    pattern = _GO_ROW if go else _NATIVE_ROW
    rows = [(int(m.group(1)), m.group(0)) for m in pattern.finditer(middle)]
    if (b"" if go else b"\n").join(r for _, r in rows) != middle:
        return None
    ours = {v.id for v in volumes if not v.remote}
    merged = sorted([r for r in rows if r[0] not in ours]
                    + [(v.id, v.go_row if go else v.native_row) for v in volumes if not v.remote], key=lambda t: t[0])
    rows_text = (b"" if go else b"\n").join(r for _, r in merged)
    return page[:body] + head + rows_text + tail + page[end:]
