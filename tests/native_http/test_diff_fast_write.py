"""Differential: uploads shaped as Go's http.Client sends them (the native fast write path), and
near misses of that shape (served by the full path, some after the fast path handed the body
back), against a plain Go volume server, byte for byte after the shared mask.

The requests are written raw on a socket so that every header and byte is the one Go's client
would send; httpx adds headers of its own (Accept, Connection) that keep requests off the fast
path, which the other differential files cover.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator

import pytest

import native.http.app as native_app
import native.http.uv_serve as uv_serve
from tests.native_http.support import NativeServer, go_and_native
from tests.support.compare import Raw, diff_text, mask_write_second
from tests.support.procs import VolumeProc
from tests.support.sockets import wait_read
from weedpy.http1 import NEED_DATA, ClientConnection, Data, EndOfMessage, Response, read_whole_response

VOLUMES = 3
BOUNDARY = b"4f3c5e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"


def raw_exchange(port: int, request: bytes) -> Raw:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        parser = ClientConnection(head_only=request.startswith(b"HEAD "))
        status, headers, body = 0, [], b""
        while True:
            ev = parser.next_event()
            if ev is NEED_DATA:
                parser.receive_data(s.recv(65536))
            elif isinstance(ev, Response):
                status, headers = ev.status, list(ev.headers)
            elif isinstance(ev, Data):
                body += ev.data
            elif isinstance(ev, EndOfMessage):
                return Raw(status, headers, body, own_addr=b"127.0.0.1:%d" % port)


def multipart(parts: list[tuple[list[tuple[bytes, bytes]], bytes]], boundary: bytes = BOUNDARY,
              preamble: bytes = b"") -> bytes:
    out = [preamble]
    for headers, data in parts:
        out.append(b"--" + boundary + b"\r\n")
        out += [k + b": " + v + b"\r\n" for k, v in headers]
        out.append(b"\r\n" + data + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def file_part(name: bytes, data: bytes, mime: bytes | None = b"image/bench") -> tuple[list[tuple[bytes, bytes]], bytes]:
    headers = [(b"Content-Disposition", b'form-data; name="file"; filename="' + name + b'"')]
    if mime is not None:
        headers.append((b"Content-Type", mime))
    return headers, data


def weed_part(name: bytes, data: bytes, fid: bytes, mime: bytes | None = b"image/bench") -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A part as weed's uploader writes it (mime.FormatMediaType, Idempotency-Key)."""
    disposition = b"form-data; filename=" + name + b"; name=file"
    headers = [(b"Content-Disposition", disposition)]
    if mime is not None:
        headers.append((b"Content-Type", mime))
    headers.append((b"Idempotency-Key", b"http://127.0.0.1:8080/" + fid))
    return headers, data


def weed_post(fid: bytes, body: bytes) -> bytes:
    """The request weed's uploader (weed upload, weed benchmark) writes."""
    return go_post(fid, body, extra=b"X-Amz-Request-Id: \r\n")


def go_post(fid: bytes, body: bytes, boundary: bytes = BOUNDARY, extra: bytes = b"") -> bytes:
    """The request Go's http.Client writes for a multipart POST."""
    return (b"POST /" + fid + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\n"
            b"Content-Length: %d\r\nContent-Type: multipart/form-data; boundary=" % len(body) + boundary
            + b"\r\n" + extra + b"Accept-Encoding: gzip\r\n\r\n" + body)


def go_get(fid: bytes) -> bytes:
    return b"GET /" + fid + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"


class Pair:
    def __init__(self, go: VolumeProc, py: NativeServer) -> None:
        self.go = go
        self.py = py
        self.bad: list[str] = []
        self.loop = "trio"

    def same(self, label: str, request: bytes, mask_last_modified: bool = False) -> Raw:
        go = raw_exchange(self.go.port, request)
        py = raw_exchange(self.py.port, request)
        if mask_last_modified:  # a write's second: the two servers may straddle one
            go, py = mask_write_second(go), mask_write_second(py)
        if go.masked() != py.masked():
            self.bad.append(diff_text(label, go, py))
        return py

    def check(self) -> None:
        bad, self.bad = self.bad, []
        assert not bad, f"{len(bad)} cases differ:\n\n" + "\n\n".join(bad)


