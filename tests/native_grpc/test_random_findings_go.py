"""What the seeded gRPC differential (difftool/_gen_grpc.py) found native answering unlike Go 4.48,
each as a short call sequence replayed on a real Go volume server and a native one side by side.

One run of both servers serves every case (a volume id each); each test then checks its own
calls: every answer the same as Go's, with the differ's comparison (own address and clocks
masked). The last two cases are the deliberate differences (docs/parity.md): Go's answer and
native's differ there on purpose, and the test pins both.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from google.protobuf.message import Message

from difftool._aggregate import Aggregator, judge
from difftool._cluster import Cluster, SideSpec
from difftool._records import GrpcResponse, Sample
from difftool._run import SideClient
from difftool._step import grpc_request
from native.storage import VERSION3, Needle, encode_needle
from proto import volume_server_pb2 as vs
from weedpy.grpc import percent_decode

pytestmark = pytest.mark.slow

COOKIE = 0x01020304


def blob(nid: int, data: bytes = b"hello", **kw) -> tuple[bytes, int]:
    raw = encode_needle(Needle.create(nid, COOKIE, data, **kw), VERSION3)
    return raw, int.from_bytes(raw[12:16], "big")


def write(vid: int, nid: int, raw_size: tuple[bytes, int], size: int | None = None) -> tuple[str, Message]:
    raw, s = raw_size
    return "WriteNeedleBlob", vs.WriteNeedleBlobRequest(volume_id=vid, needle_id=nid, size=s if size is None else size,
                                                        needle_blob=raw)


def garbage(nid: int, size: int = 40) -> tuple[bytes, int]:
    """A record Go accepts (its header and length are right) whose body does not parse."""
    body = b"\xff\xff\xff\xff" + bytes(range(size - 4))
    raw = COOKIE.to_bytes(4, "big") + nid.to_bytes(8, "big") + size.to_bytes(4, "big") + body + bytes(12)
    return raw + bytes(-len(raw) % 8 or 8), size


def bad_crc(nid: int, **kw) -> tuple[bytes, int]:
    raw, size = blob(nid, b"checksummed", **kw)
    at = 16 + size
    return raw[:at] + bytes(b ^ 0xFF for b in raw[at:at + 4]) + raw[at + 4:], size


def alloc(vid: int, **kw) -> tuple[str, Message]:
    return "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3, **kw)


def fid(vid: int, nid: int, cookie: int = COOKIE) -> str:
    return f"{vid},{nid:x}{cookie:08x}"


def status(vid: int) -> tuple[str, Message]:
    return "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid)


def delete(*fids: str, skip: bool = False) -> tuple[str, Message]:
    return "BatchDelete", vs.BatchDeleteRequest(file_ids=list(fids), skip_cookie_check=skip)


def settle(vid: int) -> list[tuple[str, Message]]:
    """A few reads after an EC mount: the first EC needle read asks the master where the shards
    are, which it learns from the mount's heartbeat (a read right after the mount races it)."""
    return [("VolumeEcShardsInfo", vs.VolumeEcShardsInfoRequest(volume_id=vid))] * 3


