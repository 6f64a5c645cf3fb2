"""Vacuum against the real Go 4.48 binary: the same volume compacted by Go and by a native weedpy
server (through VacuumVolumeCompact/Commit) comes out byte-identical; each side then serves the
other's compacted files; a compaction with writes and deletes landing before the commit
(makeupDiff) is read correctly by Go."""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from native.storage import Store
from proto import volume_server_pb2 as vs
from tests.native_core.support import start_go, start_native
from tests.support.procs import MasterProc, VolumeProc, start_master
from weedpy.grpc import Channel

pytestmark = pytest.mark.slow

P = "/volume_server_pb.VolumeServer/"
PLAIN, TTL_VOL = 31, 32


async def _vacuum(port: int, vid: int) -> tuple[list, vs.VacuumVolumeCommitResponse]:
    async with Channel("127.0.0.1", port) as ch:
        progress = []
        async with ch.unary_stream(P + "VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=vid),
                                   vs.VacuumVolumeCompactResponse, timeout=120) as responses:
            async for msg in responses:
                progress.append(msg)
        commit = await ch.unary_unary(P + "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=vid),
                                      vs.VacuumVolumeCommitResponse, timeout=120)
        return progress, commit


def vacuum(v: VolumeProc, vid: int) -> vs.VacuumVolumeCommitResponse:
    return trio.run(_vacuum, v.grpc_port, vid)[1]


def allocate(v: VolumeProc, vid: int, ttl: str = "") -> None:
    async def run() -> None:
        async with Channel("127.0.0.1", v.grpc_port) as ch:
            await ch.unary_unary(P + "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3, ttl=ttl),
                                 vs.AllocateVolumeResponse, timeout=30)

    trio.run(run)


def fid(vid: int, key: int) -> str:
    return f"{vid},{key:x}{0xC0FFEE00 + key:08x}"


def corpus(go: VolumeProc) -> dict[str, bytes | None]:
    """Every needle feature Go writes, then overwrites and deletes; returns what reads should give."""
    rnd = random.Random(7)
    want: dict[str, bytes | None] = {}
    now = int(time.time())
    allocate(go, PLAIN)
    allocate(go, TTL_VOL, ttl="1h")

    def up(f: str, body: bytes, name: str = "f.bin", mime: str = "application/x-test", headers=None, **params: str) -> None:
        r = httpx.post(f"{go.url}/{f}", params=params, files={"file": (name, body, mime)}, headers=headers or {}, timeout=30)
        assert r.status_code == 201, r.text
        want[f] = body

    for key in range(1, 40):
        kind = key % 5
        if kind == 0:
            up(fid(PLAIN, key), b"compressible text " * 200, name="t.txt", mime="text/plain", ts=str(now - key))
        elif kind == 1:
            up(fid(PLAIN, key), rnd.randbytes(rnd.randint(1, 9000)), headers={"Seaweed-Owner": f"o{key}"}, ts=str(now - key))
        elif kind == 2:
            up(fid(PLAIN, key), rnd.randbytes(300), name="n" * (key * 7 % 200), ts=str(now - key))
        else:
            up(fid(PLAIN, key), rnd.randbytes(rnd.randint(1, 4000)), ts=str(now - key))
    up(fid(PLAIN, 50), rnd.randbytes(2 * 1024 * 1024 + 77), ts=str(now))
    up(fid(PLAIN, 51), b"", ts=str(now))
    up(fid(PLAIN, 52), b"short-lived", ttl="3d", ts=str(now))  # Go's vacuum drops it: its TTL flag + the volume's 0 TTL
    for key in (3, 8, 13, 21):
        up(fid(PLAIN, key), rnd.randbytes(500), ts=str(now))
    for key in (5, 6, 17, 33):
        assert httpx.delete(f"{go.url}/{fid(PLAIN, key)}", timeout=30).status_code == 202
        want[fid(PLAIN, key)] = None
    for key in range(1, 12):  # half expired by the volume's 1h TTL
        up(fid(TTL_VOL, key), rnd.randbytes(700), ts=str(now - (7200 if key % 2 else 60)))
    assert httpx.delete(f"{go.url}/{fid(TTL_VOL, 4)}", timeout=30).status_code == 202
    want[fid(TTL_VOL, 4)] = None
    return want


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MasterProc, Path, Path, dict]]:
    work = tmp_path_factory.mktemp("vacuum-go")
    master = start_master(work)
    go_dir, py_dir = work / "go-data", work / "py-data"
    try:
        go = start_go(work, master, data_dir=go_dir)
        try:
            want = corpus(go)
        finally:
            go.stop()
        shutil.copytree(go_dir, py_dir)
        go = start_go(work, master, data_dir=go_dir, name="go-again")
        try:
            go_commits = {vid: vacuum(go, vid) for vid in (PLAIN, TTL_VOL)}
        finally:
            go.stop()
        native = start_native(work, master, data_dir=py_dir)
        try:
            py_commits = {vid: vacuum(native, vid) for vid in (PLAIN, TTL_VOL)}
        finally:
            native.stop()
        assert {v: c.volume_size for v, c in go_commits.items()} == {v: c.volume_size for v, c in py_commits.items()}
        yield master, go_dir, py_dir, want
    finally:
        master.stop()


def test_go_and_native_compactions_are_byte_identical(compacted) -> None:
    _, go_dir, py_dir, _ = compacted
    for vid in (PLAIN, TTL_VOL):
        for ext in (".dat", ".idx"):
            go_bytes, py_bytes = (go_dir / f"{vid}{ext}").read_bytes(), (py_dir / f"{vid}{ext}").read_bytes()
            assert go_bytes == py_bytes, f"{vid}{ext}: {len(go_bytes)} vs {len(py_bytes)} bytes"
        assert not list(py_dir.glob(f"{vid}.cp*"))
        assert (go_dir / f"{vid}.dat").read_bytes()[4:6] == b"\x00\x01"  # compaction revision 1


