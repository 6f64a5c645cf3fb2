"""Replication fan-out (weed/topology/store_replicate.go): who the other replicas are, and the
multipart POST / DELETE each of them receives with `type=replicate`."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import trio

from native.http._gourl import encode_values, query_escape
from native.http._mediatype import format_media_type
from native.http._range import new_boundary
from native.http._upstream import UpstreamError, fetch

if TYPE_CHECKING:
    from native.http.app import NativeHttp

__all__ = [
    "ReplicationError", "writable_remote_replicas", "replicate_write", "replicate_delete", "distributed",
    "replication_failed",
]


class ReplicationError(Exception):
    pass


async def writable_remote_replicas(app: "NativeHttp", vid: int, vol) -> list[str]:
    """GetWritableRemoteReplications: the other replicas' urls (raises ReplicationError)."""
    if vol is not None and vol.replica_placement.copy_count == 1:
        return []
    try:
        locations = await app.ctx.master.lookup_volume(vid)
    except LookupError:
        locations = []
    except Exception as exc:  # transport failures talking to the master
        raise ReplicationError(f"replicating lookup failed for {vid}: {exc}") from None
    self_url = app.ctx.self_url
    remotes = [loc.url for loc in locations if loc.url != self_url]
    if vol is not None:
        copies = vol.replica_placement.copy_count
        if len(locations) < copies:
            app.ctx.master.invalidate(vid)
            raise ReplicationError(
                f"replicating operations [{len(locations)}] is less than volume {vid} replication copy count [{copies}]"
            )
    return remotes


async def distributed(urls: list[str], op) -> str | None:
    """DistributedOperation: run `op(url)` on all in parallel; the first failure wins ("[url]: err")."""
    if not urls:
        return None
    first: list[str] = []
    async with trio.open_nursery() as nursery:
        async def run(u: str) -> None:
            err = await op(u)
            if err is not None and not first:
                first.append(f"[{u}]: {err}")
                nursery.cancel_scope.cancel()
        for u in urls:
            nursery.start_soon(run, u)
    return first[0] if first else None


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicaWrite:
    path: str  # escaped request path
    name: str
    mime: str
    data: bytes
    compressed: bool
    ttl: str
    fsync: bool
    last_modified: int
    chunk_manifest: bool
    pairs: dict[str, str]
    jwt: str
    content_md5: str


def _multipart(w: ReplicaWrite, url: str, mimes) -> tuple[bytes, str]:
    boundary = new_boundary()
    mime = w.mime
    if mime == "":
        dot = w.name.rfind(".")
        slash = w.name.rfind("/")
        ext = w.name[dot:].lower() if dot > slash else ""
        mime = mimes.type_by_extension(ext) if ext else ""
    headers = {
        "Content-Disposition": format_media_type("form-data", {"name": "file", "filename": w.name}),
        "Idempotency-Key": url,
    }
    if mime:
        headers["Content-Type"] = mime
    if w.compressed:
        headers["Content-Encoding"] = "gzip"
    if w.content_md5:
        headers["Content-Md5"] = w.content_md5
    head = f"--{boundary}\r\n" + "".join(f"{k}: {headers[k]}\r\n" for k in sorted(headers)) + "\r\n"
    body = head.encode("latin-1") + w.data + f"\r\n--{boundary}--\r\n".encode()
    return body, "multipart/form-data; boundary=" + boundary


def replication_failed(metrics, operation: str, err: str) -> None:
    """A failed fan-out, counted as Go counts it: the operation's failure (writes here; deletes
    count theirs around the whole operation) and the reason, Go's classifyReplicationError."""
    if operation == "write":
        metrics.family("replication_operations_total").labels(operation, "failure").inc()
    lowered = err.lower()
    if "deadline exceeded" in lowered or "timed out" in lowered or "timeout" in lowered:
        reason = "timeout"
    elif "context canceled" in lowered:
        reason = "context_cancelled"
    elif "connection refused" in lowered:
        reason = "connection_refused"
    else:
        reason = "server_error"
    metrics.family("replication_failures_total").labels(operation, reason).inc()


async def replicate_write(app: "NativeHttp", remotes: list[str], w: ReplicaWrite) -> str | None:
    q: dict[str, list[str]] = {"type": ["replicate"], "ttl": [w.ttl]}
    if w.fsync:
        q["fsync"] = ["true"]
    if w.last_modified > 0:
        q["ts"] = [str(w.last_modified)]
    if w.chunk_manifest:
        q["cm"] = ["true"]
    target = w.path + "?" + encode_values(q)

    async def one(host: str) -> str | None:
        url = f"{app.ctx.tls.http_scheme}://{host}{target}"
        body, ctype = _multipart(w, url, app.mimes)
        headers = [("Content-Type", ctype), ("User-Agent", "Go-http-client/1.1"), ("Accept-Encoding", "gzip")]
        for k, v in w.pairs.items():
            headers.append(("Seaweed-" + k, v))
        if w.jwt:
            headers.append(("Authorization", "Bearer " + w.jwt))
        try:
            status, _, resp = await fetch(app.ctx.http_pool, host, "POST", target, headers, body)
        except UpstreamError as exc:
            return f"upload {w.name} {len(w.data)} bytes to {url}: Post \"{url}\": {exc}"
        if status == 204:
            return None
        try:
            doc = json.loads(resp) if resp else None
        except ValueError as exc:
            return f"unmarshal {url}: {exc}"
        if not isinstance(doc, dict):
            return f"unmarshal {url}: json: cannot unmarshal into Go value of type operation.UploadResult"
        err = doc.get("error")
        if isinstance(err, str) and err:
            return f"unmarshalled error {url}: {err}"
        return None

    return await distributed(remotes, one)


async def replicate_delete(app: "NativeHttp", remotes: list[str], path: str, jwt: str) -> str | None:
    async def one(host: str) -> str | None:
        headers = [("User-Agent", "Go-http-client/1.1"), ("Accept-Encoding", "gzip")]
        if jwt:
            headers.append(("Authorization", "Bearer " + jwt))
        try:
            status, _, body = await fetch(app.ctx.http_pool, host, "DELETE", path + "?type=replicate", headers)
        except UpstreamError as exc:
            return f"Delete \"{app.ctx.tls.http_scheme}://{host}{path}?type=replicate\": {exc}"
        if status in (404, 204, 202, 200):
            return None
        try:
            doc = json.loads(body)
            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                return doc["error"]
        except ValueError:
            pass
        return body.decode("latin-1")

    return await distributed(remotes, one)


_ = query_escape
