"""Mixed mode: the route table sends read-only endpoints to native handlers while Go serves the
rest and owns the files; native must see what Go writes. Unsafe tables are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import call
from tests.support.logs import log_events
from tests.support.procs import clean_env, start_master
from tests.support.weedpy_proc import start_weedpy_volume, weedpy_executable

pytestmark = pytest.mark.slow

P = "/volume_server_pb.VolumeServer/"
NATIVE_ROUTES = """
version = "mixed-test"
default = "go"

[routes]
"admin.status" = "native"
"admin.ui" = "native"
"admin.static" = "native"
"admin.read" = "native"
"/volume_server_pb.VolumeServer/GetState" = "native"
"/volume_server_pb.VolumeServer/VolumeServerStatus" = "native"
"/volume_server_pb.VolumeServer/Ping" = "native"
"/volume_server_pb.VolumeServer/VolumeStatus" = "native"
"/volume_server_pb.VolumeServer/ReadVolumeFileStatus" = "native"
"/volume_server_pb.VolumeServer/VolumeNeedleStatus" = "native"
"""


@pytest.mark.parametrize("route, expect", [
    ('"admin.write" = "native"\n"admin.delete" = "native"', "admin.delete"),
    ('"/volume_server_pb.VolumeServer/VolumeMount" = "native"', "VolumeMount"),
    ('"admin.healthz" = "native"', "admin.healthz"),
])
def test_unsafe_tables_are_refused(tmp_path: Path, route: str, expect: str) -> None:
    table = tmp_path / "routes.toml"
    table.write_text(f'default = "go"\n[routes]\n{route}\n')
    out = subprocess.run([weedpy_executable(), "-mode=mixed", f"-routes={table}", f"-dir={tmp_path}", "-port=1"],
                         capture_output=True, text=True, timeout=30, env=clean_env())
    assert out.returncode == 2, out
    assert expect in out.stderr and "must" in out.stderr, out.stderr


def test_native_mode_refuses_go_routes(tmp_path: Path) -> None:
    table = tmp_path / "routes.toml"
    table.write_text('default = "native"\n[routes]\n"admin.read" = "go"\n')
    out = subprocess.run([weedpy_executable(), "-mode=native", f"-routes={table}", f"-dir={tmp_path}", "-port=1"],
                         capture_output=True, text=True, timeout=30, env=clean_env())
    assert out.returncode == 2 and "admin.read" in out.stderr, out


def test_native_reads_follow_what_go_writes(tmp_path: Path) -> None:
    master = start_master(tmp_path)
    table = tmp_path / "routes.toml"
    table.write_text(NATIVE_ROUTES)
    server = start_weedpy_volume(tmp_path, master, extra=[f"-routes={table}", "-mode=mixed"])
    url, grpc = server.url, server.grpc_port
    try:
        # a volume allocated and written by Go (mutating endpoints go to Go)
        assert call(grpc, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=9, version=3), vs.AllocateVolumeResponse).ok
        r = httpx.put(f"{url}/9,01637037d6?ts=1700000000", content=b"written by go", timeout=10)
        assert r.status_code == 201, r.text
        got = httpx.get(f"{url}/9,01637037d6", timeout=10)  # served natively from Go's files
        assert got.status_code == 200 and got.content == b"written by go"

        status = httpx.get(f"{url}/status", timeout=10).json()
        vol = next(v for v in status["Volumes"] if v["Id"] == 9)
        assert vol["FileCount"] == 1 and status["Version"] == "8000GB 4.48 pypi"
        needle = call(grpc, "VolumeNeedleStatus", vs.VolumeNeedleStatusRequest(volume_id=9, needle_id=1), vs.VolumeNeedleStatusResponse)
        assert needle.ok and needle.response.cookie == 0x637037D6 and needle.response.last_modified == 1700000000

        # more writes, a delete, a persisted read-only mark: native sees each
        assert httpx.put(f"{url}/9,02aabbccdd", content=b"second", timeout=10).status_code == 201
        assert httpx.get(f"{url}/9,02aabbccdd", timeout=10).content == b"second"
        assert httpx.delete(f"{url}/9,01637037d6", timeout=10).status_code == 202
        assert httpx.get(f"{url}/9,01637037d6", timeout=10).status_code == 404
        st = call(grpc, "VolumeStatus", vs.VolumeStatusRequest(volume_id=9), vs.VolumeStatusResponse).response
        assert (st.file_count, st.file_deleted_count, st.is_read_only) == (2, 1, False)
        assert call(grpc, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=9, persist=True),
                    vs.VolumeMarkReadonlyResponse).ok
        st = call(grpc, "VolumeStatus", vs.VolumeStatusRequest(volume_id=9), vs.VolumeStatusResponse).response
        assert st.is_read_only
        assert call(grpc, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=9), vs.VolumeMarkWritableResponse).ok

        # Go compacts the volume (new .dat/.idx renamed in): native reads the new files
        for step in ("VacuumVolumeCompact", "VacuumVolumeCommit"):
            req = getattr(vs, f"{step}Request")(volume_id=9)
            resp_type = getattr(vs, f"{step}Response")
            if step == "VacuumVolumeCompact":
                import trio

                from tests.native_core.support import VS
                from weedpy.grpc import Channel

                async def compact() -> None:
                    async with Channel("127.0.0.1", grpc) as ch:
                        async with ch.unary_stream(VS + step, req, resp_type, timeout=30) as responses:
                            async for _ in responses:
                                pass

                trio.run(compact)
            else:
                assert call(grpc, step, req, resp_type).ok
        rfs = call(grpc, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=9), vs.ReadVolumeFileStatusResponse)
        assert rfs.ok and rfs.response.compaction_revision == 1 and rfs.response.file_count == 1, rfs
        assert httpx.get(f"{url}/9,02aabbccdd", timeout=10).content == b"second"

        # state flags: Go writes state.pb, native GetState reads it
        assert call(grpc, "SetState", vs.SetStateRequest(state=vs.VolumeServerState(maintenance=True)), vs.SetStateResponse).ok
        state = call(grpc, "GetState", vs.GetStateRequest(), vs.GetStateResponse).response.state
        assert state.maintenance and state.version == 1
        ping = call(grpc, "Ping", vs.PingRequest(target=master.address, target_type="master"), vs.PingResponse)
        assert ping.ok and ping.response.remote_time_ns > 0
        assert httpx.get(f"{url}/favicon.ico", timeout=10).status_code == 200
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200  # Go's answer

        events = log_events(server.proc.log_path)
        native_routes = {(e.get("route"), e.get("target")) for e in events if e.get("target") == "native"}
        assert ("admin.read", "native") in native_routes and ("admin.status", "native") in native_routes
        assert (P + "GetState", "native") in native_routes and (P + "VolumeNeedleStatus", "native") in native_routes
        go_routes = {e.get("route") for e in events if e.get("target") == "go"}
        assert "admin.write" in go_routes and P + "AllocateVolume" in go_routes
        assert all(e.get("routes_v") == "mixed-test" for e in events if e.get("event") in ("http", "grpc"))
    finally:
        server.stop()
        master.stop()