def compact_commit(vid: int) -> list[tuple[str, Message]]:
    return [("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=vid)),
            ("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=vid))]


CASES: dict[str, list[tuple[str, Message]]] = {
    # WriteNeedleBlob takes only a blob that is exactly the record its size makes (4.48): a
    # longer one was cut to that length, a shorter one refused in other words
    "write-blob-exact-length": [
        alloc(11), write(11, 0x10, blob(0x10)),
        write(11, 0x11, (blob(0x11)[0][:-8], blob(0x11)[1])), write(11, 0x12, (blob(0x12)[0] + bytes(8), blob(0x12)[1])),
        write(11, 0x13, (blob(0x13)[0] + b"x", blob(0x13)[1])), write(11, 0x14, blob(0x14), size=-1),
        write(11, 0x15, (b"", 0), size=-1), ("VolumeSyncStatus", vs.VolumeSyncStatusRequest(volume_id=11)),
    ],
    # a negative offset is os.File.ReadAt's refusal, passed on
    "negative-offsets": [
        alloc(12), write(12, 0x10, blob(0x10)),
        ("ReadNeedleBlob", vs.ReadNeedleBlobRequest(volume_id=12, offset=-8, size=10)),
        ("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=12, needle_id=0x10, offset=-1, size=10)),
        ("ReadNeedleMeta", vs.ReadNeedleMetaRequest(volume_id=12, needle_id=0x10, offset=-8, size=-1)),
        ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=12)),
        ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=12, shard_ids=[0])),
        ("VolumeEcShardRead", vs.VolumeEcShardReadRequest(volume_id=12, shard_id=0, offset=-8, size=16)),
    ],
    # a record written under another id: reads report the record's id and a delete follows it
    "record-of-another-id": [
        alloc(13), write(13, 0x10, blob(0x11)),
        ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=13, needle_id=0x10)),
        delete(fid(13, 0x10)), ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=13, needle_id=0x10)),
        ("VolumeSyncStatus", vs.VolumeSyncStatusRequest(volume_id=13)),
    ],
    # BatchDelete on a volume with EC shards mounted deletes through the EC volume (Go checks it
    # first); one deleted already is 304 without a cookie check
    "batch-delete-on-ec": [
        alloc(14), write(14, 0x20, blob(0x20)), write(14, 0x21, blob(0x21)), write(14, 0x23, blob(0x23, b"m")),
        ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=14)),
        write(14, 0x22, blob(0x22)),
        ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=14, shard_ids=[0, 1])),
        *settle(14), delete(fid(14, 0x21)), delete(fid(14, 0x21)), delete(fid(14, 0x21), skip=True), delete(fid(14, 0x22), skip=True),
        delete(fid(14, 0x20, 7)),
        ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=14, needle_id=0x21)),
        ("VolumeEcShardsUnmount", vs.VolumeEcShardsUnmountRequest(volume_id=14, shard_ids=[0])),
        delete(fid(14, 0x23)),
    ],
    # a needle of an EC volume that does not read: Go's refusal prints the needle as far as its
    # read got (data size, name, mime, compressed flag)
    "ec-unreadable-needles": [
        alloc(27), write(27, 0x41, garbage(0x41)), write(27, 0x42, bad_crc(0x42, name="a.txt", mime="text/plain", gzipped=True)),
        write(27, 0x43, blob(0x43)), ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=27)),
        ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=27, shard_ids=list(range(14)))),
        *settle(27), delete(fid(27, 0x41)), delete(fid(27, 0x42)), delete(fid(27, 0x41), fid(27, 0x42), skip=True),
    ],
    # EcShardsInfo: the shards in mount order, the block size, a deleted entry counting nothing
    "ec-shards-info": [
        alloc(15), write(15, 0x30, blob(0x30)), write(15, 0x31, blob(0x31, b"x" * 33)), write(15, 0x32, blob(0x32)),
        ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=15)),
        ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=15, shard_ids=[9, 2, 3])),
        ("VolumeEcBlobDelete", vs.VolumeEcBlobDeleteRequest(volume_id=15, file_key=0x31, version=3)),
        ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=15, shard_ids=[0])),
        ("VolumeEcShardsInfo", vs.VolumeEcShardsInfoRequest(volume_id=15)),
    ],
    # a record that does not parse: ReadAllNeedles sends what Go's scan read of it, the
    # append-time search and a needle read fail with Go's words
    "unparsable-records": [
        alloc(16), write(16, 0x40, blob(0x40)), write(16, 0x41, garbage(0x41)), write(16, 0x42, bad_crc(0x42)),
        write(16, 0x43, blob(0x43)),
        ("ReadAllNeedles", vs.ReadAllNeedlesRequest(volume_ids=[16])),
        ("VolumeIncrementalCopy", vs.VolumeIncrementalCopyRequest(volume_id=16, since_ns=1)),
        ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=16, needle_id=0x41)),
        ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=16, needle_id=0x42)),
        delete(fid(16, 0x41)),
        ("Query", vs.QueryRequest(selections=["a"], from_file_ids=[fid(16, 0x41)],
                                  input_serialization={"json_input": {"type": "LINES"}})),
        *compact_commit(16), status(16),
    ],
    # a compaction drops the TTL needles of a volume without a TTL and still succeeds (4.48)
    "compact-drops-ttl-needles": [
        alloc(17), write(17, 0x50, blob(0x50, b"t" * 3000, ttl="7d", last_modified=1_700_000_000)),
        write(17, 0x51, blob(0x51)),
        *compact_commit(17), status(17), ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=17, needle_id=0x50)),
    ],
    # the same blob twice writes nothing the second time, an empty one included
    "repeated-empty-blob": [
        alloc(18), write(18, 0x60, blob(0x60, b"")), write(18, 0x60, blob(0x60, b"")),
        ("VolumeSyncStatus", vs.VolumeSyncStatusRequest(volume_id=18)),
    ],
    # VolumeConfigure keeps the replication text as given ("" and "9" pass Go's parse)
    "configure-keeps-text": [
        alloc(19), ("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=19, replication="")),
        ("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=19)),
        ("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=19, replication="9")),
        ("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=19)),
        ("CopyFile", vs.CopyFileRequest(volume_id=19, ext=".vif", stop_offset=4096)),
    ],
    # a commit's reload reads the .vif an EC encode wrote
    "reload-reads-ec-config": [
        alloc(20), write(20, 0x70, blob(0x70)), ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=20)),
        *compact_commit(20), ("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=20)),
    ],
    # a commit reloads a volume marked read-only at runtime with Go's read-only map; marking it
    # read-only with deletes allowed swaps the writable map back in, whose deletes count
    "read-only-map-after-reload": [
        alloc(21), write(21, 0x80, blob(0x80)), write(21, 0x81, blob(0x81, b"")), write(21, 0x82, blob(0x82, b"y" * 99)),
        ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=21)), *compact_commit(21), status(21),
        ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=21, can_delete=True)),
        delete(fid(21, 0x82)), status(21), ("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=21)),
    ],
    # the map a commit adopts counts every index row as a file, deletions included
    "commit-counts-makeup-rows": [
        alloc(22), write(22, 0x90, blob(0x90)), write(22, 0x91, blob(0x91)),
        ("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=22)), delete(fid(22, 0x91)),
        ("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=22)), status(22),
    ],
    # a volume loaded read-only counts with Go's reverse index walk, whose Bloom filter takes
    # 0x10 for a deleted id (3 deletions, 65 garbage bytes); its deletes count nothing
    "read-only-load-walk-counters": [
        alloc(24), write(24, 0x10, blob(0x10)), write(24, 0x11, blob(0x11, b"x" * 100)), write(24, 0x12, blob(0x12)),
        write(24, 0x14, blob(0x14, b"y" * 50)), delete(fid(24, 0x14)),
        ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=24, persist=True, can_delete=True)),
        ("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=24, replication="000")),
        status(24), ("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=24)),
        delete(fid(24, 0x11)), status(24), ("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=24)),
    ],
    # loaded read-only, then marked read-only with deletes allowed: the writable map again (the
    # empty needle is no deletion there), and deletes count
    "read-only-load-then-can-delete": [
        alloc(25), write(25, 0x10, blob(0x10)), write(25, 0x11, blob(0x11, b"x" * 100)), write(25, 0x13, blob(0x13, b"")),
        ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=25, persist=True)),
        ("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=25, replication="000")), status(25),
        ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=25, can_delete=True)), status(25),
        delete(fid(25, 0x11)), status(25), ("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=25)),
    ],
    # marked read-only with deletes allowed, then compacted: the commit's reload is the read-only
    # map, whose deletes count nothing
    "compacted-read-only-deletes-count-nothing": [
        alloc(26), write(26, 0x10, blob(0x10)), write(26, 0x11, blob(0x11, b"x" * 100)), write(26, 0x12, blob(0x12)),
        ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=26, can_delete=True)), *compact_commit(26),
        delete(fid(26, 0x11)), status(26), ("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=26)),
    ],
    # an empty .dat beside a .vif with an EC config is a leftover: a remount removes it
    "empty-ec-stub-is-removed": [
        alloc(23), ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=23)),
        ("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=23, replication="000")), status(23),
        ("VolumeMount", vs.VolumeMountRequest(volume_id=23)),
    ],
}