@pytest.fixture(scope="module", params=["trio", "uvloop"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Go and native, native served as trio's connection loop serves it, or as a native server
    process does by default (reads and uploads from uvloop's callbacks, native/http/uv_serve.py)."""
    with go_and_native(tmp_path_factory.mktemp("diff-fast-write"), volumes=VOLUMES, flags=("-fileSizeLimitMB=2",),
                       loop=request.param) as (go, py):
        pair = Pair(go, py)
        pair.loop = request.param
        yield pair


def settled(seen: list[bool], count: int) -> list[bool]:
    """`seen` once it holds `count` answers (the server's thread records an answer just after
    sending it, so the client may get there first)."""
    import time

    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return seen


@pytest.fixture
def fast_answers(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What the native server's fast write path answered for each POST (True: served it): trio's
    (`fast_write`), and on uvloop the protocol's own (an upload it answers counts True; one it
    hands over meets trio's `fast_write`, which then declines it or serves it)."""
    seen: list[bool] = []
    real = native_app.fast_write

    async def spy(app, exch) -> bool:
        served = await real(app, exch)
        seen.append(served)
        return served

    monkeypatch.setattr(native_app, "fast_write", spy)
    if pair.loop == "uvloop":
        real_reply = uv_serve.upload_reply

        def reply_spy(*args, **kwargs):
            seen.append(True)
            return real_reply(*args, **kwargs)

        monkeypatch.setattr(uv_serve, "upload_reply", reply_spy)
    return seen


BIN = bytes(range(256)) * 4 + b"tail"
TEXT = b"compressible text, " * 200


def test_plain_uploads_take_the_fast_path_and_match_go(pair: Pair, fast_answers: list[bool]) -> None:
    cases = [
        (b"1,0a00000001", file_part(b"bench17", BIN)),
        (b"1,0a00000002", file_part(b"photo.jpg", BIN, b"image/jpeg")),
        (b"1,0a00000003", file_part(b"notes.txt", TEXT, b"text/plain")),  # gzipped when stored
        (b"1,0a00000004", file_part(b"notes.txt", TEXT, None)),  # type from the extension
        (b"2,0a00000005", file_part(b"blob", BIN, b"application/octet-stream")),
        (b"2,0a00000006", file_part(b"noext", TEXT, None)),  # sniffed text/plain: compressed
        (b"2,0a00000007", file_part(b"x.unknownext", b"\x00\x01\x02", None)),
        (b"3,0a00000008", file_part(b"big.bin", bytes(range(251)) * 4000)),
        (b"3,1234567890abcdef89abcdef", file_part(b"a", b"z")),  # longest fid
        (b"3,0a00000009", file_part(b"b", b"\r\n--" + BOUNDARY[:-1] + b"x\r\n")),  # almost a boundary
        (b"3,0a00000010", file_part(b"c.html", b"<html>" * 300, b"text/html")),
        (b"3,0a00000011", file_part(b".", BIN)),
    ]
    weed_cases = [
        (b"2,0a00000020", weed_part(b".", BIN, b"2,0a00000020")),  # weed benchmark: no file name
        (b"2,0a00000021", weed_part(b"bench9", BIN, b"2,0a00000021")),
        (b"2,0a00000022", weed_part(b'"q.txt"', TEXT, b"2,0a00000022", None)),
        (b"2,0a00000023", weed_part(b"..", b"dots", b"2,0a00000023", b"text/plain")),
    ]
    for fid, part in cases:
        pair.same(f"POST {fid.decode()}", go_post(fid, multipart([part])))
    for fid, part in weed_cases:
        pair.same(f"weed POST {fid.decode()}", weed_post(fid, multipart([part])))
    cases += weed_cases
    fid = b"2,0a00000024"  # the handlers ignore a request id the client sends
    pair.same("request id", go_post(fid, multipart([file_part(b"r", BIN)]), extra=b"X-Amz-Request-Id: abc\r\n"))
    cases.append((fid, None))
    for fid in (b"1,0c00000001", b"3,0d00000002"):  # synced before the reply (in a worker thread)
        pair.same(f"POST {fid.decode()}?fsync=true", go_post(fid + b"?fsync=true", multipart([file_part(b"s.bin", BIN)])))
        cases.append((fid, None))
    # the same bytes again: Go answers 204 for an unchanged needle
    pair.same("POST unchanged", go_post(b"1,0a00000001", multipart([file_part(b"bench17", BIN)])))
    pair.same("POST cookie mismatch", go_post(b"1,0affffffff", multipart([file_part(b"bench17", BIN)])))
    pair.check()
    assert settled(fast_answers, len(cases) + 2) == [True] * (len(cases) + 2)
    for fid, _ in cases:
        pair.same(f"GET {fid.decode()}", go_get(fid), mask_last_modified=True)
    pair.check()


def test_near_misses_take_the_full_path_and_match_go(pair: Pair, fast_answers: list[bool]) -> None:
    one = [file_part(b"n.bin", BIN)]
    cases = [
        # the body is not the plain shape: the fast path hands it back
        ("two parts", go_post(b"1,0b00000001", multipart(one + [file_part(b"m.bin", b"second")]))),
        ("preamble", go_post(b"1,0b00000002", multipart(one, preamble=b"ignored\r\n"))),
        ("empty file name", go_post(b"1,0b00000003", multipart([file_part(b"", BIN)] + one))),
        ("part Content-MD5", go_post(b"1,0b00000004", multipart(
            [([(b"Content-Disposition", b'form-data; name="file"; filename="q"'), (b"Content-Md5", b"AAAAAAAAAAAAAAAAAAAAAA==")], BIN)]))),
        ("quoted-printable", go_post(b"1,0b00000005", multipart(
            [([(b"Content-Disposition", b'form-data; name="file"; filename="q"'),
               (b"Content-Transfer-Encoding", b"quoted-printable")], b"a=3Db")]))),
        ("gzip part", go_post(b"1,0b00000006", multipart(
            [([(b"Content-Disposition", b'form-data; name="file"; filename="g.txt"'), (b"Content-Encoding", b"gzip")],
              gzip.compress(TEXT, mtime=0))]))),
        ("boundary inside", go_post(b"1,0b00000007", multipart([file_part(b"i", b"x\r\n--" + BOUNDARY + b"\r\ny")]))),
        ("no final CRLF", go_post(b"1,0b00000008", multipart(one)[:-2])),
        ("over the size limit", go_post(b"2,0b00000010", multipart([file_part(b"huge", b"h" * (2 << 20))]))),
        # the head is not the plain shape: the fast path never looks at the body
        ("extra header", go_post(b"1,0b00000011", multipart(one), extra=b"Seaweed-Foo: bar\r\n")),
        ("other boundary text", go_post(b"1,0b00000012", multipart(one, boundary=b"a b"), boundary=b'"a b"')),
        ("query", go_post(b"1,0b00000013?ts=1700000000", multipart(one))),
        ("unknown volume", go_post(b"9,0b00000014", multipart(one))),
        ("quoted name with a space", weed_post(b"1,0b00000015", multipart([weed_part(b'"a b.txt"', TEXT, b"x")]))),
        ("token boundary Go never writes", go_post(b"1,0b00000017", multipart(one, boundary=b"a:b"), boundary=b"a:b")),
    ]
    for label, request in cases:
        pair.same(label, request)
    pair.check()
    assert settled(fast_answers, len(cases)) == [False] * len(cases)


def test_a_body_still_arriving_takes_the_full_path(pair: Pair, fast_answers: list[bool]) -> None:
    """On trio's loop only a body that has fully arrived is served fast, a slower one streams
    through post(); on uvloop the protocol collects it as it arrives and serves it."""
    request = go_post(b"2,0c00000001", multipart([file_part(b"slow.bin", BIN)]))
    split = request.index(b"\r\n\r\n") + 4 + 10
    out = []
    for port in (pair.go.port, pair.py.port):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(request[:split])
            wait_read(port, s.getsockname()[1])  # the server has the head and 10 bytes, no more
            s.sendall(request[split:])
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                data += s.recv(65536)
            out.append(data)
    go, py = (raw_from_bytes(d) for d in out)
    assert go.masked() == py.masked(), diff_text("slow body", go, py)
    assert settled(fast_answers, 1) == [pair.loop == "uvloop"]


def raw_from_bytes(data: bytes, head_only: bool = False) -> Raw:
    """One whole answer a client got (`head_only`: it answers a HEAD); status 0 if unreadable."""
    got = read_whole_response(data, head_only=head_only)
    if got is None:
        return Raw(0, [], b"")
    return Raw(got[0].status, list(got[0].headers), got[1])
