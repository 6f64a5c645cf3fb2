"""The heartbeat state machine from snapshots alone: full, delta, leave messages and the actions a
master's reply asks for. A model master applies the messages; it must always end up holding
exactly what the store holds."""

from __future__ import annotations



from hypothesis import given, settings
from hypothesis import strategies as st

from native.heartbeat import (
    DiskReport,
    HeartbeatState,
    Identity,
    StoreSnapshot,
    VolumeReport,
    interpret_response,
    same_master,
    snapshot_store,
)
from native.storage import Store
from proto import master_pb2, volume_server_pb2

IDENT = Identity("10.0.0.5", 8080, 18080, "vol.example:8080", "10.0.0.5:8080", "dc1", "rack1")
DISK = DiskReport(0, "", 8, "uuid-0", ("fast",), 1000, 400)


def vol(vid: int, collection: str = "", rp: int = 0, ttl: int = 0, size: int = 8, disk_id: int = 0) -> VolumeReport:
    return VolumeReport(
        id=vid, size=size, collection=collection, file_count=1, delete_count=0, deleted_byte_count=0, read_only=False, read_only_can_delete=False,
        replica_placement=rp, version=3, ttl=ttl, compact_revision=0, modified_at_second=1700000000,
        disk_type="", disk_id=disk_id, max_file_key=vid * 10,
    )


def snap(*vols: VolumeReport, disks: tuple[DiskReport, ...] = (DISK,)) -> StoreSnapshot:
    return StoreSnapshot(tuple(vols), disks)


def test_full_heartbeat_carries_identity_disks_volumes_and_state() -> None:
    hb = HeartbeatState(IDENT).full(snap(vol(3, "c"), vol(1)), volume_server_pb2.VolumeServerState(maintenance=True, version=4))
    assert (hb.ip, hb.port, hb.grpc_port, hb.public_url, hb.id) == ("10.0.0.5", 8080, 18080, "vol.example:8080", "10.0.0.5:8080")
    assert (hb.data_center, hb.rack) == ("dc1", "rack1")
    assert [v.id for v in hb.volumes] == [3, 1] and not hb.has_no_volumes and hb.has_no_ec_shards
    assert hb.max_file_key == 30
    assert dict(hb.max_volume_counts) == {"": 8} and dict(hb.disk_total_bytes) == {"": 1000} and dict(hb.disk_free_bytes) == {"": 400}
    assert list(hb.location_uuids) == ["uuid-0"]
    assert [(t.disk_id, list(t.tags), t.max_volume_count) for t in hb.disk_tags] == [(0, ["fast"], 8)]
    assert hb.HasField("state") and hb.state.maintenance and hb.state.version == 4
    assert not hb.HasField("volume_digest")  # no digest: a master takes each full list as the whole truth


def test_empty_store_says_so_and_state_is_always_present() -> None:
    hb = HeartbeatState(IDENT).full(snap())
    assert hb.has_no_volumes and len(hb.volumes) == 0
    assert hb.HasField("state")  # Go 4.48 sends an empty state message too


def test_counts_per_disk_type_are_summed() -> None:
    disks = (DiskReport(0, "", 5, "a"), DiskReport(1, "ssd", 3, "b"), DiskReport(2, "", 2, "c", (), 10, 4))
    hb = HeartbeatState(IDENT).full(snap(disks=disks))
    assert dict(hb.max_volume_counts) == {"": 7, "ssd": 3}
    assert [t.type for t in hb.disk_tags] == ["", "ssd", ""]


def test_delta_reports_added_and_removed_volumes_once() -> None:
    s = HeartbeatState(IDENT)
    s.full(snap(vol(1), vol(2)))
    assert s.delta(snap(vol(1), vol(2))) is None
    d = s.delta(snap(vol(2), vol(7, "c", rp=1, ttl=771)))
    assert d is not None
    assert (d.ip, d.port, d.data_center, d.rack) == ("10.0.0.5", 8080, "dc1", "rack1")
    assert not d.public_url and not d.volumes and not d.has_no_volumes  # a delta, not a full list
    assert [v.id for v in d.deleted_volumes] == [1]
    assert [(v.id, v.collection, v.replica_placement, v.ttl, v.version) for v in d.new_volumes] == [(7, "c", 1, 771, 3)]
    assert s.delta(snap(vol(2), vol(7, "c", rp=1, ttl=771))) is None


def test_a_volume_recreated_differently_goes_out_as_delete_then_add() -> None:
    s = HeartbeatState(IDENT)
    s.full(snap(vol(4)))
    d = s.delta(snap(vol(4, "other")))
    assert d is not None and [v.collection for v in d.deleted_volumes] == [""] and [v.collection for v in d.new_volumes] == ["other"]


