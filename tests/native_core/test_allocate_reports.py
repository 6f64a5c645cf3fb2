"""A volume allocated over gRPC is known to the master when the rpc answers: the heartbeat that
reports it has been sent first. A client that allocates a replicated volume on two servers and
writes to it right away (upstream's throttling tests do) finds both copies, whatever the number
of processes each server runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import call, start_native
from tests.support.procs import MasterProc, VolumeProc, start_master


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[MasterProc, VolumeProc, VolumeProc]]:
    master = start_master(tmp_path / "master")
    servers: list[VolumeProc] = []
    try:
        for name, workers in (("a", 2), ("b", 1)):
            servers.append(start_native(tmp_path, master, name=name, extra=[f"-workers={workers}", "-preStopSeconds=0"]))
        yield master, servers[0], servers[1]
    finally:
        for s in servers:
            s.stop()
        master.stop()


def test_replicated_write_right_after_allocation(cluster: tuple[MasterProc, VolumeProc, VolumeProc]) -> None:
    _, a, b = cluster
    for vid in range(11, 17):
        for server in (a, b):
            allocated = call(server.grpc_port, "AllocateVolume",
                             vs.AllocateVolumeRequest(volume_id=vid, replication="001", version=3), vs.AllocateVolumeResponse)
            assert allocated.ok, allocated
        body = f"needle of volume {vid}".encode()
        fid = f"{vid},1{vid:08x}"
        put = httpx.post(f"{a.url}/{fid}", files={"file": ("f.txt", body)}, timeout=20)
        assert put.status_code == 201, put.text
        got = httpx.get(f"{b.url}/{fid}", timeout=20)  # the copy the replication wrote
        assert (got.status_code, got.content) == (200, body)
