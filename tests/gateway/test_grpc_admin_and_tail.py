"""Two gRPC behaviours the gateway adds in front of its Go backend (real processes):

- VolumeTailReceiver is carried out by the gateway through the backend's rpcs, so a deletion
  tailed from the source is a deletion on the receiver (Go 4.48 alone makes it an empty live
  needle, see tests/native_grpc/test_copy_go.py), with `.dat`/`.idx` growing as the source's;
- with a whitelist, Go's admin rpcs are refused to other callers with Go's status and message
  (the backend itself only ever sees the gateway's loopback address).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import start_go
from tests.native_grpc.test_copy_go import address, assert_serves, copy_then_tail, fid, unary
from tests.support.procs import MasterProc, VolumeProc, start_master
from tests.support.weedpy_proc import start_weedpy_volume

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MasterProc, VolumeProc, VolumeProc]]:
    work = tmp_path_factory.mktemp("tail-proxy")
    master = start_master(work)
    go = proxy = None
    try:
        go = start_go(work, master, extra=["-volume.allowUntrustedRemoteEndpoints"])
        proxy = start_weedpy_volume(work, master, extra=["-mode=proxy"])
        yield master, go, proxy
    finally:
        for p in (proxy, go):
            if p is not None:
                p.stop()
        master.stop()


def test_tailed_deletions_are_deletions_through_the_gateway(pair) -> None:
    _, go, proxy = pair
    want = copy_then_tail(go, proxy, 31)
    assert want[fid(31, 5)] is None
    assert_serves(proxy, want)  # the tailed deletion reads 404


def test_tail_receiver_errors_match_go(pair) -> None:
    _, go, proxy = pair
    req = vs.VolumeTailReceiverRequest(volume_id=4242, idle_timeout_seconds=1, source_volume_server=address(go))
    a = unary(go.grpc_port, "VolumeTailReceiver", req, vs.VolumeTailReceiverResponse)
    b = unary(proxy.grpc_port, "VolumeTailReceiver", req, vs.VolumeTailReceiverResponse)
    assert (a.status, a.message) == (b.status, b.message) == ("UNKNOWN", "receiver not found volume id 4242")


def test_admin_rpcs_refused_to_callers_outside_the_whitelist(tmp_path, master: MasterProc) -> None:
    go = start_go(tmp_path, master, extra=["-whiteList=10.9.9.9"])
    proxy = None
    try:
        proxy = start_weedpy_volume(tmp_path, master, extra=["-mode=proxy", "-whiteList=10.9.9.9"])
        for method, req, resp in (
            ("AllocateVolume", vs.AllocateVolumeRequest(volume_id=77, version=3), vs.AllocateVolumeResponse),
            ("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=77), vs.VolumeMarkReadonlyResponse),
            ("VolumeTailReceiver", vs.VolumeTailReceiverRequest(volume_id=77, source_volume_server=address(go)),
             vs.VolumeTailReceiverResponse),
        ):
            a, b = unary(go.grpc_port, method, req, resp), unary(proxy.grpc_port, method, req, resp)
            assert (a.status, a.message) == (b.status, b.message) == ("PERMISSION_DENIED", "not authorized: 127.0.0.1"), method
        # not an admin rpc: answered for anyone, as by Go
        a = unary(go.grpc_port, "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
        b = unary(proxy.grpc_port, "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
        assert a.ok and b.ok
    finally:
        if proxy is not None:
            proxy.stop()
        go.stop()
