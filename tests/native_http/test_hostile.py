"""Hostile input: malformed multipart, truncated bodies, absurd Content-Length, bad chunking, bad
ranges, path traversal in names. Where Go answers, native must answer the same; afterwards both
servers keep serving and `weedpy verify` finds every native volume intact."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.native_http.support import go_and_native
from tests.native_http.test_diff_basic import Pair
from tests.reliability.hostile.support import parse_responses, raw_exchange as hostile_exchange
from tests.support.compare import Raw
from tests.support.sockets import wait_no_connections
from weedpy.http1 import ClientConnection, Data, EndOfMessage, NEED_DATA, Response


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with go_and_native(tmp_path_factory.mktemp("hostile")) as (go, py):
        yield Pair(go, py)


def raw_exchange(port: int, data: bytes, half_close: bool = True, timeout: float = 10) -> Raw | None:
    """Send raw bytes, optionally shut the write side, parse one response (None if none came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        conn = ClientConnection()
        status, headers, body = 0, [], b""
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    chunk = b""
                conn.receive_data(chunk)
                if not chunk and status == 0:
                    return None
                continue
            if isinstance(ev, Response):
                status, headers = ev.status, list(ev.headers)
            elif isinstance(ev, Data):
                body += ev.data
            elif isinstance(ev, EndOfMessage):
                return Raw(status, headers, body, own_addr=f"127.0.0.1:{port}".encode())
    except Exception:
        return None if status == 0 else Raw(status, headers, body)
    finally:
        s.close()


def same_raw(pair: Pair, label: str, data: bytes, half_close: bool = True) -> None:
    g = raw_exchange(pair.go.port, data, half_close)
    p = raw_exchange(pair.py.port, data, half_close)
    if g is None or p is None:
        assert (g is None) == (p is None), f"{label}: go answered {g and g.status}, native {p and p.status}"
        return
    pair.results.append((label, g, p))


def req(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def mp(boundary: str, *parts: bytes, close: bool = True) -> bytes:
    out = b""
    for p in parts:
        out += b"--" + boundary.encode() + b"\r\n" + p + b"\r\n"
    if close:
        out += b"--" + boundary.encode() + b"--\r\n"
    return out


def test_hostile_requests(pair: Pair) -> None:
    ct = {"Content-Type": "multipart/form-data; boundary=BB"}
    good = b'Content-Disposition: form-data; name="file"; filename="../../etc/passwd"\r\n\r\nroot:x:0:0'
    body = mp("BB", good)
    same_raw(pair, "traversal filename", req("POST", "/1,0a1b2c3d4e?ts=1700000000", {**ct, "Content-Length": str(len(body))}, body))
    body = mp("BB", b'Content-Disposition: form-data; name="file"; filename="..\\\\..\\\\win.ini"\r\n\r\nw')
    same_raw(pair, "windows traversal", req("POST", "/1,0b1b2c3d4e?ts=1700000000", {**ct, "Content-Length": str(len(body))}, body))
    trunc = mp("BB", good, close=False)[:-5]
    same_raw(pair, "truncated multipart", req("POST", "/1,0c1b2c3d4e", {**ct, "Content-Length": str(len(trunc))}, trunc))
    same_raw(pair, "declared longer than sent", req("POST", "/1,0c1b2c3d4e", {**ct, "Content-Length": "500"}, body))
    same_raw(pair, "raw declared longer", req("PUT", "/1,0c1b2c3d4e", {"Content-Length": "100"}, b"only a few"))
    same_raw(pair, "absurd content-length", req("PUT", "/1,0c1b2c3d4e", {"Content-Length": "999999999999999"}, b"x"))
    same_raw(pair, "negative content-length", req("PUT", "/1,0c1b2c3d4e", {"Content-Length": "-5"}, b"x"))
    same_raw(pair, "non-numeric content-length", req("PUT", "/1,0c1b2c3d4e", {"Content-Length": "abc"}, b"x"))
    same_raw(pair, "two content-lengths", req("PUT", "/1,0c1b2c3d4e", {"Content-Length": "1", "content-length": "2"}, b"xy"))
    chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    same_raw(pair, "chunked upload", req("PUT", "/1,0d1b2c3d4e?ts=1700000000", {"Transfer-Encoding": "chunked"}, chunked))
    same_raw(pair, "bad chunk size", req("PUT", "/1,0e1b2c3d4e", {"Transfer-Encoding": "chunked"}, b"zz\r\nhello\r\n0\r\n\r\n"))
    same_raw(pair, "truncated chunked", req("PUT", "/1,0e1b2c3d4e", {"Transfer-Encoding": "chunked"}, b"10\r\nhello"))
    nested = mp("BB", b'Content-Disposition: form-data; name="x"\r\nContent-Type: multipart/mixed; boundary=CC\r\n\r\n' + mp("CC", b"inner"))
    same_raw(pair, "nested multipart", req("POST", "/1,0f1b2c3d4e?ts=1700000000", {**ct, "Content-Length": str(len(nested))}, nested))
    many = mp("BB", *([b'Content-Disposition: form-data; name="f"\r\n\r\nv'] * 300 + [good]))
    same_raw(pair, "many parts", req("POST", "/1,101b2c3d4e?ts=1700000000", {**ct, "Content-Length": str(len(many))}, many))
    longhdr = mp("BB", b"X-Long: " + b"v" * 70000 + b"\r\n" + good)
    same_raw(pair, "long part header", req("POST", "/1,111b2c3d4e?ts=1700000000", {**ct, "Content-Length": str(len(longhdr))}, longhdr))
    pre = b"p" * 5000 + b"\r\n" + mp("BB", good)
    same_raw(pair, "long preamble line", req("POST", "/1,121b2c3d4e", {**ct, "Content-Length": str(len(pre))}, pre))
    same_raw(pair, "control char in path", req("GET", "/1,0a1b2c3d4e%00", {}))
    same_raw(pair, "bad escape in path", req("GET", "/1,0a%zz", {}))
    same_raw(pair, "traversal path", req("GET", "/1/0a1b2c3d4e/../../../etc/passwd", {}))
    same_raw(pair, "dot segments", req("GET", "/./1,0a1b2c3d4e", {}))
    same_raw(pair, "range garbage", req("GET", "/1,0a1b2c3d4e", {"Range": "bytes=" + "9" * 40 + "-"}))
    same_raw(pair, "range many", req("GET", "/1,0a1b2c3d4e", {"Range": "bytes=" + ",".join(["0-0"] * 2000)}))
    same_raw(pair, "http/1.0", b"GET /1,0a1b2c3d4e HTTP/1.0\r\n\r\n")
    same_raw(pair, "expect 100", req("PUT", "/1,131b2c3d4e?ts=1700000000", {"Content-Length": "3", "Expect": "100-continue"}, b"abc"), half_close=False)
    # Methods llhttp does not know (e.g. FOO) are refused by our HTTP parser before any handler
    # (400 "Bad Request"); Go answers 400 {"error":"unsupported method FOO"}. Known methods work:
    same_raw(pair, "propfind", req("PROPFIND", "/1,0a1b2c3d4e", {}))
    same_raw(pair, "absolute uri", req("GET", "http://example.com/1,0a1b2c3d4e", {}))
    pair.check()
    # both keep serving
    for url in (pair.go.url, pair.py.url):
        import httpx

        assert httpx.get(url + "/1,0a1b2c3d4e", timeout=10).status_code == 200


def test_volumes_intact_after_hostile_input(pair: Pair) -> None:
    wait_no_connections(pair.py.port)  # every handler of the hostile requests has finished
    out = subprocess.run([sys.executable, "-m", "native.storage.verify", str(pair.py.data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr



@pytest.mark.parametrize("first", [
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n",  # Go ends the connection
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: Keep-Alive\r\nProxy-Connection: keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: keep-alive\r\nProxy-Connection: close\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n",  # Go reads on
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nProxy-Connection: Close\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\nConnection: close\r\n\r\n",    # Go's server: on HTTP/1.0 the first Connection header's keep-alive token (wantsHttp10KeepAlive),
    # on HTTP/1.1 a close token in the first (hasToken: between spaces too) or in any one's list
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: keep-alive, close\r\nProxy-Connection: keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: keep-alive, close\r\nProxy-Connection: close\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\nProxy-Connection: x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive, close\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive, close\r\nProxy-Connection: x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: x keep-alive\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nConnection: x keep-alive\r\nProxy-Connection: x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: x close\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: x close\r\nProxy-Connection: x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: close x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: close x\r\nProxy-Connection: x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: x\r\nConnection: close\r\nProxy-Connection: x\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: \"close\"\r\nProxy-Connection: x\r\n\r\n",
    # Proxy-Connection naming an upgrade (llhttp upgrades, Go does not)
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nProxy-Connection: upgrade\r\nUpgrade: h2c\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nProxy-Connection: upgrade, close\r\nUpgrade: h2c\r\n\r\n",
])
def test_keep_alive_is_decided_as_go_decides(pair: Pair, first: bytes) -> None:
    """How many of two pipelined requests are answered before the server closes: Go's keep-alive
    rule reads Connection alone (llhttp reads Proxy-Connection too), and its own way."""
    second = b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    counts = []
    for server in (pair.go, pair.py):
        responses, clean = parse_responses(hostile_exchange(server.port, first + second))
        assert clean
        counts.append([r.status for r in responses])
    assert counts[1] == counts[0], f"go answered {counts[0]}, native {counts[1]}"


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/1.9", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9",
                                     b"HTTP/1.10", b"HTTP/01.1", b"HTTP/1", b"http/1.1", b"HTTP/1.1 "])
def test_request_line_versions_are_answered_as_go_answers(pair: Pair, version: bytes) -> None:
    """Go serves any HTTP/1.x as HTTP/1.1 and answers other single-digit versions 505; what it
    cannot parse as a version is a 400."""
    data = b"GET /1,0a1b2c3d4e " + version + b"\r\nHost: x\r\n\r\n"
    g, p = raw_exchange(pair.go.port, data), raw_exchange(pair.py.port, data)
    assert g is not None and p is not None
    assert (p.status, p.body if p.status >= 400 else b"") == (g.status, g.body if g.status >= 400 else b"")


def _masked_exchange(port: int, data: bytes) -> bytes:
    """Every byte the server sends for `data` until it closes, Date and request ids masked, and
    an HTTP/1.0 status line read as HTTP/1.1 but for Go's 417 (native's handlers answer an
    HTTP/1.0 request with an HTTP/1.1 status line: a difference of the writer, not the reader)."""
    raw = hostile_exchange(port, data, timeout=3.0)
    raw = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", raw)
    raw = re.sub(rb"\r\nX-Amz-Request-Id: [^\r]*", b"\r\nX-Amz-Request-Id: -", raw)
    return re.sub(rb"(^|\n)HTTP/1\.0 (?!417 )", rb"\1HTTP/1.1 ", raw)


_CLOSE = b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
_PUT = b"PUT /1,141b2c3d4e?ts=1700000000 HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("data", [
    # Host: required from HTTP/1.1 on, one only (a second is a plain 400, before the framing is
    # read), and of the bytes Go's ValidHostHeader takes (its value trimmed)
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.2\r\n\r\n" + _CLOSE,
    b"GET http://example.com/1,0a1b2c3d4e HTTP/1.1\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: a b\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: u@a\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: a/b\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nHost: a\"b\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: [::1]:80\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: a  \r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nHost: y\r\nTransfer-Encoding: identity\r\n\r\n" + _CLOSE,
    # Expect: the first one's value, unless empty, must name 100-continue (417 and the close)
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.0\r\nExpect: foo\r\n\r\n",
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nExpect: 100-continue\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nExpect: foo\r\n\r\n" + _CLOSE,
    b"GET /1,0a1b2c3d4e HTTP/1.1\r\nHost: x\r\nExpect: x 100-continue\r\n\r\n" + _CLOSE,
    _PUT + b"Expect: 100-continuex\r\nContent-Length: 3\r\n\r\nabc" + _CLOSE,
    # ... and 100 Continue goes to HTTP/1.1 only
    b"PUT /1,151b2c3d4e?ts=1700000000 HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    # an empty Transfer-Encoding is a coding Go does not know
    _PUT + b"Transfer-Encoding:\r\n\r\n" + _CLOSE,
    _PUT + b"Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc" + _CLOSE,
    _PUT + b"Transfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\nabc" + _CLOSE,
], ids=lambda data: data.split(b"\r\n\r\n")[0].decode("latin-1").replace("\r\n", " | ")[:90])
def test_request_heads_are_refused_or_served_as_go_does(pair: Pair, data: bytes) -> None:
    """What comes back for a head Go's server refuses after parsing it (Host, Expect, framing), a
    request pipelined behind it included: the same bytes from both. (Not here: Go reads a chunked
    body beside a Content-Length, which native refuses, as a relay in front of Go must.)"""
    g, p = _masked_exchange(pair.go.port, data), _masked_exchange(pair.py.port, data)
    assert p == g
