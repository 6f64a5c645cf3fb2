"""ScrubVolume and ScrubEcVolume over an in-process native server. Texts, counts and broken
shard sizes are what the weed 4.48 binary answered for the same files and corruptions."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from native.storage import IdxCodec, actual_size, encode_needle, read_bytes_error
from native.storage._scrub import check_index
from proto import volume_server_pb2 as vs
from tests.native_grpc.support import Served, needle, serve_native

S, E = vs.ScrubVolumeRequest, vs.ScrubEcVolumeRequest


async def scrub(s: Served, **kw):
    return await s.call("ScrubVolume", S(**kw), vs.ScrubVolumeResponse)


async def scrub_ec(s: Served, **kw):
    return await s.call("ScrubEcVolume", E(**kw), vs.ScrubEcVolumeResponse)


def fill(s: Served, vid: int) -> None:
    v = s.store.volume(vid)
    for k in (1, 2, 3):
        v.write_needle(needle(k, b"important-data" * k, cookie=0xABCD0000 + k))
    v.delete_needle(2, 0xABCD0002)


def test_check_index_overlaps_and_torn_rows() -> None:
    codec = IdxCodec.for_width(5)
    rows = codec.encode(1, 1, 30) + codec.encode(2, 2, 30) + codec.encode(3, 0, -1)  # 2 overlaps 1
    count, errs = check_index(rows + b"\xde\xad", len(rows) + 2, 3, codec)
    assert count == 3
    assert errs == ["needle 2 (#2) at [16-79] overlaps needle 1 at [8-71]",
                    f"expected an index file of size {len(rows) + 2}, got {len(rows)}"]


def test_read_bytes_error_texts() -> None:
    raw = bytearray(encode_needle(needle(0x1F, b"payload"), 3))
    size = int.from_bytes(raw[12:16], "big")
    assert read_bytes_error(bytes(raw), 8, size, 3) is None
    assert read_bytes_error(bytes(raw), 8, size + 1, 3) == (
        f"size mismatch: entry not found: offset 8 found id 1f size {size}, expected size {size + 1}")
    assert read_bytes_error(bytes(raw), 8, size + 1, 3, offset_width=4) == "size mismatch"
    raw[16 + 4 + 2] ^= 0xFF
    problem = read_bytes_error(bytes(raw), 8, size, 3)
    assert problem.startswith("invalid CRC for needle 1f (got ") and problem.endswith(
        "), data on disk corrupted: needle data corrupted")


async def test_volume_modes_counts_and_corruptions(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[61, 62, 63]) as s:
        for vid in (61, 62, 63):
            fill(s, vid)
        for mode in (vs.INDEX, vs.FULL, vs.LOCAL, vs.READS):
            out = await scrub(s, volume_ids=[61], mode=mode)
            assert out.ok and (out.response.total_volumes, out.response.total_files) == (1, 4)
            assert not out.response.broken_volume_ids
        for mode in (vs.UNKNOWN, vs.CHECKSUM, 99):
            out = await scrub(s, volume_ids=[61], mode=mode)
            assert (out.status, out.message) == ("UNKNOWN", f"unsupported volume scrub mode {mode}")
        out = await scrub(s, volume_ids=[999], mode=99)  # the volume is looked up first
        assert (out.status, out.message) == ("UNKNOWN", "volume id 999 not found")
        out = await scrub(s, mode=vs.INDEX)
        assert out.response.total_volumes == 3 and out.response.total_files == 12

        with open(tmp_path / "61.idx", "ab") as f:
            f.write(b"\xde\xad")
        size = (tmp_path / "61.idx").stat().st_size
        want = f"expected an index file of size {size}, got {size - 2}"
        for mode in (vs.INDEX, vs.FULL):
            out = await scrub(s, volume_ids=[61], mode=mode)
            assert list(out.response.broken_volume_ids) == [61] and list(out.response.details) == [want]

        os.truncate(tmp_path / "62.dat", 8)  # every row's record is gone, tombstone row included
        out = await scrub(s, volume_ids=[62], mode=vs.FULL)
        assert list(out.response.details) == [f"failed to read needle {k} on volume 62: EOF" for k in (1, 2, 3, 2)]

        v = s.store.volume(63)
        with open(tmp_path / "63.dat", "r+b") as f:  # one data byte of needle 1
            f.seek(8 + 16 + 4 + 2)
            b = f.read(1)
            f.seek(8 + 16 + 4 + 2)
            f.write(bytes([b[0] ^ 0xFF]))
        assert (await scrub(s, volume_ids=[63], mode=vs.INDEX)).response.details == []
        out = await scrub(s, volume_ids=[63], mode=vs.READS)
        (detail,) = out.response.details
        assert detail.startswith("failed to read needle 1 on volume 63: invalid CRC for needle 1 (got ")
        assert not v.read_only


async def test_mark_broken_read_only_persists_and_ignores_maintenance(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[76, 77]) as s:
        fill(s, 76)
        fill(s, 77)
        out = await scrub(s, volume_ids=[76], mode=vs.INDEX, mark_broken_volumes_readonly=True)
        assert out.ok and not out.response.broken_volume_ids and not s.store.volume(76).read_only
        with open(tmp_path / "77.idx", "ab") as f:
            f.write(b"\xde\xad")
        await s.set_maintenance(True)  # 4.48 marks read-only in maintenance mode too
        out = await scrub(s, volume_ids=[76, 77], mode=vs.INDEX, mark_broken_volumes_readonly=True)
        assert list(out.response.broken_volume_ids) == [77]
        assert out.response.details[-1] == "volume 77 is now read-only"
        assert s.store.volume(77).read_only and s.store.volume(77).info.read_only  # persisted in .vif
        assert s.master.changes > 0


async def ec_volume(s: Served, vid: int, corrupt_ecx: bool = False) -> dict[int, int]:
    """Encode and mount a filled volume; returns each live needle's record length."""
    s.store.allocate_volume(vid)
    fill(s, vid)
    v = s.store.volume(vid)
    lengths = {k: actual_size(v.needle_value(k).size, v.version) for k in (1, 3)}
    assert (await s.call("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=vid),
                         vs.VolumeEcShardsGenerateResponse)).ok
    if corrupt_ecx:
        with open(s.data_dir / f"{vid}.ecx", "ab") as f:
            f.write(b"\xde\xad")
    assert (await s.call("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=vid, shard_ids=list(range(14))),
                         vs.VolumeEcShardsMountResponse)).ok
    return lengths


