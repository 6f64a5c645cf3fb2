"""The fast read (native/http/_fast.py, what uvloop's protocol and trio's path answer plain reads
with) writes byte for byte what the full read path writes for the same needle and request, for
random names, types, data and times (the request id and Date masked), and for needles up to
FAST_READ_LIMIT, whose full path streams them from the file."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings, strategies as st

import native.http.app as native_app
from native.context import Location, NativeContext
from native.http._fast import FAST_READ_LIMIT, fast_read
from native.http.app import NativeHttp
from native.storage import Needle, Store, crc32c, legacy_crc_value
from native.storage._volume_read import VIEW_OVER
from tests.native_http.support import HttpMasterLookup
from weedpy.config import parse_volume_args
from weedpy.http1 import Exchange, ServerConnection, UpstreamPool
from weedpy.security import SecurityConfig

_MASK = re.compile(rb"(X-Amz-Request-Id: |Date: )[^\r]*")


class _Collect:
    """A stream that keeps what the handler sends."""

    def __init__(self) -> None:
        self.out = b""

    async def send_all(self, data: bytes) -> None:
        self.out += bytes(data)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeHttp]:
    d: Path = tmp_path_factory.mktemp("fast-read")
    cfg = parse_volume_args(["-port=1", "-port.grpc=2", "-ip=127.0.0.1", f"-dir={d}", "-master=127.0.0.1:1"], environ={})
    store = Store.open([str(d)], max_counts=4)
    store.allocate_volume(1, replication="000")
    ctx = NativeContext(cfg=cfg, security=SecurityConfig(), store=store, version="8000GB 4.48", full_version="8000GB 4.48",
                        master=HttpMasterLookup(None, Location("127.0.0.1:1", "127.0.0.1:1", 1), store),
                        http_pool=UpstreamPool())
    yield NativeHttp(ctx)
    store.close()


def _answer(app: NativeHttp, head: bytes) -> tuple[bytes, bool]:
    """The masked answer and whether the fast read gave it."""
    conn = ServerConnection()
    conn.receive_data(head)
    req = conn.next_event()
    stream = _Collect()
    exch = Exchange(req, conn, stream, 30.0, "127.0.0.1", 1, "admin")  # type: ignore[arg-type]
    trio.run(app.handle, exch)
    return _MASK.sub(rb"\1*", stream.out), exch.served_fast


_KEY = iter(range(1, 1 << 30))


@settings(max_examples=150)
@given(
    name=st.one_of(st.just(b""), st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b),
                   st.sampled_from([b"a.txt", b"photo.JPG", b"x.tar.gz", b"we ird;name.html", b"q\"uote.bin"])),
    mime=st.one_of(st.just(b""), st.sampled_from([b"text/plain", b"application/octet-stream", b"image/png",
                                                  b"application/octet-stream; x=1", b"text/html; charset=utf-8"])),
    data=st.one_of(st.binary(min_size=1, max_size=600), st.sampled_from([b"<html>hi", b"%PDF-1.4", b"\x89PNG\r\n\x1a\n"])),
    last_modified=st.one_of(st.just(0), st.integers(min_value=1, max_value=4_000_000_000)),
    method=st.sampled_from([b"GET", b"HEAD"]),
)
def test_the_fast_read_is_the_full_read(app: NativeHttp, name: bytes, mime: bytes, data: bytes, last_modified: int,
                                        method: bytes) -> None:
    key, cookie = next(_KEY), 0x1234ABCD
    n = Needle.create(key, cookie, data, name=name, mime=mime, last_modified=last_modified, gzipped=False)
    app.ctx.store.write_needle(1, n)
    head = method + b" /1,%x%08x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n" % (key, cookie)
    fast = _answer(app, head)
    real = native_app.fast_read
    native_app.fast_read = lambda _app, _req: None  # the full path
    try:
        full = _answer(app, head)
    finally:
        native_app.fast_read = real
    assert fast == (full[0], True) and not full[1]


def _both(app: NativeHttp, head: bytes) -> tuple[tuple[bytes, bool], bytes]:
    """(the answer as served, with whether the fast read gave it) and the full path's answer."""
    served = _answer(app, head)
    real = native_app.fast_read
    native_app.fast_read = lambda _app, _req: None
    try:
        full = _answer(app, head)
    finally:
        native_app.fast_read = real
    assert not full[1]
    return served, full[0]


