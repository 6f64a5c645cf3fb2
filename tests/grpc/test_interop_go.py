"""Our Channel against the real Go volume server (weed 4.48)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import trio

from proto import volume_server_pb2 as vs
from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from weedpy.grpc import Channel, ChannelOptions, ConnectionSettings, GrpcError, Status

SVC = "/volume_server_pb.VolumeServer/"
VID = 77


@pytest.fixture(scope="module")
def go_volume(master: MasterProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeProc]:
    v = start_go_volume(tmp_path_factory.mktemp("go-interop"), master, name="interop")
    try:
        yield v
    finally:
        v.stop()


async def _ensure_volume(ch: Channel) -> None:
    try:
        await ch.unary_unary(SVC + "AllocateVolume", vs.AllocateVolumeRequest(volume_id=VID, version=3), vs.AllocateVolumeResponse, timeout=10)
    except GrpcError as exc:
        assert "already exists" in exc.message


async def test_unary_status_and_ping(go_volume: VolumeProc, master: MasterProc) -> None:
    async with Channel("127.0.0.1", go_volume.grpc_port) as ch:
        status = await ch.unary_unary(SVC + "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse, timeout=10)
        assert "4.48" in status.version
        assert any(d.dir == str(go_volume.data_dir) for d in status.disk_statuses)
        ping = await ch.unary_unary(
            SVC + "Ping", vs.PingRequest(target=master.address, target_type="master"), vs.PingResponse, timeout=10
        )
        assert 0 < ping.start_time_ns <= ping.remote_time_ns <= ping.stop_time_ns
        # An empty Ping (no target) is answered by the volume server itself.
        empty = await ch.unary_unary(SVC + "Ping", vs.PingRequest(), vs.PingResponse, timeout=10)
        assert empty.start_time_ns > 0 and empty.stop_time_ns >= empty.start_time_ns


async def test_unknown_method_and_go_errors_come_back_as_status(go_volume: VolumeProc) -> None:
    async with Channel("127.0.0.1", go_volume.grpc_port) as ch:
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(SVC + "NoSuchMethod", b"", timeout=10)
        assert info.value.status == Status.UNIMPLEMENTED
        with pytest.raises(GrpcError) as info:
            await ch.unary_unary(
                SVC + "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=999_999), vs.VolumeMarkReadonlyResponse, timeout=10
            )
        assert info.value.status != Status.OK and info.value.message
        # the connection survives errors
        await ch.unary_unary(SVC + "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)


async def test_server_streaming_a_multi_megabyte_file_with_small_windows(go_volume: VolumeProc) -> None:
    """CopyFile streams the .dat in many messages; our 64 KiB windows must keep Go flowing."""
    opts = ChannelOptions(settings=ConnectionSettings(stream_window=64 << 10, connection_window=128 << 10))
    payload = os.urandom(3 << 20)
    async with Channel("127.0.0.1", go_volume.grpc_port, options=opts) as ch:
        await _ensure_volume(ch)
        r = await trio.to_thread.run_sync(
            lambda: httpx.post(f"{go_volume.url}/{VID},0100000001", files={"file": ("blob", payload)}, timeout=30)
        )
        assert r.status_code == 201, r.text
        st = await ch.unary_unary(SVC + "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=VID), vs.ReadVolumeFileStatusResponse)
        assert st.dat_file_size > len(payload)
        got = bytearray()
        messages = 0
        async with ch.unary_stream(
            SVC + "CopyFile",
            vs.CopyFileRequest(volume_id=VID, ext=".dat", stop_offset=st.dat_file_size, compaction_revision=st.compaction_revision),
            vs.CopyFileResponse,
            timeout=30,
        ) as responses:
            async for msg in responses:
                got += msg.file_content
                messages += 1
        assert len(got) == st.dat_file_size and messages > 1
        assert payload in bytes(got)


async def test_client_deadline_against_a_blocking_go_stream(go_volume: VolumeProc) -> None:
    async with Channel("127.0.0.1", go_volume.grpc_port) as ch:
        await _ensure_volume(ch)
        start = trio.current_time()
        with pytest.raises(GrpcError) as info:
            async with ch.unary_stream(
                SVC + "VolumeTailSender",
                vs.VolumeTailSenderRequest(volume_id=VID, since_ns=2**62, idle_timeout_seconds=60),
                vs.VolumeTailSenderResponse,
                timeout=0.8,
            ) as responses:
                async for _ in responses:
                    pass
        assert info.value.status == Status.DEADLINE_EXCEEDED
        assert trio.current_time() - start < 5
        status = await ch.unary_unary(SVC + "VolumeServerStatus", vs.VolumeServerStatusRequest(), vs.VolumeServerStatusResponse)
        assert status.version
