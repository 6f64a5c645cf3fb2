"""proto/ must equal the wire contract compiled into the official weed binary (4.48)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2 as d
from google.protobuf import descriptor_pool, message_factory

from proto import master_pb2, remote_pb2, volume_server_pb2
from proto.compare import diff_file_descriptors, own_file_descriptor
from proto.embedded import (
    UPSTREAM_FILES,
    EmbeddedDescriptorError,
    find_file_descriptor,
    read_file_descriptors,
)
from proto.services import MASTER, RPCS, VOLUME_SERVER, StreamKind, rpc_for_path
from weedpy.weedbin import find_weed_binary

REPO = Path(__file__).resolve().parent.parent
MODULES: dict[str, ModuleType] = {
    "remote.proto": remote_pb2,
    "volume_server.proto": volume_server_pb2,
    "master.proto": master_pb2,
}
F = d.FieldDescriptorProto


@pytest.fixture(scope="module")
def upstream() -> dict[str, d.FileDescriptorProto]:
    return read_file_descriptors(find_weed_binary(), UPSTREAM_FILES)


@pytest.mark.parametrize("name", list(MODULES))
def test_file_matches_weed_binary(upstream: dict[str, d.FileDescriptorProto], name: str) -> None:
    diffs = diff_file_descriptors(upstream[name], own_file_descriptor(MODULES[name]))
    assert not diffs, f"{len(diffs)} differences from weed's {name}:\n  " + "\n  ".join(diffs)


def test_weed_binary_has_expected_shape(upstream: dict[str, d.FileDescriptorProto]) -> None:
    vs, master, remote = upstream["volume_server.proto"], upstream["master.proto"], upstream["remote.proto"]
    assert (vs.package, master.package, remote.package) == ("volume_server_pb", "master_pb", "remote_pb")
    assert len(vs.message_type) == 111
    assert [(s.name, len(s.method)) for s in vs.service] == [("VolumeServer", 49)]
    assert [(s.name, len(s.method)) for s in master.service] == [("Seaweed", 27)]
    assert list(vs.dependency) == ["remote.proto"]
    assert list(master.dependency) == ["volume_server.proto"]


def _mutations() -> list[tuple[str, object, str]]:
    """(label, mutate(fdp), fragment expected in the diff) for the comparer's sensitivity test."""

    def msg(fdp: d.FileDescriptorProto, name: str) -> d.DescriptorProto:
        return next(m for m in fdp.message_type if m.name == name)

    def field(fdp: d.FileDescriptorProto, message: str, name: str) -> d.FieldDescriptorProto:
        return next(f for f in msg(fdp, message).field if f.name == name)

    def method(fdp: d.FileDescriptorProto, name: str) -> d.MethodDescriptorProto:
        return next(m for m in fdp.service[0].method if m.name == name)

    def drop_message(fdp: d.FileDescriptorProto) -> None:
        fdp.message_type.remove(msg(fdp, "PingRequest"))

    def drop_enum_value(fdp: d.FileDescriptorProto) -> None:
        enum = next(e for e in fdp.enum_type if e.name == "VolumeScrubMode")
        del enum.value[-1]

    def rename_rpc(fdp: d.FileDescriptorProto) -> None:
        method(fdp, "Ping").name = "Pong"

    return [
        ("number", lambda f: setattr(field(f, "VolumeMountRequest", "volume_id"), "number", 9), "number is 9"),
        ("type", lambda f: setattr(field(f, "VolumeMountRequest", "volume_id"), "type", F.TYPE_UINT64), "TYPE_UINT64"),
        ("label", lambda f: setattr(field(f, "VolumeMountRequest", "volume_id"), "label", F.LABEL_REPEATED), "LABEL_REPEATED"),
        ("optional", lambda f: setattr(field(f, "VolumeMountRequest", "collection"), "proto3_optional", False), "proto3 optional"),
        ("oneof", lambda f: field(f, "ReceiveFileRequest", "info").ClearField("oneof_index"), "oneof index"),
        ("type_name", lambda f: setattr(field(f, "ReceiveFileRequest", "info"), "type_name", ".volume_server_pb.PingRequest"), "type_name"),
        ("message", drop_message, "missing message PingRequest"),
        ("enum value", drop_enum_value, "missing enum value READS"),
        ("rpc", rename_rpc, "missing rpc Ping"),
        ("stream", lambda f: setattr(method(f, "ReceiveFile"), "client_streaming", False), "client streaming"),
        ("output", lambda f: setattr(method(f, "Ping"), "output_type", ".volume_server_pb.PingRequest"), "output type"),
        ("package", lambda f: setattr(f, "package", "volume_pb"), "package"),
    ]


@pytest.mark.parametrize(("label", "mutate", "fragment"), _mutations(), ids=[m[0] for m in _mutations()])
def test_comparer_reports_each_kind_of_difference(
    upstream: dict[str, d.FileDescriptorProto], label: str, mutate, fragment: str
) -> None:
    ours = own_file_descriptor(volume_server_pb2)
    mutate(ours)
    diffs = diff_file_descriptors(upstream["volume_server.proto"], ours)
    assert any(fragment in line for line in diffs), (label, diffs)


