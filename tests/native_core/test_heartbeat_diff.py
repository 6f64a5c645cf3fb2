"""Differential heartbeat: a Go 4.48 volume server and native weedpy each talk to a recording
fake master while the same operations run on both; the streams must carry the same messages
(full list at connect, EC beat, one delta per change, full list every pulse, the empty beat on
leave) after the mask in tests/support/compare.py (HEARTBEAT_VARIABLE_FIELDS)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from proto import master_pb2
from proto import volume_server_pb2 as vs
from tests.native_core.recording_master import RecordingMaster
from tests.native_core.support import call
from tests.support.compare import HEARTBEAT_OMITTED_FIELDS, HEARTBEAT_VARIABLE_FIELDS, message_doc
from tests.support.procs import Proc, free_port_pair, on_fresh_ports, start_proc, wait_tcp
from tests.support.weedpy_proc import weedpy_executable
from weedpy.weedbin import find_weed_binary

pytestmark = pytest.mark.slow


def _is_full(hb: master_pb2.Heartbeat) -> bool:
    return bool(hb.public_url) and bool(hb.id)


def _is_delta(hb: master_pb2.Heartbeat) -> bool:
    return bool(hb.new_volumes or hb.deleted_volumes)


def _start(kind: str, workdir: Path, master: RecordingMaster) -> tuple[Proc, int]:
    data = workdir / f"{kind}-data"
    data.mkdir(parents=True)

    def start() -> tuple[Proc, int]:
        port, grpc_port = free_port_pair()
        common = [f"-port={port}", f"-port.grpc={grpc_port}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
                  "-max=7", f"-master={master.address}.{master.grpc_port}", "-preStopSeconds=0"]
        if kind == "go":
            argv = [str(find_weed_binary()), "volume", *common]
        else:
            argv = [weedpy_executable(), "-mode=native", *common]
        proc = start_proc(argv, workdir / "logs" / f"{kind}-{port}.log", cwd=workdir)
        try:
            wait_tcp("127.0.0.1", grpc_port, timeout=60, proc=proc)
        except BaseException:
            proc.stop()
            raise
        return proc, grpc_port

    return on_fresh_ports(start)


def _script(grpc_port: int, master: RecordingMaster, results: dict, key: str) -> None:
    """The operations, each followed by waiting for the delta it causes."""
    try:
        master.wait_for(lambda hbs: sum(_is_full(h) for h in hbs) >= 1 and len(hbs) >= 2)

        def step(method, req, resp_type, expect_delta: bool = True) -> None:
            before = sum(_is_delta(h) for h in master.snapshot())
            out = call(grpc_port, method, req, resp_type)
            assert out.ok, (key, method, out)
            if expect_delta:
                master.wait_for(lambda hbs: sum(_is_delta(h) for h in hbs) > before)

        step("AllocateVolume", vs.AllocateVolumeRequest(volume_id=7, collection="c", replication="001", ttl="3d", version=3),
             vs.AllocateVolumeResponse)
        step("AllocateVolume", vs.AllocateVolumeRequest(volume_id=8, version=3), vs.AllocateVolumeResponse)
        step("VolumeUnmount", vs.VolumeUnmountRequest(volume_id=7), vs.VolumeUnmountResponse)
        step("VolumeMount", vs.VolumeMountRequest(volume_id=7), vs.VolumeMountResponse)
        step("VolumeDelete", vs.VolumeDeleteRequest(volume_id=8), vs.VolumeDeleteResponse)
        step("VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=7, can_delete=True), vs.VolumeMarkReadonlyResponse,
             expect_delta=False)
        step("VolumeUnmount", vs.VolumeUnmountRequest(volume_id=7), vs.VolumeUnmountResponse)
        step("VolumeMount", vs.VolumeMountRequest(volume_id=7), vs.VolumeMountResponse)
        step("SetState", vs.SetStateRequest(state=vs.VolumeServerState(maintenance=True)), vs.SetStateResponse,
             expect_delta=False)
        fulls = sum(_is_full(h) for h in master.snapshot())
        master.wait_for(lambda hbs: sum(_is_full(h) for h in hbs) > fulls, timeout=12)  # the next pulse
        step("VolumeServerLeave", vs.VolumeServerLeaveRequest(), vs.VolumeServerLeaveResponse, expect_delta=False)
        master.wait_for(lambda hbs: any(h.has_no_volumes and not h.id for h in hbs))
        results[key] = None
    except BaseException as exc:  # reported by the test
        results[key] = exc


def _doc(hb: master_pb2.Heartbeat) -> object:
    return message_doc(hb, HEARTBEAT_VARIABLE_FIELDS, HEARTBEAT_OMITTED_FIELDS)


def _shape(hbs: list[master_pb2.Heartbeat]) -> list[tuple[str, object]]:
    """The stream as (kind, masked message): the connect pair, the deltas, the last full list, leave."""
    out: list[tuple[str, object]] = [("connect", _doc(hbs[0])), ("ec", _doc(hbs[1]))]
    out += [("delta", _doc(h)) for h in hbs if _is_delta(h)]
    fulls = [h for h in hbs[2:] if _is_full(h)]
    out.append(("last full", _doc(fulls[-1])))
    out.append(("leave", _doc(hbs[-1])))
    return out


def test_heartbeat_streams_match_go(tmp_path: Path) -> None:
    masters = {k: RecordingMaster().start() for k in ("go", "weedpy")}
    procs = {}
    try:
        for kind in masters:
            procs[kind] = _start(kind, tmp_path / kind, masters[kind])
        results: dict[str, object] = {}
        threads = [threading.Thread(target=_script, args=(procs[k][1], masters[k], results, k)) for k in masters]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for k, err in results.items():
            if err is not None:
                raise AssertionError(f"{k}: {err!r}\n{procs[k][0].log_tail()}") from err  # type: ignore[arg-type]
        go, py = (_shape(masters[k].snapshot()) for k in ("go", "weedpy"))
        assert [k for k, _ in go] == [k for k, _ in py]
        for (kind, g), (_, p) in zip(go, py):
            assert g == p, f"{kind}:\n  go:     {g}\n  weedpy: {p}"
        assert [message_doc(m) for m in masters["go"].marks] == [message_doc(m) for m in masters["weedpy"].marks] \
            or _marks_equal(masters)
        assert masters["weedpy"].streams == 1
    finally:
        for proc, _ in procs.values():
            proc.stop()
        for m in masters.values():
            m.stop()


def _marks_equal(masters: dict[str, RecordingMaster]) -> bool:
    mask = ("ip", "port")
    g = [message_doc(m, mask) for m in masters["go"].marks]
    p = [message_doc(m, mask) for m in masters["weedpy"].marks]
    assert g == p, f"VolumeMarkReadonly notices differ:\n  go:     {g}\n  weedpy: {p}"
    return True