def _store_large(app: NativeHttp, data_size: int, **fields: object) -> bytes:
    """Store a needle of `data_size` bytes; the head of a GET of it."""
    key, cookie = next(_KEY), 0x0BADCAFE
    data = os.urandom(data_size)
    app.ctx.store.write_needle(1, Needle.create(key, cookie, data, gzipped=False, **fields))  # type: ignore[arg-type]
    return b"GET /1,%x%08x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\n\r\n" % (key, cookie)


@pytest.mark.parametrize("data_size", [VIEW_OVER, VIEW_OVER + 1, (1 << 20) + 1, FAST_READ_LIMIT - 200])
@pytest.mark.parametrize("fields", [{}, {"name": "big.bin", "mime": "application/x-test", "last_modified": 1_700_000_000}])
def test_a_large_needle_is_read_fast_with_the_full_paths_bytes(app: NativeHttp, data_size: int,
                                                                fields: dict[str, object]) -> None:
    """Up to FAST_READ_LIMIT the fast read answers (a view of the record written after the head
    above VIEW_OVER), byte for byte what the full path streams from the file."""
    head = _store_large(app, data_size, **fields)
    (served, fast), full = _both(app, head)
    assert fast and served == full
    assert served.endswith(b"\r\n\r\n" + _stored_data(app, head))


def _stored_data(app: NativeHttp, head: bytes) -> bytes:
    fid = head.split(b" ")[1].split(b",")[1]
    return app.ctx.store.find_volume(1).read_needle(int(fid[:-8], 16)).data  # type: ignore[union-attr]


def test_needles_over_the_limit_heads_and_reads_over_a_download_limit_take_the_full_path(app: NativeHttp) -> None:
    """Over FAST_READ_LIMIT the needle streams; a HEAD of a needle over 1 MiB reads only the
    record's head (the full path); under a download limit a large needle is fast until the
    bytes in flight are over the limit, and then the full path waits for them as Go does."""
    over = _store_large(app, FAST_READ_LIMIT + 1)
    (served, fast), full = _both(app, over)
    assert not fast and served == full
    large = _store_large(app, (1 << 20) + 1)
    (served, fast), full = _both(app, large.replace(b"GET ", b"HEAD ", 1))
    assert not fast and served == full
    app.download.limit = 64 << 20
    try:
        (served, fast), full = _both(app, large)
        assert fast and served == full
        app.download.add(65 << 20)  # another answer still going out
        try:
            conn = ServerConnection()
            conn.receive_data(large)
            assert fast_read(app, conn.next_event()) is None
        finally:
            app.download.release(65 << 20)
    finally:
        app.download.limit = 0


@pytest.mark.parametrize("data_size", [1 << 19, (1 << 20) + 1, 3 << 20])
def test_a_masked_crc_gives_gos_etag(app: NativeHttp, data_size: int) -> None:
    """A record written by a server before 3.09 stores the masked CRC. Go's full read (up to
    1 MiB) sends the computed CRC as the ETag, its metadata-only read of a larger record the
    stored one: the fast read answers as the full path does on both sides of 1 MiB."""
    key, cookie = next(_KEY), 0x0BADCAFE
    data = os.urandom(data_size)
    app.ctx.store.write_needle(1, Needle.create(key, cookie, data, gzipped=False,
                                                checksum=legacy_crc_value(crc32c(data))))
    head = b"GET /1,%x%08x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\n\r\n" % (key, cookie)
    (served, fast), full = _both(app, head)
    assert served == full
    etag = crc32c(data) if data_size <= 1 << 20 else legacy_crc_value(crc32c(data))
    assert b'\r\nEtag: "%08x"\r\n' % etag in served
    assert fast == (data_size <= 1 << 20)