# Deliberate differences: native keeps the safe behaviour (docs/parity.md).
DELIBERATE: dict[str, list[tuple[str, Message]]] = {
    # Go commits a volume with no compaction by closing it for good (the next read of its
    # sync status crashes the server, so this case reads its status only)
    "commit-without-compaction": [
        alloc(40), write(40, 0xA0, blob(0xA0)), ("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=40)),
        status(40),
    ],
    # ... and one whose compaction began on an empty index written since (its makeup walk steps
    # below the first row)
    "commit-after-empty-compaction": [
        alloc(43), ("VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=43)), write(43, 0xA1, blob(0xA1)),
        ("VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=43)), status(43),
    ],
    # Go skips the cookie check of an empty needle and deletes it for any cookie
    "empty-needle-wrong-cookie": [
        alloc(41), write(41, 0xB0, blob(0xB0, b"")), delete(fid(41, 0xB0, 0x99)),
        ("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=41, needle_id=0xB0)),
    ],
    # Go panics on an EC shard read of a negative size (makeslice) and the server exits: last
    "ec-read-negative-size": [
        alloc(42), write(42, 0xC0, blob(0xC0)), ("VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=42)),
        ("VolumeEcShardsMount", vs.VolumeEcShardsMountRequest(volume_id=42, shard_ids=[0])),
        ("VolumeEcShardRead", vs.VolumeEcShardReadRequest(volume_id=42, shard_id=0, offset=0, size=-5)),
    ],
}


@dataclasses.dataclass
class Answer:
    label: str
    sample: Sample
    matched: bool
    diffs: tuple[str, ...]

    def status(self, side: str) -> tuple[str, str]:
        r = getattr(self.sample, side).response
        assert isinstance(r, GrpcResponse)
        return (r.trailer(b"grpc-status") or b"").decode(), percent_decode(r.trailer(b"grpc-message") or b"")


def _run_all() -> dict[str, list[Answer]]:
    steps = []
    for case, calls in {**CASES, **DELIBERATE}.items():
        steps += [(f"{case}:{i}", grpc_request(m, msg)) for i, (m, msg) in enumerate(calls)]
    out: dict[str, list[Answer]] = {}
    work = Path(tempfile.mkdtemp(prefix="random-findings-"))
    with Cluster(work, [SideSpec("go", "go"), SideSpec("native", "weedpy", "native")], max_volumes=32) as cluster:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                go, native = (SideClient(cluster.servers[n], nursery) for n in ("go", "native"))
                agg = Aggregator()
                for label, req in steps:
                    answers = [None, None]

                    async def one(i: int, c: SideClient) -> None:
                        answers[i] = await c.send(req, 30)

                    async with trio.open_nursery() as n:
                        n.start_soon(one, 0, go)
                        n.start_soon(one, 1, native)
                    sample = Sample(req.method, req, answers[0], answers[1], label=label)
                    j = judge(sample)
                    agg.add(sample, j)
                    out.setdefault(label.split(":")[0], []).append(
                        Answer(label, sample, j.candidate.verdict.value == "match", tuple(d.path for d in j.candidate.diffs)))
                for c in (go, native):
                    await c.aclose()
                nursery.cancel_scope.cancel()
        trio.run(main)
    return out


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, list[Answer]]]:
    yield _run_all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_native_answers_as_go(answers: dict[str, list[Answer]], case: str) -> None:
    got = answers[case]
    assert len(got) == len(CASES[case])
    bad = [(a.label, a.diffs, a.status("primary"), a.status("candidate")) for a in got if not a.matched]
    assert not bad, bad


@pytest.mark.parametrize("case", ["commit-without-compaction", "commit-after-empty-compaction"])
def test_refused_commit_keeps_the_volume(answers: dict[str, list[Answer]], case: str) -> None:
    *_, commit, after = answers[case]
    assert commit.matched, commit.diffs  # the same refusal as Go's
    assert after.status("primary")[0] == "2" and "data backend not found" in after.status("primary")[1]
    assert after.status("candidate") == ("0", "")  # the volume still answers


def test_empty_needle_keeps_its_cookie_check(answers: dict[str, list[Answer]]) -> None:
    _, _, deleted, status_after = answers["empty-needle-wrong-cookie"]
    go, native = (vs.BatchDeleteResponse.FromString(getattr(deleted.sample, s).response.messages[0]).results[0]
                  for s in ("primary", "candidate"))
    assert (go.status, native.status, native.error) == (304, 400, "File Random Cookie does not match.")
    assert status_after.status("primary") == ("2", "already deleted") and status_after.status("candidate")[0] == "0"


def test_ec_read_of_a_negative_size_keeps_the_server(answers: dict[str, list[Answer]]) -> None:
    read = answers["ec-read-negative-size"][-1]
    assert "connection closed" in read.sample.primary.error  # Go 4.48 crashed
    assert read.status("candidate") == ("0", "") and not read.sample.candidate.response.messages  # nothing to read
