"""Differential: every control-plane rpc, sent to a Go 4.48 volume server and to native weedpy
holding the same volumes, in the same order; responses (or status code and message) must match
after the mask in tests/support/compare.py (GRPC_VARIABLE_FIELDS)."""

from __future__ import annotations

from collections.abc import Iterator


import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import Outcome, Side, call, start_pair_sides
from tests.support.waiting import wait_until
from tests.support.compare import GRPC_VARIABLE_FIELDS, message_doc

pytestmark = pytest.mark.slow


class Pair:
    def __init__(self, go: Side, py: Side) -> None:
        self.go, self.py = go, py
        self.mismatches: list[str] = []

    def _view(self, side: Side, method: str, out: Outcome) -> tuple:
        if out.ok:
            return ("OK", message_doc(out.response, GRPC_VARIABLE_FIELDS.get(method, ())))
        return (out.status, out.message.replace(side.addr, "<self>"))

    def same(self, method: str, request, response_type, label: str = "") -> tuple[Outcome, Outcome]:
        g = call(self.go.grpc, method, request, response_type)
        p = call(self.py.grpc, method, request, response_type)
        gv, pv = self._view(self.go, method, g), self._view(self.py, method, p)
        if gv != pv:
            self.mismatches.append(f"{label or method} {request!r}:\n    go:     {gv}\n    weedpy: {pv}")
        return g, p

    def both(self, fn) -> None:
        for side in (self.go, self.py):
            fn(side)

    def check(self) -> None:
        mismatches, self.mismatches = self.mismatches, []
        assert not mismatches, "\n".join(mismatches)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    go, py = start_pair_sides(tmp_path_factory.mktemp("diff-grpc"))
    try:
        yield Pair(go, py)
    finally:
        go.stop()
        py.stop()


def put(side: Side, fid: str, body: bytes, query: str = "ts=1700000000") -> None:
    r = httpx.put(f"{side.url}/{fid}?{query}", content=body, timeout=10)
    assert r.status_code in (201, 204), (side.name, r.status_code, r.text)


def delete(side: Side, fid: str) -> None:
    r = httpx.delete(f"{side.url}/{fid}", timeout=10)
    assert r.status_code == 202, (side.name, r.status_code, r.text)


def alloc(vid: int, **kw) -> vs.AllocateVolumeRequest:
    kw.setdefault("version", 3)
    return vs.AllocateVolumeRequest(volume_id=vid, **kw)


def test_state_and_maintenance_mode(pair: Pair) -> None:
    pair.same("GetState", vs.GetStateRequest(), vs.GetStateResponse)
    pair.same("SetState", vs.SetStateRequest(), vs.SetStateResponse, "SetState without a state is a no-op")
    pair.same("SetState", vs.SetStateRequest(state=vs.VolumeServerState(maintenance=True, version=5)), vs.SetStateResponse,
              "SetState with a stale version")
    pair.same("SetState", vs.SetStateRequest(state=vs.VolumeServerState(maintenance=True)), vs.SetStateResponse)
    pair.same("GetState", vs.GetStateRequest(), vs.GetStateResponse)
    pair.same("AllocateVolume", alloc(20), vs.AllocateVolumeResponse, "allocate in maintenance")
    pair.same("VolumeDelete", vs.VolumeDeleteRequest(volume_id=20), vs.VolumeDeleteResponse, "delete in maintenance")
    pair.same("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=20, replication="001"), vs.VolumeConfigureResponse,
              "configure in maintenance")
    pair.same("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=20), vs.VolumeMarkReadonlyResponse,
              "mark readonly of a missing volume in maintenance")
    pair.same("SetState", vs.SetStateRequest(state=vs.VolumeServerState(maintenance=False, version=1)), vs.SetStateResponse)
    pair.same("GetState", vs.GetStateRequest(), vs.GetStateResponse)
    pair.check()


