"""Proxy mode relays the Go volume server byte for byte.

Each style of flags (Go's `-name=value` and the harness's `--name value`) starts a weedpy proxy on
its own master; a plain Go volume server runs on another master. The same requests, with the same
file ids, go to both; status, header list (names, order, values) and body must match except for
Date and X-Amz-Request-Id, whose values are per-response.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.compare import Raw, diff_text, fetch
from tests.support.procs import MasterProc, VolumeProc, start_go_volume, start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume

@dataclasses.dataclass
class Pair:
    go: VolumeProc
    weedpy: VolumeProc
    masters: tuple[MasterProc, MasterProc]


def _grow_volume_1(master: MasterProc, server: VolumeProc) -> None:
    """Create volume 1 through the master; the master must know the server by its front ports."""
    wait_for_volume_server(master, f"127.0.0.1:{server.port}")
    r = httpx.get(f"{master.url}/vol/grow", params={"count": 1, "replication": "000"}, timeout=30)
    assert r.status_code == 200, r.text
    lookup = httpx.get(f"{master.url}/dir/lookup", params={"volumeId": 1}).json()
    assert [(loc["url"], loc["publicUrl"], loc["grpcPort"]) for loc in lookup["locations"]] == [
        (f"127.0.0.1:{server.port}", f"127.0.0.1:{server.public_port}", server.grpc_port)
    ], lookup


@pytest.fixture(scope="module", params=["go", "dash"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work: Path = tmp_path_factory.mktemp(f"parity-{request.param}")
    m_go = start_master(work / "m-go")
    m_py = start_master(work / "m-py")
    go = weedpy = None
    try:
        go = start_go_volume(work, m_go)
        weedpy = start_weedpy_volume(work, m_py, style=request.param)
        _grow_volume_1(m_go, go)
        _grow_volume_1(m_py, weedpy)
        yield Pair(go, weedpy, (m_go, m_py))
    finally:
        for p in (weedpy, go):
            if p is not None:
                p.stop()
        m_go.stop()
        m_py.stop()


def assert_same(pair: Pair, method: str, path: str, body: Callable[[], object] | None = None, **kw: object) -> Raw:
    """Send the same request to both; `body` makes a fresh (e.g. streaming) body for each."""
    go = fetch(pair.go.url, method, path, **kw, **({"content": body()} if body else {}))
    py = fetch(pair.weedpy.url, method, path, **kw, **({"content": body()} if body else {}))
    assert py.masked() == go.masked(), diff_text(f"{method} {path}", go, py)
    return py


def test_upload_read_delete_sequence_matches_go(pair: Pair) -> None:
    fid = "1,0a1b2c3d4e"
    data = b"hello weedpy\n" * 100
    r = assert_same(pair, "POST", f"/{fid}?ts=1700000000", files={"file": ("hello.txt", data, "text/plain")})
    assert r.status == 201 and json.loads(r.body)["size"] == len(data)
    assert_same(pair, "GET", f"/{fid}")
    assert_same(pair, "HEAD", f"/{fid}")
    etag = assert_same(pair, "GET", f"/{fid}", headers={"Range": "bytes=5-20"}).header(b"etag")
    assert_same(pair, "GET", f"/{fid}", headers={"Range": "bytes=0-1,4-5"})
    assert_same(pair, "GET", f"/{fid}", headers={"If-None-Match": (etag or b"").decode()})
    assert_same(pair, "GET", "/1/0a1b2c3d4e/hello.txt")
    assert_same(pair, "GET", f"/{fid}", headers={"Origin": "http://example.com"})
    assert_same(pair, "DELETE", f"/{fid}")
    r = assert_same(pair, "GET", f"/{fid}")
    assert r.status == 404


def test_raw_body_uploads_and_errors_match_go(pair: Pair) -> None:
    fid = "1,0b00112233"
    assert_same(pair, "PUT", f"/{fid}?ts=1700000001", content=b"\x00raw bytes\xff" * 50,
                headers={"Content-Type": "application/octet-stream"})
    assert_same(pair, "GET", f"/{fid}")
    assert_same(pair, "GET", "/1,0b00112299")          # cookie mismatch
    assert_same(pair, "GET", "/not-a-volume,1234")     # bad vid
    assert_same(pair, "GET", "/9999,0c11223344")       # unknown volume
    assert_same(pair, "PATCH", f"/{fid}")              # unsupported method
    assert_same(pair, "OPTIONS", f"/{fid}")
    assert_same(pair, "POST", "/1/0b00112233", content=b"x")  # writes need /vid,fid


def test_chunked_upload_is_relayed(pair: Pair) -> None:
    fid = "1,0d55667788"

    def body() -> Iterator[bytes]:
        for i in range(20):
            yield b"piece %d\n" % i * 100

    assert_same(pair, "PUT", f"/{fid}?ts=1700000002", body=body, headers={"Content-Type": "text/plain"})
    assert_same(pair, "GET", f"/{fid}", headers={"Accept-Encoding": "gzip"})
    assert_same(pair, "GET", f"/{fid}")


def _backend_grpc_port(gateway: VolumeProc) -> int:
    """The private gRPC port of the gateway's Go backend (from the child's command line)."""
    from tests.gateway.test_proxy_lifecycle import backend_pid

    argv = Path(f"/proc/{backend_pid(gateway)}/cmdline").read_bytes().split(b"\0")
    return int(next(a for a in argv if a.startswith(b"-port.grpc=")).split(b"=")[1])


def test_grpc_through_the_front_port_with_an_independent_client(pair: Pair) -> None:
    """grpclib (asyncio, not our gRPC core) through the front port, and the same calls direct to Go."""
    import asyncio

    from grpclib.client import Channel
    from grpclib.const import Cardinality

    from proto import volume_server_pb2 as vs

    svc = "/volume_server_pb.VolumeServer/"
    front, direct = pair.weedpy.grpc_port, _backend_grpc_port(pair.weedpy)

    async def calls(port: int, vid: int) -> dict[str, object]:
        ch = Channel("127.0.0.1", port)
        try:
            async def unary(name: str, req: object, resp_type: type) -> object:
                async with ch.request(svc + name, Cardinality.UNARY_UNARY, type(req), resp_type, timeout=30) as st:
                    await st.send_message(req, end=True)
                    return await st.recv_message()

            status = await unary("VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
            ping = await unary("Ping", vs.PingRequest(), vs.PingResponse)
            await unary("AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, replication="000", version=3),
                        vs.AllocateVolumeResponse)
            chunks = []
            async with ch.request(svc + "CopyFile", Cardinality.UNARY_STREAM, vs.CopyFileRequest,
                                  vs.CopyFileResponse, timeout=30) as st:
                await st.send_message(vs.CopyFileRequest(volume_id=1, ext=".idx", compaction_revision=0,
                                                         stop_offset=1 << 40, ignore_source_file_not_found=False),
                                      end=True)
                async for msg in st:
                    chunks.append(msg.file_content)
            return {"version": status.version, "disks": [d.dir for d in status.disk_statuses],
                    "ping": ping.start_time_ns > 0, "idx": b"".join(chunks)}
        finally:
            ch.close()

    via_front = asyncio.run(calls(front, 60))
    via_go = asyncio.run(calls(direct, 61))
    assert via_front["ping"] and via_front["version"] == via_go["version"]
    assert via_front["disks"] == via_go["disks"]
    assert via_front["idx"] == via_go["idx"] and len(via_front["idx"]) > 0
