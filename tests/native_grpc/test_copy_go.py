"""Volumes moving between a real Go `weed volume` (4.48) and a native weedpy process, both ways:
VolumeCopy (byte-identical files, mounted, readable, the last append timestamp) and
VolumeTailReceiver (later writes and deletes replayed). Both servers register with one master."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from native.storage import IdxCodec, parse_header
from proto import volume_server_pb2 as vs
from tests.native_core.support import Outcome, go_and_native_cluster
from tests.support.procs import MasterProc, VolumeProc
from weedpy.grpc import Channel, GrpcError

import trio

pytestmark = pytest.mark.slow

P = "/volume_server_pb.VolumeServer/"


def stream(port: int, method: str, request, response_type, timeout: float = 60) -> Outcome:
    async def run() -> Outcome:
        out = []
        async with Channel("127.0.0.1", port) as ch:
            try:
                async with ch.unary_stream(P + method, request, response_type, timeout=timeout) as responses:
                    async for msg in responses:
                        out.append(msg)
            except GrpcError as exc:
                return Outcome(tuple(out), exc.status.name, exc.message)
        return Outcome(tuple(out))

    return trio.run(run)


def unary(port: int, method: str, request, response_type, timeout: float = 60) -> Outcome:
    async def run() -> Outcome:
        async with Channel("127.0.0.1", port) as ch:
            try:
                return Outcome(await ch.unary_unary(P + method, request, response_type, timeout=timeout))
            except GrpcError as exc:
                return Outcome(None, exc.status.name, exc.message)

    return trio.run(run)


def address(v: VolumeProc) -> str:
    return f"127.0.0.1:{v.port}.{v.grpc_port}"


def upload(v: VolumeProc, fid: str, body: bytes, **params: str) -> None:
    r = httpx.post(f"{v.url}/{fid}", params=params, files={"file": ("f.bin", body, "application/x-test")}, timeout=30)
    assert r.status_code == 201, r.text


def delete(v: VolumeProc, fid: str) -> None:
    assert httpx.delete(f"{v.url}/{fid}", timeout=30).status_code == 202


def read(v: VolumeProc, fid: str) -> tuple[int, bytes]:
    r = httpx.get(f"{v.url}/{fid}", timeout=30)
    return r.status_code, r.content


def fid(vid: int, key: int) -> str:
    return f"{vid},{key:x}{0x5EED0000 + key:08x}"


def fill(v: VolumeProc, vid: int) -> dict[str, bytes | None]:
    """Uploads (one over 2 MiB, one empty), an overwrite and two deletes."""
    assert unary(v.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse).ok
    rnd = __import__("random").Random(vid)
    want: dict[str, bytes | None] = {}
    for key in range(1, 16):
        body = rnd.randbytes(3 * 1024 * 1024 if key == 7 else rnd.randint(1, 5000))
        upload(v, fid(vid, key), body, ts="1700000000")
        want[fid(vid, key)] = body
    upload(v, fid(vid, 3), b"overwritten", ts="1700000100")
    want[fid(vid, 3)] = b"overwritten"
    for key in (4, 9):
        delete(v, fid(vid, key))
        want[fid(vid, key)] = None
    return want


def assert_serves(v: VolumeProc, want: dict[str, bytes | None]) -> None:
    for f, body in want.items():
        status, got = read(v, f)
        if body is None:
            assert status == 404, f
        else:
            assert (status, got) == (200, body), f


def last_record_ns(idx: Path, dat: Path) -> int:
    codec = IdxCodec.for_width(5)
    row = list(codec.iter_entries(idx.read_bytes()))[-1]
    raw = dat.read_bytes()
    at = row.offset * 8
    size = max(parse_header(raw[at:at + 16]).size, 0)
    return int.from_bytes(raw[at + 16 + size + 4:at + 16 + size + 12], "big")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MasterProc, VolumeProc, VolumeProc]]:
    with go_and_native_cluster(tmp_path_factory.mktemp("copy-go")) as c:
        yield c


def test_go_volume_copied_by_native_is_byte_identical(cluster) -> None:
    _, go, native = cluster
    want = fill(go, 21)
    out = stream(native.grpc_port, "VolumeCopy", vs.VolumeCopyRequest(volume_id=21, source_data_node=address(go)), vs.VolumeCopyResponse)
    assert out.ok, out
    for ext in (".dat", ".idx"):
        assert (native.data_dir / f"21{ext}").read_bytes() == (go.data_dir / f"21{ext}").read_bytes(), ext
    assert [m.last_append_at_ns for m in out.response] == [last_record_ns(go.data_dir / "21.idx", go.data_dir / "21.dat")]
    assert os.stat(native.data_dir / "21.dat").st_mtime_ns == os.stat(go.data_dir / "21.dat").st_mtime_ns
    assert_serves(native, want)
    status_go = unary(go.grpc_port, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=21), vs.ReadVolumeFileStatusResponse).response
    status_py = unary(native.grpc_port, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=21), vs.ReadVolumeFileStatusResponse).response
    assert (status_py.dat_file_size, status_py.idx_file_size, status_py.file_count) == (
        status_go.dat_file_size, status_go.idx_file_size, status_go.file_count)


def test_native_volume_copied_by_go_is_byte_identical(cluster) -> None:
    _, go, native = cluster
    want = fill(native, 22)
    out = stream(go.grpc_port, "VolumeCopy", vs.VolumeCopyRequest(volume_id=22, source_data_node=address(native)), vs.VolumeCopyResponse)
    assert out.ok, out
    for ext in (".dat", ".idx"):
        assert (go.data_dir / f"22{ext}").read_bytes() == (native.data_dir / f"22{ext}").read_bytes(), ext
    assert [m.last_append_at_ns for m in out.response] == [last_record_ns(native.data_dir / "22.idx", native.data_dir / "22.dat")]
    assert_serves(go, want)


def copy_then_tail(src: VolumeProc, dst: VolumeProc, vid: int) -> dict[str, bytes | None]:
    """Fill `vid` on src, VolumeCopy it to dst, write, delete and overwrite on src, then
    VolumeTailReceiver on dst; checks dst's .dat/.idx sizes equal src's; what dst should serve."""
    want = fill(src, vid)
    out = stream(dst.grpc_port, "VolumeCopy", vs.VolumeCopyRequest(volume_id=vid, source_data_node=address(src)), vs.VolumeCopyResponse)
    assert out.ok, out
    checkpoint = out.response[-1].last_append_at_ns
    upload(src, fid(vid, 40), b"written after the copy")
    want[fid(vid, 40)] = b"written after the copy"
    delete(src, fid(vid, 5))
    want[fid(vid, 5)] = None
    upload(src, fid(vid, 3), b"overwritten again")
    want[fid(vid, 3)] = b"overwritten again"
    res = unary(dst.grpc_port, "VolumeTailReceiver", vs.VolumeTailReceiverRequest(
        volume_id=vid, since_ns=checkpoint, idle_timeout_seconds=1, source_volume_server=address(src),
    ), vs.VolumeTailReceiverResponse)
    assert res.ok, res
    src_status = unary(src.grpc_port, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid), vs.ReadVolumeFileStatusResponse).response
    dst_status = unary(dst.grpc_port, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid), vs.ReadVolumeFileStatusResponse).response
    assert (dst_status.dat_file_size, dst_status.idx_file_size) == (src_status.dat_file_size, src_status.idx_file_size)
    return want


def test_tailing_replays_writes_and_deletes_in_both_directions(cluster) -> None:
    _, go, native = cluster
    for src, dst, vid in ((go, native, 23), (native, go, 24)):
        want = copy_then_tail(src, dst, vid)
        if dst is native:
            assert_serves(native, want)
        else:
            # Go writes a replayed deletion as an empty live needle: 200 with no body
            assert read(go, fid(vid, 5)) == (200, b"")
            assert_serves(go, {f: b for f, b in want.items() if f != fid(vid, 5)})


def test_incremental_copy_streams_the_same_bytes_as_go(cluster) -> None:
    _, go, native = cluster
    # the same .dat on both sides (copied above), so the same byte ranges come back
    for since in (0, 1, 2**64 - 1):
        req = vs.VolumeIncrementalCopyRequest(volume_id=21, since_ns=since)
        a = stream(go.grpc_port, "VolumeIncrementalCopy", req, vs.VolumeIncrementalCopyResponse)
        b = stream(native.grpc_port, "VolumeIncrementalCopy", req, vs.VolumeIncrementalCopyResponse)
        assert a.ok and b.ok
        assert b"".join(m.file_content for m in a.response) == b"".join(m.file_content for m in b.response)
    mid = last_record_ns(go.data_dir / "21.idx", go.data_dir / "21.dat") - 1
    req = vs.VolumeIncrementalCopyRequest(volume_id=21, since_ns=mid)
    a = stream(go.grpc_port, "VolumeIncrementalCopy", req, vs.VolumeIncrementalCopyResponse)
    b = stream(native.grpc_port, "VolumeIncrementalCopy", req, vs.VolumeIncrementalCopyResponse)
    assert b"".join(m.file_content for m in a.response) == b"".join(m.file_content for m in b.response) != b""


def test_read_all_needles_and_blob_reads_match_go(cluster) -> None:
    _, go, native = cluster
    req = vs.ReadAllNeedlesRequest(volume_ids=[21])
    a = stream(go.grpc_port, "ReadAllNeedles", req, vs.ReadAllNeedlesResponse)
    b = stream(native.grpc_port, "ReadAllNeedles", req, vs.ReadAllNeedlesResponse)
    assert a.ok and b.ok and len(a.response) > 10
    assert [m.SerializeToString(deterministic=True) for m in a.response] == [m.SerializeToString(deterministic=True) for m in b.response]
    codec = IdxCodec.for_width(5)
    for row in codec.iter_entries((go.data_dir / "21.idx").read_bytes()):
        for method, req, resp in (
            ("ReadNeedleBlob", vs.ReadNeedleBlobRequest(volume_id=21, offset=row.offset * 8, size=row.size), vs.ReadNeedleBlobResponse),
            ("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=21, needle_id=row.key, offset=row.offset * 8, size=row.size), vs.ReadNeedleMetaResponse),
        ):
            x, y = unary(go.grpc_port, method, req, resp), unary(native.grpc_port, method, req, resp)
            assert (x.status, x.message, x.response) == (y.status, y.message, y.response), (method, row)


def test_weed_shell_volume_move_between_go_and_native(cluster) -> None:
    """`volume.move` (mark read-only, VolumeCopy, VolumeTailReceiver, delete) both ways."""
    import subprocess

    from tests.native_core.support import lookup_urls

    from tests.support.waiting import wait_until
    from weedpy.weedbin import find_weed_binary

    master, go, native = cluster
    body = os.urandom(5000)
    a = httpx.get(f"{master.url}/dir/assign", params={"collection": "moving"}, timeout=10).json()
    assert httpx.post(f"http://{a['url']}/{a['fid']}", files={"file": ("f", body)}, timeout=10).status_code == 201
    vid = int(a["fid"].split(",")[0])
    here = a["url"]
    there = f"127.0.0.1:{go.port}" if here == f"127.0.0.1:{native.port}" else f"127.0.0.1:{native.port}"
    for src, dst in ((here, there), (there, here)):
        out = subprocess.run(
            [str(find_weed_binary()), "shell", f"-master={master.address}"],
            input=f"lock\nvolume.move -source {src} -target {dst} -volumeId {vid}\nunlock\n",
            capture_output=True, text=True, timeout=120,
        )
        assert f"moved volume {vid} from {src} to {dst}" in out.stdout, out.stdout + out.stderr
        wait_until(lambda: lookup_urls(master, vid) == [dst], what=f"master lists {dst} only")
        r = httpx.get(f"http://{dst}/{a['fid']}", timeout=10)
        assert (r.status_code, r.content) == (200, body)