def test_maintenance_mode_with_an_existing_volume(pair: Pair) -> None:
    pair.same("AllocateVolume", alloc(27), vs.AllocateVolumeResponse)
    state = call(pair.go.grpc, "GetState", vs.GetStateRequest(), vs.GetStateResponse).response.state
    on = vs.VolumeServerState(maintenance=True, version=state.version)
    pair.same("SetState", vs.SetStateRequest(state=on), vs.SetStateResponse)
    pair.same("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=27, persist=True), vs.VolumeMarkReadonlyResponse)
    pair.same("VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=27), vs.VolumeMarkWritableResponse)
    pair.same("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=27, replication="000"), vs.VolumeConfigureResponse)
    pair.same("VolumeUnmount", vs.VolumeUnmountRequest(volume_id=27), vs.VolumeUnmountResponse)
    pair.same("VolumeMount", vs.VolumeMountRequest(volume_id=27), vs.VolumeMountResponse)
    pair.same("VolumeDelete", vs.VolumeDeleteRequest(volume_id=27, only_empty=True), vs.VolumeDeleteResponse)
    pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=27), vs.VolumeStatusResponse, "after delete in maintenance")
    off = vs.VolumeServerState(maintenance=False, version=on.version + 1)
    pair.same("SetState", vs.SetStateRequest(state=off), vs.SetStateResponse)
    pair.check()


def test_allocate_variants(pair: Pair) -> None:
    pair.same("AllocateVolume", alloc(21), vs.AllocateVolumeResponse)
    pair.same("AllocateVolume", alloc(21), vs.AllocateVolumeResponse, "duplicate")
    pair.same("AllocateVolume", alloc(22, version=0), vs.AllocateVolumeResponse, "version 0")
    pair.same("AllocateVolume", alloc(23, replication="0x1"), vs.AllocateVolumeResponse, "bad replication")
    pair.same("AllocateVolume", alloc(24, ttl="5x"), vs.AllocateVolumeResponse, "bad ttl")
    pair.same("AllocateVolume", alloc(25, collection="pics", replication="001", ttl="7d"), vs.AllocateVolumeResponse)
    pair.same("AllocateVolume", alloc(26, disk_type="ssd"), vs.AllocateVolumeResponse, "no ssd location")
    for vid in (21, 25, 99):
        pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse)
        pair.same("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid), vs.ReadVolumeFileStatusResponse)
    pair.check()


def test_needle_status(pair: Pair) -> None:
    pair.same("AllocateVolume", alloc(30), vs.AllocateVolumeResponse)
    pair.both(lambda s: put(s, "30,01637037d6", b"hello world"))
    pair.both(lambda s: put(s, "30,02aabbccdd", b"short lived", "ts=1700000000&ttl=3m"))
    pair.both(lambda s: put(s, "30,03aabbccdd", b"gone"))
    pair.both(lambda s: delete(s, "30,03aabbccdd"))
    for nid in (1, 2, 3, 4):
        pair.same("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=30, needle_id=nid), vs.VolumeNeedleStatusResponse,
                  f"needle {nid}")
    pair.same("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=31, needle_id=1), vs.VolumeNeedleStatusResponse,
              "missing volume")
    pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=30), vs.VolumeStatusResponse)
    pair.same("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=30), vs.ReadVolumeFileStatusResponse)
    pair.check()


def test_readonly_and_writable(pair: Pair) -> None:
    pair.same("AllocateVolume", alloc(40), vs.AllocateVolumeResponse)
    pair.both(lambda s: wait_until(lambda: _registered(s, 40), what=f"volume 40 on {s.name}'s master"))
    pair.same("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=40), vs.VolumeMarkReadonlyResponse)
    pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=40), vs.VolumeStatusResponse, "after readonly")
    pair.same("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=40), vs.ReadVolumeFileStatusResponse)
    pair.same("VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=40), vs.VolumeMarkWritableResponse)
    pair.same("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=40), vs.ReadVolumeFileStatusResponse,
              "after writable")
    pair.same("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=40, can_delete=True, persist=True),
              vs.VolumeMarkReadonlyResponse, "persisted, deletes allowed")
    pair.same("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=40), vs.ReadVolumeFileStatusResponse,
              "after persisted readonly")
    pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=40), vs.VolumeStatusResponse, "after persisted readonly")
    pair.same("VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=40), vs.VolumeMarkWritableResponse)
    pair.same("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=41), vs.VolumeMarkReadonlyResponse, "missing")
    pair.same("VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=41), vs.VolumeMarkWritableResponse, "missing")
    pair.check()


def test_configure_mount_unmount_delete(pair: Pair) -> None:
    pair.same("AllocateVolume", alloc(50), vs.AllocateVolumeResponse)
    pair.both(lambda s: put(s, "50,01637037d6", b"data"))
    pair.same("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=50, replication="001"), vs.VolumeConfigureResponse)
    pair.same("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=50), vs.ReadVolumeFileStatusResponse,
              "after configure")
    pair.same("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=50, replication="0x1"), vs.VolumeConfigureResponse,
              "bad replication")
    pair.same("VolumeConfigure", vs.VolumeConfigureRequest(volume_id=59, replication="001"), vs.VolumeConfigureResponse,
              "missing volume")
    pair.same("VolumeUnmount", vs.VolumeUnmountRequest(volume_id=50), vs.VolumeUnmountResponse)
    pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=50), vs.VolumeStatusResponse, "unmounted")
    pair.same("VolumeUnmount", vs.VolumeUnmountRequest(volume_id=50), vs.VolumeUnmountResponse, "unmount twice")
    pair.same("VolumeMount", vs.VolumeMountRequest(volume_id=50), vs.VolumeMountResponse)
    pair.same("VolumeMount", vs.VolumeMountRequest(volume_id=50), vs.VolumeMountResponse, "mount twice")
    pair.same("VolumeMount", vs.VolumeMountRequest(volume_id=59), vs.VolumeMountResponse, "mount missing")
    pair.same("VolumeDelete", vs.VolumeDeleteRequest(volume_id=50, only_empty=True), vs.VolumeDeleteResponse, "not empty")
    pair.same("VolumeDelete", vs.VolumeDeleteRequest(volume_id=50), vs.VolumeDeleteResponse)
    pair.same("VolumeDelete", vs.VolumeDeleteRequest(volume_id=50), vs.VolumeDeleteResponse, "delete twice")
    pair.same("AllocateVolume", alloc(51), vs.AllocateVolumeResponse)
    pair.same("VolumeDelete", vs.VolumeDeleteRequest(volume_id=51, only_empty=True), vs.VolumeDeleteResponse, "empty")
    pair.check()


def test_delete_collection(pair: Pair) -> None:
    pair.same("AllocateVolume", alloc(60, collection="tmpc"), vs.AllocateVolumeResponse)
    pair.same("AllocateVolume", alloc(61, collection="tmpc"), vs.AllocateVolumeResponse)
    pair.same("DeleteCollection", vs.DeleteCollectionRequest(collection="tmpc"), vs.DeleteCollectionResponse)
    pair.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=60), vs.VolumeStatusResponse, "collection gone")
    pair.same("DeleteCollection", vs.DeleteCollectionRequest(collection="tmpc"), vs.DeleteCollectionResponse, "again")
    pair.same("DeleteCollection", vs.DeleteCollectionRequest(collection="never"), vs.DeleteCollectionResponse, "unknown")
    pair.check()


