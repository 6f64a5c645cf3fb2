"""ScrubEcVolume across servers against the real weed 4.48: an EC volume whose shards are split
between a Go server (0-6) and a native one (7-13). FULL and READS on either side read the other
side's pieces (VolumeEcShardRead both ways); a shard truncated on the Go side is reported broken
by the native scrub, and READS still verifies the needles by rebuilding that piece."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from proto import master_pb2
from proto import volume_server_pb2 as vs
from tests.native_core.support import call, go_and_native_cluster
from tests.support.waiting import wait_until
from tests.native_grpc.test_copy_go import address, fid, upload
from tests.support.procs import MasterProc, VolumeProc

pytestmark = pytest.mark.slow

VID = 51
ALL = list(range(14))


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MasterProc, VolumeProc, VolumeProc, int]]:
    with go_and_native_cluster(tmp_path_factory.mktemp("scrub-go")) as (master, go, native):
        assert call(go.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3),
                    vs.AllocateVolumeResponse).ok
        for key in range(1, 21):
            upload(go, fid(VID, key), os.urandom(150_000 + key))
        r = httpx.delete(f"{go.url}/{fid(VID, 3)}", timeout=10)
        assert r.status_code == 202
        for method, req, resp in [
            ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=VID), vs.VolumeEcShardsGenerateResponse),
            ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=VID, shard_ids=ALL[:7]), vs.VolumeEcShardsMountResponse),
        ]:
            assert call(go.grpc_port, method, req, resp).ok
        assert call(native.grpc_port, "VolumeEcShardsCopy", vs.VolumeEcShardsCopyRequest(
            volume_id=VID, shard_ids=ALL[7:], copy_ecx_file=True, copy_ecj_file=True, copy_vif_file=True,
            copy_ecsum_file=True, source_data_node=address(go)), vs.VolumeEcShardsCopyResponse).ok
        assert call(native.grpc_port, "VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=VID, shard_ids=ALL[7:]),
                    vs.VolumeEcShardsMountResponse).ok
        assert call(go.grpc_port, "VolumeDelete", vs.VolumeDeleteRequest(volume_id=VID), vs.VolumeDeleteResponse).ok

        def all_located() -> bool:
            out = call(master.grpc_port, "LookupEcVolume", master_pb2.LookupEcVolumeRequest(volume_id=VID),
                       master_pb2.LookupEcVolumeResponse, service="/master_pb.Seaweed/")
            held = {sl.shard_id for sl in out.response.shard_id_locations if sl.locations} if out.ok else set()
            return held == set(ALL)

        wait_until(all_located, timeout=30, what="every shard registered with the master")
        rows = (native.data_dir / f"{VID}.ecx").stat().st_size // 17
        yield master, go, native, rows


def scrub(v: VolumeProc, mode: int) -> vs.ScrubEcVolumeResponse:
    out = call(v.grpc_port, "ScrubEcVolume", vs.ScrubEcVolumeRequest(volume_ids=[VID], mode=mode), vs.ScrubEcVolumeResponse,
               timeout=60)
    assert out.ok, out.message
    return out.response


def test_full_and_reads_cross_servers_both_ways(split) -> None:
    _, go, native, rows = split
    for v in (native, go):
        for mode in (vs.FULL, vs.READS, vs.LOCAL, vs.INDEX):
            r = scrub(v, mode)
            assert (r.total_volumes, r.total_files) == (1, rows), (v, mode)
            assert not r.broken_volume_ids and not r.broken_shard_infos, (v, mode, list(r.details))
        r = scrub(v, vs.CHECKSUM)
        assert not r.broken_volume_ids, list(r.details)


def test_a_truncated_remote_shard_is_reported_and_reads_rebuild_it(split) -> None:
    _, go, native, rows = split
    os.truncate(go.data_dir / f"{VID}.ec00", 1)
    full = scrub(native, vs.FULL)
    assert list(full.broken_volume_ids) == [VID] and {i.shard_id for i in full.broken_shard_infos} == {0}
    assert any(d.startswith("failed to read EC shard 0 for needle ") for d in full.details)
    reads = scrub(native, vs.READS)
    assert {i.shard_id for i in reads.broken_shard_infos} == {0} and list(reads.details) == []
    assert scrub(native, vs.LOCAL).broken_volume_ids == []  # shard 0 is not held here
