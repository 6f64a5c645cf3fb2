"""Remote tiering and FetchAndWriteNeedle against the real weed 4.48: a `weed mini` S3 gateway as
the remote storage, a Go master whose master.toml configures it as `s3.default`, and Go and
native volume servers taking turns on the same directory. A volume tiered by either side is
served (reads, deletes) by the other and brought back by the other."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from native.s3 import S3Client, S3Options
from proto import remote_pb2
from proto import volume_server_pb2 as vs
from tests.native_core.support import call, start_go, start_native
from tests.support.waiting import wait_until
from tests.support.procs import (
    MasterProc, Proc, clean_env, free_port, free_port_pair, on_fresh_ports, start_proc, wait_http, wait_tcp,
)
from weedpy.grpc import Channel
from weedpy.weedbin import find_weed_binary

pytestmark = pytest.mark.slow

P = "/volume_server_pb.VolumeServer/"
BUCKET = "tier"


class S3:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = S3Client(S3Options(endpoint, "us-east-1", "admin", "admin"))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(BUCKET, key)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not there" for these checks
            return False


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    work = tmp_path_factory.mktemp("mini")
    (work / "security.toml").write_text("# empty\n")

    def start() -> tuple[Proc, S3]:
        ports = {name: free_port_pair()[0] for name in ("master", "volume", "filer", "s3")}
        argv = [str(find_weed_binary()), "mini", f"-dir={work}", "-webdav=false", "-admin.ui=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-admin.port={free_port()}", f"-bucket={BUCKET}",
                *(f"-{name}.port={port}" for name, port in ports.items())]
        proc = start_proc(argv, work / f"mini-{ports['s3']}.log", cwd=work,
                          env=clean_env({"AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "admin"}))
        try:
            wait_tcp("127.0.0.1", ports["s3"], proc=proc, timeout=60)
            s = S3(f"http://127.0.0.1:{ports['s3']}")
            wait_until(lambda: proc.check_alive() or _bucket_ready(s), timeout=60, what="the mini S3 bucket")
        except BaseException:
            proc.stop()
            raise
        return proc, s

    proc, s = on_fresh_ports(start)
    try:
        yield s
    finally:
        proc.stop()


def _bucket_ready(s: S3) -> bool:
    try:
        s.client.put_object(BUCKET, "probe", b"x")
        return True
    except Exception:  # noqa: BLE001 - still starting
        return False


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory, s3: S3) -> Iterator[MasterProc]:
    work = tmp_path_factory.mktemp("tier-master")
    conf = work / "conf"
    conf.mkdir()
    (conf / "master.toml").write_text(f"""
[storage.backend]
  [storage.backend.s3.default]
  enabled = true
  aws_access_key_id = "admin"
  aws_secret_access_key = "admin"
  region = "us-east-1"
  bucket = "{BUCKET}"
  endpoint = "{s3.endpoint}"
  storage_class = "STANDARD"
  force_path_style = true
