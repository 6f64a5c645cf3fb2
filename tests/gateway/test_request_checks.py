"""Peer trust and master-ping rewriting applied by the gateway to a few gRPC requests."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.request_checks import request_checks, restore_refusal
from weedpy.serve.peers import PeerPolicy, blocked_reason, split_server_address
from proto import remote_pb2, volume_server_pb2 as vs
from tests.support.procs import MasterProc, VolumeProc
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.grpc import Channel, GrpcError, Status

SVC = "/volume_server_pb.VolumeServer/"


@pytest.mark.parametrize(
    "ip, allow_private, fragment",
    [
        ("127.0.0.1", True, "loopback address 127.0.0.1"),
        ("::1", True, "loopback address ::1"),
        ("0.0.0.0", True, "unspecified address"),
        ("169.254.169.254", True, "instance metadata service"),
        ("169.254.1.2", True, "link-local address"),
        ("fe80::1", True, "link-local address"),
        ("::ffff:127.0.0.1", True, "loopback address 127.0.0.1"),
        ("2002:7f00:1::", True, "loopback address 127.0.0.1"),  # 6to4 of 127.0.0.1
        ("10.1.2.3", False, "private address"),
        ("100.64.1.1", False, "CGNAT address"),
    ],
)
def test_blocked_addresses_follow_go(ip: str, allow_private: bool, fragment: str) -> None:
    reason = blocked_reason("host:1", ipaddress.ip_address(ip), allow_private)
    assert reason is not None and fragment in reason and reason.startswith('remote endpoint "host:1"')


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.7.7", "100.64.1.1", "8.8.8.8", "2001:db8::1"])
def test_private_and_public_peers_are_allowed(ip: str) -> None:
    assert blocked_reason("p", ipaddress.ip_address(ip), allow_private=True) is None


def test_server_address_forms() -> None:
    assert split_server_address("127.0.0.1:8080.18080") == ("127.0.0.1", 8080)
    assert split_server_address("host:80") == ("host", 80)
    assert split_server_address("[fe80::1]:80") == ("fe80::1", 80)


async def test_peer_policy_trusts_master_listed_servers_only() -> None:
    calls = []

    async def listed() -> frozenset[str]:
        calls.append(1)
        return frozenset({"127.0.0.9:8080"})

    policy = PeerPolicy(listed)
    assert await policy.peer_reason("10.0.0.6:9000") is None  # private network peer
    assert await policy.peer_reason("127.0.0.9:8080.18080") is None  # loopback, but the master lists it
    reason = await policy.peer_reason("127.0.0.8:8080")
    assert reason is not None and "loopback" in reason
    assert await policy.peer_reason("http://127.0.0.9:8080") == 'replica target "http://127.0.0.9:8080" must be a bare host:port'
    assert await policy.peer_reason("metadata:80") == 'replica target "metadata:80" targets instance metadata service'
    assert await policy.remote_endpoint_reason("http://10.0.0.7:9000") is not None  # stores: no private
    assert "http or https" in (await policy.remote_endpoint_reason("ftp://x") or "")


async def test_checks_refuse_with_go_status_and_rewrite_master_pings() -> None:
    async def nobody() -> frozenset[str]:
        return frozenset()

    checks = request_checks(PeerPolicy(nobody), ["127.0.0.1:9333"], "127.0.0.1:4000.5000")
    raw = vs.VolumeCopyRequest(volume_id=1, source_data_node="127.0.0.2:8080").SerializeToString()
    with pytest.raises(GrpcError) as info:
        await checks[SVC + "VolumeCopy"](None, raw)  # type: ignore[arg-type]
    assert info.value.status is Status.UNKNOWN
    assert str(info.value.message).startswith('invalid source data node 127.0.0.2:8080: remote endpoint "127.0.0.2:8080"')
    ok = vs.VolumeTailReceiverRequest(volume_id=1, source_volume_server="10.0.0.9:8081").SerializeToString()
    assert await checks[SVC + "VolumeTailReceiver"](None, ok) is None  # type: ignore[arg-type]
    fetch = vs.FetchAndWriteNeedleRequest(
        volume_id=1, remote_conf=remote_pb2.RemoteConf(type="s3", s3_endpoint="http://169.254.169.254")
    ).SerializeToString()
    # left to the backend's turn (Go checks maintenance mode and the volume first): the request
    # goes on with a remote type no store has, and the backend's answer becomes the refusal
    deferred = await checks[SVC + "FetchAndWriteNeedle"](None, fetch)  # type: ignore[arg-type]
    assert deferred is not None
    kind = vs.FetchAndWriteNeedleRequest.FromString(deferred).remote_conf.type
    go_says = f"get remote client: make remote storage client : remote storage type {kind} not found"
    assert restore_refusal(go_says) == (
        'reject remote endpoint: remote endpoint "http://169.254.169.254" targets instance metadata service 169.254.169.254')
    assert restore_refusal("not found volume id 99") is None
    ping = vs.PingRequest(target="127.0.0.1:9333", target_type="master").SerializeToString()
    rewritten = await checks[SVC + "Ping"](None, ping)  # type: ignore[arg-type]
    assert rewritten is not None and vs.PingRequest.FromString(rewritten).target == "127.0.0.1:4000.5000"
    other = vs.PingRequest(target="127.0.0.1:8080", target_type="volumeServer").SerializeToString()
    assert await checks[SVC + "Ping"](None, other) is None  # type: ignore[arg-type]


async def test_maintenance_is_asked_only_for_a_refused_copy_source() -> None:
    """Go 4.48 checks maintenance mode before a copy's source: the gateway asks the backend's state
    only when it would refuse the source (a trusted source goes on to the backend, which checks)."""
    async def nobody() -> frozenset[str]:
        return frozenset()

    asked: list[int] = []

    async def in_maintenance() -> str | None:
        asked.append(1)
        return "volume server 10.0.0.1:8080 is in maintenance mode"

    checks = request_checks(PeerPolicy(nobody), [], "127.0.0.1:4000.5000", maintenance=in_maintenance)
    for rpc, req in (("VolumeCopy", vs.VolumeCopyRequest), ("VolumeEcShardsCopy", vs.VolumeEcShardsCopyRequest)):
        for source in ("127.0.0.2:8080", ""):
            with pytest.raises(GrpcError) as info:
                await checks[SVC + rpc](None, req(volume_id=1, source_data_node=source).SerializeToString())  # type: ignore[arg-type]
            assert (info.value.status, info.value.message) == (Status.UNKNOWN, "volume server 10.0.0.1:8080 is in maintenance mode")
        trusted = req(volume_id=1, source_data_node="10.0.0.9:8080").SerializeToString()
        assert await checks[SVC + rpc](None, trusted) is None  # type: ignore[arg-type]
    assert len(asked) == 4
    tail = vs.VolumeTailReceiverRequest(volume_id=1, source_volume_server="").SerializeToString()
    with pytest.raises(GrpcError) as info:  # no maintenance check in Go's tail receiver; empty is refused
        await checks[SVC + "VolumeTailReceiver"](None, tail)  # type: ignore[arg-type]
    assert info.value.message == "invalid source volume server : replica target is empty"
    assert len(asked) == 4


@pytest.mark.parametrize(("conf", "refusal"), [
    (remote_pb2.RemoteConf(type="gcs", gcs_google_application_credentials='{"type":"service_account","token_uri":"http://127.0.0.1:9/t"}'),
     'reject remote endpoint: remote endpoint "http://127.0.0.1:9/t" resolves to loopback address 127.0.0.1'),
    (remote_pb2.RemoteConf(type="gcs", gcs_google_application_credentials="/etc/hosts"),
     "reject remote credentials: gcs credentials must be inline JSON"),
    (remote_pb2.RemoteConf(type="azure", azure_endpoint="http://169.254.169.254"),
     'reject remote endpoint: remote endpoint "http://169.254.169.254" targets instance metadata service 169.254.169.254'),
    (remote_pb2.RemoteConf(type="wasabi"), "reject remote endpoint: remote endpoint is empty"),
    (remote_pb2.RemoteConf(type="s3", s3_endpoint="localhost:9"),
     'reject remote endpoint: remote endpoint "localhost:9" must use http or https, got "localhost"'),
    (remote_pb2.RemoteConf(type="s3", s3_endpoint="127.0.0.1:9"),
     'reject remote endpoint: parse remote endpoint "127.0.0.1:9": parse "127.0.0.1:9": first path segment in URL cannot contain colon'),
    (remote_pb2.RemoteConf(type="wasabi", s3_endpoint="http://127.0.0.1:9", wasabi_endpoint="https://8.8.8.8"), None),
    (remote_pb2.RemoteConf(type="s3"), None),  # plain s3 with no endpoint goes to AWS, as in Go
])
async def test_the_gateway_checks_the_endpoint_each_remote_type_dials(conf: remote_pb2.RemoteConf, refusal: str | None) -> None:
    """The backend runs with the opt-out, so a gcs token exchange or an azure endpoint at an internal
    address must be refused here (it reached the backend, which dialled it)."""
    async def nobody() -> frozenset[str]:
        return frozenset()

    checks = request_checks(PeerPolicy(nobody), [], "127.0.0.1:4000.5000")
    raw = vs.FetchAndWriteNeedleRequest(volume_id=1, remote_conf=conf).SerializeToString()
    out = await checks[SVC + "FetchAndWriteNeedle"](None, raw)  # type: ignore[arg-type]
    got = None if out is None else restore_refusal(vs.FetchAndWriteNeedleRequest.FromString(out).remote_conf.type)
    assert got == refusal


async def test_admin_rpcs_checked_against_the_whitelist_before_the_peer_rule() -> None:
    from types import SimpleNamespace

    from weedpy.serve.guard import Guard
    from gateway.request_checks import ADMIN_RPCS

    async def nobody() -> frozenset[str]:
        return frozenset()

    guard = Guard.from_entries(["10.1.0.0/16"])
    checks = request_checks(PeerPolicy(nobody), [], "127.0.0.1:4000.5000", guard)
    assert len(ADMIN_RPCS) == 30 and set(ADMIN_RPCS) <= set(checks)
    bad_source = vs.VolumeTailReceiverRequest(volume_id=1, source_volume_server="127.0.0.2:8080").SerializeToString()
    outsider, insider = SimpleNamespace(peer="192.0.2.7:5000"), SimpleNamespace(peer="10.1.2.3:5000")
    with pytest.raises(GrpcError) as info:  # the whitelist first, as Go's handlers do
        await checks[SVC + "VolumeTailReceiver"](outsider, bad_source)  # type: ignore[arg-type]
    assert (info.value.status, info.value.message) == (Status.PERMISSION_DENIED, "not authorized: 192.0.2.7")
    with pytest.raises(GrpcError) as info:  # then the peer rule
        await checks[SVC + "VolumeTailReceiver"](insider, bad_source)  # type: ignore[arg-type]
    assert info.value.status is Status.UNKNOWN and "invalid source volume server" in str(info.value.message)
    assert await checks[SVC + "VolumeDelete"](insider, b"") is None  # type: ignore[arg-type]
    v6 = SimpleNamespace(peer="[2001:db8::1]:5000")
    with pytest.raises(GrpcError, match="not authorized: 2001:db8::1"):
        await checks[SVC + "VolumeDelete"](v6, b"")  # type: ignore[arg-type]
    assert SVC + "VolumeServerStatus" not in checks  # not an admin rpc: never checked
    assert SVC + "VolumeDelete" not in request_checks(None, [], "x", Guard.from_entries([]))  # no whitelist


@pytest.fixture()
def gateway(tmp_path: Path, master: MasterProc) -> Iterator[VolumeProc]:
    g = start_weedpy_volume(tmp_path, master)
    try:
        yield g
    finally:
        g.stop()


async def test_end_to_end_through_the_gateway(gateway: VolumeProc, master: MasterProc) -> None:
    async with Channel("127.0.0.1", gateway.grpc_port) as ch:
        # A loopback source that is neither our own ip nor a listed server: refused as Go does.
        with pytest.raises(GrpcError) as info:
            async with ch.unary_stream(SVC + "VolumeCopy", vs.VolumeCopyRequest(volume_id=77, source_data_node="127.0.0.2:1"),
                                       vs.VolumeCopyResponse, timeout=20) as responses:
                async for _ in responses:
                    pass
        assert "invalid source data node 127.0.0.2:1" in str(info.value.message)
        assert not [k for k, _ in info.value.trailing_metadata if k == "x-amz-request-id"]  # a stream: none
        # A unary refusal ends as Go's unary interceptor ends every answer: the caller's request id.
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(SVC + "VolumeTailReceiver", vs.VolumeTailReceiverRequest(
                volume_id=77, source_volume_server="127.0.0.2:1"), vs.VolumeTailReceiverResponse,
                metadata=[("x-amz-request-id", "rid-17")], timeout=20)
        assert "invalid source volume server 127.0.0.2:1" in str(info.value.message)
        assert ("x-amz-request-id", "rid-17") in [(k, v if isinstance(v, str) else v.decode()) for k, v in
                                                  info.value.trailing_metadata]
        # A refused remote endpoint waits for Go's own checks: a missing volume is Go's answer.
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(SVC + "FetchAndWriteNeedle", vs.FetchAndWriteNeedleRequest(
                volume_id=77, remote_conf=remote_pb2.RemoteConf(type="s3", s3_endpoint="http://127.0.0.1:9")),
                vs.FetchAndWriteNeedleResponse, timeout=20)
        assert info.value.message == "not found volume id 77"
        # A master ping names the operator's master; Go only knows the relay, so the gateway rewrites it.
        resp = await ch.unary_unary(SVC + "Ping", vs.PingRequest(target=master.address, target_type="master"),
                                    vs.PingResponse, timeout=20)
        assert resp.remote_time_ns > 0


def test_go_errors_name_the_front_address_not_the_backend(gateway: VolumeProc) -> None:
    """Go names itself in some error bodies; through the gateway that must be the front ip:port."""
    import httpx

    r = httpx.put(f"{gateway.url}/4242,0a1b2c3d4e", content=b"x", timeout=20)
    assert r.status_code == 500
    assert r.json() == {"error": f"volume 4242 not found on 127.0.0.1:{gateway.port}"}
    assert int(r.headers["content-length"]) == len(r.content)


async def test_batch_delete_results_name_the_front_address(gateway: VolumeProc) -> None:
    """BatchDelete carries Go's "volume N not found on ip:port" inside its results, not in a
    status: the gateway rewrites the message, so the client sees the front as from Go alone."""
    async with Channel("127.0.0.1", gateway.grpc_port) as ch:
        resp = await ch.unary_unary(SVC + "BatchDelete", vs.BatchDeleteRequest(
            file_ids=["4242,0a1b2c3d4e", "bad"], skip_cookie_check=True), vs.BatchDeleteResponse, timeout=20)
    assert [(r.file_id, r.status, r.error) for r in resp.results] == [
        ("4242,0a1b2c3d4e", 500, f"volume 4242 not found on 127.0.0.1:{gateway.port}"),
        ("bad", 400, "Wrong fid format."),
    ]
