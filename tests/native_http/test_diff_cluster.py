"""Differential with other servers involved: reads of volumes that live elsewhere (proxy,
redirect, local read modes), replicated writes and deletes (fan-out with type=replicate), and
chunk manifests (expansion, cm=false, delete of the chunks).

Go world: master MG, Go fronts A_<mode>, Go peer B. Native world: master MN, native fronts
N_<mode> (in-process), Go peer B'. B and B' hold the same volumes and needles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.native_http.support import NativeServer, allocate_go, start_native, wait_lookup
from tests.support.compare import Raw, diff_text, fetch
from tests.support.procs import MasterProc, VolumeProc, start_go_volume, start_master

MODES = ("proxy", "redirect", "local")
LOCAL_VOLUME = {"proxy": 1, "redirect": 4, "local": 5}  # each front's own volume (one location each)


@dataclasses.dataclass
class Cluster:
    mg: MasterProc
    mn: MasterProc
    b: VolumeProc
    b2: VolumeProc
    go: dict[str, VolumeProc]
    py: dict[str, NativeServer]
    results: list[tuple[str, Raw, Raw]] = dataclasses.field(default_factory=list)

    def aliases(self) -> tuple[tuple[bytes, bytes], ...]:
        return ((f"127.0.0.1:{self.b.port}".encode(), b"<peer>"), (f"127.0.0.1:{self.b2.port}".encode(), b"<peer>"))

    def same(self, mode: str, method: str, path: str, label: str = "", **kw: object) -> Raw:
        g = fetch(self.go[mode].url, method, path, **kw)
        p = fetch(self.py[mode].url, method, path, **kw)
        g.aliases = p.aliases = self.aliases()
        self.results.append((label or f"[{mode}] {method} {path}", g, p))
        return p

    def same_peer(self, method: str, path: str, **kw: object) -> Raw:
        g = fetch(self.b.url, method, path, **kw)
        p = fetch(self.b2.url, method, path, **kw)
        self.results.append((f"[peer] {method} {path}", g, p))
        return p

    def check(self) -> None:
        bad = [diff_text(lbl, g, p) for lbl, g, p in self.results if g.masked() != p.masked()]
        n = len(self.results)
        self.results.clear()
        assert not bad, f"{len(bad)} of {n} cases differ:\n\n" + "\n\n".join(bad)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work: Path = tmp_path_factory.mktemp("diff-cluster")
    mg = start_master(work / "mg")
    mn = start_master(work / "mn")
    procs: list[VolumeProc] = []
    with contextlib.ExitStack() as stack:
        try:
            b = start_go_volume(work, mg, name="b")
            b2 = start_go_volume(work, mn, name="b2")
            procs += [b, b2]
            go = {}
            for mode in MODES:
                go[mode] = start_go_volume(work, mg, name=f"a-{mode}", extra=[f"-readMode={mode}"])
                procs.append(go[mode])
            for peer in (b, b2):
                allocate_go(peer, 2)
                allocate_go(peer, 3, replication="001")
            for mode in MODES:
                allocate_go(go[mode], LOCAL_VOLUME[mode])
            allocate_go(go["proxy"], 3, replication="001")
            wait_lookup(mg, 2, 1)
            wait_lookup(mn, 2, 1)
            wait_lookup(mg, 3, 2)
            wait_lookup(mn, 3, 1)
            py = {}
            for mode in MODES:
                vols = (1, 3) if mode == "proxy" else (LOCAL_VOLUME[mode],)
                py[mode] = stack.enter_context(start_native(
                    work / f"n-{mode}", volumes=vols, master_url=mn.url, flags=(f"-readMode={mode}",),
                    volume_replication={3: "001"},
                ))
            yield Cluster(mg, mn, b, b2, go, py)
        finally:
            for p in procs:
                p.stop()
            mg.stop()
            mn.stop()


def test_reads_of_volumes_elsewhere(cluster: Cluster) -> None:
    c = cluster
    c.same_peer("PUT", "/2,0a1b2c3d4e?ts=1700000000", content=b"remote needle data " * 50,
                headers={"Content-Type": "application/octet-stream"})
    c.same_peer("PUT", "/2,0b1b2c3d4e?ts=1700000000", content=b"remote text " * 50, headers={"Content-Type": "text/plain"})
    c.same_peer("DELETE", "/2,0a1b2c3d4e?ts=1700000001")
    c.same_peer("PUT", "/2,0a1b2c3d4e?ts=1700000002", content=b"")
    for mode in MODES:
        for path in ["/2,0a1b2c3d4e", "/2,0b1b2c3d4e", "/2,0b1b2c3d4e?readDeleted=true&collection=c1&x=1",
                     "/2/0b1b2c3d4e/name.txt", "/2,0b1b2c3d4f", "/2,0c1b2c3d4e", "/9,0b1b2c3d4e"]:
            c.same(mode, "GET", path)
        c.same(mode, "HEAD", "/2,0b1b2c3d4e")
        c.same(mode, "GET", "/2,0b1b2c3d4e", headers={"Range": "bytes=0-3"})
        c.same(mode, "GET", "/2,0b1b2c3d4e", headers={"Accept-Encoding": "gzip"})
        c.same(mode, "GET", "/2,0b1b2c3d4e", headers={"Accept-Encoding": "identity"})
        c.same(mode, "GET", "/2,0b1b2c3d4e", headers={"Origin": "http://o"})
    c.check()


def test_replicated_write_and_delete(cluster: Cluster) -> None:
    c = cluster
    c.same("proxy", "PUT", "/3,0a1b2c3d4e?ts=1700000000", content=b"replicated " * 30, headers={"Content-Type": "text/plain"})
    c.same("proxy", "POST", "/3,0b1b2c3d4e?ts=1700000000&ttl=3d", files={"file": ("r.bin", bytes(range(200)), "application/x-foo")},
           headers={"Seaweed-Owner": "me"})
    c.same("proxy", "PUT", "/3,0c1b2c3d4e?ts=1700000000", content=b"")
    c.same("proxy", "PUT", "/3,0a1b2c3d4e?ts=1700000000", content=b"replicated " * 30, headers={"Content-Type": "text/plain"})
    for fid in ("3,0a1b2c3d4e", "3,0b1b2c3d4e", "3,0c1b2c3d4e"):
        c.same_peer("GET", f"/{fid}")
        c.same("proxy", "GET", f"/{fid}")
    c.same("proxy", "DELETE", "/3,0b1b2c3d4e")
    c.same_peer("GET", "/3,0b1b2c3d4e")
    c.same_peer("GET", "/3,0b1b2c3d4e?readDeleted=true")
    c.same("proxy", "PUT", "/2,0d1b2c3d4e?ts=1700000000", content=b"to a remote-only volume")
    c.same_peer("GET", "/2,0d1b2c3d4e")
    c.same("proxy", "DELETE", "/2,0d1b2c3d4e")
    c.check()


def test_chunk_manifests(cluster: Cluster) -> None:
    c = cluster
    parts = [b"alpha-" * 100, b"bravo-" * 100, b"charlie" * 50]
    chunks = []
    off = 0
    for i, data in enumerate(parts):
        fid = f"1,1{i}1b2c3d4e"
        c.same("proxy", "PUT", f"/{fid}?ts=1700000000", content=data)
        chunks.append({"fid": fid, "offset": off, "size": len(data)})
        off += len(data)
    manifest = {"name": "big.txt", "mime": "text/plain", "size": off, "chunks": list(reversed(chunks))}
    body = json.dumps(manifest).encode()
    c.same("proxy", "POST", "/1,201b2c3d4e?cm=true&ts=1700000000", content=body, headers={"Content-Type": "application/json"})
    for h in [{}, {"Range": "bytes=590-610"}, {"Range": "bytes=0-1,700-705"}, {"Range": "bytes=5000-"}]:
        c.same("proxy", "GET", "/1,201b2c3d4e", headers=h)
    c.same("proxy", "HEAD", "/1,201b2c3d4e")
    c.same("proxy", "GET", "/1,201b2c3d4e?cm=false")
    c.same("proxy", "GET", "/1/201b2c3d4e/other.bin")
    bad = {"name": "bad.bin", "size": 3, "chunks": [{"fid": "not-a-valid-fid", "offset": 0, "size": 3}]}
    c.same("proxy", "POST", "/1,211b2c3d4e?cm=true&ts=1700000000", content=json.dumps(bad).encode(),
           headers={"Content-Type": "application/json"})
    c.same("proxy", "GET", "/1,211b2c3d4e")
    c.same("proxy", "DELETE", "/1,211b2c3d4e")
    c.same("proxy", "GET", "/1,211b2c3d4e?cm=false")
    missing = {"name": "m.bin", "size": 3, "chunks": [{"fid": "1,ff1b2c3d4e", "offset": 0, "size": 3}]}
    c.same("proxy", "POST", "/1,221b2c3d4e?cm=true&ts=1700000000", content=json.dumps(missing).encode())
    c.same("proxy", "GET", "/1,221b2c3d4e")
    c.same("proxy", "POST", "/1,231b2c3d4e?cm=true&ts=1700000000", content=b"not json")
    c.same("proxy", "GET", "/1,231b2c3d4e")
    c.same("proxy", "DELETE", "/1,231b2c3d4e")
    c.same("proxy", "DELETE", "/1,201b2c3d4e")
    c.same("proxy", "GET", "/1,201b2c3d4e")
    for ch in chunks:
        c.same("proxy", "GET", "/" + ch["fid"])
    c.check()
