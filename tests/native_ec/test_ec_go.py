"""EC between a real Go `weed volume` (4.48) and a native weedpy process, both directions:
shards byte-identical to Go's for the same `.dat`, shards copied either way mounted and served,
native rebuild identical to the lost shards, deletes journalled, decode back to a volume."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import go_and_native_cluster
from tests.native_grpc.test_copy_go import address, delete, fid, read, stream, unary, upload
from tests.support.procs import MasterProc, VolumeProc

pytestmark = pytest.mark.slow

ALL = list(range(14))


def fill(v: VolumeProc, vid: int, n: int = 30) -> dict[str, bytes]:
    assert unary(v.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse).ok
    rnd = __import__("random").Random(vid)
    want = {}
    for key in range(1, n + 1):
        body = rnd.randbytes(2 * 1024 * 1024 + 17 if key == 5 else rnd.randint(1, 300_000))
        upload(v, fid(vid, key), body, ts="1700000000")
        want[fid(vid, key)] = body
    delete(v, fid(vid, 2))
    want.pop(fid(vid, 2))
    return want


def ok(outcome) -> None:
    assert outcome.ok, outcome


def shard_bytes(d, vid: int) -> list[bytes]:
    return [(d / f"{vid}.ec{i:02d}").read_bytes() for i in ALL]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MasterProc, VolumeProc, VolumeProc]]:
    with go_and_native_cluster(tmp_path_factory.mktemp("ec-go")) as c:
        yield c


def test_native_encodes_like_go_and_go_serves_native_shards(cluster) -> None:
    _, go, native = cluster
    vid = 31
    want = fill(native, vid)
    ok(unary(native.grpc_port, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=vid), vs.VolumeMarkReadonlyResponse))
    ok(unary(native.grpc_port, "VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=vid), vs.VolumeEcShardsGenerateResponse))
    # Go encodes the very same .dat (copied byte for byte) into identical shards
    ok(stream(go.grpc_port, "VolumeCopy", vs.VolumeCopyRequest(volume_id=vid, source_data_node=address(native)), vs.VolumeCopyResponse))
    ok(unary(go.grpc_port, "VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=vid), vs.VolumeEcShardsGenerateResponse))
    assert shard_bytes(native.data_dir, vid) == shard_bytes(go.data_dir, vid)
    assert (native.data_dir / f"{vid}.ecx").read_bytes() == (go.data_dir / f"{vid}.ecx").read_bytes()
    ok(unary(go.grpc_port, "VolumeDelete", vs.VolumeDeleteRequest(volume_id=vid), vs.VolumeDeleteResponse))
    for ext in (".ec00", ".ec01", ".ecx", ".vif", ".ecsum"):
        os.remove(go.data_dir / f"{vid}{ext}") if (go.data_dir / f"{vid}{ext}").exists() else None
    # Go pulls two shards plus the index from the native server and serves needles through them
    ok(unary(go.grpc_port, "VolumeEcShardsCopy", vs.VolumeEcShardsCopyRequest(
        volume_id=vid, shard_ids=[0, 1], copy_ecx_file=True, copy_ecj_file=True, copy_vif_file=True, copy_ecsum_file=True,
        source_data_node=address(native)), vs.VolumeEcShardsCopyResponse))
    ok(unary(go.grpc_port, "VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=vid, shard_ids=ALL), vs.VolumeEcShardsMountResponse))
    ok(unary(native.grpc_port, "VolumeDelete", vs.VolumeDeleteRequest(volume_id=vid), vs.VolumeDeleteResponse))
    ok(unary(native.grpc_port, "VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=vid, shard_ids=ALL), vs.VolumeEcShardsMountResponse))
    info = unary(native.grpc_port, "VolumeEcShardsInfo", vs.VolumeEcShardsInfoRequest(volume_id=vid), vs.VolumeEcShardsInfoResponse)
    ok(info)
    assert len(info.response.ec_shard_infos) == 14 and info.response.file_count == len(want)
    for f, body in want.items():
        assert read(native, f) == (200, body), f
        assert read(go, f) == (200, body), f
    assert read(native, fid(vid, 2))[0] == 404


def test_go_encodes_native_copies_rebuilds_deletes_and_decodes(cluster) -> None:
    _, go, native = cluster
    vid = 32
    want = fill(go, vid)
    ok(unary(go.grpc_port, "VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=vid), vs.VolumeEcShardsGenerateResponse))
    ok(unary(native.grpc_port, "VolumeEcShardsCopy", vs.VolumeEcShardsCopyRequest(
        volume_id=vid, shard_ids=ALL, copy_ecx_file=True, copy_ecj_file=True, copy_vif_file=True, copy_ecsum_file=True,
        source_data_node=address(go)), vs.VolumeEcShardsCopyResponse))
    assert shard_bytes(native.data_dir, vid) == shard_bytes(go.data_dir, vid)
    lost = [0, 3, 11, 13]
    originals = shard_bytes(native.data_dir, vid)
    for sid in lost:
        os.remove(native.data_dir / f"{vid}.ec{sid:02d}")
    rebuilt = unary(native.grpc_port, "VolumeEcShardsRebuild", vs.VolumeEcShardsRebuildRequest(volume_id=vid), vs.VolumeEcShardsRebuildResponse)
    ok(rebuilt)
    assert list(rebuilt.response.rebuilt_shard_ids) == lost
    assert shard_bytes(native.data_dir, vid) == originals
    # mount all but two data shards: reads of needles there are rebuilt from parity on the fly
    ok(unary(native.grpc_port, "VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=vid, shard_ids=ALL), vs.VolumeEcShardsMountResponse))
    ok(unary(native.grpc_port, "VolumeEcShardsUnmount", vs.VolumeEcShardsUnmountRequest(volume_id=vid, shard_ids=[0, 1]), vs.VolumeEcShardsUnmountResponse))
    for f, body in want.items():
        assert read(native, f) == (200, body), f
    ok(unary(native.grpc_port, "VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=vid, shard_ids=[0, 1]), vs.VolumeEcShardsMountResponse))
    # an HTTP delete on the EC volume journals the id; reads then 404
    gone = fid(vid, 7)
    delete(native, gone)
    assert read(native, gone)[0] == 404
    assert (native.data_dir / f"{vid}.ecj").read_bytes() == (7).to_bytes(8, "big")
    want.pop(gone)
    # decode back to a normal volume, then serve it
    ok(unary(native.grpc_port, "VolumeEcShardsToVolume", vs.VolumeEcShardsToVolumeRequest(volume_id=vid), vs.VolumeEcShardsToVolumeResponse))
    ok(unary(native.grpc_port, "VolumeEcShardsUnmount", vs.VolumeEcShardsUnmountRequest(volume_id=vid, shard_ids=ALL), vs.VolumeEcShardsUnmountResponse))
    ok(unary(native.grpc_port, "VolumeEcShardsDelete", vs.VolumeEcShardsDeleteRequest(volume_id=vid, shard_ids=ALL), vs.VolumeEcShardsDeleteResponse))
    assert not (native.data_dir / f"{vid}.ecx").exists() and not (native.data_dir / f"{vid}.ec05").exists()
    ok(unary(native.grpc_port, "VolumeMount", vs.VolumeMountRequest(volume_id=vid), vs.VolumeMountResponse))
    for f, body in want.items():
        assert read(native, f) == (200, body), f
    assert read(native, gone)[0] == 404
