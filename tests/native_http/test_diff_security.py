"""Differential: JWT (write + read keys, the harness's P3 profile), the write whitelist, and the
split public port, against Go volume servers configured the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from weedpy.serve.jwt import sign_file_id_token
from tests.native_http.support import go_and_native, write_security
from tests.native_http.test_diff_basic import Pair
from tests.support.compare import Raw, fetch
from weedpy.security import load_security

WRITE_KEY = b"volume-server-write-key"
READ_KEY = b"volume-server-read-key"
SECURITY = f"""
[jwt.signing]
key = "{WRITE_KEY.decode()}"
expires_after_seconds = 60
[jwt.signing.read]
key = "{READ_KEY.decode()}"
expires_after_seconds = 60
"""


@pytest.fixture(scope="module")
def jwt_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work: Path = tmp_path_factory.mktemp("diff-jwt")
    conf = work / "conf"
    sec_path = write_security(conf, SECURITY)
    with go_and_native(work, config_dir=conf, security=load_security(sec_path, environ={})) as (go, py):
        yield Pair(go, py)


def w(fid: str, **kw: object) -> str:
    return sign_file_id_token(WRITE_KEY, fid, **kw)  # type: ignore[arg-type]


def r(fid: str, **kw: object) -> str:
    return sign_file_id_token(READ_KEY, fid, **kw)  # type: ignore[arg-type]


def test_jwt_writes_reads_deletes(jwt_pair: Pair) -> None:
    s = jwt_pair.same
    fid = "1,0a1b2c3d4e"
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret")
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Authorization": "Bearer " + w(fid)})
    s("PUT", f"/{fid}?ts=1700000000&jwt=" + w(fid), content=b"secret")
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Cookie": "AT=" + w(fid)})
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Authorization": "Bearer " + r(fid)})
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Authorization": "Bearer " + w("1,0b1b2c3d4e")})
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Authorization": "bearer " + w(fid)})
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Authorization": "Basic " + w(fid)})
    s("PUT", f"/{fid}?ts=1700000000", content=b"secret", headers={"Authorization": "Bearer"})
    s("PUT", f"/{fid}?ts=1700000000", content=b"x", headers={"Authorization": "Bearer " + w(fid, expires_after=0, extra={"exp": int(time.time()) - 5})})
    s("PUT", f"/{fid}?ts=1700000000", content=b"x", headers={"Authorization": "Bearer " + w(fid, extra={"nbf": int(time.time()) + 3600})})
    s("PUT", f"/{fid}?ts=1700000000", content=b"x", headers={"Authorization": "Bearer " + w(fid, alg="HS512")})
    s("PUT", f"/{fid}?ts=1700000000", content=b"x", headers={"Authorization": "Bearer " + w(fid)[:-2]})
    s("PUT", f"/{fid}?ts=1700000000", content=b"x", headers={"Authorization": "Bearer e30.e30."})
    s("PUT", "/1,0c1b2c3d4e_7?ts=1700000000", content=b"delta", headers={"Authorization": "Bearer " + w("1,0c1b2c3d4e")})
    s("PUT", "/1,0d1b2c3d4e.txt?ts=1700000000", content=b"ext", headers={"Authorization": "Bearer " + w("1,0d1b2c3d4e")})
    s("PUT", "/abc,0d1b2c3d4e", content=b"ext")
    # reads need the read key
    s("GET", f"/{fid}")
    s("GET", f"/{fid}", headers={"Authorization": "Bearer " + r(fid)})
    s("GET", f"/{fid}?jwt=" + r(fid))
    s("GET", f"/{fid}", headers={"Cookie": "a=b; AT=" + r(fid)})
    s("GET", f"/{fid}", headers={"Authorization": "Bearer " + w(fid)})
    s("GET", f"/{fid}?jwt=bad", headers={"Authorization": "Bearer " + r(fid)}, label="bad query beats good header")
    s("GET", f"/{fid}", headers={"Authorization": "Bearer bad", "Cookie": "AT=" + r(fid)}, label="bad header beats cookie")
    s("GET", f"/{fid}?jwt=" + r(fid), headers={"Authorization": "Bearer bad"}, label="query beats bad header")
    s("HEAD", f"/{fid}", headers={"Authorization": "Bearer " + r(fid)})
    s("GET", "/1/0a1b2c3d4e/x.txt", headers={"Authorization": "Bearer " + r(fid)})
    s("GET", "/1,0c1b2c3d4e_7", headers={"Authorization": "Bearer " + r("1,0c1b2c3d4e")})
    s("GET", "/abc,0a1b2c3d4e", label="jwt before vid parse")
    s("GET", "/stats/counter")
    s("GET", "/ui/index.html")
    s("GET", "/1,0a1b2c3d4e", headers={"Authorization": "Bearer " + r(fid, expires_after=60)})
    # deletes need the write key
    s("DELETE", f"/{fid}")
    s("DELETE", f"/{fid}", headers={"Authorization": "Bearer " + r(fid)})
    s("DELETE", "/1,zz", headers={"Authorization": "Bearer " + w(fid)})
    s("DELETE", f"/{fid}", headers={"Authorization": "Bearer " + w(fid)})
    jwt_pair.check()


def fetch_from(addr: str, base_url: str, method: str, path: str, **kw: object) -> Raw:
    """fetch() from a given loopback source address (to be outside or inside the whitelist)."""
    transport = httpx.HTTPTransport(local_address=addr)
    with httpx.Client(base_url=base_url, timeout=30, transport=transport) as c:
        with c.stream(method, path, **kw) as resp:  # type: ignore[arg-type]
            own = base_url.split("://", 1)[-1].encode()
            return Raw(resp.status_code, list(resp.headers.raw), b"".join(resp.iter_raw()), own_addr=own)


class WhitelistPair(Pair):
    def same_from(self, addr: str, method: str, path: str, **kw: object) -> Raw:
        go = fetch_from(addr, self.go.url, method, path, **kw)
        py = fetch_from(addr, self.py.url, method, path, **kw)
        self.results.append((f"from {addr}: {method} {path}", go, py))
        return py


@pytest.fixture(scope="module")
def wl_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhitelistPair]:
    wl = "-whiteList=127.0.0.1,127.0.3.0/24"
    with go_and_native(tmp_path_factory.mktemp("diff-whitelist"), volumes=1, flags=(wl,)) as (go, py):
        yield WhitelistPair(go, py)


def test_whitelist_blocks_writes_and_deletes_only(wl_pair: WhitelistPair) -> None:
    s = wl_pair.same_from
    for src in ("127.0.0.2", "127.0.3.9", "127.0.0.1"):
        s(src, "PUT", "/1,0a1b2c3d4e?ts=1700000000", content=b"x")
        s(src, "POST", "/1,0a1b2c3d4e?ts=1700000000", files={"file": ("a.txt", b"x")})
        s(src, "GET", "/1,0a1b2c3d4e")
        s(src, "OPTIONS", "/1,0a1b2c3d4e")
        s(src, "PATCH", "/1,0a1b2c3d4e")
        s(src, "DELETE", "/1,0b1b2c3d4e")
    s("127.0.0.2", "DELETE", "/1,0a1b2c3d4e")
    s("127.0.0.1", "DELETE", "/1,0a1b2c3d4e")
    wl_pair.check()


class PublicPair(Pair):
    def same_public(self, method: str, path: str, label: str = "", **kw: object):
        go = fetch(f"http://127.0.0.1:{self.go.public_port}", method, path, **kw)
        py = fetch(self.py.public_url, method, path, **kw)
        self.results.append((label or f"public {method} {path}", go, py))
        return py


@pytest.fixture(scope="module")
def public_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicPair]:
    with go_and_native(tmp_path_factory.mktemp("diff-public"), volumes=1, split_public=True) as (go, py):
        assert go.public_port != go.port
        yield PublicPair(go, py)


def test_public_port_is_read_only(public_pair: PublicPair) -> None:
    p = public_pair
    p.same("PUT", "/1,0a1b2c3d4e?ts=1700000000", content=b"public data")
    for m in ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"]:
        p.same_public(m, "/1,0a1b2c3d4e")
        p.same_public(m, "/1,0a1b2c3d4e", headers={"Origin": "http://o"})
    p.same_public("GET", "/1,0a1b2c3d4e", headers={"Range": "bytes=0-3"})
    p.same_public("GET", "/status")
    p.same_public("GET", "/healthz")
    p.same_public("GET", "/1,zz")
    p.same("GET", "/1,0a1b2c3d4e")
    p.same("DELETE", "/1,0a1b2c3d4e")
    p.check()
