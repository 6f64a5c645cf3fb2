"""FetchAndWriteNeedle: copy a byte range of a remote object into a needle, here and on the
given replicas (Go's volume_grpc_remote.go, as the weed 4.48 binary answers it).

Order of checks, with Go's texts: admin whitelist, maintenance mode, `not found volume id N`,
the remote client (`get remote client: make remote storage client NAME: remote storage type T
not found`), the endpoint (`reject remote endpoint: ...`), the read (`read from remote
<location>: failed to download file <bucket><path>: <S3 error>`, or a short read), the
replica targets (`reject replica target: ...`), then the local write (`local write needle ...`)
and the replica uploads (`remote write needle ...`); the local error wins.

Endpoints and replicas follow the project's peer rule (`weedpy.serve.peers`): unless the
operator passed `-volume.allowUntrustedRemoteEndpoints`, the endpoint each remote type dials
(`weedpy.serve.remote_endpoints`: S3-compatible, azure, the gcs token exchange) must pass Go's
strict check (no loopback, private, link-local, metadata-service address) and the client
then dials only the address it checked (a host that re-resolves elsewhere is refused); a
replica must be a bare host:port that the master lists or that passes Go's peer check.

The S3-compatible types (s3, aliyun, b2, baidu, contabo, filebase, storj, tencent, wasabi) are
supported, through `native.s3`; azure and gcs answer an explicit "not implemented" error.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from weedpy.serve.peers import blocked_reason
from weedpy.serve.remote_endpoints import remote_conf_refusal
from native.grpc._common import check_admin, go_error, go_proto_text
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services, peer_policy
from native.storage import Needle, StorageError
from proto import remote_pb2
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context

if TYPE_CHECKING:
    from native.s3 import S3Options

__all__ = ["HANDLERS", "fetch_and_write_needle", "s3_options"]

_KNOWN_TYPES = ("s3", "aliyun", "b2", "baidu", "contabo", "filebase", "storj", "tencent", "wasabi", "azure", "gcs")


def s3_options(conf: remote_pb2.RemoteConf) -> tuple[str, S3Options] | None:
    """(endpoint, client options) for an S3-compatible RemoteConf (Go's s3CompatibleClientOptions),
    None for any other type. Credentials some providers read from the environment are read too."""
    from native.s3 import S3Options  # the S3 client (httpx) loads with the first remote fetch, not at start-up

    env = os.environ.get
    t = conf.type
    if t == "s3":
        anonymous = not conf.s3_access_key and not conf.s3_secret_key
        return conf.s3_endpoint, S3Options(conf.s3_endpoint, conf.s3_region, conf.s3_access_key, conf.s3_secret_key,
                                           conf.s3_force_path_style, anonymous, "SeaweedFS/4.48")
    table: dict[str, tuple[str, str, str, str, bool]] = {
        "aliyun": (conf.aliyun_endpoint, conf.aliyun_region, conf.aliyun_access_key or env("ALICLOUD_ACCESS_KEY_ID", ""),
                   conf.aliyun_secret_key or env("ALICLOUD_ACCESS_KEY_SECRET", ""), False),
        "b2": (conf.backblaze_endpoint, conf.backblaze_region, conf.backblaze_key_id, conf.backblaze_application_key, True),
        "baidu": (conf.baidu_endpoint, conf.baidu_region, conf.baidu_access_key or env("BDCLOUD_ACCESS_KEY", ""),
                  conf.baidu_secret_key or env("BDCLOUD_SECRET_KEY", ""), False),
        "contabo": (conf.contabo_endpoint, conf.contabo_region, conf.contabo_access_key or env("ACCESS_KEY", ""),
                    conf.contabo_secret_key or env("SECRET_KEY", ""), True),
        "filebase": (conf.filebase_endpoint, "us-east-1", conf.filebase_access_key or env("AWS_ACCESS_KEY_ID", ""),
                     conf.filebase_secret_key or env("AWS_SECRET_ACCESS_KEY", ""), True),
        "storj": (conf.storj_endpoint, "us-west-2", conf.storj_access_key or env("AWS_ACCESS_KEY_ID", ""),
                  conf.storj_secret_key or env("AWS_SECRET_ACCESS_KEY", ""), True),
        "tencent": (conf.tencent_endpoint, "us-west-2", conf.tencent_secret_id or env("COS_SECRETID", ""),
                    conf.tencent_secret_key or env("COS_SECRETKEY", ""), True),
        "wasabi": (conf.wasabi_endpoint, conf.wasabi_region, conf.wasabi_access_key, conf.wasabi_secret_key, True),
    }
    if t not in table:
        return None
    endpoint, region, access, secret, path_style = table[t]
    return endpoint, S3Options(endpoint, region, access, secret, path_style)


def _pinned_resolver(endpoint: str):
    """connect_to(host) -> the first resolved address that passes Go's strict check, re-checked
    at every connection (Go's guardedDialer: a DNS answer that changes cannot redirect it)."""

    from native.s3 import S3Error  # the S3 client (httpx) loads with the first remote fetch, not at start-up

    def connect_to(host: str) -> str:
        try:
            ips = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise S3Error("RequestError", f'resolve remote endpoint host "{host}": {exc}') from None
            ips = [ipaddress.ip_address(i[4][0].split("%", 1)[0]) for i in infos]
        first = None
        for ip in ips:
            reason = blocked_reason(endpoint, ip, allow_private=False)
            if reason is None:
                return str(ip)
            first = first or reason
        raise S3Error("RequestError", first or f'resolve remote endpoint host "{host}": no addresses')

    return connect_to


def _read_remote(opts: S3Options, pin: Any, loc: remote_pb2.RemoteStorageLocation, offset: int, size: int) -> bytes:
    from native.s3 import S3Client, S3Error  # the S3 client (httpx) loads with the first remote fetch, not at start-up

    client = S3Client(opts, connect_to=pin)
    try:
        if size <= 0:
            return b""
        try:
            data = client.get_range(loc.bucket, loc.path[1:], offset, size)
        except S3Error as exc:
            raise StorageError(f"failed to download file {loc.bucket}{loc.path}: {exc}") from None
        if len(data) != size:
            raise StorageError(f"short read from {loc.bucket}{loc.path} at offset {offset}: got {len(data)} bytes, want {size}")
        return data
    finally:
        client.close()


async def fetch_and_write_needle(
    svc: Services, req: vs.FetchAndWriteNeedleRequest, ctx: Context,
) -> vs.FetchAndWriteNeedleResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    store = svc.store
    v = store.find_volume(req.volume_id)
    if v is None:
        raise go_error(f"not found volume id {req.volume_id}")
    conf = req.remote_conf
    policy = peer_policy(svc.ctx.cfg)  # a fresh one per call: replicas are checked against a new master listing
    if policy is not None:  # Go checks the credentials and endpoint before it builds a client
        refusal = await remote_conf_refusal(conf)
        if refusal is not None:
            raise go_error(refusal)
    found = s3_options(conf)
    if found is None:
        detail = (f"remote storage type {conf.type} is not implemented in weedpy" if conf.type in _KNOWN_TYPES
                  else f"remote storage type {conf.type} not found")
        raise go_error(f"get remote client: make remote storage client {conf.name}: {detail}")
    endpoint, opts = found
    pin = _pinned_resolver(endpoint) if policy is not None and endpoint else None
    loc = req.remote_location
    try:
        data = await trio.to_thread.run_sync(_read_remote, opts, pin, loc, req.offset, req.size)
    except StorageError as exc:
        raise go_error(f"read from remote {go_proto_text(loc)}: {exc}") from None
    if len(data) != req.size:
        raise go_error(f"read from remote {go_proto_text(loc)}: got {len(data)} bytes, want {req.size}")
    if policy is not None:
        for replica in req.replicas:
            problem = await policy.peer_reason(replica.url)
            if problem is not None:
                raise go_error(f"reject replica target: {problem}")
    n = Needle.create(req.needle_id, req.cookie, data, last_modified=int(time.time()))
    resp = vs.FetchAndWriteNeedleResponse()
    local_error: str | None = None
    replica_errors: list[str | None] = [None] * len(req.replicas)

    async def write_local() -> None:
        nonlocal local_error
        try:
            await trio.to_thread.run_sync(lambda: store.write_needle(v.id, n, check_cookie=True))
        except (StorageError, OSError) as exc:
            local_error = f"local write needle {req.needle_id} size {req.size}: {exc}"
        else:
            resp.e_tag = n.etag

    import httpx  # the HTTP client loads with the first remote fetch, not at start-up

    async def write_replica(i: int, url: str) -> None:
        fid = f"{v.id},{req.needle_id:x}{req.cookie:08x}"
        headers = {"Authorization": f"BEARER {req.auth}"} if req.auth else {}
        try:
            async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
                r = await client.post(f"http://{url}/{fid}?type=replicate", headers=headers,
                                      files={"file": ("", data, "application/octet-stream")})
            if r.status_code >= 300:
                raise httpx.HTTPError(f"{r.status_code}: {r.text.strip()}")
        except httpx.HTTPError as exc:
            replica_errors[i] = f"remote write needle {req.needle_id} size {req.size}: {exc}"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_local)
        for i, replica in enumerate(req.replicas):
            nursery.start_soon(write_replica, i, replica.url)
    first = local_error or next((e for e in replica_errors if e), None)
    if first is not None:
        raise go_error(first)
    return resp


HANDLERS: Mapping[str, Handler] = {"FetchAndWriteNeedle": fetch_and_write_needle}
