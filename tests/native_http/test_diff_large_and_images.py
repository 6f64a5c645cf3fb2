"""Differential: large needles (> 1 MiB: Go streams them from .dat; native serves a plain GET
of one up to 4 MiB from memory, a larger one, a HEAD and a range streamed), and image
crop/resize on reads (bodies are re-encoded by different libraries, so images compare by
decoded size; every header but Content-Length must match)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from native.storage import crc32c, legacy_crc_value
from tests.native_http.support import go_and_native
from tests.native_http.test_diff_basic import Pair
from tests.support.compare import diff_text, fetch


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with go_and_native(tmp_path_factory.mktemp("diff-large")) as (go, py):
        yield Pair(go, py)


BIG = os.urandom(3 * 1024 * 1024 + 17)
BIG_TEXT = (b"large text line for gzip on upload\n" * 100000)[: 3 * 1024 * 1024]
HUGE = os.urandom(5 * 1024 * 1024 + 3)  # over native's fast read: streamed


def test_large_needles(pair: Pair) -> None:
    s = pair.same
    s("PUT", "/1,0a1b2c3d4e?ts=1700000000", content=BIG, headers={"Content-Type": "application/octet-stream"})
    s("POST", "/1,0b1b2c3d4e?ts=1700000000", files={"file": ("big.txt", BIG_TEXT, "text/plain")})
    s("PUT", "/1,0c1b2c3d4e?ts=1700000000", content=BIG)
    s("PUT", "/1,0d1b2c3d4e?ts=1700000000", content=HUGE, headers={"Content-Type": "application/octet-stream"})
    assert s("GET", "/1,0d1b2c3d4e").body == HUGE
    s("HEAD", "/1,0d1b2c3d4e")
    r = s("GET", "/1,0a1b2c3d4e")
    assert r.body == BIG
    etag = (r.header(b"etag") or b"").decode()
    s("HEAD", "/1,0a1b2c3d4e")
    s("GET", "/1,0c1b2c3d4e", label="large, sniffed Content-Type")
    s("HEAD", "/1,0c1b2c3d4e")
    for rng in ["bytes=0-99", "bytes=1048570-1048600", "bytes=-5", "bytes=0-0,3145728-3145740", "bytes=9999999-"]:
        s("GET", "/1,0a1b2c3d4e", headers={"Range": rng})
    s("GET", "/1,0a1b2c3d4e", headers={"If-None-Match": etag})
    s("GET", "/1,0b1b2c3d4e")
    s("GET", "/1,0b1b2c3d4e", headers={"Accept-Encoding": "gzip"})
    s("HEAD", "/1,0b1b2c3d4e")
    s("HEAD", "/1,0b1b2c3d4e", headers={"Accept-Encoding": "gzip"})
    s("GET", "/1,0b1b2c3d4e", headers={"Range": "bytes=100-200"})
    s("DELETE", "/1,0a1b2c3d4e")
    s("GET", "/1,0a1b2c3d4e?readDeleted=true", headers={"Range": "bytes=0-9"})
    s("HEAD", "/1,0a1b2c3d4e?readDeleted=true")
    pair.check()


def _mask_crc(dat: Path, data: bytes) -> None:
    """Rewrite the stored CRC of the record holding `data` in the masked form servers before
    3.09 wrote (both servers read it from the file on every GET)."""
    raw = dat.read_bytes()
    at = raw.find(data[:64]) - 20  # the record: 16 header bytes and the data size before the data
    assert at >= 8 and raw.find(data[:64], at + 21) < 0
    size = int.from_bytes(raw[at + 12:at + 16], "big")
    with dat.open("r+b") as f:
        f.seek(at + 16 + size)
        f.write(legacy_crc_value(crc32c(data)).to_bytes(4, "big"))


def test_masked_crcs_of_large_and_small_needles(pair: Pair) -> None:
    """A needle whose record stores the masked (pre-3.09) CRC: Go's ETag is the computed CRC
    when it reads the whole record (up to 1 MiB), the stored one when it reads only the metadata
    (over 1 MiB), whatever serves it here (the fast read up to FAST_READ_LIMIT)."""
    s = pair.same
    for fid, size in (("1,201b2c3d4e", 512 * 1024), ("1,211b2c3d4e", 2 * 1024 * 1024 + 5)):
        data = os.urandom(size)
        s("PUT", f"/{fid}?ts=1700000000", content=data, headers={"Content-Type": "application/octet-stream"})
        for root in (pair.go.data_dir, pair.py.data_dir):
            _mask_crc(next(root.rglob("1.dat")), data)
        r = s("GET", f"/{fid}")
        assert r.body == data
        s("HEAD", f"/{fid}")
    pair.check()


def _png(w: int, h: int, fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", (w, h))
    for x in range(w):
        for y in range(h):
            img.putpixel((x, y), (x * 40 % 256, y * 60 % 256, (x * y) % 256))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _size(body: bytes) -> tuple[int, int] | None:
    try:
        return Image.open(io.BytesIO(body)).size
    except Exception:
        return None


def test_image_transforms(pair: Pair) -> None:
    images = {
        "2,0a1b2c3d4e": ("pic.png", _png(6, 4), "image/png"),
        "2,0b1b2c3d4e": ("pic.jpg", _png(120, 80, "JPEG"), "image/jpeg"),
        "2,0c1b2c3d4e": ("pic.gif", _png(10, 10, "GIF"), "image/gif"),
        "2,0d1b2c3d4e": ("pic.webp", _png(8, 6, "WEBP"), "image/webp"),
        "2,0e1b2c3d4e": ("not.png", b"this is not an image", "image/png"),
    }
    for fid, (name, data, mime) in images.items():
        pair.same("POST", f"/{fid}?ts=1700000000", files={"file": (name, data, mime)})
    queries = ["width=2&height=1", "width=3", "height=2", "width=100", "width=2&height=2", "width=4&height=4&mode=fit",
               "width=4&height=4&mode=fill", "width=3&mode=fit", "crop_x1=1&crop_y1=1&crop_x2=4&crop_y2=3",
               "crop_x1=1&crop_y1=1&crop_x2=400&crop_y2=3", "crop_x1=0&crop_y1=0&crop_x2=2&crop_y2=2&width=1",
               "width=-5&height=2", "width=abc", "crop_x1=-1&crop_x2=2&crop_y2=2", "width=60&height=60",
               "width=50&height=20&mode=fill", "width=10&height=10"]
    bad = []
    n = 0
    for fid in images:
        for q in queries:
            for path in (f"/{fid}?{q}", f"/{fid.replace(',', '/')}/x.png?{q}"):
                g = fetch(pair.go.url, "GET", path)
                p = fetch(pair.py.url, "GET", path)
                n += 1
                gs, gh, gb = g.masked()
                ps, ph, pb = p.masked()
                strip = lambda hs: [(k, v) for k, v in hs if k.lower() != b"content-length"]
                same_body = gb == pb or (_size(gb) is not None and _size(gb) == _size(pb)) or (not gb and not pb)
                if gs != ps or strip(gh) != strip(ph) or not same_body:
                    bad.append(diff_text(f"GET {path} sizes go={_size(gb)} py={_size(pb)}", g, p))
    assert not bad, f"{len(bad)} of {n} image cases differ:\n\n" + "\n\n".join(bad)


def _exif_jpeg(orientation: int) -> bytes:
    img = Image.new("RGB", (40, 20), (200, 10, 10))
    for x in range(10):
        img.putpixel((x, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def orient_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    flags = ("-images.fix.orientation",)
    with go_and_native(tmp_path_factory.mktemp("diff-orient"), volumes=1, flags=flags) as (go, py):
        yield Pair(go, py)


def test_exif_orientation_fixed_on_upload(orient_pair: Pair) -> None:
    """-images.fix.orientation: JPEGs are turned upright on upload (re-encoded, so sizes compare)."""
    bad = []
    for i, orient in enumerate([1, 3, 6, 8, 9]):
        fid = f"1,{0x10 + i:x}1b2c3d4e"
        for p_ in (orient_pair.go.url, orient_pair.py.url):
            fetch(p_, "POST", f"/{fid}?ts=1700000000", files={"file": ("o.jpg", _exif_jpeg(orient), "image/jpeg")})
        g = fetch(orient_pair.go.url, "GET", f"/{fid}")
        p = fetch(orient_pair.py.url, "GET", f"/{fid}")
        unchanged = (g.body == _exif_jpeg(orient)) == (p.body == _exif_jpeg(orient))
        if g.status != p.status or _size(g.body) != _size(p.body) or not unchanged:
            bad.append(f"orientation {orient}: go {g.status} {_size(g.body)} native {p.status} {_size(p.body)}")
        if orient in (6, 8):
            assert _size(p.body) == (20, 40)
    assert not bad, bad