def test_size_changes_are_not_deltas() -> None:
    s = HeartbeatState(IDENT)
    s.full(snap(vol(4, size=8)))
    assert s.delta(snap(vol(4, size=9000))) is None  # sizes travel in the periodic full heartbeat


def test_leave_empties_the_server_and_forgets_the_report() -> None:
    s = HeartbeatState(IDENT)
    s.full(snap(vol(1)))
    hb = s.leave()
    assert (hb.ip, hb.port, hb.public_url, hb.has_no_volumes) == ("10.0.0.5", 8080, "vol.example:8080", True)
    assert not hb.volumes and s.reported_ids == frozenset()


def test_reset_starts_over_for_a_new_master() -> None:
    s = HeartbeatState(IDENT)
    s.full(snap(vol(1)))
    s.reset()
    d = s.delta(snap(vol(1)))
    assert d is not None and [v.id for v in d.new_volumes] == [1]


class ModelMaster:
    """What a Go master keeps of one server: full lists replace, deltas add and remove."""

    def __init__(self) -> None:
        self.volumes: dict[int, tuple] = {}

    def apply(self, hb: master_pb2.Heartbeat) -> None:
        for v in hb.deleted_volumes:
            self.volumes.pop(v.id, None)
        for v in hb.new_volumes:
            self.volumes[v.id] = (v.collection, v.replica_placement)
        if hb.volumes or hb.has_no_volumes:
            self.volumes = {v.id: (v.collection, v.replica_placement) for v in hb.volumes}


ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "full", "delta"]), st.integers(1, 6), st.sampled_from(["", "c"])),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_model_master_always_converges_to_the_store(seq: list[tuple[str, int, str]]) -> None:
    store: dict[int, VolumeReport] = {}
    s = HeartbeatState(IDENT)
    master = ModelMaster()
    master.apply(s.full(snap()))
    for op, vid, coll in seq:
        if op == "add":
            store[vid] = vol(vid, coll)
        elif op == "remove":
            store.pop(vid, None)
        current = snap(*store.values())
        if op == "full":
            master.apply(s.full(current))
        else:
            d = s.delta(current)
            if d is not None:
                master.apply(d)
        if op != "full":  # after every delta the master is current
            assert master.volumes == {v: (r.collection, r.replica_placement) for v, r in store.items()}


def test_response_actions() -> None:
    r = master_pb2.HeartbeatResponse(volume_size_limit=32 << 20, leader="127.0.0.1:9333")
    a = interpret_response(r, "127.0.0.1:9333", 0, False)
    assert a.volume_size_limit == 32 << 20 and a.new_leader is None and not a.resend_full
    assert interpret_response(r, "127.0.0.1:9333", 32 << 20, False).volume_size_limit is None  # unchanged
    moved = interpret_response(master_pb2.HeartbeatResponse(leader="127.0.0.1:9334.19334"), "127.0.0.1:9333", 0, False)
    assert moved.new_leader == "127.0.0.1:9334.19334"
    same = interpret_response(master_pb2.HeartbeatResponse(leader="127.0.0.1:9333.19333"), "127.0.0.1:9333", 0, False)
    assert same.new_leader is None
    dup = interpret_response(master_pb2.HeartbeatResponse(duplicated_uuids=["u"], resend_full_volume_list=True), "m:1", 0, False)
    assert dup.duplicated_uuids == ("u",) and dup.resend_full


def test_same_master_compares_http_addresses() -> None:
    assert same_master("10.0.0.1:9333", "10.0.0.1:9333.19333")
    assert not same_master("10.0.0.1:9333", "10.0.0.2:9333")
    assert not same_master("10.0.0.1:9333", "10.0.0.1:9334")


def test_snapshot_of_a_real_store(tmp_path) -> None:
    store = Store.open([str(tmp_path / "a"), str(tmp_path / "b")], max_counts=[3, 4], disk_types=["", "ssd"])
    try:
        store.allocate_volume(5, collection="pics", replication="010", ttl="3d")
        store.allocate_volume(6, disk_type="ssd")
        sn = snapshot_store(store)
        assert [(v.id, v.collection, v.replica_placement, v.ttl, v.disk_type, v.disk_id) for v in sn.volumes] == [
            (5, "pics", 10, 0x0303, "", 0), (6, "", 0, 0, "ssd", 1)]
        assert all(v.size == 8 and v.version == 3 for v in sn.volumes)  # a fresh .dat: just the super block
        assert [(d.disk_id, d.disk_type, d.max_volume_count) for d in sn.disks] == [(0, "", 3), (1, "ssd", 4)]
        assert all(d.total_bytes > 0 and len(d.uuid) == 36 for d in sn.disks)
        assert [v.id for v in snapshot_store(store, skip=[5]).volumes] == [6]
        store.locations[0].is_disk_space_low = True
        low = snapshot_store(store).disks[0]
        assert low.max_volume_count == 1  # a full disk offers only the slots it uses
    finally:
        store.close()