def test_go_dropped_what_weedpy_drops(compacted) -> None:
    _, go_dir, _, want = compacted
    store = Store.open([go_dir])
    try:
        plain = store.volume(PLAIN)
        assert plain.needle_value(52) is None  # the TTL-flagged needle in the plain volume
        ttl = store.volume(TTL_VOL)
        assert sorted(nv.key for nv in ttl.nm.items()) == [2, 6, 8, 10]  # fresh ones, minus the deleted 4
    finally:
        store.close()


def test_go_serves_the_native_compaction_and_weedpy_reads_gos(compacted, tmp_path: Path) -> None:
    master, go_dir, py_dir, want = compacted
    go = start_go(tmp_path, master, data_dir=py_dir, name="go-on-native-files")
    try:
        for f, body in want.items():
            if f.startswith(f"{TTL_VOL},") or f == fid(PLAIN, 52):
                continue
            r = httpx.get(f"{go.url}/{f}", headers={"Accept-Encoding": "identity"}, timeout=30)
            if body is None:
                assert r.status_code == 404, f
            else:
                assert (r.status_code, r.content) == (200, body), f
    finally:
        go.stop()
    store = Store.open([go_dir])
    try:
        v = store.volume(PLAIN)
        assert v.integrity_error is None and not v.read_only
        for f, body in want.items():
            if not f.startswith(f"{PLAIN},") or body is None or f == fid(PLAIN, 52):
                continue
            key = int(f.split(",")[1][:-8], 16)
            n = v.read_needle(key)
            data = __import__("gzip").decompress(n.data) if n.is_compressed else n.data
            assert data == body, f
    finally:
        store.close()


def test_commit_replays_late_writes_and_go_reads_the_result(tmp_path: Path) -> None:
    master = start_master(tmp_path)
    try:
        native = start_native(tmp_path, master)
        try:
            allocate(native, 41)
            bodies = {}
            for key in range(1, 20):
                bodies[key] = random.Random(key).randbytes(999)
                r = httpx.post(f"{native.url}/{fid(41, key)}", files={"file": ("f", bodies[key])}, timeout=30)
                assert r.status_code == 201
            for key in (2, 3):
                httpx.delete(f"{native.url}/{fid(41, key)}", timeout=30)

            async def run() -> None:
                async with Channel("127.0.0.1", native.grpc_port) as ch:
                    async with ch.unary_stream(P + "VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=41),
                                               vs.VacuumVolumeCompactResponse) as responses:
                        async for _ in responses:
                            pass
                    # between compaction and commit: a new needle, an overwrite, deletions
                    async with httpx.AsyncClient() as client:
                        assert (await client.post(f"{native.url}/{fid(41, 30)}", files={"file": ("f", b"late")})).status_code == 201
                        assert (await client.post(f"{native.url}/{fid(41, 4)}", files={"file": ("f", b"rewritten")})).status_code == 201
                        assert (await client.delete(f"{native.url}/{fid(41, 5)}")).status_code == 202
                    await ch.unary_unary(P + "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=41), vs.VacuumVolumeCommitResponse)

            trio.run(run)
        finally:
            native.stop()
        bodies.update({30: b"late", 4: b"rewritten"})
        for key in (2, 3, 5):
            bodies[key] = None
        go = start_go(tmp_path, master, data_dir=native.data_dir, name="go-after")
        try:
            for key, body in bodies.items():
                r = httpx.get(f"{go.url}/{fid(41, key)}", timeout=30)
                assert (r.status_code, r.content if body is not None else None) == ((200, body) if body is not None else (404, None)), key
        finally:
            go.stop()
    finally:
        master.stop()


def test_master_driven_vacuum_of_a_native_server(tmp_path: Path) -> None:
    """`weed shell volume.vacuum`: Go's master runs check/compact/commit on the native server."""
    import subprocess

    from weedpy.weedbin import find_weed_binary

    master = start_master(tmp_path)
    try:
        native = start_native(tmp_path, master)
        try:
            fids = []
            for _ in range(30):
                a = httpx.get(f"{master.url}/dir/assign", timeout=10).json()
                body = random.Random(a["fid"]).randbytes(20000)
                assert httpx.post(f"http://{a['url']}/{a['fid']}", files={"file": ("f", body)}, timeout=10).status_code == 201
                fids.append((a["url"], a["fid"], body))
            for url, f, _ in fids[:20]:
                assert httpx.delete(f"http://{url}/{f}", timeout=10).status_code == 202
            sizes = {p.name: p.stat().st_size for p in native.data_dir.glob("*.dat")}
            out = subprocess.run(
                [str(find_weed_binary()), "shell", f"-master={master.address}"],
                input="lock\nvolume.vacuum -garbageThreshold 0.1\nunlock\n", capture_output=True, text=True, timeout=120,
            )
            assert out.returncode == 0, out.stderr
            after = {p.name: p.stat().st_size for p in native.data_dir.glob("*.dat")}
            assert sum(after.values()) < sum(sizes.values()) - 20 * 20000
            for url, f, body in fids[20:]:
                r = httpx.get(f"http://{url}/{f}", timeout=10)
                assert (r.status_code, r.content) == (200, body)
            for url, f, _ in fids[:20]:
                assert httpx.get(f"http://{url}/{f}", timeout=10).status_code == 404
        finally:
            native.stop()
    finally:
        master.stop()
