"""The seeded gRPC generator (difftool/_gen_grpc.py) and the `[generate]` scenario table, sans-IO:
same seed, same steps; every rpc the differential promises is called, with good and bad
arguments; the model's bookkeeping (record offsets, where append times sit, EC shard layout)
is what the masks and offsets rely on."""

from __future__ import annotations

import collections

import pytest

from difftool._gen_grpc import MISSING_VOLUMES, grpc_random_steps
from difftool._gen_model import SUPER_BLOCK, TOMBSTONE_LENGTH, EcModel, Live, VolumeModel
from difftool._generate import GENERATORS, GenerateError, parse_generate
from difftool._scenario import ScenarioError, load_scenario, parse_scenario
from native.storage import VERSION3, Needle, actual_size, encode_needle
from proto.services import rpc_for_path

# The rpcs the issue asks the differential to cover (everything deterministic given the files).
PROMISED = {
    "VolumeNeedleStatus", "ReadNeedleMeta", "ReadNeedleBlob", "WriteNeedleBlob", "BatchDelete", "ReadAllNeedles",
    "VolumeStatus", "VolumeSyncStatus", "ReadVolumeFileStatus", "CopyFile", "VolumeIncrementalCopy",
    "VolumeMarkReadonly", "VolumeMarkWritable", "VolumeConfigure", "VacuumVolumeCheck", "VacuumVolumeCompact",
    "VacuumVolumeCommit", "VacuumVolumeCleanup", "VolumeEcShardsGenerate", "VolumeEcShardsMount",
    "VolumeEcShardRead", "VolumeEcBlobDelete", "VolumeEcShardsDelete", "VolumeEcShardsUnmount",
    "VolumeEcShardsInfo", "Query",
}


def _decoded(step):
    rpc = rpc_for_path(step.request.method)
    msg = rpc.request()
    msg.ParseFromString(step.request.messages[0])
    return rpc.name, msg


def test_same_seed_same_steps_other_seed_other_steps() -> None:
    a, b, c = grpc_random_steps(7, 300), grpc_random_steps(7, 300), grpc_random_steps(8, 300)
    assert len(a) == 300 and a == b
    assert [s.request for s in a] != [s.request for s in c]
    assert grpc_random_steps(7, 120) == a[:120]  # a longer run starts with the shorter one


def test_every_promised_rpc_is_called_with_good_and_bad_arguments() -> None:
    steps = [s for seed in (1, 2, 3) for s in grpc_random_steps(seed, 600)]
    calls = collections.Counter(_decoded(s)[0] for s in steps)
    assert PROMISED <= set(calls), sorted(PROMISED - set(calls))
    expected = collections.Counter(s.expect for s in steps if s.request.method.endswith("/WriteNeedleBlob"))
    assert expected["ok"] > 100 and expected["error"] > 30, expected
    vids = {_decoded(s)[1].volume_id for s in steps if hasattr(_decoded(s)[1], "volume_id")}
    assert set(MISSING_VOLUMES) <= vids  # missing volumes, the zero id and the largest one
    fids = [f for s in steps if _decoded(s)[0] == "BatchDelete" for f in _decoded(s)[1].file_ids]
    assert any("_" in f for f in fids) and any("," not in f for f in fids)  # deltas, no comma at all
    assert any(f.split(",")[0].startswith(("x", "-")) for f in fids)  # a volume id that is no number
    skips = {_decoded(s)[1].skip_cookie_check for s in steps if _decoded(s)[0] == "BatchDelete"}
    assert skips == {True, False}
    exts = {_decoded(s)[1].ext for s in steps if _decoded(s)[0] == "CopyFile"}
    assert {".idx", ".dat", ".vif", ".ecx", ".xyz"} <= exts
    assert any(s.masks for s in steps if _decoded(s)[0] == "VolumeEcShardRead")


def test_never_commits_a_compaction_the_mount_did_not_make() -> None:
    """Go 4.48 closes a volume for good when it commits a compaction it has no record of
    (none made, or made before a remount), and the next write to it crashes the server; the
    generator never asks for that (docs/parity.md)."""
    for seed in range(1, 6):
        compacted: set[int] = set()
        for step in grpc_random_steps(seed, 800):
            name, msg = _decoded(step)
            if name == "VacuumVolumeCompact":
                compacted.add(msg.volume_id)
            elif name == "VolumeConfigure":
                compacted.discard(msg.volume_id)
            elif name in ("VacuumVolumeCommit", "VacuumVolumeCleanup"):
                assert msg.volume_id in compacted or msg.volume_id in MISSING_VOLUMES, step.label
                if name == "VacuumVolumeCommit":
                    compacted.discard(msg.volume_id)


