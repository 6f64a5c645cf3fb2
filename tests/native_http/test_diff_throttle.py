"""Differential: upload/download in-flight limits (the harness's P8 profile: 1 MB limits, 2 s
inflight timeouts). The same scenario runs against Go and native (on trio's path and on uvloop's);
the answers must match."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.native_http.support import go_and_native
from tests.native_http.test_diff_basic import Pair
from tests.support.compare import Raw, fetch

P8 = ("-concurrentUploadLimitMB=1", "-concurrentDownloadLimitMB=1",
      "-inflightUploadDataTimeout=2s", "-inflightDownloadDataTimeout=2s")


@pytest.fixture(scope="module", params=["trio", "uvloop"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Native on trio's path and on uvloop's callbacks (the fast read and write, as a server runs)."""
    with go_and_native(tmp_path_factory.mktemp("diff-throttle"), flags=P8, loop=request.param) as (go, py):
        yield Pair(go, py)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _stalled_upload(port: int, path: str, total: int, sent: int) -> socket.socket:
    """An upload that declares `total` bytes but sends only `sent` and then stalls."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode() + b"s" * sent)
    return s


def _unread_download(port: int, path: str) -> socket.socket:
    """A GET whose response body we do not read (the server stays blocked writing it)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def _once_held(send: Callable[[], Raw], passed: int) -> Raw:
    """`send` until the server holds it back: the answer once the held transfer above is counted
    in flight. Until the server has read the held request's head, a request passes (`passed`),
    which says nothing about the limit, so it is sent again."""
    deadline = time.monotonic() + 30
    while True:
        r = send()
        if r.status != passed or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def both(pair: Pair, scenario: Callable[[str], list[Raw]], label: str) -> list[int]:
    results: dict[str, list[Raw]] = {}

    def run(name: str, url: str) -> None:
        results[name] = scenario(url)

    threads = [threading.Thread(target=run, args=("go", pair.go.url)), threading.Thread(target=run, args=("py", pair.py.url))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, (g, p) in enumerate(zip(results["go"], results["py"])):
        pair.results.append((f"{label} #{i}", g, p))
    return [r.status for r in results["py"]]


def test_upload_limit_timeout_and_replicate_bypass(pair: Pair) -> None:
    def scenario(url: str) -> list[Raw]:
        held = _stalled_upload(_port(url), "/1,0a1b2c3d4e", 2 * 1024 * 1024, 1000)
        out = [_once_held(lambda: fetch(url, "PUT", "/1,0b1b2c3d4e?ts=1700000000", content=b"small"), 201)]
        out.append(fetch(url, "PUT", "/1,0c1b2c3d4e?ts=1700000000&type=replicate", content=b"replica"))
        held.close()
        # no pause: until the server sees the close, this upload waits for the release (2 s at most)
        out.append(fetch(url, "PUT", "/1,0d1b2c3d4e?ts=1700000000", content=b"after release"))
        return out

    statuses = both(pair, scenario, "upload limit")
    pair.check()
    assert statuses == [429, 201, 201]


def test_upload_waits_then_proceeds(pair: Pair) -> None:
    def scenario(url: str) -> list[Raw]:
        held = _stalled_upload(_port(url), "/1,0e1b2c3d4e", 2 * 1024 * 1024, 1000)
        # an upload to another needle is refused once the held one counts (not compared) ...
        probe = _once_held(lambda: fetch(url, "PUT", "/1,101b2c3d4e?ts=1700000000", content=b"probe"), 201)
        assert probe.status == 429, probe
        # ... so this one waits for the limit, and goes through once the held upload is dropped
        threading.Timer(0.8, held.close).start()
        return [fetch(url, "PUT", "/1,0f1b2c3d4e?ts=1700000000", content=b"waited")]

    statuses = both(pair, scenario, "upload wait")
    pair.check()
    assert statuses == [201]


@pytest.mark.parametrize(("mib", "fid"), [(12, "0a1b2c3d4e"), (3, "0c1b2c3d4e")], ids=["streamed", "from-memory"])
def test_download_limit(pair: Pair, mib: int, fid: str) -> None:
    """A download the client does not read counts against the limit until it goes: a 12 MiB
    needle streamed from the file, and a 3 MiB one native answers from memory (counted while it
    waits in the event loop's buffer)."""
    big = bytes(range(256)) * (mib * 4096)  # not compressible
    pair.same("PUT", f"/2,{fid}?ts=1700000000", content=big, headers={"Content-Type": "application/octet-stream"})
    pair.same("PUT", "/2,0b1b2c3d4e?ts=1700000000", content=b"small one")

    def scenario(url: str) -> list[Raw]:
        held = _unread_download(_port(url), f"/2,{fid}")
        out = [_once_held(lambda: fetch(url, "GET", "/2,0b1b2c3d4e"), 200)]
        out.append(fetch(url, "GET", "/2,0b1b2c3d4e?proxied=true"))
        out.append(fetch(url, "GET", "/abc,0b1b2c3d4e"))
        held.close()
        # no pause: until the server sees the close, this download waits for the release (2 s at most)
        out.append(fetch(url, "GET", "/2,0b1b2c3d4e"))
        return out

    statuses = both(pair, scenario, "download limit")
    pair.check()
    assert statuses == [429, 429, 400, 200]