""")
    (work / "m").mkdir()

    def start() -> MasterProc:
        port, grpc_port = free_port_pair()
        argv = [str(find_weed_binary()), f"-config_dir={conf}", "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-port={port}", f"-port.grpc={grpc_port}", f"-mdir={work / 'm'}", "-peers=none",
                "-volumeSizeLimitMB=64", "-defaultReplication=000"]
        proc = start_proc(argv, work / f"master-{port}.log", cwd=work)
        try:
            wait_http(f"http://127.0.0.1:{port}/cluster/status", proc=proc)
        except BaseException:
            proc.stop()
            raise
        return MasterProc(proc, port, grpc_port)

    m = on_fresh_ports(start)
    try:
        yield m
    finally:
        m.stop()


def upload(url: str, fid: str, body: bytes) -> None:
    r = httpx.post(f"{url}/{fid}", files={"file": ("f.bin", body)}, timeout=10)
    assert r.status_code == 201, r.text


def fill(url: str, grpc_port: int, vid: int) -> dict[str, bytes]:
    assert call(grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3),
                vs.AllocateVolumeResponse).ok
    bodies = {f"{vid},{k:x}0000{k:04x}": bytes([k]) * (3000 * k) for k in range(1, 6)}
    for fid, body in bodies.items():
        upload(url, fid, body)
    return bodies


def tier(grpc_port: int, method: str, request) -> list:
    async def run() -> list:
        out = []
        async with Channel("127.0.0.1", grpc_port) as ch:
            response = vs.VolumeTierMoveDatToRemoteResponse if "ToRemote" in method else vs.VolumeTierMoveDatFromRemoteResponse
            async with ch.unary_stream(P + method, request, response, timeout=120) as rs:
                async for m in rs:
                    out.append(m)
        return out

    return trio.run(run)


def check_reads(url: str, bodies: dict[str, bytes], deleted: str | None = None) -> None:
    for fid, body in bodies.items():
        r = httpx.get(f"{url}/{fid}", timeout=10)
        if fid == deleted:
            assert r.status_code == 404, fid
        else:
            assert r.status_code == 200 and r.content == body, fid


def status(grpc_port: int, vid: int) -> vs.VolumeStatusResponse:
    out = call(grpc_port, "VolumeStatus", vs.VolumeStatusRequest(volume_id=vid), vs.VolumeStatusResponse)
    assert out.ok, out.message
    return out.response


def remote_key(data_dir: Path, vid: int) -> str:
    import json

    return json.loads((data_dir / f"{vid}.vif").read_text())["files"][0]["key"]


@pytest.mark.parametrize("first", ["go", "native"])
def test_tiered_by_one_side_served_and_restored_by_the_other(tmp_path: Path, master: MasterProc, s3: S3, first: str) -> None:
    start_first, start_second = (start_go, start_native) if first == "go" else (start_native, start_go)
    data = tmp_path / "data"
    vid = 41 if first == "go" else 42
    a = start_first(tmp_path, master, name="first", data_dir=data)
    try:
        bodies = fill(a.url, a.grpc_port, vid)
        dat = (data / f"{vid}.dat").read_bytes()
        assert tier(a.grpc_port, "VolumeTierMoveDatToRemote",
                    vs.VolumeTierMoveDatToRemoteRequest(volume_id=vid, destination_backend_name="s3.default")) == []
        assert not (data / f"{vid}.dat").exists()
        key = remote_key(data, vid)
        assert s3.client.get_range(BUCKET, key, 0, len(dat) + 100) == dat
        check_reads(a.url, bodies)
        # Go keeps reporting the volume writable until it is reloaded (and a write then crashes
        # it: its S3 file panics in WriteAt); weedpy serves it read-only straight away
        assert status(a.grpc_port, vid).is_read_only == (first == "native")
    finally:
        a.stop()
    b = start_second(tmp_path, master, name="second", data_dir=data)
    try:
        check_reads(b.url, bodies)
        (listed,) = [x for x in httpx.get(f"{b.url}/status", timeout=10).json()["Volumes"] if x["Id"] == vid]
        assert listed["RemoteStorageName"] == "s3.default" and listed["ReadOnly"]
        doomed = next(iter(bodies))
        r = httpx.delete(f"{b.url}/{doomed}", timeout=10)
        assert r.status_code == 202, r.text
        check_reads(b.url, bodies, deleted=doomed)
        assert status(b.grpc_port, vid).is_read_only
        out = call(b.grpc_port, "ScrubVolume", vs.ScrubVolumeRequest(volume_ids=[vid], mode=vs.FULL), vs.ScrubVolumeResponse)
        assert out.ok and list(out.response.broken_volume_ids) == [], out.response.details
        assert tier(b.grpc_port, "VolumeTierMoveDatFromRemote", vs.VolumeTierMoveDatFromRemoteRequest(volume_id=vid)) == []
        assert (data / f"{vid}.dat").read_bytes() == dat and not s3.exists(key)
        assert status(b.grpc_port, vid).is_read_only  # both keep it read-only until marked writable
        check_reads(b.url, bodies, deleted=doomed)
    finally:
        b.stop()
    c = start_first(tmp_path, master, name="third", data_dir=data)
    try:
        check_reads(c.url, bodies, deleted=doomed)
        assert not status(c.grpc_port, vid).is_read_only  # a reload of the local .dat is writable again
    finally:
        c.stop()


def test_fetch_and_write_needle_from_s3_with_a_go_replica(tmp_path: Path, master: MasterProc, s3: S3) -> None:
    payload = bytes(range(256)) * 8
    s3.client.put_object(BUCKET, "fetch/object.bin", payload)
    native = start_native(tmp_path, master, name="native", extra=["-volume.allowUntrustedRemoteEndpoints"])
    go = start_go(tmp_path, master, name="go", extra=["-volume.allowUntrustedRemoteEndpoints"])
    try:
        for v in (native, go):
            assert call(v.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=43, version=3),
                        vs.AllocateVolumeResponse).ok
        conf = remote_pb2.RemoteConf(name="mini", type="s3", s3_access_key="admin", s3_secret_key="admin",
                                     s3_region="us-east-1", s3_endpoint=s3.endpoint, s3_force_path_style=True)
        loc = remote_pb2.RemoteStorageLocation(name="mini", bucket=BUCKET, path="/fetch/object.bin")
        req = vs.FetchAndWriteNeedleRequest(volume_id=43, needle_id=0x51, cookie=0x1234, offset=100, size=1000,
                                            remote_conf=conf, remote_location=loc,
                                            replicas=[vs.FetchAndWriteNeedleRequest.Replica(url=f"127.0.0.1:{go.port}")])
        results = {side: call(v.grpc_port, "FetchAndWriteNeedle", req, vs.FetchAndWriteNeedleResponse)
                   for side, v in (("native", native), ("go", go))}
        assert results["native"].ok and results["go"].ok
        assert results["native"].response.e_tag == results["go"].response.e_tag
        for v in (native, go):
            r = httpx.get(f"{v.url}/43,5100001234", timeout=10)
            assert r.status_code == 200 and r.content == payload[100:1100]
        missing = vs.FetchAndWriteNeedleRequest()
        missing.CopyFrom(req)
        missing.remote_location.path = "/fetch/none.bin"
        del missing.replicas[:]
        outs = [call(v.grpc_port, "FetchAndWriteNeedle", missing, vs.FetchAndWriteNeedleResponse) for v in (native, go)]
        prefix = 'read from remote name:"mini"  bucket:"tier"  path:"/fetch/none.bin": failed to download file tier/fetch/none.bin: NoSuchKey: '
        # Go's text ends "..., host id: " (an empty S3 host id): a trailing space this test's h2
        # client refuses in a header, so only its gist is compared; weedpy leaves the empty part out
        assert outs[0].message.startswith(prefix) and outs[0].message.endswith(", request id: " + outs[0].message.rsplit(": ", 1)[1])
        assert "NoSuchKey: The specified key does not exist." in outs[1].message
    finally:
        native.stop()
        go.stop()
    shutil.rmtree(tmp_path / "native", ignore_errors=True)


@pytest.mark.parametrize("source_side", ["go", "native"])
def test_volume_copy_of_a_tiered_volume_leaves_the_dat_remote(tmp_path: Path, master: MasterProc, s3: S3,
                                                               source_side: str) -> None:
    """VolumeCopy pulls only `.idx` and `.vif` of a tiered source; the copy serves from the object."""
    allow = ["-volume.allowUntrustedRemoteEndpoints"]  # Go refuses a loopback source without it
    start_source, start_dest = (start_go, start_native) if source_side == "go" else (start_native, start_go)
    vid = 45 if source_side == "go" else 46
    src = start_source(tmp_path, master, name="src", extra=allow)
    dst = start_dest(tmp_path, master, name="dst", extra=allow)
    try:
        bodies = fill(src.url, src.grpc_port, vid)
        tier(src.grpc_port, "VolumeTierMoveDatToRemote",
             vs.VolumeTierMoveDatToRemoteRequest(volume_id=vid, destination_backend_name="s3.default"))
        key = remote_key(src.data_dir, vid)

        async def copy() -> list:
            async with Channel("127.0.0.1", dst.grpc_port) as ch:
                async with ch.unary_stream(P + "VolumeCopy", vs.VolumeCopyRequest(
                        volume_id=vid, source_data_node=f"127.0.0.1:{src.port}.{src.grpc_port}"),
                        vs.VolumeCopyResponse, timeout=60) as rs:
                    return [m async for m in rs]

        trio.run(copy)
        assert not (dst.data_dir / f"{vid}.dat").exists() and remote_key(dst.data_dir, vid) == key
        check_reads(dst.url, bodies)
        assert status(dst.grpc_port, vid).file_count == len(bodies)
    finally:
        src.stop()
        dst.stop()