def test_extractor_stops_at_the_end_of_a_descriptor() -> None:
    first = d.FileDescriptorProto(name="a.proto", package="a_pb", syntax="proto3")
    first.message_type.add(name="M").field.add(name="x", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    second = d.FileDescriptorProto(name="b.proto", package="b_pb", syntax="proto3")
    blob = b"\x00junk" + first.SerializeToString() + second.SerializeToString() + b"\xff\xff"
    assert find_file_descriptor(blob, "a.proto") == first
    assert find_file_descriptor(blob, "b.proto", "b_pb") == second
    with pytest.raises(EmbeddedDescriptorError):
        find_file_descriptor(blob, "a.proto", "other_pb")
    with pytest.raises(EmbeddedDescriptorError):
        find_file_descriptor(blob, "c.proto")


def test_services_table(upstream: dict[str, d.FileDescriptorProto]) -> None:
    assert len(VOLUME_SERVER) == 49
    assert len(MASTER) == 27
    assert len(RPCS) == 76
    expected = {}
    for name in ("volume_server.proto", "master.proto"):
        fdp = upstream[name]
        for service in fdp.service:
            for m in service.method:
                kind = {
                    (False, False): StreamKind.UNARY,
                    (False, True): StreamKind.SERVER_STREAM,
                    (True, False): StreamKind.CLIENT_STREAM,
                    (True, True): StreamKind.BIDI,
                }[(m.client_streaming, m.server_streaming)]
                expected[f"/{fdp.package}.{service.name}/{m.name}"] = (
                    kind,
                    m.input_type.lstrip("."),
                    m.output_type.lstrip("."),
                )
    ours = {
        path: (r.kind, r.request.DESCRIPTOR.full_name, r.response.DESCRIPTOR.full_name)
        for path, r in RPCS.items()
    }
    assert ours == expected
    for path, r in RPCS.items():
        assert path == f"/{r.service}/{r.name}"
        assert (r.kind.client_streaming, r.kind.server_streaming) == (
            r.kind in (StreamKind.CLIENT_STREAM, StreamKind.BIDI),
            r.kind in (StreamKind.SERVER_STREAM, StreamKind.BIDI),
        )


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/volume_server_pb.VolumeServer/Ping", StreamKind.UNARY),
        ("/volume_server_pb.VolumeServer/VolumeCopy", StreamKind.SERVER_STREAM),
        ("/volume_server_pb.VolumeServer/ReceiveFile", StreamKind.CLIENT_STREAM),
        ("/master_pb.Seaweed/SendHeartbeat", StreamKind.BIDI),
        ("/master_pb.Seaweed/KeepConnected", StreamKind.BIDI),
        ("/master_pb.Seaweed/VolumeListStream", StreamKind.SERVER_STREAM),
    ],
)
def test_known_streaming_kinds(path: str, kind: StreamKind) -> None:
    rpc = rpc_for_path(path)
    assert rpc is not None and rpc.kind is kind
    assert rpc_for_path(path + "x") is None


def test_wire_bytes_parse_with_upstream_classes(upstream: dict[str, d.FileDescriptorProto]) -> None:
    """A message we encode decodes field for field with classes built from weed's descriptors."""
    pool = descriptor_pool.DescriptorPool()
    for name, _ in UPSTREAM_FILES:
        pool.Add(upstream[name])
    theirs = message_factory.GetMessageClass(pool.FindMessageTypeByName("master_pb.Heartbeat"))
    ours = master_pb2.Heartbeat(
        ip="127.0.0.1",
        port=8080,
        max_volume_counts={"hdd": 7},
        volume_digest=0,
        volumes=[master_pb2.VolumeInformationMessage(id=3, collection="c", size=42)],
        has_no_ec_shards=True,
    )
    decoded = theirs.FromString(ours.SerializeToString())
    assert decoded.HasField("volume_digest")
    assert (decoded.ip, decoded.port, dict(decoded.max_volume_counts)) == ("127.0.0.1", 8080, {"hdd": 7})
    assert [(v.id, v.collection, v.size) for v in decoded.volumes] == [(3, "c", 42)]
    assert decoded.has_no_ec_shards
    assert master_pb2.Heartbeat.FromString(decoded.SerializeToString()) == ours


def _gencode_version(module: ModuleType) -> tuple[int, ...]:
    source = Path(module.__file__).read_text()
    m = re.search(r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.\w+,\s*(\d+),\s*(\d+),\s*(\d+),", source)
    assert m, f"{module.__name__} has no runtime version check"
    return tuple(int(x) for x in m.groups())


def test_protobuf_floor_covers_generated_code() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(dep for dep in deps if re.match(r"protobuf\b", dep))
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor, f"no >= floor in {spec!r}"
    floor_version = tuple(int(x) for x in floor.group(1).split("."))
    for module in MODULES.values():
        assert floor_version >= _gencode_version(module), (spec, module.__name__)


def test_generated_modules_match_checked_in_protos(tmp_path: Path) -> None:
    """proto/*_pb2.py were regenerated after the last change to proto/*.proto (compiled with grpcio-tools,
    from the test extra: without it the protoc run fails this test)."""
    out = tmp_path / "set.pb"
    files = [f"proto/{name}" for name, _ in UPSTREAM_FILES]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", f"--descriptor_set_out={out}", *files],
        cwd=REPO,
        check=True,
    )
    compiled = {f.name: f for f in d.FileDescriptorSet.FromString(out.read_bytes()).file}
    for name, module in MODULES.items():
        diffs = diff_file_descriptors(compiled[f"proto/{name}"], own_file_descriptor(module))
        assert not diffs, f"proto/{name} changed since scripts/gen_proto last ran: {diffs}"