async def test_ec_modes_and_corruptions(tmp_path: Path) -> None:
    async with serve_native(tmp_path) as s:
        out = await scrub_ec(s, mode=vs.INDEX)
        assert out.ok and out.response.total_volumes == 0
        lengths = {vid: await ec_volume(s, vid) for vid in (210, 211)}
        await ec_volume(s, 216, corrupt_ecx=True)
        out = await scrub_ec(s, volume_ids=[210], mode=vs.UNKNOWN)
        assert out.message == "unsupported EC volume scrub mode 0"
        out = await scrub_ec(s, volume_ids=[98765], mode=99)
        assert out.message == "EC volume id 98765 not found"
        out = await scrub_ec(s, volume_ids=[210], mode=vs.INDEX, force_deleted_needles_check=True)
        assert out.message == "deleted needle checks are only supported for FULL and READS scrubs"
        for mode in (vs.INDEX, vs.LOCAL, vs.FULL, vs.READS):
            out = await scrub_ec(s, volume_ids=[210], mode=mode)
            assert (out.response.total_files, list(out.response.broken_volume_ids)) == (2, []), mode
        out = await scrub_ec(s, volume_ids=[210], mode=vs.CHECKSUM)
        assert (out.response.total_files, list(out.response.broken_volume_ids)) == (0, [])
        out = await scrub_ec(s, mode=vs.INDEX)
        assert (out.response.total_volumes, out.response.total_files, list(out.response.broken_volume_ids)) == (3, 6, [216])
        assert list(out.response.details) == ["expected an index file of size 36, got 34"]

        os.truncate(tmp_path / "211.ec00", 1)
        out = await scrub_ec(s, volume_ids=[211], mode=vs.LOCAL)
        assert out.response.total_files == 1  # the walk stops at the first needle it cannot account for
        assert [(i.shard_id, i.size, i.volume_id) for i in out.response.broken_shard_infos] == [(0, 1 << 20, 211)]
        assert list(out.response.details) == ["failed to read chunk 1/1 for needle 1 from local shard 0 at offset 8: EOF",
                                              f"expected {lengths[211][1]} bytes for needle 1 on volume 211, got 0"]
        out = await scrub_ec(s, volume_ids=[211], mode=vs.CHECKSUM)
        assert [i.shard_id for i in out.response.broken_shard_infos] == [0]
        assert out.response.details[0] == "ec volume 211 shard 0: read block 0 at 0: EOF (got 1/1048576)"
        out = await scrub_ec(s, volume_ids=[211], mode=vs.FULL)
        assert [(i.shard_id, i.size) for i in out.response.broken_shard_infos] == [(0, lengths[211][3])]
        assert out.response.details[0] == "failed to read EC shard 0 for needle 1 on volume 211 (interval 1/1)"
        out = await scrub_ec(s, volume_ids=[211], mode=vs.READS)  # rebuilt from parity: no detail
        assert [(i.shard_id, i.size) for i in out.response.broken_shard_infos] == [(0, lengths[211][3])]
        assert list(out.response.details) == [] and list(out.response.broken_volume_ids) == [211]

        with open(tmp_path / "210.ec00", "r+b") as f:
            f.seek(8 + 16 + 4 + 2)
            b = f.read(1)
            f.seek(8 + 16 + 4 + 2)
            f.write(bytes([b[0] ^ 0xFF]))
        out = await scrub_ec(s, volume_ids=[210], mode=vs.LOCAL)
        assert out.response.details[0].startswith("needle 1 on volume 210, shards [0]: invalid CRC for needle 1 (got ")
        out = await scrub_ec(s, volume_ids=[210], mode=vs.FULL)
        assert out.response.details[0].startswith("EC volume 210, needle 1 on shards [0]: invalid CRC for needle 1 (got ")
        out = await scrub_ec(s, volume_ids=[210], mode=vs.CHECKSUM)  # confirmed by Reed-Solomon
        assert [(i.shard_id, i.size) for i in out.response.broken_shard_infos] == [(0, 1 << 20)]
        assert list(out.response.details) == ["ec volume 210 shard 0: checksum mismatch at block 0 (offset 0)"]



@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=16, max_size=200), size=st.integers(-1, 180), version=st.sampled_from([1, 2, 3]))
def test_record_check_answers_for_any_bytes(raw: bytes, size: int, version: int) -> None:
    """Whatever the record bytes, the check returns None or a text; it never raises."""
    if len(raw) < actual_size(max(size, 0), version):
        raw = raw + bytes(actual_size(max(size, 0), version) - len(raw))
    problem = read_bytes_error(raw, 8, size, version)
    assert problem is None or isinstance(problem, str)
