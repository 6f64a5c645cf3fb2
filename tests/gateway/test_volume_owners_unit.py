"""Per-volume owners without processes: which volume a request names, the gate a move closes
(hold, drain, release, the hold limit), and Go's heartbeats merged with native's volumes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import trio
import trio.testing

from gateway.heartbeat_relay import merge_heartbeat, rewrite_heartbeat_response
from proto import master_pb2
from proto import volume_server_pb2 as vs
from weedpy.serve.volume_owners import (
    GO,
    NATIVE,
    VolumeHeld,
    VolumeOwners,
    WorkerVolumes,
    request_volumes,
    volume_methods,
    volume_of_path,
)

P = "/volume_server_pb.VolumeServer/"


@pytest.mark.parametrize("path, vid", [
    (b"/3,01637037d6", 3), (b"/3/01637037d6.jpg", 3), (b"/3/01637037d6/name.txt", 3), (b"/4294967295,1ab", 4294967295),
    (b"/status", None), (b"/,1ab", None), (b"/3", None), (b"/4294967296,1ab", None), (b"/x3,1", None), (b"/", None),
])
def test_the_volume_of_a_path(path: bytes, vid: int | None) -> None:
    assert volume_of_path(path) == vid


def test_the_volumes_a_request_names() -> None:
    methods = volume_methods()
    assert {P + "VolumeUnmount", P + "CopyFile", P + "ReadAllNeedles", P + "BatchDelete", P + "ReceiveFile",
            P + "AllocateVolume", P + "VolumeTailSender"} <= methods
    assert not {P + "VolumeServerStatus", P + "DeleteCollection", P + "Ping", P + "VolumeServerLeave"} & methods
    raw = vs.VolumeStatusRequest(volume_id=12).SerializeToString()
    assert request_volumes(P + "VolumeStatus", raw) == [12]
    assert request_volumes(P + "ReadAllNeedles", vs.ReadAllNeedlesRequest(volume_ids=[4, 5]).SerializeToString()) == [4, 5]
    batch = vs.BatchDeleteRequest(file_ids=["3,01637037d6", "9,1ab00000001", "3,2cd00000002"]).SerializeToString()
    assert request_volumes(P + "BatchDelete", batch) == [3, 9, 3]
    bad = vs.BatchDeleteRequest(file_ids=["3,01637037d6", "nonsense"]).SerializeToString()
    assert request_volumes(P + "BatchDelete", bad) is None  # goes where the route says, and fails there
    info = vs.ReceiveFileRequest(info=vs.ReceiveFileInfo(volume_id=6, ext=".dat")).SerializeToString()
    assert request_volumes(P + "ReceiveFile", info) == [6]
    assert request_volumes(P + "Ping", b"") is None
    assert request_volumes(P + "VolumeStatus", b"\xff\xff") is None


async def test_a_held_volume_waits_for_its_move_and_goes_to_the_new_owner() -> None:
    owners = VolumeOwners(hold_limit=30)
    sides: list[str] = []
    async with trio.open_nursery() as nursery:
        async with owners.using([5]) as before:  # a request already running
            assert before == {5: GO}
            owners.hold(5)
            drained = False

            async def drain() -> None:
                nonlocal drained
                drained = await owners.drain(5, 30)

            async def request() -> None:
                async with owners.using([5]) as s:
                    sides.append(s[5])

            nursery.start_soon(drain)
            nursery.start_soon(request)
            await trio.testing.wait_all_tasks_blocked()
            assert not drained and sides == [] and owners.away_from_go() == {5}
        await trio.testing.wait_all_tasks_blocked()
        assert drained and sides == []  # the running request finished; the new one still waits
        owners.release(5, NATIVE)
    assert sides == [NATIVE] and owners.native_volumes() == [5] and owners.inflight(5) == 0
    async with owners.using([6]) as other:  # other volumes never wait
        assert other == {6: GO}


async def test_a_request_held_past_the_limit_is_refused(autojump_clock) -> None:
    owners = VolumeOwners(hold_limit=10)
    owners.hold(5)
    with pytest.raises(VolumeHeld, match="volume 5 is being moved"):
        await owners.enter([4, 5])
    assert owners.inflight(4) == 0 and owners.inflight(5) == 0
    assert await owners.drain(6, 1) is True  # nothing in flight: drained at once


async def test_a_drain_gives_up_after_its_timeout(autojump_clock) -> None:
    owners = VolumeOwners()
    await owners.enter([5])
    owners.hold(5)
    assert await owners.drain(5, 3) is False
    owners.leave([5])
    assert await owners.drain(5, 3) is True


def _info(vid: int, size: int = 100) -> master_pb2.VolumeInformationMessage:
    return master_pb2.VolumeInformationMessage(id=vid, size=size, version=3)


def _full(*vids: int) -> master_pb2.Heartbeat:
    hb = master_pb2.Heartbeat(ip="127.0.0.1", port=8080, max_file_key=10, location_uuids=["u"], volume_digest=12345,
                              has_no_volumes=not vids)
    hb.max_volume_counts[""] = 8
    hb.volumes.extend(_info(v) for v in vids)
    return hb


def test_a_full_heartbeat_lists_both_sides() -> None:
    seen: dict[int, master_pb2.VolumeInformationMessage] = {}
    hb = _full(1, 2)
    merge_heartbeat(hb, frozenset({7}), [_info(7, 555)], 99, seen)
    assert sorted(v.id for v in hb.volumes) == [1, 2, 7] and not hb.has_no_volumes
    assert hb.max_file_key == 99 and not hb.HasField("volume_digest") and hb.max_volume_counts[""] == 8
    empty = _full()  # Go holds nothing: native's volumes make it a server with volumes
    merge_heartbeat(empty, frozenset({7}), [_info(7)], 0, seen)
    assert [v.id for v in empty.volumes] == [7] and not empty.has_no_volumes


def test_a_volume_in_the_middle_of_a_move_is_reported_as_last_seen() -> None:
    seen: dict[int, master_pb2.VolumeInformationMessage] = {}
    merge_heartbeat(_full(1, 7), frozenset(), [], 0, seen)
    hb = _full(1)  # Go unmounted 7, native has not mounted it yet
    hb.deleted_volumes.add(id=7)
    hb.deleted_volumes.add(id=3)
    merge_heartbeat(hb, frozenset({7}), [], 0, seen)
    assert sorted(v.id for v in hb.volumes) == [1, 7] and [v.id for v in hb.deleted_volumes] == [3]


def test_deltas_stay_deltas_and_go_leaving_stays_empty() -> None:
    seen: dict[int, master_pb2.VolumeInformationMessage] = {}
    delta = master_pb2.Heartbeat(ip="127.0.0.1", port=8080)
    delta.deleted_volumes.add(id=7)
    delta.new_volumes.add(id=9)
    merge_heartbeat(delta, frozenset({7}), [_info(7)], 5, seen)
    assert not delta.volumes and not delta.deleted_volumes and [v.id for v in delta.new_volumes] == [9]
    leave = master_pb2.Heartbeat(ip="127.0.0.1", port=8080, public_url="x", has_no_volumes=True)
    merge_heartbeat(leave, frozenset({7}), [_info(7)], 5, seen)
    assert not leave.volumes and leave.has_no_volumes


def test_go_is_told_the_master_takes_no_digests_and_native_learns_the_limit() -> None:
    class Merge:
        limit = 0

        def volume_size_limit(self, limit: int) -> None:
            self.limit = limit

    merge = Merge()
    raw = master_pb2.HeartbeatResponse(volume_size_limit=1 << 30, volume_digest_supported=True).SerializeToString()
    out, leader = rewrite_heartbeat_response(raw, "127.0.0.1:1.2", merge)  # type: ignore[arg-type]
    resp = master_pb2.HeartbeatResponse.FromString(out)
    assert not resp.volume_digest_supported and resp.volume_size_limit == 1 << 30 and leader == ""
    assert merge.limit == 1 << 30
    plain, _ = rewrite_heartbeat_response(raw, "127.0.0.1:1.2")
    assert plain == raw  # proxy mode: unchanged


class _Exch:
    """What `owned_request` reads of an exchange."""

    def __init__(self, method: bytes, target: bytes, port_kind: str = "admin") -> None:
        self.request = SimpleNamespace(method=method, target=target)
        self.port_kind = port_kind


async def test_a_worker_hands_the_leader_the_volumes_it_names_and_waits_for_its_own() -> None:
    worker = WorkerVolumes([9])
    served: list[tuple[str, bytes]] = []
    release = trio.Event()

    async def direct(exch) -> None:
        served.append(("go", exch.request.target))
        await release.wait()

    async def leader(exch) -> None:
        served.append(("leader", exch.request.target))

    route = worker.route(direct, leader)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(route, _Exch(b"PUT", b"/5,01637037d6"))
        await route(_Exch(b"GET", b"/9,01637037d6"))
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(served) == [("go", b"/5,01637037d6"), ("leader", b"/9,01637037d6")]
        undrained = await worker.update([5, 9], [9], 0.01)  # volume 5's write is still at Go
        assert undrained == [5]
        release.set()
        assert await worker.update([5, 9], [9], 5) == []
        assert (worker.owner_of(9), worker.owner_of(5)) == ("native", None)  # 5 is moving: the leader decides
        await route(_Exch(b"DELETE", b"/5,01637037d6"))
        await route(_Exch(b"GET", b"/status"))  # the volume lists: the leader merges both sides'
        await route(_Exch(b"GET", b"/ui/index.html"))
        nursery.start_soon(route, _Exch(b"GET", b"/healthz"))  # not a file id: straight on
        await trio.testing.wait_all_tasks_blocked()
    assert served[-4:] == [("leader", b"/5,01637037d6"), ("leader", b"/status"), ("leader", b"/ui/index.html"),
                           ("go", b"/healthz")]
