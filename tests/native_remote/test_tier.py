"""Remote tiering over an in-process native server and a fake S3 endpoint: the rpcs' refusals
(weed 4.48's texts), a volume moved to remote storage and back, reads, deletes, restarts with
and without the backend configuration, progress messages, and VolumeConsolidateIndex."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import native.grpc._tier as tier_module
from native.s3 import s3_object_store
from native.storage import ReadOnly, Store, StorageError, VolumeNotFound, consolidate_volume_index
from native.storage.tier import TieredVolume, apply_storage_backends, remote_files
from proto import master_pb2
from proto import volume_server_pb2 as vs
from tests.native_grpc.support import Served, needle, serve_native
from tests.native_remote.fake_s3 import FakeS3, fake_s3

UP, DOWN = vs.VolumeTierMoveDatToRemoteRequest, vs.VolumeTierMoveDatFromRemoteRequest


def backend(s3: FakeS3, backend_id: str = "default", bucket: str = "tier") -> master_pb2.StorageBackend:
    return master_pb2.StorageBackend(type="s3", id=backend_id, properties={
        "aws_access_key_id": "ak", "aws_secret_access_key": "sk", "region": "us-east-1", "bucket": bucket,
        "endpoint": s3.endpoint, "force_path_style": "true",
    })


async def up(s: Served, **kw):
    return await s.stream("VolumeTierMoveDatToRemote", UP(**kw), vs.VolumeTierMoveDatToRemoteResponse)


async def down(s: Served, **kw):
    return await s.stream("VolumeTierMoveDatFromRemote", DOWN(**kw), vs.VolumeTierMoveDatFromRemoteResponse)


def fill(s: Served, vid: int, n: int = 5) -> dict[int, bytes]:
    bodies = {k: os.urandom(100 * k) for k in range(1, n + 1)}
    for k, body in bodies.items():
        s.store.write_needle(vid, needle(k, body, cookie=0xC0 + k))
    return bodies


async def test_refusals_as_go(tmp_path: Path) -> None:
    async with serve_native(tmp_path) as s:
        s.store.allocate_volume(85, collection="tc")
        out = await up(s, volume_id=98782, collection="tc", destination_backend_name="dummy")
        assert (out.status, out.message) == ("UNKNOWN", "volume 98782 not found")
        out = await up(s, volume_id=85, collection="wrong", destination_backend_name="dummy")
        assert out.message == "existing collection:tc unexpected input: wrong"
        out = await up(s, volume_id=85, collection="tc", destination_backend_name="definitely-missing-backend")
        assert out.message == "destination definitely-missing-backend not found, supported: []"
        out = await down(s, volume_id=98783, collection="tc")
        assert out.message == "volume 98783 not found"
        out = await down(s, volume_id=85, collection="x")
        assert out.message == "existing collection:tc unexpected input: x"
        out = await down(s, volume_id=85, collection="tc")
        assert out.message == "volume 85 is already on local disk"
        await s.set_maintenance(True)
        out = await up(s, volume_id=85, collection="tc", destination_backend_name="dummy")
        assert out.message.endswith("is in maintenance mode")
        out = await down(s, volume_id=85, collection="tc")  # no maintenance check on the way down
        assert out.message == "volume 85 is already on local disk"
        out = await s.call("VolumeConsolidateIndex", vs.VolumeConsolidateIndexRequest(volume_id=85),
                           vs.VolumeConsolidateIndexResponse)
        assert out.message.endswith("is in maintenance mode")
        await s.set_maintenance(False)
        out = await s.call("VolumeConsolidateIndex", vs.VolumeConsolidateIndexRequest(volume_id=999),
                           vs.VolumeConsolidateIndexResponse)
        assert out.message == "volume 999 not found on disk"
        assert (await s.call("VolumeConsolidateIndex", vs.VolumeConsolidateIndexRequest(volume_id=85),
                             vs.VolumeConsolidateIndexResponse)).ok


async def test_move_to_remote_serve_delete_and_back(tmp_path: Path) -> None:
    with fake_s3("tier") as s3:
        async with serve_native(tmp_path) as s:
            s.store.allocate_volume(7, collection="c")
            bodies = fill(s, 7)
            dat_before = (tmp_path / "c_7.dat").read_bytes()
            apply_storage_backends(s.store, [backend(s3)], s3_object_store)
            out = await up(s, volume_id=7, collection="c", destination_backend_name="s3.x")
            assert out.message == "destination s3.x not found, supported: [s3 s3.default]"
            out = await up(s, volume_id=7, collection="c", destination_backend_name="s3")
            assert out.ok and out.messages == ()  # a small volume is done before the first report
            v = s.store.volume(7)
            assert isinstance(v, TieredVolume) and v.read_only and not (tmp_path / "c_7.dat").exists()
            (f,) = remote_files(v.info)
            assert (f.backend_type, f.backend_id, f.file_size, f.extension) == ("s3", "default", len(dat_before), ".dat")
            assert s3.objects[("tier", f.key)] == dat_before
            assert all(h["authorization"].startswith("AWS4-HMAC-SHA256") for m, _, h in s3.requests if m == "PUT")
            assert v.remote_storage == ("s3.default", f.key)
            assert (await up(s, volume_id=7, collection="c", destination_backend_name="s3")).ok  # already there

            for k, body in bodies.items():
                assert s.store.read_needle(7, k, 0xC0 + k).data == body
            s.store.mark_volume_writable(7)  # as Go: a tiered volume keeps taking deletes only
            with pytest.raises(ReadOnly):
                s.store.write_needle(7, needle(99, b"no"))
            idx_size = v.idx_size
            assert s.store.delete_needle(7, 2, 0xC2) > 0  # deletes are allowed: an offset-0 tombstone row
            assert (tmp_path / "c_7.idx").read_bytes()[idx_size:] == v.codec.tombstone(2, 0)
            assert s3.objects[("tier", f.key)] == dat_before  # nothing written remotely
            out = await s.call("ScrubVolume", vs.ScrubVolumeRequest(volume_ids=[7], mode=vs.FULL), vs.ScrubVolumeResponse)
            assert out.ok and out.response.total_files == 6 and not out.response.details

            out = await down(s, volume_id=7, collection="c")
            assert out.ok
            local = s.store.volume(7)
            assert not isinstance(local, TieredVolume) and local.read_only  # as Go: until marked writable
            assert (tmp_path / "c_7.dat").read_bytes() == dat_before
            assert int((tmp_path / "c_7.dat").stat().st_mtime) == f.modified_time
            assert remote_files(local.info) == [] and ("tier", f.key) not in s3.objects
            with pytest.raises(StorageError):
                local.read_needle(2)
            assert local.read_needle(3).data == bodies[3]
            s.store.mark_volume_writable(7)
            s.store.write_needle(7, needle(9, b"after"))
            assert s.store.read_needle(7, 9).data == b"after"


async def test_kept_copies_restart_and_volume_delete(tmp_path: Path) -> None:
    with fake_s3("tier") as s3:
        async with serve_native(tmp_path) as s:
            s.store.allocate_volume(8)
            bodies = fill(s, 8)
            apply_storage_backends(s.store, [backend(s3)], s3_object_store)
            assert (await up(s, volume_id=8, destination_backend_name="s3.default", keep_local_dat_file=True)).ok
            assert (tmp_path / "8.dat").exists()
            key = s.store.volume(8).remote.key
        # restart: the .vif's remote file wins over the kept .dat; reads wait for the backend
        store = Store.open([tmp_path], max_counts=10)
        try:
            v = store.volume(8)
            assert isinstance(v, TieredVolume) and v.read_only
            with pytest.raises(StorageError, match="backend storage s3.default not found"):
                v.read_needle(1)
            apply_storage_backends(store, [backend(s3)], s3_object_store)
            assert v.read_needle(1).data == bodies[1] and v.super_block.version == 3
            store.delete_volume(8)
            assert ("tier", key) not in s3.objects and not (tmp_path / "8.vif").exists()
        finally:
            store.close()


async def test_keep_remote_on_download_and_on_volume_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tier_module, "PROGRESS_SECONDS", 0.0)
    with fake_s3("tier") as s3:
        async with serve_native(tmp_path) as s:
            for vid in (10, 11):
                s.store.allocate_volume(vid)
                fill(s, vid, n=20)
            apply_storage_backends(s.store, [backend(s3)], s3_object_store)
            out = await up(s, volume_id=10, destination_backend_name="s3")
            assert out.ok and out.messages and out.messages[-1].processed == s.store.volume(10).dat_size
            assert out.messages[-1].processedPercentage == pytest.approx(100.0)
            key = s.store.volume(10).remote.key
            out = await down(s, volume_id=10, keep_remote_dat_file=True)
            assert out.ok and [m.processed for m in out.messages][-1] == (tmp_path / "10.dat").stat().st_size
            assert ("tier", key) in s3.objects
            assert (await up(s, volume_id=11, destination_backend_name="s3")).ok
            key11 = s.store.volume(11).remote.key
            out = await s.call("VolumeDelete", vs.VolumeDeleteRequest(volume_id=11, keep_remote_data=True),
                               vs.VolumeDeleteResponse)
            assert out.ok and ("tier", key11) in s3.objects and s.store.find_volume(11) is None


def test_consolidate_moves_the_index_back(tmp_path: Path) -> None:
    data, idx = tmp_path / "data", tmp_path / "idx"
    store = Store.open([data], max_counts=5, idx_directory=idx)
    try:
        store.allocate_volume(3)
        store.write_needle(3, needle(1, b"one"))
        store.unmount_volume(3)
        os.replace(idx / "3.idx", data / "3.idx")  # where an EC decode leaves it
        v = store.mount_volume(3)
        assert v.idx_directory == str(data)
        consolidate_volume_index(store, 3)
        assert (idx / "3.idx").exists() and not (data / "3.idx").exists()
        assert v.idx_directory == str(idx) and v.read_needle(1).data == b"one"
        store.write_needle(3, needle(2, b"two"))
        store.unmount_volume(3)
        assert store.mount_volume(3).read_needle(2).data == b"two"
        with pytest.raises(VolumeNotFound, match="volume 9 not found on disk"):
            consolidate_volume_index(store, 9)
    finally:
        store.close()


def test_counters_as_go_counts_a_sorted_map() -> None:
    """Go 4.48 reports 1 deleted file for a fresh tiered volume of these rows (a Bloom filter
    false positive on key 1); a repeated key and a tombstone count as deletions."""
    from array import array

    from native.storage.tier._metrics import go_sorted_counters

    sizes = [3017, 6017, 9017, 12017, 15017]
    assert go_sorted_counters(array("Q", [1, 2, 3, 4, 5]), array("i", sizes)) == (5, sum(sizes), 1, 3017)
    assert go_sorted_counters(array("Q", [7, 7, 8]), array("i", [10, 20, -1]))[2:] == (2, 10)
    assert go_sorted_counters(array("Q"), array("i")) == (0, 0, 0, 0)
