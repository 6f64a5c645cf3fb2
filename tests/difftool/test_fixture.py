"""Fixtures and the JSON codec: every byte of requests and answers (gRPC frames, trailers,
trailers-only, binary bodies) survives the round trip, and a fixture re-judges to its diffs."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, strategies as st

from difftool import GrpcRequest, GrpcResponse, HttpRequest, HttpResponse, Outcome, Sample, judge
from difftool._codec import pack_bytes, sample_from_json, sample_to_json, unpack_bytes
from difftool._fixture import Fixture, read_fixture, write_fixture
from difftool._replay import rejudge


@given(st.binary(max_size=300))
def test_bytes_roundtrip(data: bytes) -> None:
    assert unpack_bytes(pack_bytes(data)) == data


def test_text_stays_readable() -> None:
    assert pack_bytes(b"hello\n") == "hello\n"
    assert pack_bytes(b"\x00\x01") == {"b64": "AAE="}
    assert pack_bytes(b"x" * 10, limit=4) == {"text": "xxxx", "cut": 10}


def _sample() -> Sample:
    req = HttpRequest(b"PUT", b"/1,0a1b2c3d4e", ((b"Host", b"h"), (b"Content-Length", b"3")), b"\x00\xffz")
    go = Outcome(HttpResponse(201, b"Created", ((b"Content-Type", b"application/json"),), b'{"size":3}'), ms=1.5,
                 own_addrs=(b"127.0.0.1:8080",), version="weed 8000GB 4.48", aliases=((b"/d/a", b"<data dir>"),))
    nat = Outcome(HttpResponse(201, b"Created", ((b"Content-Type", b"text/plain"),), b'{"size":4}'), ms=2.0,
                  version="weedpy")
    return Sample("admin.write", req, go, nat, None, "routes-v7", "step 3")


def test_sample_roundtrip_http() -> None:
    s = _sample()
    assert sample_from_json(sample_to_json(s)) == s


def test_sample_roundtrip_grpc() -> None:
    req = GrpcRequest("/volume_server_pb.VolumeServer/CopyFile", ((b"te", b"trailers"), (b"x-bin", b"\x01")),
                      (b"\x08\x01", b""))
    frames = GrpcResponse(((b":status", b"200"),), (b"\x00" * 10, b"abc"), ((b"grpc-status", b"0"), (b"x-t", b"v")))
    only = GrpcResponse(((b":status", b"200"), (b"grpc-status", b"5")), (), ((b":status", b"200"), (b"grpc-status", b"5")), True)
    reset = GrpcResponse((), (), (), False, reset_code=8)
    s = Sample(req.method, req, Outcome(frames), Outcome(only), Outcome(reset), "v", "")
    assert sample_from_json(sample_to_json(s)) == s
    assert sample_from_json(sample_to_json(Sample(req.method, req, Outcome(None, "refused"), Outcome(only)))).primary.error == "refused"


def test_fixture_file_roundtrip_and_rejudge(tmp_path: Path) -> None:
    s = _sample()
    j = judge(s)
    setup = (HttpRequest(b"POST", b"/vol", (), b"x"),)
    path = write_fixture(tmp_path, Fixture(s, j.candidate.diffs, setup, "scn"), 1)
    assert path.name == "0001-admin.write.json"
    fx = read_fixture(path)
    assert fx.sample == s and fx.setup == setup and fx.scenario == "scn"
    assert fx.versions == {"go": "weed 8000GB 4.48", "native": "weedpy"}
    assert rejudge(fx).candidate.keys == {"header:content-type", "body.size"} == {d.path for d in fx.diffs}
