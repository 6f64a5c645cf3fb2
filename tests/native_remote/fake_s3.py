"""A path-style S3 endpoint in a thread, for fast tests of the S3 client and tiering: buckets in
memory, PUT/GET (ranges)/HEAD/DELETE, multipart uploads, S3's XML errors. Every request's
headers are kept so tests can check what was signed. The interop tests use the real `weed`
S3 gateway instead."""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeS3", "fake_s3"]


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.buckets: set[str] = set()
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(s3: FakeS3):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _parts(self) -> tuple[str, str, dict[str, list[str]]]:
            u = urlsplit(self.path)
            path = unquote(u.path)
            bucket, _, key = path.lstrip("/").partition("/")
            return bucket, key, parse_qs(u.query, keep_blank_values=True)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length", "0"))
            return self.rfile.read(n) if n else b""

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>req-1</RequestId></Error>"
            self._send(status, body.encode(), {"Content-Type": "application/xml", "x-amz-request-id": "req-1"})

        def _record(self) -> None:
            with s3.lock:
                s3.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

        def _authorized(self) -> bool:
            return self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 Credential=")

        def do_PUT(self) -> None:
            self._record()
            bucket, key, q = self._parts()
            body = self._body()
            if not self._authorized():
                return self._error(403, "AccessDenied", "Access Denied")
            if not key:
                s3.buckets.add(bucket)
                return self._send(200)
            if bucket not in s3.buckets:
                return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
            if "uploadId" in q:
                s3.uploads[q["uploadId"][0]][int(q["partNumber"][0])] = body
                return self._send(200, headers={"ETag": f'"part-{q["partNumber"][0]}"'})
            s3.objects[(bucket, key)] = body
            return self._send(200, headers={"ETag": '"whole"'})

        def do_POST(self) -> None:
            self._record()
            bucket, key, q = self._parts()
            body = self._body()
            if "uploads" in q:
                upload_id = uuid.uuid4().hex
                s3.uploads[upload_id] = {}
                xml = f"<InitiateMultipartUploadResult><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
                return self._send(200, xml.encode())
            parts = s3.uploads.pop(q["uploadId"][0])
            numbers = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)]
            s3.objects[(bucket, key)] = b"".join(parts[n] for n in numbers)
            return self._send(200, b"<CompleteMultipartUploadResult/>")

        def do_GET(self) -> None:
            self._record()
            bucket, key, _ = self._parts()
            data = s3.objects.get((bucket, key))
            if data is None:
                return self._error(404, "NoSuchKey", "The specified key does not exist.")
            rng = self.headers.get("Range")
            if rng:
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng)
                if not m or int(m.group(1)) >= len(data):
                    return self._error(416, "InvalidRange", "The requested range is not satisfiable")
                start, end = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
                return self._send(206, data[start:end + 1])
            return self._send(200, data)

        def do_HEAD(self) -> None:
            self._record()
            bucket, key, _ = self._parts()
            data = s3.objects.get((bucket, key))
            if data is None:
                return self._send(404)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def do_DELETE(self) -> None:
            self._record()
            bucket, key, q = self._parts()
            if "uploadId" in q:
                s3.uploads.pop(q["uploadId"][0], None)
            else:
                s3.objects.pop((bucket, key), None)
            return self._send(204)

    return Handler


@contextlib.contextmanager
def fake_s3(*buckets: str) -> Iterator[FakeS3]:
    s3 = FakeS3()
    s3.buckets.update(buckets)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s3))
    s3.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s3
    finally:
        server.shutdown()
        server.server_close()
