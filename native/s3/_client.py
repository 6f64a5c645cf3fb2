"""A small blocking S3 client on httpx: the calls SeaweedFS's tiering and remote fetches make.

Why not boto3: five calls (HEAD, ranged GET, PUT, multipart upload, DELETE) do not justify a
dependency of tens of megabytes with a slow import, and tiering must pin the address it
validated (`connect_to`: a resolved, checked IP dialled with the original Host header and SNI),
which botocore does not let a caller do. Signing is `_sigv4` (sans-IO).

Blocking: run it in worker threads. Errors are `S3Error`, worded as aws-sdk-go v1 words them
(`NoSuchKey: The specified key does not exist.\\n\\tstatus code: 404, request id: ...`), since
Go's messages embed them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx

from native.s3._sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, Credentials, sign_headers, uri_encode

__all__ = ["S3Client", "S3Error", "S3Options"]

_CHUNK = 1 << 20


class S3Error(Exception):
    """A failed S3 call; `code` is the S3 error code ("NoSuchKey", "NotFound", "RequestError")."""

    def __init__(self, code: str, message: str, status: int = 0, request_id: str = "", host_id: str = "") -> None:
        self.code, self.message, self.status, self.request_id = code, message, status, request_id
        text = f"{code}: {message}"
        if status:
            text += f"\n\tstatus code: {status}, request id: {request_id}"
            if host_id:  # aws-sdk-go prints an empty one too; a trailing space breaks gRPC headers
                text += f", host id: {host_id}"
        super().__init__(text)


@dataclasses.dataclass(frozen=True, slots=True)
class S3Options:
    endpoint: str = ""  # empty: AWS for the region
    region: str = ""
    access_key: str = ""
    secret_key: str = ""
    force_path_style: bool = True
    anonymous: bool = False  # no credentials: unsigned requests (public buckets)
    user_agent: str = ""
    timeout: float = 60.0


class S3Client:
    def __init__(self, opts: S3Options, *, connect_to: Callable[[str], str] | None = None) -> None:
        """`connect_to(host) -> ip` pins each request to an address the caller checked."""
        self.opts = opts
        endpoint = opts.endpoint or (f"https://s3.{opts.region}.amazonaws.com" if opts.region else "")
        if endpoint and "://" not in endpoint:
            endpoint = "https://" + endpoint
        self._endpoint = urlsplit(endpoint) if endpoint else None
        self._connect_to = connect_to
        self._http = httpx.Client(timeout=httpx.Timeout(opts.timeout), follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    # plumbing ------------------------------------------------------------------------------

    def _target(self, bucket: str, key: str) -> tuple[str, str, str]:
        """(scheme, host[:port], decoded path) of an object."""
        if not self.opts.region:
            raise S3Error("MissingRegion", "could not find region configuration")
        if self._endpoint is None or not self._endpoint.hostname:
            raise S3Error("InvalidEndpoint", "no endpoint for the region")
        ep = self._endpoint
        netloc = ep.netloc.rpartition("@")[2]
        base = ep.path.rstrip("/")
        key_path = "/" + key if key else ""
        if self.opts.force_path_style or not bucket:
            path = f"{base}/{bucket}{key_path}" if bucket else f"{base}/"
            return ep.scheme, netloc, path
        return ep.scheme, f"{bucket}.{netloc}", f"{base}{key_path or '/'}"

    def _request(self, method: str, bucket: str, key: str, *, query: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, content: bytes | Iterator[bytes] | None = None,
                 payload_hash: str = EMPTY_SHA256, stream: bool = False) -> httpx.Response:
        scheme, host, path = self._target(bucket, key)
        query = query or {}
        hdrs = dict(headers or {})
        if self.opts.user_agent:
            hdrs["User-Agent"] = self.opts.user_agent
        if not self.opts.anonymous:
            creds = Credentials(self.opts.access_key, self.opts.secret_key)
            hdrs = sign_headers(method=method, host=host, path=path, query=query, headers=hdrs,
                                payload_hash=payload_hash, credentials=creds, region=self.opts.region,
                                now=datetime.datetime.now(datetime.timezone.utc))
        else:
            hdrs["host"] = host
        dial_host = host
        extensions = {}
        if self._connect_to is not None:
            hostname = urlsplit(f"//{host}").hostname or host
            ip = self._connect_to(hostname)
            port = urlsplit(f"//{host}").port
            dial_host = (f"[{ip}]" if ":" in ip else ip) + (f":{port}" if port else "")
            if scheme == "https":
                extensions["sni_hostname"] = hostname
        url = httpx.URL(f"{scheme}://{dial_host}{_quote_path(path)}", params=query or None)
        req = self._http.build_request(method, url, headers=hdrs, content=content, extensions=extensions)
        try:
            resp = self._http.send(req, stream=stream)
        except httpx.HTTPError as exc:
            raise S3Error("RequestError", f"send request failed\ncaused by: {exc}") from None
        if resp.status_code >= 300:
            body = resp.read() if method != "HEAD" else b""
            resp.close()
            raise _error_of(resp, body)
        return resp

    # calls ---------------------------------------------------------------------------------

    def head_object(self, bucket: str, key: str) -> int:
        """The object's size."""
        resp = self._request("HEAD", bucket, key)
        return int(resp.headers.get("content-length", "0"))

    def get_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of an object (fewer at its end)."""
        resp = self._request("GET", bucket, key, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        return resp.content

    def iter_range(self, bucket: str, key: str, offset: int, length: int) -> Iterator[bytes]:
        """The same bytes, streamed in chunks of about 1 MiB."""
        resp = self._request("GET", bucket, key, headers={"Range": f"bytes={offset}-{offset + length - 1}"}, stream=True)
        try:
            yield from resp.iter_bytes(_CHUNK)
        except httpx.HTTPError as exc:
            raise S3Error("RequestError", f"read response body failed\ncaused by: {exc}") from None
        finally:
            resp.close()

    def put_object(self, bucket: str, key: str, body: bytes, *, storage_class: str = "") -> str:
        headers = {"Content-Length": str(len(body))}
        if storage_class:
            headers["x-amz-storage-class"] = storage_class
        resp = self._request("PUT", bucket, key, headers=headers, content=body,
                             payload_hash=hashlib.sha256(body).hexdigest())
        return resp.headers.get("etag", "")

    def put_stream(self, bucket: str, key: str, chunks: Iterator[bytes], length: int, *,
                   storage_class: str = "") -> str:
        """PUT of `length` bytes produced by `chunks` (unsigned payload: read once)."""
        headers = {"Content-Length": str(length)}
        if storage_class:
            headers["x-amz-storage-class"] = storage_class
        resp = self._request("PUT", bucket, key, headers=headers, content=chunks, payload_hash=UNSIGNED_PAYLOAD)
        return resp.headers.get("etag", "")

    def create_multipart(self, bucket: str, key: str, *, storage_class: str = "") -> str:
        headers = {"x-amz-storage-class": storage_class} if storage_class else {}
        resp = self._request("POST", bucket, key, query={"uploads": ""}, headers=headers)
        upload_id = _xml_text(resp.content, "UploadId")
        if not upload_id:
            raise S3Error("InvalidResponse", "CreateMultipartUpload answered no UploadId")
        return upload_id

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, chunks: Iterator[bytes], length: int) -> str:
        resp = self._request("PUT", bucket, key, query={"partNumber": str(number), "uploadId": upload_id},
                             headers={"Content-Length": str(length)}, content=chunks, payload_hash=UNSIGNED_PAYLOAD)
        return resp.headers.get("etag", "")

    def complete_multipart(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        parts = "".join(f"<Part><PartNumber>{i}</PartNumber><ETag>{_xml_escape(e)}</ETag></Part>"
                        for i, e in enumerate(etags, 1))
        body = f'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{parts}</CompleteMultipartUpload>'.encode()
        resp = self._request("POST", bucket, key, query={"uploadId": upload_id}, content=body,
                             headers={"Content-Type": "application/xml"}, payload_hash=hashlib.sha256(body).hexdigest())
        if b"<Error>" in resp.content:  # S3 may report a failed completion inside a 200
            raise _error_of(resp, resp.content)

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self._request("DELETE", bucket, key, query={"uploadId": upload_id})

    def delete_object(self, bucket: str, key: str) -> None:
        self._request("DELETE", bucket, key)

    def create_bucket(self, bucket: str) -> None:
        self._request("PUT", bucket, "")


def _quote_path(path: str) -> str:
    return uri_encode(path, keep_slash=True)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _xml_text(body: bytes, tag: str) -> str:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""
    for el in root.iter():
        if re.sub(r"^\{.*\}", "", el.tag) == tag:
            return el.text or ""
    return ""


def _error_of(resp: httpx.Response, body: bytes) -> S3Error:
    code = _xml_text(body, "Code") if body else ""
    message = _xml_text(body, "Message") if body else ""
    request_id = _xml_text(body, "RequestId") if body else ""
    if not code:  # HEAD answers carry no body: aws-sdk-go names the status
        code = resp.reason_phrase.replace(" ", "") or f"Status{resp.status_code}"
        message = resp.reason_phrase or str(resp.status_code)
    request_id = request_id or resp.headers.get("x-amz-request-id", "")
    host_id = (_xml_text(body, "HostId") if body else "") or resp.headers.get("x-amz-id-2", "")
    return S3Error(code, message, resp.status_code, request_id, host_id)
