"""Every mode with a Go master and `weed shell` that speak gRPC only over mTLS: weedpy registers,
serves uploads and reads, obeys volume.mark and volume.vacuum sent over mTLS, and refuses
plaintext, certificate-less and foreign-CA gRPC clients."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.support.procs import MasterProc, wait_for_volume_server
from tests.tls.support import Pki, grpc_call, grpc_client_context, security_toml, shell, start_weedpy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ROUTES = """
default = "go"
[routes]
"admin.read" = "native"
"/volume_server_pb.VolumeServer/VolumeStatus" = "native"
"""


@pytest.mark.parametrize("mode", ["native", "proxy", "mixed", "exec"])
def test_mode_over_grpc_mtls(mode: str, tmp_path: Path, pki: Pki, tls_master: MasterProc) -> None:
    sec = tmp_path / "weedpy-security.toml"  # not named security.toml: -securityFile must carry it
    sec.write_text(security_toml(pki))
    extra = []
    if mode == "mixed":
        (tmp_path / "routes.toml").write_text(ROUTES)
        extra.append(f"-routes={tmp_path / 'routes.toml'}")
    dc = f"dc-{mode}"
    server = start_weedpy(tmp_path, tls_master, pki, mode=mode, security_file=sec, name=mode, data_center=dc,
                          extra=extra)
    node = f"127.0.0.1:{server.port}"
    mtls = grpc_client_context(pki)
    try:
        wait_for_volume_server(tls_master, node)  # the heartbeat reached the master over mTLS
        if mode in ("proxy", "mixed"):  # the backend's own security.toml is gone once it is ready
            dirs = re.findall(r'"-config_dir=([^"]+)"', server.proc.log_path.read_text())
            assert dirs and not any(Path(d).exists() for d in dirs), dirs

        # the master allocates a volume over mTLS; an upload and a read over HTTP
        a = httpx.get(f"{tls_master.url}/dir/assign", params={"dataCenter": dc, "collection": mode}, timeout=30).json()
        assert a.get("url") == node, a
        fid, vid = a["fid"], int(a["fid"].split(",")[0])
        body = f"over mTLS in {mode} mode".encode()
        up = httpx.post(f"http://{node}/{fid}", files={"file": ("a.txt", body)}, timeout=10)
        assert up.status_code == 201, up.text
        assert httpx.get(f"http://{node}/{fid}", timeout=10).content == body

        # weed shell -> master -> this server, all over mTLS
        out = shell(tls_master, f"lock\nvolume.mark -node {node} -volumeId {vid} -readonly\nunlock\n")
        st = grpc_call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse, mtls)
        assert st.ok and st.response.is_read_only, (st, out)
        out = shell(tls_master, f"lock\nvolume.mark -node {node} -volumeId {vid} -writable\nunlock\n")
        st = grpc_call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse, mtls)
        assert st.ok and not st.response.is_read_only, (st, out)

        assert httpx.delete(f"http://{node}/{fid}", timeout=10).status_code == 202
        before = grpc_call(server.grpc_port, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid),
                           vs.ReadVolumeFileStatusResponse, mtls)
        assert before.ok, before
        out = shell(tls_master, f"lock\nvolume.vacuum -garbageThreshold=0.0001 -volumeId={vid}\nunlock\n")

        def compacted() -> bool:
            after = grpc_call(server.grpc_port, "ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest(volume_id=vid),
                              vs.ReadVolumeFileStatusResponse, mtls)
            return after.ok and after.response.compaction_revision == before.response.compaction_revision + 1

        wait_until(compacted, timeout=20, what=f"vacuum of volume {vid}: {out}")
        assert httpx.get(f"http://{node}/{fid}", timeout=10).status_code == 404

        # never a plaintext fallback; a client certificate from the CA is required
        ping = (server.grpc_port, "Ping", vs.PingRequest(), vs.PingResponse)
        assert grpc_call(*ping, mtls).ok
        assert grpc_call(*ping, None).status == "UNAVAILABLE"
        assert grpc_call(*ping, grpc_client_context(pki, name=None)).status == "UNAVAILABLE"
        assert grpc_call(*ping, grpc_client_context(pki, name="rogue", ca=pki.dir / "ca.crt")).status == "UNAVAILABLE"
    finally:
        server.stop()


DUAL = """
default = "go"
[routes]
"admin.read" = { target = "shadow", sample_pct = 100 }
"""


def test_mixed_dual_run_with_a_control_over_grpc_mtls(tmp_path: Path, pki: Pki, tls_master: MasterProc) -> None:
    """The differ's control backend heartbeats to its stand-in master over mTLS as the primary
    backend does to the relay: both start, and the read is compared on all three sides."""
    sec = tmp_path / "sec.toml"
    sec.write_text(security_toml(pki))
    (tmp_path / "routes.toml").write_text(DUAL)
    dc = "dc-dual"
    server = start_weedpy(
        tmp_path, tls_master, pki, mode="mixed", security_file=sec, name="dual", data_center=dc,
        extra=[f"-routes={tmp_path / 'routes.toml'}", f"-dir.native={tmp_path / 'py'}", f"-dir.control={tmp_path / 'gc'}"],
    )
    node = f"127.0.0.1:{server.port}"
    try:
        wait_for_volume_server(tls_master, node)
        a = httpx.get(f"{tls_master.url}/dir/assign", params={"dataCenter": dc, "collection": dc}, timeout=30).json()
        assert httpx.post(f"http://{node}/{a['fid']}", files={"file": ("d.txt", b"dual")}, timeout=10).status_code == 201
        assert httpx.get(f"http://{node}/{a['fid']}", timeout=10).content == b"dual"

        def compared() -> dict:
            report = httpx.get(f"http://{node}/weedpy/diff", timeout=10).json()
            read = {e["endpoint"]: e for e in report["endpoints"]}.get("admin.read", {})
            return read if read.get("control_compared") else {}

        read = wait_until(compared, timeout=20, what="the read compared with the control")
        assert read["compared"] >= 1
    finally:
        server.stop()
