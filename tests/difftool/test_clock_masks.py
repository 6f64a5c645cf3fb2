"""The shared mask's clocks inside payloads: needle append times in records (ReadNeedleBlob,
CopyFile of a .dat, VolumeIncrementalCopy), a copied .vif compared as JSON with its encode and
expiry times masked, and caller-given byte masks (EC shard reads). Everything else in those
payloads still counts, and the servers' own addresses inside messages are masked without
calling the message a format difference."""

from __future__ import annotations


from difftool._compare import Verdict, compare_grpc
from difftool._mask import ByteMask, mask_grpc_messages, record_clock_ranges
from native.storage import VERSION3, Needle, SuperBlock, encode_needle
from proto import volume_server_pb2 as vs
from tests.difftool.test_compare import grpc

P = "/volume_server_pb.VolumeServer/"


def record(nid: int, data: bytes, ts: int) -> bytes:
    return encode_needle(Needle.create(nid, 7, data, name=b"n"), VERSION3, append_at_ns=ts)


def copy_request(ext: str) -> tuple[bytes, ...]:
    return (vs.CopyFileRequest(volume_id=1, ext=ext, stop_offset=1 << 20).SerializeToString(),)


def test_record_clock_ranges_walk_records_and_a_cut_one() -> None:
    a, b = record(1, b"hello", 5), record(2, b"x" * 30, 6)
    dat = SuperBlock().encode() + a + b
    first = 8 + 16 + int.from_bytes(a[12:16], "big") + 4
    second = 8 + len(a) + 16 + int.from_bytes(b[12:16], "big") + 4
    assert record_clock_ranges(dat, super_block=True) == [(first, first + 8), (second, second + 8)]
    assert record_clock_ranges(dat[:second + 3], super_block=True) == [(first, first + 8), (second, second + 3)]
    assert record_clock_ranges(a + b, super_block=False) == [(first - 8, first), (second - 8, second)]
    assert record_clock_ranges(b"\x02" + dat[1:], super_block=True) == []  # version 2: no times


def test_needle_blob_differing_only_in_append_time_matches() -> None:
    read = P + "ReadNeedleBlob"
    a = vs.ReadNeedleBlobResponse(needle_blob=record(1, b"abc", 111)).SerializeToString()
    b = vs.ReadNeedleBlobResponse(needle_blob=record(1, b"abc", 222)).SerializeToString()
    assert compare_grpc(read, grpc((a,)), grpc((b,))).verdict is Verdict.MATCH
    c = vs.ReadNeedleBlobResponse(needle_blob=record(1, b"abd", 111)).SerializeToString()
    assert compare_grpc(read, grpc((a,)), grpc((c,))).keys == {"msg[*].needle_blob"}


def test_copied_dat_masks_times_across_message_boundaries_and_idx_does_not() -> None:
    dat_a = SuperBlock().encode() + record(1, b"hello", 1) + record(2, b"world", 1)
    dat_b = SuperBlock().encode() + record(1, b"hello", 2) + record(2, b"world", 2)
    cut = 40  # the first record's time straddles the two messages
    msgs = lambda d: tuple(vs.CopyFileResponse(file_content=p).SerializeToString() for p in (d[:cut], d[cut:]))
    copy = P + "CopyFile"
    assert compare_grpc(copy, grpc(msgs(dat_a)), grpc(msgs(dat_b)), request=copy_request(".dat")).verdict is Verdict.MATCH
    # the same bytes as an .idx are compared as they are
    assert compare_grpc(copy, grpc(msgs(dat_a)), grpc(msgs(dat_b)), request=copy_request(".idx")).keys == {
        "msg[*].file_content"}
    worse = dat_b[:20] + b"Z" + dat_b[21:]  # a data byte, not a time
    assert compare_grpc(copy, grpc(msgs(dat_a)), grpc(msgs(worse)), request=copy_request(".dat")).keys == {
        "msg[*].file_content"}


def test_incremental_copy_records_from_a_record_boundary() -> None:
    inc = P + "VolumeIncrementalCopy"
    a = vs.VolumeIncrementalCopyResponse(file_content=record(3, b"q", 1) + record(4, b"r", 1)).SerializeToString()
    b = vs.VolumeIncrementalCopyResponse(file_content=record(3, b"q", 9) + record(4, b"r", 8)).SerializeToString()
    assert compare_grpc(inc, grpc((a,)), grpc((b,))).verdict is Verdict.MATCH


def test_vif_is_json_with_clock_keys_masked() -> None:
    copy = P + "CopyFile"
    go = b'{\n  "version":  3,\n  "ecShardConfig":  {"dataShards":  10, "encodeTsNs":  "17"}\n}'
    py = b'{"version": 3, "ecShardConfig": {"encodeTsNs": "99", "dataShards": 10}}'
    m = lambda raw: (vs.CopyFileResponse(file_content=raw).SerializeToString(),)
    assert compare_grpc(copy, grpc(m(go)), grpc(m(py)), request=copy_request(".vif")).verdict is Verdict.MATCH
    other = b'{"version": 3, "ecShardConfig": {"encodeTsNs": "99", "dataShards": 12}}'
    assert compare_grpc(copy, grpc(m(go)), grpc(m(other)), request=copy_request(".vif")).keys == {
        "msg[*].file_content"}
    absent = b'{"version": 3, "ecShardConfig": {"dataShards": 10}}'  # presence still counts
    assert compare_grpc(copy, grpc(m(go)), grpc(m(absent)), request=copy_request(".vif")).verdict is Verdict.MISMATCH


def test_byte_masks_from_the_caller() -> None:
    read = P + "VolumeEcShardRead"
    a = (vs.VolumeEcShardReadResponse(data=b"abcdef").SerializeToString(),
         vs.VolumeEcShardReadResponse(data=b"ghij").SerializeToString())
    b = (vs.VolumeEcShardReadResponse(data=b"abcXYf").SerializeToString(),
         vs.VolumeEcShardReadResponse(data=b"Zhij").SerializeToString())
    assert compare_grpc(read, grpc(a), grpc(b)).keys == {"msg[*].data"}
    masks = (ByteMask("data", ((3, 5), (6, 7))),)
    assert compare_grpc(read, grpc(a), grpc(b), masks=masks).verdict is Verdict.MATCH
    assert mask_grpc_messages(read, (), a, masks)[1] == vs.VolumeEcShardReadResponse(data=b"\0hij").SerializeToString()


def test_own_address_inside_a_message_is_no_format_difference() -> None:
    delete = P + "BatchDelete"
    text = lambda port: vs.BatchDeleteResponse(results=[vs.DeleteResult(
        file_id="9,01", status=500, error=f"volume 9 not found on 127.0.0.1:{port}")]).SerializeToString()
    c = compare_grpc(delete, grpc((text(1000),)), grpc((text(2000),)), owns_a=(b"127.0.0.1:1000",),
                     owns_b=(b"127.0.0.1:2000",))
    assert c.verdict is Verdict.MATCH
    c = compare_grpc(delete, grpc((text(1000),)), grpc((text(3000),)), owns_a=(b"127.0.0.1:1000",),
                     owns_b=(b"127.0.0.1:2000",))
    assert c.keys == {"msg[*].results[*].error"}
    assert c.diffs[0].path == "msg[0].results[0].error"