def test_server_status_and_ping(pair: Pair) -> None:
    pair.same("VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
    pair.same("Ping", vs.PingRequest(), vs.PingResponse, "self ping")
    for kind, target in (("master", "127.0.0.1:1"), ("volumeServer", "127.0.0.1:1"), ("filer", "127.0.0.1:1"), ("nope", "x")):
        pair.same("Ping", vs.PingRequest(target=target, target_type=kind), vs.PingResponse, f"ping {kind}")
    g = call(pair.go.grpc, "Ping", vs.PingRequest(target=pair.go.master.address, target_type="master"), vs.PingResponse)
    p = call(pair.py.grpc, "Ping", vs.PingRequest(target=pair.py.master.address, target_type="master"), vs.PingResponse)
    assert g.ok and p.ok, (g, p)
    assert p.response.remote_time_ns > 0 and p.response.start_time_ns <= p.response.stop_time_ns
    assert message_doc(g.response, GRPC_VARIABLE_FIELDS["Ping"]) == message_doc(p.response, GRPC_VARIABLE_FIELDS["Ping"])
    grpc_style = f"127.0.0.1:{pair.py.master.port}.{pair.py.master.grpc_port}"
    assert call(pair.py.grpc, "Ping", vs.PingRequest(target=grpc_style, target_type="master"), vs.PingResponse).ok
    pair.check()


def test_unknown_methods_say_unimplemented(pair: Pair) -> None:
    """What an unported rpc answers in native mode; Go answers the same for a method it lacks."""
    for side in (pair.go, pair.py):
        out = call(side.grpc, "NoSuchMethod", vs.PingRequest(), vs.PingResponse)
        assert out.status == "UNIMPLEMENTED", (side.name, out)


def test_leave_last(pair: Pair) -> None:
    """VolumeServerLeave on both (idempotent): heartbeats stop and /healthz turns 503."""
    for _ in range(2):
        pair.same("VolumeServerLeave", vs.VolumeServerLeaveRequest(), vs.VolumeServerLeaveResponse)
    pair.both(lambda s: wait_until(lambda: httpx.get(f"{s.url}/healthz", timeout=5).status_code == 503,
                                   timeout=10, what=f"{s.name} /healthz 503"))
    pair.check()


def _registered(side: Side, vid: int) -> bool:
    from tests.native_core.support import lookup_urls

    return side.addr in lookup_urls(side.master, vid)





@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Both servers with a whitelist that does not include the test's address."""
    go, py = start_pair_sides(tmp_path_factory.mktemp("diff-grpc-guard"), native_extra=["-whiteList=10.9.9.9"],
                              go_extra=["-whiteList=10.9.9.9"])
    try:
        yield Pair(go, py)
    finally:
        go.stop()
        py.stop()


def test_admin_rpcs_check_the_whitelist(guarded: Pair) -> None:
    guarded.same("AllocateVolume", alloc(70), vs.AllocateVolumeResponse)
    guarded.same("SetState", vs.SetStateRequest(state=vs.VolumeServerState(maintenance=True)), vs.SetStateResponse)
    guarded.same("DeleteCollection", vs.DeleteCollectionRequest(collection="x"), vs.DeleteCollectionResponse)
    guarded.same("VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=70, needle_id=1), vs.VolumeNeedleStatusResponse)
    guarded.same("VolumeMount", vs.VolumeMountRequest(volume_id=70), vs.VolumeMountResponse)
    guarded.same("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=70), vs.VolumeMarkReadonlyResponse)
    guarded.same("VolumeServerLeave", vs.VolumeServerLeaveRequest(), vs.VolumeServerLeaveResponse)
    guarded.same("GetState", vs.GetStateRequest(), vs.GetStateResponse, "no whitelist on reads")
    guarded.same("VolumeStatus", vs.VolumeStatusRequest(volume_id=70), vs.VolumeStatusResponse, "no whitelist on reads")
    guarded.check()


def test_unary_calls_end_with_the_request_id_trailer(pair: Pair) -> None:
    """Go's unary interceptor: the caller's x-amz-request-id comes back as a trailer (a new one if none)."""
    import trio

    from weedpy.grpc import Channel

    async def trailers(port: int, metadata: list[tuple[str, str]]) -> dict[str, object]:
        async with Channel("127.0.0.1", port) as ch:
            async with ch.open_call("/volume_server_pb.VolumeServer/Ping", vs.PingResponse, metadata=metadata) as c:
                await c.send_message(vs.PingRequest(), end=True)
                await c.receive_unary()
                return dict(c.trailing_metadata)

    for side in (pair.go, pair.py):
        echoed = trio.run(trailers, side.grpc, [("x-amz-request-id", "weedpy-test-42")])
        assert echoed.get("x-amz-request-id") == "weedpy-test-42", (side.name, echoed)
        fresh = trio.run(trailers, side.grpc, [])
        assert len(str(fresh.get("x-amz-request-id", ""))) == 36, (side.name, fresh)  # a UUID
