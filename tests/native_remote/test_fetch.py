"""FetchAndWriteNeedle over an in-process native server and a fake S3 endpoint: Go 4.48's
refusals, the project's endpoint rule (loopback refused unless the operator allows untrusted
endpoints), ranged reads written as needles, replica uploads; and the S3 client's signing."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest

from native.grpc._remote import _pinned_resolver, s3_options
from native.s3 import S3Client, S3Error, S3Options
from native.s3._sigv4 import Credentials, sign_headers
from native.storage import crc32c
from proto import remote_pb2
from proto import volume_server_pb2 as vs
from tests.native_grpc.support import serve_native
from tests.native_remote.fake_s3 import fake_s3

F = vs.FetchAndWriteNeedleRequest
ALLOW = ["-volume.allowUntrustedRemoteEndpoints"]


def conf(endpoint: str, **kw) -> remote_pb2.RemoteConf:
    return remote_pb2.RemoteConf(name="r", type="s3", s3_access_key="ak", s3_secret_key="sk", s3_region="us-east-1",
                                 s3_endpoint=endpoint, s3_force_path_style=True, **kw)


def test_sigv4_matches_the_aws_documentation_example() -> None:
    h = sign_headers(method="GET", host="examplebucket.s3.amazonaws.com", path="/test.txt", query={},
                     headers={"Range": "bytes=0-9"}, payload_hash=hashlib.sha256(b"").hexdigest(),
                     credentials=Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                     region="us-east-1", now=datetime.datetime(2013, 5, 24))
    assert h["authorization"].endswith(
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_client_calls_and_errors() -> None:
    with fake_s3("b") as s3:
        c = S3Client(S3Options(s3.endpoint, "us-east-1", "ak", "sk"))
        c.put_object("b", "dir/a b.txt", b"0123456789")
        assert c.head_object("b", "dir/a b.txt") == 10 and c.get_range("b", "dir/a b.txt", 3, 4) == b"3456"
        assert b"".join(c.iter_range("b", "dir/a b.txt", 8, 10)) == b"89"
        upload = c.create_multipart("b", "big")
        etags = [c.upload_part("b", "big", upload, i, iter([bytes([i]) * 5]), 5) for i in (1, 2)]
        c.complete_multipart("b", "big", upload, etags)
        assert s3.objects[("b", "big")] == b"\x01" * 5 + b"\x02" * 5
        with pytest.raises(S3Error) as err:
            c.get_range("b", "missing", 0, 1)
        assert str(err.value) == "NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: req-1"
        with pytest.raises(S3Error, match="^NotFound: Not Found"):
            c.head_object("b", "missing")
        c.delete_object("b", "big")
        assert ("b", "big") not in s3.objects
        with pytest.raises(S3Error, match="MissingRegion: could not find region configuration"):
            S3Client(S3Options(s3.endpoint)).head_object("b", "x")
        c.close()


def test_pinned_resolver_refuses_blocked_addresses() -> None:
    pin = _pinned_resolver("http://example.test:1")
    assert pin("8.8.8.8") == "8.8.8.8"
    with pytest.raises(S3Error, match="resolves to loopback address 127.0.0.1"):
        pin("127.0.0.1")
    with pytest.raises(S3Error, match="resolves to private address 10.1.2.3"):
        pin("10.1.2.3")
    endpoint, opts = s3_options(remote_pb2.RemoteConf(type="wasabi", wasabi_endpoint="https://w", wasabi_region="r"))
    assert endpoint == "https://w" and opts.force_path_style and opts.region == "r"
    assert s3_options(remote_pb2.RemoteConf(type="azure")) is None


async def test_refusals_as_go(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[88]) as s:
        out = await s.call("FetchAndWriteNeedle", F(volume_id=98781, needle_id=1), vs.FetchAndWriteNeedleResponse)
        assert (out.status, out.message) == ("UNKNOWN", "not found volume id 98781")
        out = await s.call("FetchAndWriteNeedle", F(
            volume_id=88, needle_id=1, cookie=1, size=1, remote_conf=remote_pb2.RemoteConf(name="it-invalid-remote", type="does-not-exist"),
            remote_location=remote_pb2.RemoteStorageLocation(name="it-invalid-remote", path="/test")), vs.FetchAndWriteNeedleResponse)
        assert out.message == ("get remote client: make remote storage client it-invalid-remote: "
                               "remote storage type does-not-exist not found")
        out = await s.call("FetchAndWriteNeedle", F(volume_id=88, needle_id=1, size=1, remote_conf=conf("http://127.0.0.1:9"),
                                                    remote_location=remote_pb2.RemoteStorageLocation(bucket="b", path="/x")),
                           vs.FetchAndWriteNeedleResponse)
        assert out.message == 'reject remote endpoint: remote endpoint "http://127.0.0.1:9" resolves to loopback address 127.0.0.1'
        out = await s.call("FetchAndWriteNeedle", F(volume_id=88, needle_id=1, size=1,
                                                    remote_conf=remote_pb2.RemoteConf(name="n", type="s3"),
                                                    remote_location=remote_pb2.RemoteStorageLocation(name="n", bucket="b", path="/test")),
                           vs.FetchAndWriteNeedleResponse)
        assert out.message == ('read from remote name:"n"  bucket:"b"  path:"/test": failed to download file b/test: '
                               "MissingRegion: could not find region configuration")
        await s.set_maintenance(True)
        out = await s.call("FetchAndWriteNeedle", F(volume_id=1, needle_id=1), vs.FetchAndWriteNeedleResponse)
        assert out.message.endswith("is in maintenance mode")


async def test_fetch_ranges_into_needles(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    with fake_s3("bkt") as s3:
        s3.objects[("bkt", "big.dat")] = data
        async with serve_native(tmp_path, volumes=[98], flags=ALLOW) as s:
            loc = remote_pb2.RemoteStorageLocation(name="r", bucket="bkt", path="/big.dat")
            out = await s.call("FetchAndWriteNeedle", F(volume_id=98, needle_id=7, cookie=999, offset=100, size=100,
                                                        remote_conf=conf(s3.endpoint), remote_location=loc),
                               vs.FetchAndWriteNeedleResponse)
            assert out.ok and out.response.e_tag == f"{crc32c(data[100:200]):08x}"
            n = s.store.read_needle(98, 7, 999)
            assert n.data == data[100:200] and n.last_modified > 0
            missing = remote_pb2.RemoteStorageLocation(name="r", bucket="bkt", path="/does-not-exist.dat")
            out = await s.call("FetchAndWriteNeedle", F(volume_id=98, needle_id=8, cookie=1, size=100,
                                                        remote_conf=conf(s3.endpoint), remote_location=missing),
                               vs.FetchAndWriteNeedleResponse)
            assert out.message.startswith('read from remote name:"r"  bucket:"bkt"  path:"/does-not-exist.dat": '
                                          "failed to download file bkt/does-not-exist.dat: NoSuchKey: ")
            out = await s.call("FetchAndWriteNeedle", F(volume_id=98, needle_id=9, cookie=1, offset=1000, size=100,
                                                        remote_conf=conf(s3.endpoint), remote_location=loc),
                               vs.FetchAndWriteNeedleResponse)
            assert out.message.endswith("short read from bkt/big.dat at offset 1000: got 24 bytes, want 100")
            out = await s.call("FetchAndWriteNeedle", F(volume_id=98, needle_id=7, cookie=5, size=10,
                                                        remote_conf=conf(s3.endpoint), remote_location=loc),
                               vs.FetchAndWriteNeedleResponse)
            assert out.message.startswith("local write needle 7 size 10: ")  # another cookie holds the id


def test_replica_targets_must_be_bare_host_ports() -> None:
    from weedpy.serve.peers import replica_target_problem as _replica_target_problem

    assert _replica_target_problem("10.0.0.5:8080") is None and _replica_target_problem("[::1]:80") is None
    assert _replica_target_problem(" ") == "replica target is empty"
    for bad in ("http://h:1", "h:1/x", "user@h:1", "h"):
        assert _replica_target_problem(bad) == f'replica target "{bad}" must be a bare host:port'
    assert _replica_target_problem(":80") == 'replica target ":80" has no host'
