"""Differential: the same scripted requests against a plain Go volume server and native weedpy.

Each side has its own master and fresh data dir, and volumes 1..N. Statuses, header lists (names,
order, values) and bodies must match after the shared mask (tests/support/compare.py).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterator

import pytest

from tests.native_http.support import NativeServer, go_and_native
from tests.support.compare import Raw, diff_text, fetch
from tests.support.procs import VolumeProc

VOLUMES = 6


class Pair:
    def __init__(self, go: VolumeProc, py: NativeServer) -> None:
        self.go = go
        self.py = py
        self.results: list[tuple[str, Raw, Raw]] = []

    def same(self, method: str, path: str, label: str = "", **kw: object) -> Raw:
        go = fetch(self.go.url, method, path, **kw)
        py = fetch(self.py.url, method, path, **kw)
        self.results.append((label or f"{method} {path}", go, py))
        return py

    def check(self) -> None:
        bad = [diff_text(lbl, g, p) for lbl, g, p in self.results if g.masked() != p.masked()]
        n = len(self.results)
        self.results.clear()
        assert not bad, f"{len(bad)} of {n} cases differ:\n\n" + "\n\n".join(bad)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with go_and_native(tmp_path_factory.mktemp("diff-basic"), volumes=VOLUMES, flags=("-fileSizeLimitMB=1",)) as (go, py):
        yield Pair(go, py)


TEXT = b"hello weedpy\n" * 40
BIN = bytes(range(256)) * 8


def test_uploads(pair: Pair) -> None:
    s = pair.same
    s("POST", "/1,0a1b2c3d4e?ts=1700000000", files={"file": ("hello.txt", TEXT, "text/plain")})
    s("POST", "/1,0b1b2c3d4e?ts=1700000000", files={"file": ("data.bin", BIN, "application/octet-stream")})
    s("PUT", "/1,0c1b2c3d4e?ts=1700000000", content=BIN)
    s("PUT", "/1,0d1b2c3d4e?ts=1700000000", content=TEXT, headers={"Content-Type": "text/plain"})
    s("POST", "/1,0e1b2c3d4e?ts=1700000000", content=BIN, headers={"Content-Type": "image/png"})
    s("PUT", "/1,0f1b2c3d4e?ts=1700000001", content=b"x", headers={"Content-Disposition": 'attachment; filename="r.txt"'})
    s("PUT", "/1,101b2c3d4e?ts=1700000001", content=b"x", headers={"Content-Disposition": 'inline; name="n.json"'})
    s("POST", "/1,111b2c3d4e?ts=1700000000", files={"file": ("p.bin", BIN)},
      headers={"Seaweed-Foo": "bar", "Seaweed-Multi-Word": "a<b>&c"})
    md5 = base64.b64encode(hashlib.md5(BIN).digest()).decode()
    s("PUT", "/1,121b2c3d4e?ts=1700000000", content=BIN, headers={"Content-MD5": md5})
    s("PUT", "/1,131b2c3d4e?ts=1700000000", content=BIN, headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    gz = gzip.compress(TEXT, mtime=0)
    s("PUT", "/1,141b2c3d4e?ts=1700000000", content=gz, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
    s("PUT", "/1,151b2c3d4e?ts=1700000000", content=b"")
    s("POST", "/1,161b2c3d4e?ts=1700000000&ttl=7d", files={"file": ("t.bin", BIN)})
    # identical rewrite, cookie conflict, bad ids, wrong path shapes
    s("PUT", "/1,0c1b2c3d4e?ts=1700000000", content=BIN)
    s("PUT", "/1,0cffffffff?ts=1700000000", content=BIN)
    s("PUT", "/abc,0c1b2c3d4e", content=b"x")
    s("PUT", "/1,zz1b2c3d4e", content=b"x")
    s("PUT", "/1,1234", content=b"x")
    s("PUT", "/1/0c1b2c3d4e", content=b"x")
    s("PUT", "/1,0c1b2c3d4e1b2c3d4e1b2c3d4e", content=b"x")
    s("PUT", "/1,171b2c3d4e_5?ts=1700000000", content=b"delta")
    s("PUT", "/1,181b2c3d4e.txt?ts=1700000000", content=b"with ext")
    s("PUT", "/99,0c1b2c3d4e", content=b"x", label="write to a volume nowhere")
    s("POST", "/1,191b2c3d4e", content=b"x", headers={"Content-Type": ""}, label="POST without Content-Type")
    s("POST", "/1,191b2c3d4e", content=b"x", headers={"Content-Type": "multipart/form-data"}, label="no boundary")
    s("POST", "/1,191b2c3d4e", content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=XX"})
    s("POST", "/1,191b2c3d4e", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    s("POST", "/1,191b2c3d4e?a=%zz", content=b"x", headers={"Content-Type": "text/plain"})
    s("POST", "/1,191b2c3d4e", content=b"x", headers={"Content-Type": "a/b/c"})
    s("PUT", "/1,1a1b2c3d4e", content=b"y" * (1024 * 1024 + 1), label="over fileSizeLimitMB")
    s("PUT", "/1,1b1b2c3d4e?ts=1700000000", content=b"y" * (1024 * 1024), label="at fileSizeLimitMB")
    pair.check()


def test_reads(pair: Pair) -> None:
    s = pair.same
    for path in ["/1,0a1b2c3d4e", "/1/0a1b2c3d4e", "/1/0a1b2c3d4e/other.html", "/1,0a1b2c3d4e.jpg",
                 "/1/0a1b2c3d4e.png", "/1,0b1b2c3d4e", "/1,0c1b2c3d4e", "/1,0d1b2c3d4e", "/1,0e1b2c3d4e",
                 "/1,0f1b2c3d4e", "/1,101b2c3d4e", "/1,111b2c3d4e", "/1,141b2c3d4e", "/1,151b2c3d4e",
                 "/1,161b2c3d4e", "/1,171b2c3d4e_5", "/1,181b2c3d4e", "/1,181b2c3d4e.txt", "/1,1b1b2c3d4e",
                 "/1,0a1b2c3d4f", "/1,0a1b2c3d", "/1,zz", "/abc,0a1b2c3d4e", "/2,0a1b2c3d4e", "/99,0a1b2c3d4e",
                 "/1", "/", "/stats/counter", "/stats/disk", "/1,0a1b2c3d4e_x", "/1,0a1b2c3d4e/", "//1,0a1b2c3d4e",
                 "/1,0a1b2c3d4e/../2,0a", "/1/0a1b2c3d4e/a%20b.txt", "/1,0A1B2C3D4E"]:
        s("GET", path)
        s("HEAD", path)
    s("GET", "/1,0a1b2c3d4e", headers={"Accept-Encoding": "identity"})
    s("GET", "/1,141b2c3d4e", headers={"Accept-Encoding": "gzip"})
    s("GET", "/1,141b2c3d4e", headers={"Accept-Encoding": "br"})
    s("GET", "/1,0a1b2c3d4e", headers={"Origin": "http://example.com"})
    s("GET", "/1,0a1b2c3d4e?dl=true")
    s("GET", "/1,0a1b2c3d4e?dl=1")
    s("GET", "/1,0a1b2c3d4e?dl=yes")
    s("GET", "/1,0a1b2c3d4e?dl=0")
    s("GET", "/1,0a1b2c3d4e?response-content-type=text/csv&response-cache-control=no-cache&Response-Expires=0")
    s("GET", "/1,0a1b2c3d4e?response-content-disposition=attachment")
    pair.check()


def test_conditional_and_ranges(pair: Pair) -> None:
    s = pair.same
    r = s("GET", "/1,0b1b2c3d4e")
    etag = (r.header(b"etag") or b"").decode()
    lm = (r.header(b"last-modified") or b"").decode()
    s("GET", "/1,0b1b2c3d4e", headers={"If-None-Match": etag})
    s("GET", "/1,0b1b2c3d4e", headers={"If-None-Match": "W/" + etag})
    s("GET", "/1,0b1b2c3d4e", headers={"If-None-Match": "*"})
    s("GET", "/1,0b1b2c3d4e", headers={"If-Modified-Since": lm})
    s("GET", "/1,0b1b2c3d4e", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    s("GET", "/1,0b1b2c3d4e", headers={"If-Modified-Since": "garbage"})
    s("GET", "/1,0b1b2c3d4e", headers={"If-Modified-Since": lm, "If-None-Match": '"nope"'})
    s("HEAD", "/1,0b1b2c3d4e", headers={"If-None-Match": etag})
    for rng in ["bytes=0-0", "bytes=5-20", "bytes=-10", "bytes=100-", "bytes=2048-", "bytes=2047-",
                "bytes=0-1,4-5", "bytes=0-1,4-5,100-200", "bytes=0-10,5-15", "bytes=3000-", "bytes=5-2",
                "bytes=abc", "items=0-1", "bytes=", "bytes=,", "bytes= 1-2 , 4-5", "bytes=-0", "bytes=--5",
                "bytes=0-99999999", "bytes=+1-2", "bytes=0-0,-1", "bytes=1-1,1-1"]:
        s("GET", "/1,0b1b2c3d4e", headers={"Range": rng})
        s("GET", "/1,0a1b2c3d4e", headers={"Range": rng})
    s("HEAD", "/1,0b1b2c3d4e", headers={"Range": "bytes=0-1"})
    s("GET", "/1,151b2c3d4e", headers={"Range": "bytes=0-"})
    s("GET", "/1,141b2c3d4e", headers={"Range": "bytes=0-9", "Accept-Encoding": "gzip"})
    s("GET", "/1,141b2c3d4e", headers={"Range": "bytes=0-9,20-29", "Accept-Encoding": "gzip"})
    s("GET", "/1,141b2c3d4e", headers={"Range": "bytes=0-9,20-29"})
    pair.check()


def test_methods_and_cors(pair: Pair) -> None:
    s = pair.same
    for m in ["OPTIONS", "PATCH", "TRACE", "PROPFIND"]:
        s(m, "/1,0a1b2c3d4e")
        s(m, "/1,0a1b2c3d4e", headers={"Origin": "http://x"})
    s("GET", "/healthz")
    s("POST", "/healthz")
    pair.check()


def test_deletes(pair: Pair) -> None:
    s = pair.same
    s("PUT", "/2,201b2c3d4e?ts=1700000000", content=TEXT)
    s("PUT", "/2,211b2c3d4e?ts=1700000000", content=BIN)
    s("DELETE", "/2,201b2c3d4e")
    s("GET", "/2,201b2c3d4e")
    s("GET", "/2,201b2c3d4e?readDeleted=true")
    s("DELETE", "/2,201b2c3d4e")
    s("DELETE", "/2,211b2c3d4f")
    s("DELETE", "/2,221b2c3d4e")
    s("DELETE", "/2,zz")
    s("DELETE", "/abc,211b2c3d4e")
    s("DELETE", "/99,211b2c3d4e")
    s("DELETE", "/2,211b2c3d4e?ts=1600000000")
    s("GET", "/2,211b2c3d4e?readDeleted=true")
    s("HEAD", "/2,211b2c3d4e?readDeleted=true")
    s("PUT", "/2,231b2c3d4e?ts=1700000000", content=b"")
    s("DELETE", "/2,231b2c3d4e")
    s("GET", "/2,231b2c3d4e?readDeleted=true")
    pair.check()


_ = json


EXTS = [".txt", ".TXT", ".html", ".htm", ".png", ".jpg", ".JPEG", ".gif", ".webp", ".json", ".js", ".mjs", ".css",
        ".xml", ".pdf", ".zip", ".gz", ".tar", ".mp4", ".mp3", ".wav", ".svg", ".c", ".C", ".cc", ".cpp", ".go", ".py",
        ".md", ".markdown", ".csv", ".doc", ".docx", ".bin", ".exe", ".foo", ".yaml", ".yml", ".ico", ".bmp", ".tif",
        ".woff", ".woff2", ".ttf", ".otf", ".wasm", ".avif", ".heic", ".mkv", ".webm", ".weba", ".ogg", ".flac", ".rtf",
        ".sh", ".rs", ".java", ".h", ".hpp", ".php", ".rb", ".pl", ".sql", ".log", ".ini", ".conf", ".cfg", ".toml",
        ".env", ".gitignore", ".properties", ".ts", ".kt", ".swift", ".scala", ".bash", ".zsh", ".fish",
        ".dockerfile", ".7z", ".rar", ".bz2", ".xz", ".zst", ".br", ".aac", ".avi", ".mov", ".wmv", ".flv",
        ".xls", ".xlsx", ".ppt", ".pptx", ".apk", ".deb", ".iso", ".dat", ".idx", ".vif", ".ics", ".vtt", ".eml",
        ".m4a", ".opus", ".jfif", ".apng", ".xhtml", ".rdf", ".ai", ".eps", ".ps", ".tiff", ".svgz", ".jar"]


def test_mime_by_extension_matches_weed(pair: Pair) -> None:
    """TypeByExtension as the weed binary has it (Go's table, the host database, weed's own)."""
    for i, ext in enumerate(EXTS):
        pair.same("PUT", f"/3,{0x100 + i:x}1b2c3d4e?ts=1700000000", content=b"m",
                  headers={"Content-Disposition": f'attachment; filename="f{ext}"', "Content-Type": ""},
                  label=f"mime of {ext}")
    pair.check()


def _status_masked(raw: Raw) -> tuple[int, object, bytes]:
    """/status minus what legitimately differs: disk figures and paths, modification times."""
    doc = json.loads(raw.body)
    for d in doc.get("DiskStatuses") or []:
        for k in ("dir", "all", "used", "free", "percent_free", "percent_used"):
            d[k] = "*" if k in d else None
    for v in doc.get("Volumes") or []:
        v["ModifiedAtSecond"] = "*"
    status, headers, _ = raw.masked()
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    return status, (headers, doc), b""


def test_status_matches_after_the_same_writes(pair: Pair) -> None:
    for m, q in (("GET", ""), ("GET", "?pretty=1"), ("GET", "?callback=cb"), ("OPTIONS", ""), ("POST", "")):
        g = fetch(pair.go.url, m, "/status" + q)
        p = fetch(pair.py.url, m, "/status" + q)
        assert _status_masked(g) == _status_masked(p), diff_text("/status" + q, g, p)
        if q == "?pretty=1":
            assert p.body.startswith(b'{\n  "DiskStatuses": [\n    {\n      "dir": ')