def test_model_places_records_as_go_appends_them() -> None:
    v = VolumeModel(1)
    n = Needle.create(5, 0x11, b"hello", name=b"a")
    blob = encode_needle(n, VERSION3)
    size = int.from_bytes(blob[12:16], "big")
    v.append(Live(5, 0x11, size, 0, blob, n.data, n.checksum or 0))
    assert (v.live[5].offset, v.dat_size) == (SUPER_BLOCK, SUPER_BLOCK + len(blob))
    assert v.clocks() == ((SUPER_BLOCK + 16 + size + 4, SUPER_BLOCK + 16 + size + 12),)
    assert v.delete(5) == size and v.tombstones[5] == SUPER_BLOCK + len(blob)
    assert v.dat_size == SUPER_BLOCK + len(blob) + TOMBSTONE_LENGTH and v.idx_size == 2 * 17
    # a read starting 8 bytes before the tombstone sees the first record's last 8 bytes
    assert v.clock_ranges(v.tombstones[5] - 8, 40) == ((28, 36),)
    v.compact()
    v.commit()
    assert v.dat_size == SUPER_BLOCK and v.compact_revision == 1 and not v.live


def test_compaction_keeps_id_order_and_drops_what_go_drops() -> None:
    v = VolumeModel(1)
    for nid, kw in ((9, {}), (3, {"ttl": "7d", "last_modified": 1}), (7, {}), (1, {})):
        n = Needle.create(nid, 1, b"x" * nid, **kw)
        blob = encode_needle(n, VERSION3)
        v.append(Live(nid, 1, len(blob) - 28, 0, blob, n.data, n.checksum or 0, ttl=n.has_ttl))
    v.append(Live(2, 1, 20, 0, b"", b"", -1, parsable=False, kind="garbage"))
    v.compact()
    records, live, _ = v.compacted
    assert [r.needle_id for r in records] == [1, 7, 9]  # ascending ids, no TTL needle, no garbage


def test_ec_shard_masks_follow_the_dat_into_data_and_parity_shards() -> None:
    ec = EcModel("", 1000, ((100, 108), (500, 508)), {})
    assert ec.shard_size == 1 << 20
    assert ec.shard_clock_ranges(0, 0, 1000) == ((100, 108), (500, 508))
    assert ec.shard_clock_ranges(0, 104, 10) == ((0, 4),)
    assert ec.shard_clock_ranges(11, 0, 1000) == ((100, 108), (500, 508))  # parity mixes shard 0
    assert ec.shard_clock_ranges(3, 0, 1000) == ()  # a small .dat lives in shard 0 only


def test_generate_table_in_scenarios() -> None:
    sc = load_scenario("grpc-random")
    assert sc.generate is not None and sc.generate.kind == "grpc" and len(sc.steps) == sc.generate.operations
    other = sc.regenerated(seed=5, operations=50)
    assert other.generate.seed == 5 and other.steps == grpc_random_steps(5, 50)
    assert set(GENERATORS) == {"grpc"}
    doc = {"name": "g", "generate": {"kind": "grpc", "seed": 3, "operations": 10}}
    assert parse_scenario(doc).steps == grpc_random_steps(3, 10)
    bad = [
        ({"generate": {"kind": "http"}}, "kind must be one of grpc"),
        ({"generate": {"kind": "grpc", "seed": -1}}, "seed must be"),
        ({"generate": {"kind": "grpc", "operations": 0}}, "operations must be"),
        ({"generate": {"kind": "grpc", "size": 1}}, "unknown key"),
        ({"generate": {"kind": "grpc"}, "step": [{"grpc": "Ping"}]}, "either steps or"),
    ]
    for d, text in bad:
        with pytest.raises(ScenarioError, match=text):
            parse_scenario(d)
    with pytest.raises(GenerateError):
        parse_generate({"kind": "grpc", "seed": True})
    with pytest.raises(ScenarioError, match="not generated"):
        load_scenario("grpc-volume-admin").regenerated(seed=1)


def test_blobs_are_exact_records_except_the_bad_ones() -> None:
    """Good writes carry exactly the record their size makes; bad ones cover each way a blob can
    be wrong (negative size, shorter than a header, header size not the request's, a length
    that is not the record's)."""
    defects = collections.Counter()
    for step in [s for seed in (4, 5) for s in grpc_random_steps(seed, 600)]:
        name, msg = _decoded(step)
        if name != "WriteNeedleBlob":
            continue
        blob, size = msg.needle_blob, msg.size
        if step.expect == "ok":
            assert len(blob) == actual_size(size, VERSION3) and int.from_bytes(blob[12:16], "big") == size
        elif size < 0:
            defects["negative"] += 1
        elif len(blob) < 16:
            defects["short"] += 1
        elif int.from_bytes(blob[12:16], "big") != size:
            defects["header"] += 1
        elif len(blob) != actual_size(size, VERSION3):
            defects["length"] += 1
    assert set(defects) == {"negative", "short", "header", "length"}, defects
