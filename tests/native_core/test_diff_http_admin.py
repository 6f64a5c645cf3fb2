"""Differential: the control-plane HTTP endpoints (/healthz, /readyz, /ui/index.html, /stats/*,
/favicon.ico, /seaweedfsstatic/*) sent to a Go 4.48 volume server and to native weedpy; raw
responses compared after the shared mask (tests/support/compare.py). The UI page is our own
template: its status, headers and title are compared, not its markup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.native_core.support import Side, start_pair_sides
from tests.support.compare import Raw, diff_text, fetch

pytestmark = pytest.mark.slow


class Pair:
    def __init__(self, go: Side, py: Side) -> None:
        self.go, self.py = go, py
        self.mismatches: list[str] = []

    def same(self, method: str, path: str, *, label: str = "", ignore_body: bool = False, **kw) -> tuple[Raw, Raw]:
        g = fetch(self.go.url, method, path, **kw)
        p = fetch(self.py.url, method, path, **kw)
        gs, gh, gb = g.masked()
        ps, ph, pb = p.masked()
        if ignore_body:
            gh = [(k, v) for k, v in gh if k.lower() != b"content-length"]
            ph = [(k, v) for k, v in ph if k.lower() != b"content-length"]
            gb = pb = b""
        if (gs, gh, gb) != (ps, ph, pb):
            self.mismatches.append(diff_text(label or f"{method} {path}", g, p))
        return g, p

    def check(self) -> None:
        mismatches, self.mismatches = self.mismatches, []
        assert not mismatches, "\n\n".join(mismatches)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    go, py = start_pair_sides(tmp_path_factory.mktemp("diff-http-admin"))
    try:
        yield Pair(go, py)
    finally:
        go.stop()
        py.stop()


def test_health_endpoints(pair: Pair) -> None:
    for path in ("/healthz", "/readyz"):
        for method in ("GET", "HEAD", "POST", "DELETE"):
            pair.same(method, path)
        pair.same("GET", path, headers={"Origin": "http://example.com"}, label=f"{path} with Origin")
        pair.same("GET", path + "?x=1")
    pair.check()


def test_stats_endpoints_are_absent_as_in_go(pair: Pair) -> None:
    for path in ("/stats/counter", "/stats/memory", "/stats/disk"):
        pair.same("GET", path)
        pair.same("POST", path)
    pair.check()


STATIC = (
    "/favicon.ico", "/favicon.ico?v=2", "/seaweedfsstatic/", "/seaweedfsstatic/images", "/seaweedfsstatic/images/",
    "/seaweedfsstatic/images/folder.gif", "/seaweedfsstatic/seaweed50x50.png", "/seaweedfsstatic/seaweed50x50.png/",
    "/seaweedfsstatic/bootstrap/3.3.1/css/bootstrap.min.css", "/seaweedfsstatic/javascript/jquery-3.6.0.min.js",
    "/seaweedfsstatic/bootstrap/3.3.1/fonts/glyphicons-halflings-regular.woff", "/seaweedfsstatic/nope.txt",
    "/seaweedfsstatic/index.html", "/seaweedfsstatic/bootstrap/?q=1", "/seaweedfsstatic/bootstrap",
)


def test_static_files(pair: Pair) -> None:
    for path in STATIC:
        pair.same("GET", path)
    for path in ("/favicon.ico", "/seaweedfsstatic/", "/seaweedfsstatic/seaweed50x50.png"):
        pair.same("HEAD", path)
        pair.same("POST", path)
    pair.same("GET", "/favicon.ico", headers={"Origin": "http://example.com"}, label="favicon with Origin")
    pair.check()


def test_static_ranges(pair: Pair) -> None:
    for rng in ("bytes=0-9", "bytes=10-", "bytes=-5", "bytes=99999-", "bytes=0-1,4-5"):
        pair.same("GET", "/seaweedfsstatic/seaweed50x50.png", headers={"Range": rng}, label=f"range {rng}")
    pair.check()


def test_ui_page(pair: Pair) -> None:
    g, p = pair.same("GET", "/ui/index.html", ignore_body=True)
    title = re.compile(rb"<title>([^<]*)</title>")
    assert title.search(g.body).group(1) == title.search(p.body).group(1) == b"SeaweedFS 8000GB 4.48 pypi"
    for link in (b"/seaweedfsstatic/bootstrap/3.3.1/css/bootstrap.min.css", b"/seaweedfsstatic/seaweed50x50.png"):
        assert link in g.body and link in p.body
    pair.same("HEAD", "/ui/index.html", ignore_body=True)
    pair.check()
