"""Which remote object-store endpoints FetchAndWriteNeedle may dial: Go 4.48's secure default.

Go (volume_grpc_remote.go) guards the endpoint each remote type really dials: the S3-compatible
types' own `*_endpoint` field (all but `s3` even when empty: the plain `s3` type then goes to
AWS), azure's endpoint when set, and the token exchange URL of inline gcs credentials (Google's
when the credentials name none). The endpoint is parsed as Go's url.Parse does, so a missing
scheme is refused with Go's words, then its host must pass the strict address check of
`weedpy.serve.peers` (no loopback, link-local, metadata, private or CGNAT address).

Native mode applies this before building a client; the proxy-mode gateway applies it for its Go
backend, which runs with `-volume.allowUntrustedRemoteEndpoints` and so checks nothing itself.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from proto import remote_pb2
from weedpy.serve.peers import endpoint_reason

__all__ = ["remote_endpoint_reason", "remote_conf_refusal", "guarded_endpoint"]

_S3_COMPATIBLE = {
    "s3": "s3_endpoint", "aliyun": "aliyun_endpoint", "b2": "backblaze_endpoint", "baidu": "baidu_endpoint",
    "contabo": "contabo_endpoint", "filebase": "filebase_endpoint", "storj": "storj_endpoint",
    "tencent": "tencent_endpoint", "wasabi": "wasabi_endpoint",
}
_GCS_TOKEN_URL = "https://oauth2.googleapis.com/token"
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")


def _go_url_problem(endpoint: str) -> tuple[str, str | None]:
    """(scheme, parse error) as Go's url.Parse finds them: a scheme is letters first, then
    letters, digits, `+-.`, up to a colon; without one, a colon in the first path segment fails."""
    rest = endpoint.split("#", 1)[0]
    scheme = ""
    for i, c in enumerate(rest):
        if c == ":":
            if i == 0:
                return "", "missing protocol scheme"
            scheme, rest = rest[:i], rest[i + 1:]
            break
        if c not in _SCHEME_CHARS or (i == 0 and not c.isalpha()):
            break
    path = rest.split("?", 1)[0]
    if not scheme and not path.startswith("/") and ":" in path.split("/", 1)[0]:
        return "", "first path segment in URL cannot contain colon"
    return scheme, None


async def remote_endpoint_reason(endpoint: str) -> str | None:
    """Go's validateRemoteEndpoint: why this endpoint must not be dialled, or None."""
    if not endpoint.strip():
        return "remote endpoint is empty"
    scheme, problem = _go_url_problem(endpoint)
    if problem is not None:
        return f'parse remote endpoint "{endpoint}": parse "{endpoint}": {problem}'
    if scheme.lower() not in ("http", "https"):
        return f'remote endpoint "{endpoint}" must use http or https, got "{scheme}"'
    try:
        host = urlsplit(endpoint).hostname
    except ValueError:
        host = None
    if not host:
        return f'remote endpoint "{endpoint}" has no host'
    return await endpoint_reason(endpoint, host, allow_private=False)


def _gcs_token_url(creds: str) -> tuple[str | None, str | None]:
    """(token URL, credentials problem) of caller-supplied gcs credentials."""
    if not creds.lstrip().startswith("{"):
        return None, "gcs credentials must be inline JSON"
    try:
        doc = json.loads(creds)
    except ValueError as exc:
        return None, f"parse gcs credentials: {exc}"
    if not isinstance(doc, dict):
        return None, "parse gcs credentials: not a JSON object"
    token_uri = doc.get("token_uri")
    return (token_uri if isinstance(token_uri, str) and token_uri else _GCS_TOKEN_URL), None


def guarded_endpoint(conf: remote_pb2.RemoteConf) -> str | None:
    """The endpoint Go checks for this remote type, None when it checks none."""
    field = _S3_COMPATIBLE.get(conf.type)
    if field is not None:
        endpoint = getattr(conf, field)
        return None if conf.type == "s3" and not endpoint else endpoint
    if conf.type == "azure" and conf.azure_endpoint:
        return conf.azure_endpoint
    if conf.type == "gcs" and conf.gcs_google_application_credentials:
        return _gcs_token_url(conf.gcs_google_application_credentials)[0]
    return None


async def remote_conf_refusal(conf: remote_pb2.RemoteConf) -> str | None:
    """Go's refusal of a FetchAndWriteNeedle remote conf (its full message), or None."""
    if conf.type == "gcs" and conf.gcs_google_application_credentials:
        _, problem = _gcs_token_url(conf.gcs_google_application_credentials)
        if problem is not None:
            return f"reject remote credentials: {problem}"
    endpoint = guarded_endpoint(conf)
    if endpoint is None:
        return None
    reason = await remote_endpoint_reason(endpoint)
    return None if reason is None else f"reject remote endpoint: {reason}"
