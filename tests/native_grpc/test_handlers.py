"""The maintenance and data rpcs over a real in-process native server (build_router + Store).

Expected texts and codes are what the weed 4.48 binary answered to the same requests (probed
with the same calls; the Go side of each flow is exercised in test_copy_go.py and
test_vacuum_go.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

import native.grpc._tail as tail_module
from native.storage import FAKE_TOMBSTONE_COOKIE, IdxCodec, crc32c, legacy_crc_value, parse_header
from proto import volume_server_pb2 as vs
from tests.native_grpc.support import needle, serve_native

ANY = 0xFFFFFFFF

# These servers have no master to list their peers: the operator trusts every peer, as Go needs
# on loopback too.
NO_MASTER = ["-volume.allowUntrustedRemoteEndpoints"]


@pytest.fixture(autouse=True)
def fast_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail_module, "POLL_SECONDS", 0.05)


async def test_vacuum_rpcs_missing_volumes_and_a_full_cycle(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        out = await s.call("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=99), vs.VacuumVolumeCheckResponse)
        assert (out.status, out.message) == ("NOT_FOUND", "volume id 99 is not found during check compact: volume not found")
        out = await s.stream("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=99), vs.VacuumVolumeCompactResponse)
        assert (out.status, out.message) == ("NOT_FOUND", "compact volume 99: volume id 99 is not found during compact: volume not found")
        out = await s.call("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=99), vs.VacuumVolumeCommitResponse)
        assert out.message == "commit compact volume 99: volume id 99 is not found during commit compact: volume not found"
        out = await s.call("VacuumVolumeCleanup", vs.VacuumVolumeCleanupRequest(volume_id=99), vs.VacuumVolumeCleanupResponse)
        assert out.message == "cleanup volume 99: volume id 99 is not found during cleaning up: volume not found"

        v = s.store.volume(5)
        for k in range(1, 11):
            v.write_needle(needle(k, b"x" * 100 * k))
        for k in (2, 4, 6):
            v.delete_needle(k, 0xABCD)
        out = await s.call("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=5), vs.VacuumVolumeCommitResponse)
        assert (out.status, out.message) == (
            "UNKNOWN", f"commit compact volume 5: readIndexEntry {v.idx_path} at offset -17 failed: offset -17 for index file is invalid")
        ratio = (await s.call("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=5), vs.VacuumVolumeCheckResponse)).response
        assert ratio.garbage_ratio == pytest.approx(v.garbage_level()) and ratio.garbage_ratio > 0
        out = await s.stream("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=5), vs.VacuumVolumeCompactResponse)
        assert out.ok and out.messages == ()  # progress only every 128 MiB
        assert (tmp_path / "5.cpd").exists() and (tmp_path / "5.cpx").exists()
        out = await s.call("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=5), vs.VacuumVolumeCommitResponse)
        assert out.ok and out.response.volume_size == v.dat_size == (tmp_path / "5.dat").stat().st_size
        assert not out.response.is_read_only
        assert [v.read_needle(k).data for k in (1, 3, 10)] == [b"x" * 100, b"x" * 300, b"x" * 1000]
        assert v.super_block.compaction_revision == 1

        (tmp_path / "5.cpc").touch()
        out = await s.call("VacuumVolumeCleanup", vs.VacuumVolumeCleanupRequest(volume_id=5), vs.VacuumVolumeCleanupResponse)
        assert out.message == "cleanup volume 5: volume 5: refusing cleanup while commit marker present"
        (tmp_path / "5.cpc").unlink()
        assert (await s.call("VacuumVolumeCleanup", vs.VacuumVolumeCleanupRequest(volume_id=5), vs.VacuumVolumeCleanupResponse)).ok


async def test_maintenance_mode_and_whitelist_gate_what_go_gates(tmp_path: Path) -> None:
    async with serve_native(tmp_path / "a", volumes=[5]) as s:
        await s.set_maintenance()
        text = f"volume server {s.svc.server_id} is in maintenance mode"
        assert text == f"volume server 127.0.0.1:{s.svc.ctx.cfg.port} is in maintenance mode"
        checks = [
            await s.stream("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=5), vs.VacuumVolumeCompactResponse),
            await s.call("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=5), vs.VacuumVolumeCommitResponse),
            await s.call("VacuumVolumeCleanup", vs.VacuumVolumeCleanupRequest(volume_id=5), vs.VacuumVolumeCleanupResponse),
            await s.call("BatchDelete", vs.BatchDeleteRequest(file_ids=["5,10000abcd"]), vs.BatchDeleteResponse),
            await s.call("WriteNeedleBlob", vs.WriteNeedleBlobRequest(volume_id=5, needle_id=1, needle_blob=b"abc", size=3), vs.WriteNeedleBlobResponse),
            await s.client_stream("ReceiveFile", [vs.ReceiveFileRequest(info=vs.ReceiveFileInfo(volume_id=5, ext=".dat"))], vs.ReceiveFileResponse),
            await s.stream("VolumeCopy", vs.VolumeCopyRequest(volume_id=5, source_data_node="127.0.0.1:1"), vs.VolumeCopyResponse),
        ]
        assert [(c.status, c.message) for c in checks] == [("UNKNOWN", text)] * len(checks)
        # not gated in Go: reads, CopyFile, the garbage check
        assert (await s.call("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=5), vs.VacuumVolumeCheckResponse)).ok
        assert (await s.stream("CopyFile", vs.CopyFileRequest(volume_id=5, ext=".idx", compaction_revision=ANY, stop_offset=10), vs.CopyFileResponse)).ok
    async with serve_native(tmp_path / "b", volumes=[5], whitelist=["10.9.9.9"]) as s:
        for out in (
            await s.stream("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=5), vs.VacuumVolumeCompactResponse),
            await s.call("BatchDelete", vs.BatchDeleteRequest(file_ids=["5,10000abcd"]), vs.BatchDeleteResponse),
            await s.stream("ReadAllNeedles", vs.ReadAllNeedlesRequest(volume_ids=[5]), vs.ReadAllNeedlesResponse),
        ):
            assert (out.status, out.message) == ("PERMISSION_DENIED", "not authorized: 127.0.0.1")


async def test_batch_delete_answers_per_file_id_as_go(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        v = s.store.volume(5)
        for k, body in ((1, b"hello"), (2, b"world!"), (3, b"x" * 100)):
            v.write_needle(needle(k, body))
        v.write_needle(needle(9, b"{}", chunk_manifest=True, name="5,90000abcd", mime="application/octet-stream"))
        v.delete_needle(2, 0xABCD)
        fids = ["bad-fid", ",123", "5,zz", "5,1", "5,10000abcd_x", "99,10000abcd", "5,70000abcd", "5,10000abce",
                "5,90000abcd", "5,30000abcd", "5,30000abcd", "5,20000abcd"]
        out = (await s.call("BatchDelete", vs.BatchDeleteRequest(file_ids=fids), vs.BatchDeleteResponse)).response
        got = [(r.file_id, r.status, r.error, r.size) for r in out.results]
        assert got == [
            ("bad-fid", 400, "Wrong fid format.", 0),
            (",123", 400, "Wrong fid format.", 0),
            ("5,zz", 400, "Invalid fid: zz", 0),
            ("5,1", 400, "Invalid fid: 1", 0),
            ("5,10000abcd_x", 400, 'strconv.ParseUint: parsing "x": invalid syntax', 0),
            ("99,10000abcd", 404, "volume 99 not found", 0),
            ("5,70000abcd", 404, "not found", 0),
            ("5,10000abce", 400, "File Random Cookie does not match.", 0),
            ("5,90000abcd", 406, "ChunkManifest: not allowed in batch delete mode.", 0),
            ("5,30000abcd", 202, "", 127),  # the record Size: data, flags, name, mime, lastmod
            ("5,30000abcd", 404, "already deleted", 0),
            ("5,20000abcd", 404, "already deleted", 0),
        ]
        # the tombstone of a cookie-checked delete carries the cookie and the data's CRC
        raw = Path(v.dat_path).read_bytes()
        tomb = parse_header(raw[-32:-16])
        assert (tomb.id, tomb.cookie, tomb.size, raw[-16:-12]) == (3, 0xABCD, 0, crc32c(b"x" * 100).to_bytes(4, "big"))
        out = (await s.call("BatchDelete", vs.BatchDeleteRequest(
            file_ids=["5,zz", "5,1", "5,10000abce", "99,10000abcd", "5,20000abcd", "5,90000abcd"], skip_cookie_check=True,
        ), vs.BatchDeleteResponse)).response
        addr = f"127.0.0.1:{s.svc.ctx.cfg.port}"
        assert [(r.status, r.error, r.size) for r in out.results] == [
            (400, "KeyHash is too short.", 0), (400, "KeyHash is too short.", 0), (202, "", 32),
            (500, f"volume 99 not found on {addr}", 0), (304, "", 0), (202, "", 49),
        ]
        raw = Path(v.dat_path).read_bytes()
        assert parse_header(raw[-32:-16]).cookie == 0  # skip-cookie tombstones carry cookie 0


async def test_needle_blob_and_meta_reads_and_blob_writes(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        v = s.store.volume(5)
        v.write_needle(needle(1, b"hello", ttl="3d"))
        nv = v.needle_value(1)
        off, size = nv.offset * 8, nv.size
        out = await s.call("ReadNeedleBlob", vs.ReadNeedleBlobRequest(volume_id=99, offset=8, size=16), vs.ReadNeedleBlobResponse)
        assert (out.status, out.message) == ("UNKNOWN", "not found volume id 99")
        out = await s.call("ReadNeedleBlob", vs.ReadNeedleBlobRequest(volume_id=5, offset=1 << 40, size=64), vs.ReadNeedleBlobResponse)
        assert out.message == "read needle blob offset 1099511627776 size 64: EOF"
        out = await s.call("ReadNeedleBlob", vs.ReadNeedleBlobRequest(volume_id=5, offset=8, size=-1), vs.ReadNeedleBlobResponse)
        assert out.message == "read needle blob offset 8 size -1: invalid needle size -1"
        blob = (await s.call("ReadNeedleBlob", vs.ReadNeedleBlobRequest(volume_id=5, offset=off, size=size), vs.ReadNeedleBlobResponse)).response.needle_blob
        assert blob == Path(v.dat_path).read_bytes()[off:]

        out = await s.call("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=99, needle_id=1, offset=8, size=16), vs.ReadNeedleMetaResponse)
        assert out.message == "not found volume id 99 and read needle metadata at ec shards is not supported"
        out = await s.call("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=5, needle_id=1, offset=1 << 40, size=64), vs.ReadNeedleMetaResponse)
        assert (out.status, out.message) == ("UNKNOWN", "EOF")
        out = await s.call("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=5, needle_id=1, offset=off, size=size + 8), vs.ReadNeedleMetaResponse)
        assert out.message == f"size mismatch for entry at offset {off}: found id 31 size {size}, expected size {size + 8}"
        meta = (await s.call("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=5, needle_id=1, offset=off, size=size), vs.ReadNeedleMetaResponse)).response
        n = v.read_needle(1)
        assert (meta.cookie, meta.last_modified, meta.crc, meta.ttl, meta.append_at_ns) == (
            0xABCD, 1_700_000_000, legacy_crc_value(crc32c(b"hello")), "3d", n.append_at_ns)

        v.delete_needle(1, 0xABCD)
        tomb_off = os.path.getsize(v.dat_path) - 32
        meta = (await s.call("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=5, needle_id=1, offset=tomb_off, size=-1), vs.ReadNeedleMetaResponse)).response
        assert meta.cookie == 0xABCD and meta.append_at_ns == v.last_append_at_ns

        out = await s.call("WriteNeedleBlob", vs.WriteNeedleBlobRequest(volume_id=99, needle_id=1, needle_blob=b"abc", size=3), vs.WriteNeedleBlobResponse)
        assert out.message == "not found volume id 99"
        out = await s.call("WriteNeedleBlob", vs.WriteNeedleBlobRequest(volume_id=5, needle_id=1, needle_blob=b"abc", size=3), vs.WriteNeedleBlobResponse)
        assert out.message == "write blob needle 1 size 3: needle 1 blob of 3 bytes is shorter than a needle header"
        out = await s.call("WriteNeedleBlob", vs.WriteNeedleBlobRequest(volume_id=5, needle_id=77, needle_blob=blob, size=size), vs.WriteNeedleBlobResponse)
        assert out.ok
        copy = v.read_needle(77)
        assert (copy.id, copy.data, copy.cookie) == (1, b"hello", 0xABCD)  # the record keeps its own header
        status = (await s.call("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=5, needle_id=77),
                               vs.VolumeNeedleStatusResponse)).response
        assert (status.needle_id, status.cookie) == (1, 0xABCD)  # Go reports the id stored in the record


async def test_read_all_needles_in_dat_order_latest_records_only(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5, 6]) as s:
        v = s.store.volume(5)
        v.write_needle(needle(1, b"first", cookie=0xAA))
        v.write_needle(needle(2, b"second", cookie=0xBB))
        v.write_needle(needle(1, b"first-overwrite", cookie=0xAA))
        v.write_needle(needle(3, b"doomed"))
        v.delete_needle(3, 0xABCD)
        out = await s.stream("ReadAllNeedles", vs.ReadAllNeedlesRequest(volume_ids=[5, 6, 98585]), vs.ReadAllNeedlesResponse)
        assert (out.status, out.message) == ("UNKNOWN", "not found volume id 98585")
        got = [(m.volume_id, m.needle_id, m.cookie, m.needle_blob, m.crc) for m in out.messages]
        assert got == [
            (5, 2, 0xBB, b"second", legacy_crc_value(crc32c(b"second"))),
            (5, 1, 0xAA, b"first-overwrite", legacy_crc_value(crc32c(b"first-overwrite"))),
            (5, 3, 0xABCD, b"doomed", legacy_crc_value(crc32c(b"doomed"))),  # Go still sends deleted ones
        ]
        assert {(m.name, m.mime, m.last_modified) for m in out.messages} == {(b"a.txt", b"text/plain", 1_700_000_000)}


async def test_sync_status_and_incremental_copy(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        out = await s.call("VolumeSyncStatus", vs.VolumeSyncStatusRequest(volume_id=99), vs.VolumeSyncStatusResponse)
        assert out.message == "not found volume id 99"
        out = await s.stream("VolumeIncrementalCopy", vs.VolumeIncrementalCopyRequest(volume_id=99), vs.VolumeIncrementalCopyResponse)
        assert out.message == "not found volume id 99"
        v = s.store.volume(5)
        stamps = []
        for k in range(1, 6):
            v.write_needle(needle(k, bytes([k]) * 3_000_000 if k == 4 else b"small"))
            stamps.append(v.last_append_at_ns)
        status = (await s.call("VolumeSyncStatus", vs.VolumeSyncStatusRequest(volume_id=5), vs.VolumeSyncStatusResponse)).response
        assert (status.volume_id, status.tail_offset, status.idx_file_size, status.version, status.replication, status.ttl) == (
            5, v.dat_size, v.idx_size, 3, "000", "")
        raw = Path(v.dat_path).read_bytes()
        for since, start in ((0, 8), (stamps[1], v.needle_value(3).offset * 8), (stamps[2] + 1, v.needle_value(4).offset * 8)):
            out = await s.stream("VolumeIncrementalCopy", vs.VolumeIncrementalCopyRequest(volume_id=5, since_ns=since), vs.VolumeIncrementalCopyResponse)
            assert b"".join(m.file_content for m in out.messages) == raw[start:]
            assert all(len(m.file_content) <= 2 * 1024 * 1024 for m in out.messages)
        for since in (stamps[-1], 2**64 - 1):
            out = await s.stream("VolumeIncrementalCopy", vs.VolumeIncrementalCopyRequest(volume_id=5, since_ns=since), vs.VolumeIncrementalCopyResponse)
            assert out.ok and out.messages == ()


async def test_copy_file_variants(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        v = s.store.volume(5)
        v.write_needle(needle(1, os.urandom(5 * 1024 * 1024)))

        async def copy(**kw) -> tuple:
            out = await s.stream("CopyFile", vs.CopyFileRequest(**kw), vs.CopyFileResponse)
            return out.status, out.message, out.messages

        assert (await copy(volume_id=99, ext=".dat", stop_offset=1))[:2] == ("UNKNOWN", "not found volume id 99")
        assert (await copy(volume_id=5, ext="dat", stop_offset=1))[1] == 'invalid file extension "dat"'
        assert (await copy(volume_id=5, ext=".d/t", stop_offset=1))[1] == 'invalid file extension ".d/t"'
        assert (await copy(volume_id=5, ext=".dat", collection="../x", stop_offset=1))[1] == 'invalid collection "../x"'
        assert (await copy(volume_id=5, ext=".dat", compaction_revision=3, stop_offset=1))[1] == "volume 5 is compacted"
        assert (await copy(volume_id=5, ext=".ecx", compaction_revision=ANY, stop_offset=10))[1] == f"open {tmp_path / '5.ecx'}: no such file or directory"
        assert await copy(volume_id=5, ext=".ecx", compaction_revision=ANY, stop_offset=0) == ("OK", "", ())
        assert await copy(volume_id=5, ext=".ecx", compaction_revision=ANY, stop_offset=10, ignore_source_file_not_found=True) == ("OK", "", ())
        assert (await copy(volume_id=5, ext=".ec00", is_ec_volume=True, stop_offset=1))[1] == "CopyFile not found ec volume id 5"
        assert await copy(volume_id=5, ext=".ec00", is_ec_volume=True, stop_offset=1, ignore_source_file_not_found=True) == ("OK", "", ())

        dat = Path(v.dat_path).read_bytes()
        mtime = os.stat(v.dat_path).st_mtime_ns
        _, _, msgs = await copy(volume_id=5, ext=".dat", compaction_revision=0, stop_offset=len(dat))
        assert [len(m.file_content) for m in msgs] == [2 * 1024 * 1024, 2 * 1024 * 1024, len(dat) - 4 * 1024 * 1024]
        assert b"".join(m.file_content for m in msgs) == dat
        assert [m.modified_ts_ns for m in msgs] == [mtime, 0, 0]
        _, _, msgs = await copy(volume_id=5, ext=".dat", compaction_revision=ANY, stop_offset=100)
        assert [m.file_content for m in msgs] == [dat[:100]]
        _, _, msgs = await copy(volume_id=5, ext=".idx", compaction_revision=ANY, stop_offset=1 << 30)
        assert b"".join(m.file_content for m in msgs) == Path(v.idx_path).read_bytes()
        _, _, msgs = await copy(volume_id=5, ext=".dat", compaction_revision=ANY, stop_offset=0)
        assert [(m.file_content, m.modified_ts_ns) for m in msgs] == [(b"", mtime)]


async def test_receive_file(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        info = lambda **kw: vs.ReceiveFileRequest(info=vs.ReceiveFileInfo(**kw))  # noqa: E731
        data = lambda b: vs.ReceiveFileRequest(file_content=b)  # noqa: E731

        async def receive(*reqs) -> vs.ReceiveFileResponse:
            out = await s.client_stream("ReceiveFile", reqs, vs.ReceiveFileResponse)
            assert out.ok, out
            return out.response

        assert (await receive(data(b"x"))).error == "file info must be sent first"
        assert (await receive(vs.ReceiveFileRequest())).error == "unknown message type"
        assert (await receive(info(volume_id=99, ext=".dat"))).error == "volume 99 not found"
        assert (await receive(info(volume_id=5, ext="dat"))).error == 'invalid file extension "dat"'
        assert (await receive(info(volume_id=5, ext=".x", collection="a/b"))).error == 'invalid collection "a/b"'
        r = await receive(info(volume_id=5, ext=".tmprecv"), data(b"chunk-a:"), data(b"chunk-b"))
        assert (r.error, r.bytes_written) == ("", 15)
        assert (tmp_path / "5.tmprecv").read_bytes() == b"chunk-a:chunk-b"
        r = await receive(info(volume_id=96, ext=".ec00", collection="ec", is_ec_volume=True), data(b"shard"))
        assert r.bytes_written == 5 and (tmp_path / "ec_96.ec00").read_bytes() == b"shard"
        r = await receive(info(volume_id=97, ext=".dat", disk_type="hdd"), data(b"staged"))
        assert r.bytes_written == 6 and (tmp_path / "97.dat.copying").read_bytes() == b"staged"
        assert (await receive()).bytes_written == 0
        out = await s.stream("CopyFile", vs.CopyFileRequest(volume_id=96, collection="ec", is_ec_volume=True, ext=".ec00",
                                                             compaction_revision=ANY, stop_offset=5), vs.CopyFileResponse)
        assert [m.file_content for m in out.messages] == [b"shard"]


async def test_volume_copy_between_native_servers(tmp_path: Path) -> None:
    async with serve_native(tmp_path / "src", volumes=[7]) as src, serve_native(tmp_path / "dst", volumes=[7], flags=NO_MASTER) as dst:
        v = src.store.volume(7)
        for k in range(1, 30):
            v.write_needle(needle(k, os.urandom(k * 997)))
        v.delete_needle(5, 0xABCD)
        dst.store.volume(7).write_needle(needle(1, b"stale copy on the destination"))
        out = await dst.stream("VolumeCopy", vs.VolumeCopyRequest(volume_id=7, source_data_node=src.address), vs.VolumeCopyResponse)
        assert out.ok, out
        assert [m.last_append_at_ns for m in out.messages] == [v.last_append_at_ns]
        for ext in (".dat", ".idx"):
            assert (tmp_path / "dst" / f"7{ext}").read_bytes() == (tmp_path / "src" / f"7{ext}").read_bytes()
        assert not (tmp_path / "dst" / "7.note").exists()
        assert os.stat(tmp_path / "dst" / "7.dat").st_mtime_ns == os.stat(tmp_path / "src" / "7.dat").st_mtime_ns
        copied = dst.store.volume(7)
        assert copied.read_needle(3).data == v.read_needle(3).data
        assert dst.master.changes >= 2  # the old copy went away, the new one was mounted
        out = await dst.stream("VolumeCopy", vs.VolumeCopyRequest(volume_id=8, source_data_node=src.address), vs.VolumeCopyResponse)
        assert (out.status, out.message) == ("UNKNOWN", "read volume file status failed, rpc error: code = Unknown desc = not found volume id 8")
        assert dst.store.find_volume(7) is not None


async def test_volume_copy_and_tail_receiver_apply_the_peer_trust_rule(tmp_path: Path) -> None:
    async with serve_native(tmp_path / "src", volumes=[7]) as src, \
            serve_native(tmp_path / "dst", flags=["-ip=10.1.2.3"], volumes=[7]) as dst:
        source = src.address
        reason = f'remote endpoint "{source}" resolves to loopback address 127.0.0.1'
        out = await dst.stream("VolumeCopy", vs.VolumeCopyRequest(volume_id=7, source_data_node=source), vs.VolumeCopyResponse)
        assert (out.status, out.message) == ("UNKNOWN", f"invalid source data node {source}: {reason}")
        out = await dst.call("VolumeTailReceiver", vs.VolumeTailReceiverRequest(volume_id=99, source_volume_server=source), vs.VolumeTailReceiverResponse)
        assert (out.status, out.message) == ("UNKNOWN", f"invalid source volume server {source}: {reason}")  # before the volume lookup
    async with serve_native(tmp_path / "src2", volumes=[7]) as src, \
            serve_native(tmp_path / "dst2", flags=["-ip=10.1.2.3", "-volume.allowUntrustedRemoteEndpoints"]) as dst:
        src.store.volume(7).write_needle(needle(1, b"trusted by the operator"))
        out = await dst.stream("VolumeCopy", vs.VolumeCopyRequest(volume_id=7, source_data_node=src.address), vs.VolumeCopyResponse)
        assert out.ok, out
        assert dst.store.volume(7).read_needle(1).data == b"trusted by the operator"


async def test_tail_sender_heartbeat_chunks_and_idle_end(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[5]) as s:
        out = await s.stream("VolumeTailSender", vs.VolumeTailSenderRequest(volume_id=77777, idle_timeout_seconds=1), vs.VolumeTailSenderResponse)
        assert out.message == "not found volume id 77777"
        out = await s.stream("VolumeTailSender", vs.VolumeTailSenderRequest(volume_id=5, idle_timeout_seconds=1), vs.VolumeTailSenderResponse)
        assert [(m.is_last_chunk, m.version, m.needle_header) for m in out.messages] == [(True, 3, b"")]
        v = s.store.volume(5)
        big = b"L" * (2 * 1024 * 1024 + 128 * 1024)
        v.write_needle(needle(1, b"small"))
        v.write_needle(needle(2, big))
        v.delete_needle(1, 0xABCD)
        out = await s.stream("VolumeTailSender", vs.VolumeTailSenderRequest(volume_id=5, idle_timeout_seconds=2), vs.VolumeTailSenderResponse)
        msgs = out.messages
        raw = Path(v.dat_path).read_bytes()
        records = [m for m in msgs if m.needle_header]
        assert [parse_header(m.needle_header).id for m in records] == [1, 2, 2, 1]
        assert [m.is_last_chunk for m in records] == [True, False, True, True]
        assert b"".join(m.needle_header + m.needle_body if i in (0, 1, 3) else m.needle_body for i, m in enumerate(records)) == raw[8:]
        assert msgs[-1].needle_header == b"" and msgs[-1].is_last_chunk  # the idle heartbeats close the stream
        out = await s.stream("VolumeTailSender", vs.VolumeTailSenderRequest(volume_id=5, since_ns=v.last_append_at_ns, idle_timeout_seconds=1), vs.VolumeTailSenderResponse)
        assert [m.needle_header for m in out.messages] == [b""]


async def test_tail_receiver_replicates_writes_and_deletes(tmp_path: Path) -> None:
    async with serve_native(tmp_path / "src", volumes=[7]) as src, serve_native(tmp_path / "dst", volumes=[7], flags=NO_MASTER) as dst:
        out = await dst.call("VolumeTailReceiver", vs.VolumeTailReceiverRequest(volume_id=88888, source_volume_server=src.address), vs.VolumeTailReceiverResponse)
        assert out.message == "receiver not found volume id 88888"
        dst.store.allocate_volume(9)
        out = await dst.call("VolumeTailReceiver", vs.VolumeTailReceiverRequest(volume_id=9, source_volume_server=src.address), vs.VolumeTailReceiverResponse)
        assert (out.status, out.message) == ("UNKNOWN", "not found volume id 9")  # the source's error, as Go passes it on
        a, b = src.store.volume(7), dst.store.volume(7)
        for k in range(1, 6):
            a.write_needle(needle(k, f"payload-{k}".encode()))
            b.write_needle(needle(k, f"payload-{k}".encode()))
        checkpoint = a.last_append_at_ns
        a.write_needle(needle(6, b"x" * (3 * 1024 * 1024)))
        a.delete_needle(3, 0xABCD)
        a.write_needle(needle(7, b"after the delete", ttl="1d"))
        out = await dst.call("VolumeTailReceiver", vs.VolumeTailReceiverRequest(
            volume_id=7, source_volume_server=src.address, since_ns=checkpoint, idle_timeout_seconds=1), vs.VolumeTailReceiverResponse)
        assert out.ok, out
        assert b.read_needle(6).data == b"x" * (3 * 1024 * 1024)
        assert b.read_needle(7).data == b"after the delete" and str(b.read_needle(7).ttl) == "1d"
        with pytest.raises(Exception):
            b.read_needle(3)
        assert (b.dat_size, b.idx_size) == (a.dat_size, a.idx_size)
        raw = Path(b.dat_path).read_bytes()
        codec = IdxCodec.for_width(5)
        last_rows = list(codec.iter_entries(Path(b.idx_path).read_bytes()))[-3:]
        assert [(r.key, r.size) for r in last_rows][1] == (3, -1)
        tomb = parse_header(raw[last_rows[1].offset * 8:last_rows[1].offset * 8 + 16])
        assert (tomb.cookie, tomb.size) == (0xABCD, 0) and tomb.cookie != FAKE_TOMBSTONE_COOKIE


async def test_progress_messages_for_compaction_and_volume_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import native.grpc._copy as copy_module
    import native.grpc._vacuum as vacuum_module

    monkeypatch.setattr(vacuum_module, "REPORT_INTERVAL", 40_000)
    monkeypatch.setattr(copy_module, "REPORT_INTERVAL", 40_000)
    async with serve_native(tmp_path / "src", volumes=[5]) as src, serve_native(tmp_path / "dst", flags=NO_MASTER) as dst:
        v = src.store.volume(5)
        for k in range(1, 41):
            v.write_needle(needle(k, os.urandom(5000)))
        out = await src.stream("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=5), vs.VacuumVolumeCompactResponse)
        done = [m.processed_bytes for m in out.messages]
        assert out.ok and len(done) >= 3 and done == sorted(done)
        assert all(b - a > 40_000 for a, b in zip(done, done[1:]))  # Go: the next report after another interval
        assert all(m.load_avg_1m >= 0 for m in out.messages)
        assert (await src.call("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=5), vs.VacuumVolumeCommitResponse)).ok
        out = await dst.stream("VolumeCopy", vs.VolumeCopyRequest(volume_id=5, source_data_node=src.address), vs.VolumeCopyResponse)
        assert out.ok, out
        progress, final = out.messages[:-1], out.messages[-1]
        # checked per CopyFile message (2 MiB each): this .dat arrives in one
        assert [(m.processed_bytes, m.last_append_at_ns) for m in progress] == [(v.dat_size, 0)]
        assert final.last_append_at_ns == v.last_append_at_ns and final.processed_bytes == 0


async def test_a_cancelled_compaction_releases_the_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import native.grpc._vacuum as vacuum_module
    from weedpy.grpc import Channel

    monkeypatch.setattr(vacuum_module, "REPORT_INTERVAL", 10_000)
    async with serve_native(tmp_path, volumes=[5]) as s:
        v = s.store.volume(5)
        bodies = {k: os.urandom(3000) for k in range(1, 200)}
        for k, body in bodies.items():
            v.write_needle(needle(k, body))
        async with Channel("127.0.0.1", s.port) as ch:
            async with ch.unary_stream("/volume_server_pb.VolumeServer/VacuumVolumeCompact",
                                       vs.VacuumVolumeCompactRequest(volume_id=5), vs.VacuumVolumeCompactResponse) as responses:
                async for _ in responses:
                    break  # leaving the block resets the stream: the server's handler is cancelled
        with trio.fail_after(10):
            while v.compaction_lock.locked():
                await trio.sleep(0.01)
        out = await s.stream("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=5), vs.VacuumVolumeCompactResponse)
        assert out.ok and out.messages
        assert (await s.call("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=5), vs.VacuumVolumeCommitResponse)).ok
        assert {k: v.read_needle(k).data for k in bodies} == bodies and v.super_block.compaction_revision == 1
