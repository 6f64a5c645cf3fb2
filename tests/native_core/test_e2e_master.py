"""Native mode end to end with a real Go master and Go's clients: registration, /vol/grow,
`weed upload`/`weed download`, `weed shell`, leave, master restart, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from proto import volume_server_pb2 as vs
from tests.native_core.support import call, lookup_urls, start_native
from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, clean_env, start_master, start_proc, wait_for_volume_server, wait_http
from weedpy.weedbin import find_weed_binary

pytestmark = pytest.mark.slow


def _restart_master(m: MasterProc, workdir: Path) -> MasterProc:
    proc = start_proc(m.proc.argv, workdir / "logs" / f"master-{m.port}-again.log", cwd=workdir)
    wait_http(f"http://127.0.0.1:{m.port}/cluster/status", proc=proc)
    return MasterProc(proc, m.port, m.grpc_port)


def _grow(master: MasterProc, node: str, **params: str) -> None:
    r = httpx.get(f"{master.url}/vol/grow", params={"count": "1", "replication": "000", "dataNode": node, **params}, timeout=30)
    assert r.status_code == 200, r.text


def _shell(master: MasterProc, commands: str, cwd: Path) -> str:
    out = subprocess.run(
        [str(find_weed_binary()), "shell", f"-master={master.address}"], input=commands, capture_output=True, text=True,
        timeout=60, cwd=cwd, env=clean_env(),
    )
    return out.stdout + out.stderr


def test_native_server_with_a_real_master(tmp_path: Path) -> None:
    master = start_master(tmp_path)
    server = start_native(tmp_path, master, extra=["-preStopSeconds=1"])
    node = f"127.0.0.1:{server.port}"
    try:
        wait_for_volume_server(master, node)
        assert httpx.get(f"{server.url}/healthz").status_code == 200

        # the master allocates a volume on the native server and hands it out
        _grow(master, node, collection="e2e")
        vid = wait_until(lambda: next((v for v in range(1, 20) if node in lookup_urls(master, v)), None),
                         what="a grown volume at the native server")
        src = tmp_path / "hello.txt"
        src.write_bytes(b"hello from weed upload\n")
        up = subprocess.run([str(find_weed_binary()), "upload", f"-master={master.address}", "-collection=e2e", str(src)],
                            capture_output=True, text=True, timeout=60, env=clean_env())
        assert up.returncode == 0 and '"fid"' in up.stdout, up.stdout + up.stderr
        fid = up.stdout.split('"fid":"')[1].split('"')[0]
        assert fid.startswith(f"{vid},")
        out_dir = tmp_path / "down"
        out_dir.mkdir()
        down = subprocess.run([str(find_weed_binary()), "download", f"-server={master.address}", fid],
                              capture_output=True, text=True, timeout=60, cwd=out_dir, env=clean_env())
        assert down.returncode == 0, down.stdout + down.stderr
        assert (out_dir / "hello.txt").read_bytes() == b"hello from weed upload\n"

        # weed shell drives the native server's control plane
        text = _shell(master, f"volume.list\nlock\nvolume.mark -node {node} -volumeId {vid} -readonly\nunlock\n", tmp_path)
        assert f"DataNode {node}" in text and f"volume Id:{vid}" in text, text
        status = call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse)
        assert status.ok and status.response.is_read_only, status
        text = _shell(master, f"lock\nvolume.mark -node {node} -volumeId {vid} -writable\n"
                              f"volumeServer.state -nodes {node} -maintenanceOn\nunlock\n", tmp_path)
        status = call(server.grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse)
        assert status.ok and not status.response.is_read_only, (status, text)
        state = call(server.grpc_port, "GetState", vs.GetStateRequest(), vs.GetStateResponse)
        assert state.response.state.maintenance, text

        # the master restarts: the server notices, then registers again with its volumes
        master.proc.stop(signal.SIGKILL)
        wait_until(lambda: httpx.get(f"{server.url}/healthz").status_code == 503, timeout=20, what="503 without a master")
        master = _restart_master(master, tmp_path)
        wait_until(lambda: node in lookup_urls(master, vid), timeout=40, what="re-registration after the master restart")
        wait_until(lambda: httpx.get(f"{server.url}/healthz").status_code == 200, timeout=10, what="healthz back to 200")

        # SIGTERM: healthz 503 at once, the master forgets the volumes, exit 0 after preStopSeconds
        t0 = time.monotonic()
        server.proc.popen.send_signal(signal.SIGTERM)
        wait_until(lambda: _healthz(server.url) in (503, None), timeout=5, what="503 while stopping")
        wait_until(lambda: node not in lookup_urls(master, vid), timeout=10, what="the master to drop the volume")
        assert server.proc.popen.wait(20) == 0
        assert time.monotonic() - t0 >= 1.0  # -preStopSeconds=1 was honoured
        assert '"stopped"' in server.proc.log_tail(5)
    finally:
        server.stop()
        master.stop()


def test_leave_drops_the_volumes_from_the_master(tmp_path: Path) -> None:
    master = start_master(tmp_path)
    server = start_native(tmp_path, master)
    node = f"127.0.0.1:{server.port}"
    try:
        wait_for_volume_server(master, node)
        assert call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=3, version=3),
                    vs.AllocateVolumeResponse).ok
        wait_until(lambda: node in lookup_urls(master, 3), what="the delta heartbeat naming volume 3")
        assert call(server.grpc_port, "VolumeServerLeave", vs.VolumeServerLeaveRequest(), vs.VolumeServerLeaveResponse).ok
        wait_until(lambda: node not in lookup_urls(master, 3), what="the master to forget volume 3 after leave")
        assert httpx.get(f"{server.url}/healthz").status_code == 503
        assert httpx.get(f"{server.url}/status").status_code == 200  # still serving
    finally:
        server.stop()
        master.stop()


def test_healthz_is_503_until_a_master_answers(tmp_path: Path) -> None:
    from tests.support.procs import free_port_pair, on_fresh_ports
    from tests.support.weedpy_proc import weedpy_volume_argv

    data = tmp_path / "data"
    data.mkdir()

    def attempt() -> None:
        # The master's port is picked now and bound only later, by design; if it or the server's
        # ports were taken meanwhile, the whole attempt runs again on fresh ones.
        mport, _ = free_port_pair()
        port, grpc_port = free_port_pair()
        argv = weedpy_volume_argv(port=port, grpc_port=grpc_port, public_port=port, data_dir=data,
                                  master=f"127.0.0.1:{mport}", extra=["-mode=native"])
        proc = start_proc(argv, tmp_path / "logs" / f"native-{port}.log", cwd=tmp_path)
        master = None
        try:
            wait_until(lambda: proc.check_alive() or _healthz(f"http://127.0.0.1:{port}") == 503, timeout=30,
                       what="503 before any master")
            assert httpx.get(f"http://127.0.0.1:{port}/status").status_code == 200
            master = _master_on(tmp_path, mport)
            wait_until(lambda: _healthz(f"http://127.0.0.1:{port}") == 200, timeout=30, what="200 once the master is up")
        finally:
            proc.stop()
            if master is not None:
                master.stop()

    on_fresh_ports(attempt)


def _master_on(workdir: Path, port: int) -> MasterProc:
    mdir = workdir / "master"
    mdir.mkdir(exist_ok=True)
    argv = [str(find_weed_binary()), "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}",
            f"-port.grpc={port + 10000}", f"-mdir={mdir}", "-peers=none", "-volumeSizeLimitMB=32", "-defaultReplication=000"]
    proc = start_proc(argv, workdir / "logs" / f"master-{port}.log", cwd=workdir)
    try:
        wait_http(f"http://127.0.0.1:{port}/cluster/status", proc=proc)
    except BaseException:
        proc.stop()
        raise
    return MasterProc(proc, port, port + 10000)


def _healthz(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code
    except httpx.HTTPError:
        return None
