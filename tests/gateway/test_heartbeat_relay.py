"""The heartbeat relay: rewriting from bytes, leader tracking, and end to end with a real master
and a real Go volume server that registers through it under a front identity."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio

from gateway.backend import BackendEndpoints, FrontIdentity
from gateway.grpc_proxy import serve_grpc_proxy
from gateway.heartbeat_relay import (
    HeartbeatRelay,
    LeaderTracker,
    rewrite_heartbeat,
    rewrite_heartbeat_response,
)
from gateway.tcp_relay import serve_tcp_relay
from proto import master_pb2
from tests.support.procs import MasterProc, start_go_volume, start_master, start_proc, wait_http
from proto.services import RPCS
from weedpy.addresses import MasterAddress
from weedpy.grpc import Channel, Context, GrpcError, Router, Status, serve_listeners
from weedpy.weedbin import find_weed_binary

FRONT = FrontIdentity(ip="10.1.2.3", port=18080, grpc_port=28080, public_url="vol.example:18080", server_id="vol-7")


# -- from bytes ------------------------------------------------------------------------------------


def test_full_heartbeat_addresses_are_rewritten_and_the_rest_kept() -> None:
    hb = master_pb2.Heartbeat(
        ip="127.0.0.1", port=40001, grpc_port=50001, public_url="127.0.0.1:40001", id="127.0.0.1:40001",
        data_center="dc1", rack="r1", max_file_key=99, location_uuids=["u1"],
    )
    hb.volumes.add(id=5, size=123, collection="c")
    hb.max_volume_counts["hdd"] = 8
    raw = hb.SerializeToString() + b"\xd8\x07\x01"  # plus an unknown field (250: varint 1) from a newer Go
    out = master_pb2.Heartbeat.FromString(rewrite_heartbeat(raw, FRONT))
    assert (out.ip, out.port, out.grpc_port, out.public_url, out.id) == ("10.1.2.3", 18080, 28080, "vol.example:18080", "vol-7")
    assert (out.data_center, out.rack, out.max_file_key, list(out.location_uuids)) == ("dc1", "r1", 99, ["u1"])
    assert out.volumes[0].id == 5 and out.volumes[0].collection == "c" and out.max_volume_counts["hdd"] == 8
    assert rewrite_heartbeat(raw, FRONT).endswith(b"\xd8\x07\x01")  # unknown fields survive


def test_delta_heartbeat_stays_a_delta() -> None:
    hb = master_pb2.Heartbeat(ip="127.0.0.1", port=40001, data_center="dc1")
    hb.new_volumes.add(id=9)
    out = master_pb2.Heartbeat.FromString(rewrite_heartbeat(hb.SerializeToString(), FRONT))
    assert (out.ip, out.port) == ("10.1.2.3", 18080)
    assert out.grpc_port == 0 and out.public_url == "" and out.id == ""  # not set, not added
    assert [v.id for v in out.new_volumes] == [9]


def test_undecodable_heartbeat_is_refused_not_forwarded() -> None:
    with pytest.raises(GrpcError):
        rewrite_heartbeat(b"\xff\xff\xff", FRONT)


def test_response_leader_points_at_the_relay() -> None:
    resp = master_pb2.HeartbeatResponse(volume_size_limit=1 << 30, leader="10.9.9.9:9333", preallocate=True)
    out, leader = rewrite_heartbeat_response(resp.SerializeToString(), "127.0.0.1:1.2")
    got = master_pb2.HeartbeatResponse.FromString(out)
    assert leader == "10.9.9.9:9333"
    assert got.leader == "127.0.0.1:1.2" and got.volume_size_limit == 1 << 30 and got.preallocate
    plain = master_pb2.HeartbeatResponse(volume_size_limit=5).SerializeToString()
    assert rewrite_heartbeat_response(plain, "127.0.0.1:1.2") == (plain, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9333", MasterAddress("127.0.0.1", 9333, 19333)),
        ("m1:9333.29333", MasterAddress("m1", 9333, 29333)),
        ("[::1]:9333", MasterAddress("::1", 9333, 19333)),
    ],
)
def test_master_address_parsing_follows_go(text: str, expected: MasterAddress) -> None:
    assert MasterAddress.parse(text) == expected


@pytest.mark.parametrize("bad", ["nohost", ":9333", "h:x", "h:1.y"])
def test_bad_master_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        MasterAddress.parse(bad)


def test_leader_tracker_follows_hints_and_rotates_on_failure() -> None:
    seeds = [MasterAddress.parse(a) for a in ("m1:9333", "m2:9333", "m3:9333")]
    t = LeaderTracker(seeds)
    assert t.current == seeds[0]
    assert not t.leader_hint("m1:9333.19333")  # the same server, named with its gRPC port
    assert t.leader_hint("m3:9333") and t.current == seeds[2]
    assert not t.leader_hint("garbage")
    t.failed(seeds[0])  # stale failure report: ignored
    assert t.current == seeds[2]
    t.failed(seeds[2])
    assert t.current == seeds[1]
    t.failed(seeds[1])
    assert t.current == seeds[2]
    t.failed(seeds[2])
    assert t.current == seeds[0]


# -- the relay against fake masters (our gRPC server), a Channel standing in for Go ------------------

MASTER_SVC = "/master_pb.Seaweed/"


class FakeMaster:
    """A master that records heartbeats and answers each with `leader` (a follower) or without."""

    def __init__(self, leader: str = "") -> None:
        self.leader = leader
        self.heartbeats: list[master_pb2.Heartbeat] = []
        self.address = ""

    def router(self) -> Router:
        r = Router()
        r.add(RPCS[MASTER_SVC + "SendHeartbeat"], self.send_heartbeat)
        r.add(RPCS[MASTER_SVC + "GetMasterConfiguration"], self.configuration)
        return r

    async def send_heartbeat(self, beats, ctx: Context):
        async for hb in beats:
            self.heartbeats.append(hb)
            yield master_pb2.HeartbeatResponse(volume_size_limit=1 << 20, leader=self.leader)

    async def configuration(self, req, ctx: Context) -> master_pb2.GetMasterConfigurationResponse:
        return master_pb2.GetMasterConfigurationResponse(leader=self.address, metrics_address="m")

    async def serve(self, nursery: trio.Nursery) -> str:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        await nursery.start(serve_listeners, listeners, self.router())
        port = listeners[0].socket.getsockname()[1]
        self.address = f"127.0.0.1:{port + 1}.{port}"  # the HTTP port is never dialled here
        return self.address


async def _beat(ch: Channel, hb: master_pb2.Heartbeat) -> tuple[list[master_pb2.HeartbeatResponse], GrpcError | None]:
    got: list[master_pb2.HeartbeatResponse] = []
    try:
        async with ch.stream_stream(MASTER_SVC + "SendHeartbeat", master_pb2.HeartbeatResponse, timeout=5) as call:
            await call.send_message(hb)
            got.append(await call.receive_message())
            await call.send_message(master_pb2.Heartbeat(ip="127.0.0.1", port=40001))
            got.append(await call.receive_message())
            call.done_writing()
            await call.receive_message()
    except GrpcError as exc:
        return got, exc
    return got, None


async def test_relay_rewrites_follows_the_leader_and_skips_dead_masters(nursery) -> None:
    leader = FakeMaster()
    leader_addr = await leader.serve(nursery)
    follower = FakeMaster(leader=leader_addr)
    follower_addr = await follower.serve(nursery)
    dead = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    dead_port = dead.socket.getsockname()[1]
    await dead.aclose()

    relay = HeartbeatRelay([f"127.0.0.1:{dead_port + 1}.{dead_port}", follower_addr], FRONT)
    relay_addr = await nursery.start(relay.run)
    grpc_port = int(relay_addr.rsplit(".", 1)[1])
    full = master_pb2.Heartbeat(ip="127.0.0.1", port=40001, grpc_port=50001, public_url="127.0.0.1:40001", id="x")
    async with Channel("127.0.0.1", grpc_port) as ch:
        # 1. the first seed is down: UNAVAILABLE at once, and the relay moves on
        got, err = await _beat(ch, full)
        assert got == [] and err is not None and err.status == Status.UNAVAILABLE
        assert relay.tracker.current == MasterAddress.parse(follower_addr)
        # 2. the follower names the leader: Go sees the relay as leader, the stream ends, the relay moves
        got, err = await _beat(ch, full)
        assert [r.leader for r in got] == [relay_addr]
        assert err is not None and err.status == Status.UNAVAILABLE
        assert relay.tracker.current == MasterAddress.parse(leader_addr)
        beat = follower.heartbeats[0]
        assert (beat.ip, beat.port, beat.grpc_port, beat.public_url, beat.id) == ("10.1.2.3", 18080, 28080, "vol.example:18080", "vol-7")
        # 3. the reconnect reaches the leader, which keeps the stream
        got, err = await _beat(ch, full)
        assert err is None and [r.leader for r in got] == ["", ""] and got[0].volume_size_limit == 1 << 20
        assert [(b.ip, b.port, b.grpc_port) for b in leader.heartbeats] == [("10.1.2.3", 18080, 28080), ("10.1.2.3", 18080, 0)]
        # other master rpcs are relayed opaquely to the current master
        conf = await ch.unary_unary(
            MASTER_SVC + "GetMasterConfiguration", master_pb2.GetMasterConfigurationRequest(), master_pb2.GetMasterConfigurationResponse
        )
        assert conf.leader == leader_addr  # untouched: only heartbeats are rewritten


# -- end to end -----------------------------------------------------------------------------------


def _restart_master(m: MasterProc, workdir: Path) -> MasterProc:
    proc = start_proc(m.proc.argv, workdir / "logs" / f"master-{m.port}-again.log", cwd=workdir)
    wait_http(f"http://127.0.0.1:{m.port}/cluster/status", proc=proc)
    return MasterProc(proc, m.port, m.grpc_port)


async def _get_json(url: str) -> dict:
    r = await trio.to_thread.run_sync(functools.partial(httpx.get, url, timeout=10))
    r.raise_for_status()
    return r.json()


async def _until(predicate, timeout: float, what: str):
    with trio.move_on_after(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _data_node_urls(status: dict) -> list[str]:
    return re.findall(r'"Url":\s*"([^"]+)"', json.dumps(status))


@pytest.mark.slow
async def test_go_volume_registers_through_the_relay_under_front_ports(nursery, tmp_path: Path) -> None:
    master = await trio.to_thread.run_sync(start_master, tmp_path)
    procs: list = [master]
    try:
        # The gateway's front: bound first, so the identity names real ports.
        front_http = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        front_grpc = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        hp, gp = front_http.socket.getsockname()[1], front_grpc.socket.getsockname()[1]
        front = FrontIdentity(ip="127.0.0.1", port=hp, grpc_port=gp, public_url=f"127.0.0.1:{hp}", server_id=f"127.0.0.1:{hp}")

        relay = HeartbeatRelay([master.address], front)
        master_arg = await nursery.start(relay.run)
        assert re.fullmatch(r"127\.0\.0\.1:\d+\.\d+", master_arg)
        relay_http = master_arg.rsplit(":", 1)[1].split(".")[0]
        cluster = await _get_json(f"http://127.0.0.1:{relay_http}/cluster/status")  # the relay's HTTP port is a master
        assert cluster.get("IsLeader") is True

        volume = await trio.to_thread.run_sync(
            lambda: start_go_volume(tmp_path, SimpleNamespace(address=master_arg), name="backend")  # type: ignore[arg-type]
        )
        procs.append(volume)
        backend = BackendEndpoints(http=("127.0.0.1", volume.port), grpc=("127.0.0.1", volume.grpc_port))
        nursery.start_soon(functools.partial(serve_grpc_proxy, front_grpc, SimpleNamespace(current=lambda: backend)))
        nursery.start_soon(serve_tcp_relay, front_http, lambda: backend.http)

        async def registered() -> list[str]:
            urls = _data_node_urls(await _get_json(f"{master.url}/dir/status"))
            return urls if f"127.0.0.1:{hp}" in urls else []

        urls = await _until(registered, 20, "the backend to register")
        assert urls == [f"127.0.0.1:{hp}"]  # only the front; never the private port
        status_text = json.dumps(await _get_json(f"{master.url}/dir/status"))
        assert f":{volume.port}" not in status_text and str(volume.grpc_port) not in status_text

        # The master allocates a volume through the front gRPC port (our proxy), then hands out the front.
        assign = await _get_json(f"{master.url}/dir/assign")
        assert assign["url"] == f"127.0.0.1:{hp}" and assign["publicUrl"] == f"127.0.0.1:{hp}"
        vid = assign["fid"].split(",")[0]
        lookup = await _get_json(f"{master.url}/dir/lookup?volumeId={vid}")
        assert [(loc["url"], loc["publicUrl"]) for loc in lookup["locations"]] == [(f"127.0.0.1:{hp}", f"127.0.0.1:{hp}")]
        grow = await _get_json(f"{master.url}/vol/grow?count=1")
        assert grow.get("count", 0) >= 1, grow
        up = await trio.to_thread.run_sync(
            lambda: httpx.post(f"http://{assign['url']}/{assign['fid']}", files={"f": ("a.txt", b"hello")}, timeout=10)
        )
        assert up.status_code == 201, up.text

        shell = await trio.to_thread.run_sync(
            lambda: subprocess.run(
                [str(find_weed_binary()), "shell", f"-master={master.address}"],
                input="volume.list\n", capture_output=True, text=True, timeout=60,
            )
        )
        assert f"127.0.0.1:{hp}" in shell.stdout, shell.stdout + shell.stderr
        assert f"127.0.0.1:{volume.port}" not in shell.stdout

        # Kill the master and start it again on the same ports: the backend re-registers via the relay.
        await trio.to_thread.run_sync(master.stop)
        master = await trio.to_thread.run_sync(_restart_master, master, tmp_path)
        procs.append(master)
        assert await _until(registered, 30, "re-registration after the master restarted")
        lookup = await _until(
            lambda: _lookup_ok(master, vid), 20, "the volume to be known again after the restart"
        )
        assert lookup["locations"][0]["url"] == f"127.0.0.1:{hp}"
    finally:
        for p in reversed(procs):
            await trio.to_thread.run_sync(p.stop)


async def _lookup_ok(master: MasterProc, vid: str) -> dict | None:
    try:
        got = await _get_json(f"{master.url}/dir/lookup?volumeId={vid}")
    except httpx.HTTPError:
        return None
    return got if got.get("locations") else None


def test_lookups_show_this_server_under_the_backend_address() -> None:
    from gateway.backend import BackendEndpoints, FrontIdentity
    from gateway.heartbeat_relay import rewrite_lookup, rewrite_mark_readonly
    from proto import master_pb2

    resp = master_pb2.LookupVolumeResponse(volume_id_locations=[
        master_pb2.LookupVolumeResponse.VolumeIdLocation(volume_or_file_id="7", locations=[
            master_pb2.Location(url="10.0.0.5:8080", public_url="10.0.0.5:8080", grpc_port=18080),
            master_pb2.Location(url="10.0.0.6:8080", public_url="10.0.0.6:8080", grpc_port=18080),
        ])])
    backend = BackendEndpoints(http=("127.0.0.1", 41000), grpc=("127.0.0.1", 41001))
    out = master_pb2.LookupVolumeResponse.FromString(
        rewrite_lookup(resp.SerializeToString(), master_pb2.LookupVolumeResponse, "10.0.0.5:8080", backend))
    locs = out.volume_id_locations[0].locations
    assert (locs[0].url, locs[0].public_url, locs[0].grpc_port) == ("127.0.0.1:41000", "127.0.0.1:41000", 41001)
    assert locs[1].url == "10.0.0.6:8080"  # other servers untouched
    ec = master_pb2.LookupEcVolumeResponse(volume_id=3, shard_id_locations=[
        master_pb2.LookupEcVolumeResponse.EcShardIdLocation(shard_id=1, locations=[master_pb2.Location(url="10.0.0.5:8080")])])
    out_ec = master_pb2.LookupEcVolumeResponse.FromString(
        rewrite_lookup(ec.SerializeToString(), master_pb2.LookupEcVolumeResponse, "10.0.0.5:8080", backend))
    assert out_ec.shard_id_locations[0].locations[0].url == "127.0.0.1:41000"
    front = FrontIdentity(ip="10.0.0.5", port=8080, grpc_port=18080, public_url="10.0.0.5:8080", server_id="10.0.0.5:8080")
    mark = master_pb2.VolumeMarkReadonlyRequest(ip="127.0.0.1", port=41000, volume_id=7, is_readonly=True)
    fixed = master_pb2.VolumeMarkReadonlyRequest.FromString(rewrite_mark_readonly(mark.SerializeToString(), front))
    assert (fixed.ip, fixed.port, fixed.volume_id, fixed.is_readonly) == ("10.0.0.5", 8080, 7, True)
