"""Differential: a download whose client stops reading (and stays connected) is counted in flight
only until Go's write deadline (the idle timeout: weed/util/net_timeout.go extends it on every
Write) ends its handler; after that the download limit admits others again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.native_http.support import go_and_native
from tests.native_http.test_diff_basic import Pair
from tests.native_http.test_diff_throttle import _once_held, _port, _unread_download, both
from tests.support.compare import Raw, fetch

FLAGS = ("-concurrentDownloadLimitMB=1", "-inflightDownloadDataTimeout=1s", "-idleTimeout=2")


@pytest.fixture(scope="module", params=["trio", "uvloop"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with go_and_native(tmp_path_factory.mktemp("diff-stall"), flags=FLAGS, loop=request.param) as (go, py):
        yield Pair(go, py)


@pytest.mark.parametrize(("mib", "fid"), [(12, "0a1b2c3d4e"), (3, "0c1b2c3d4e")], ids=["streamed", "from-memory"])
def test_stalled_reader_released_after_idle_timeout(pair: Pair, mib: int, fid: str) -> None:
    """On either loop, streamed from the file (trio's path) or from memory (uvloop's callbacks
    on the uvloop side)."""
    big = bytes(range(256)) * (mib * 4096)
    pair.same("PUT", f"/2,{fid}?ts=1700000000", content=big, headers={"Content-Type": "application/octet-stream"})
    pair.same("PUT", "/2,0b1b2c3d4e?ts=1700000000", content=b"small one")

    def scenario(url: str) -> list[Raw]:
        held = _unread_download(_port(url), f"/2,{fid}")
        try:
            out = [_once_held(lambda: fetch(url, "GET", "/2,0b1b2c3d4e"), 200)]
            time.sleep(5)  # past the idle timeout (2 s): Go's write deadline ends the held download
            out.append(fetch(url, "GET", "/2,0b1b2c3d4e"))
            return out
        finally:
            held.close()

    statuses = both(pair, scenario, "stalled reader")
    pair.check()
    assert statuses == [429, 200]
