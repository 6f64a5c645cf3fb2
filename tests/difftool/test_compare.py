"""The comparison engine from records: injected differences are found and named, identical traffic
and per-response values (Date, request ids, boundaries, own address) are not."""

from __future__ import annotations

import gzip
import json

import pytest

from difftool import (
    FieldPattern,
    GrpcResponse,
    HttpResponse,
    Outcome,
    Rules,
    Verdict,
    compare_grpc,
    compare_http,
    compare_outcomes,
)
from proto import volume_server_pb2 as vs
from weedpy.grpc import encode_message

PING = "/volume_server_pb.VolumeServer/Ping"
STATUS = "/volume_server_pb.VolumeServer/VolumeStatus"
COPY = "/volume_server_pb.VolumeServer/CopyFile"


def http(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"hello") -> HttpResponse:
    hs = headers if headers is not None else [
        (b"Content-Type", b"text/plain"), (b"Date", b"Mon, 01 Jan 2024 00:00:00 GMT"), (b"Content-Length", b"%d" % len(body)),
    ]
    return HttpResponse(status, b"OK", tuple(hs), body)


def grpc(messages: tuple[bytes, ...] = (), status: bytes = b"0", message: bytes = b"", trailers_only: bool = False,
         extra_trailers: tuple[tuple[bytes, bytes], ...] = ()) -> GrpcResponse:
    head = ((b":status", b"200"), (b"content-type", b"application/grpc"))
    tr = ((b"grpc-status", status),) + (((b"grpc-message", message),) if message else ()) + extra_trailers
    if trailers_only:
        return GrpcResponse(head + tr, (), head + tr, True)
    return GrpcResponse(head, messages, tr, False)


def test_identical_http_matches() -> None:
    assert compare_http(http(), http()).verdict is Verdict.MATCH


def test_date_and_request_id_are_masked() -> None:
    a = http(headers=[(b"Date", b"Mon, 01 Jan 2024 00:00:00 GMT"), (b"X-Amz-Request-Id", b"1")])
    b = http(headers=[(b"Date", b"Tue, 02 Jan 2024 00:00:01 GMT"), (b"X-Amz-Request-Id", b"2")])
    assert compare_http(a, b).verdict is Verdict.MATCH


def test_missing_date_is_a_difference() -> None:
    a = http(headers=[(b"Date", b"x")])
    c = compare_http(a, http(headers=[]))
    assert c.verdict is Verdict.MISMATCH and c.keys == {"header:date"}


def test_changed_header_is_found_and_named() -> None:
    a = http()
    b = http(headers=[(b"Content-Type", b"text/html"), (b"Date", b"x"), (b"Content-Length", b"5")])
    c = compare_http(a, b)
    assert c.verdict is Verdict.MISMATCH
    assert [(d.path, d.left, d.right) for d in c.diffs] == [("header:content-type", "text/plain", "text/html")]


def test_header_order_and_case() -> None:
    a = http(headers=[(b"A", b"1"), (b"B", b"2")])
    assert compare_http(a, http(headers=[(b"B", b"2"), (b"A", b"1")])).keys == {"header-order"}
    assert compare_http(a, http(headers=[(b"a", b"1"), (b"B", b"2")])).keys == {"header-case"}


def test_one_changed_byte_in_a_body() -> None:
    body = bytes(range(256)) * 4
    changed = bytearray(body)
    changed[700] ^= 1
    c = compare_http(http(body=body), http(body=bytes(changed)))
    assert c.verdict is Verdict.MISMATCH and c.keys == {"body"}
    assert "at 700" in c.diffs[0].left


def test_json_bodies_are_compared_by_field_path() -> None:
    a = json.dumps({"Version": "4.48", "Volumes": [{"Id": 1, "Size": 8}, {"Id": 2, "Size": 0}]}).encode()
    b = json.dumps({"Version": "4.48", "Volumes": [{"Id": 1, "Size": 8}, {"Id": 2, "Size": 1}]}).encode()
    c = compare_http(http(body=a), http(body=b))
    assert [(d.path, d.key, d.left, d.right) for d in c.diffs] == [
        ("body.Volumes[1].Size", "body.Volumes[*].Size", "0", "1")
    ]


def test_json_with_same_content_but_other_bytes_is_a_format_difference() -> None:
    c = compare_http(http(body=b'{"a":1,"b":2}'), http(body=b'{"b":2,"a":1}'))
    assert c.keys == {"body#format"}


def test_gzip_bodies_are_decoded() -> None:
    text = b"hello weedpy\n" * 50
    fast, best = gzip.compress(text, 1, mtime=0), gzip.compress(text, 9, mtime=0)
    assert fast != best
    hs = [(b"Content-Encoding", b"gzip")]
    assert compare_http(http(headers=hs, body=fast), http(headers=hs, body=best)).keys == {"body#encoding"}
    other = gzip.compress(b'{"a": 2}', mtime=0)
    c = compare_http(http(headers=hs, body=gzip.compress(b'{"a": 1}', mtime=0)), http(headers=hs, body=other))
    assert c.keys == {"body.a"}


def test_multipart_boundary_is_masked() -> None:
    def resp(boundary: bytes) -> HttpResponse:
        body = b"--%s\r\nContent-Range: bytes 0-1/10\r\n\r\nab\r\n--%s--\r\n" % (boundary, boundary)
        return http(206, [(b"Content-Type", b"multipart/byteranges; boundary=" + boundary)], body)
    assert compare_http(resp(b"abc123"), resp(b"zzz999")).verdict is Verdict.MATCH


def test_own_address_is_masked() -> None:
    a = http(body=b'{"error":"volume 1 not on 127.0.0.1:8080"}')
    b = http(body=b'{"error":"volume 1 not on 127.0.0.1:9090"}')
    assert compare_http(a, b).verdict is Verdict.MISMATCH
    assert compare_http(a, b, owns_a=(b"127.0.0.1:8080",), owns_b=(b"127.0.0.1:9090",)).verdict is Verdict.MATCH


def test_status_difference() -> None:
    assert compare_http(http(200), http(404)).keys == {"status"}


def test_ignore_rules_apply_only_to_differences() -> None:
    a, b = http(headers=[(b"Server", b"Go")]), http(headers=[(b"Server", b"py")])
    c = compare_http(a, b, Rules.of(ignore_headers=["server"]))
    assert c.verdict is Verdict.IGNORED and c.diffs == () and [d.path for d in c.ignored] == ["header:server"]
    assert compare_http(a, a, Rules.of(ignore_headers=["server"])).verdict is Verdict.MATCH
    ja = http(body=b'{"Volumes":[{"Size":1,"Id":1}],"Version":"a"}')
    jb = http(body=b'{"Volumes":[{"Size":2,"Id":1}],"Version":"b"}')
    c = compare_http(ja, jb, Rules.of(ignore_fields=["body.Volumes[*].Size"]))
    assert c.verdict is Verdict.MISMATCH and c.keys == {"body.Version"}
    assert compare_http(ja, jb, Rules.of(ignore_fields=["body.Volumes", "body.Version"])).verdict is Verdict.IGNORED


def test_header_allow_and_deny_lists() -> None:
    a, b = http(headers=[(b"Server", b"Go"), (b"X", b"1")]), http(headers=[(b"Server", b"py"), (b"X", b"1")])
    assert compare_http(a, b, Rules.of(header_deny=["Server"])).verdict is Verdict.MATCH
    assert compare_http(a, b, Rules.of(header_allow=["x"])).verdict is Verdict.MATCH
    assert compare_http(a, b, Rules.of(header_allow=["server"])).verdict is Verdict.MISMATCH


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("body.Volumes", "body.Volumes[3].Size", True),
    ("body.Volumes[*].Size", "body.Volumes[3].Size", True),
    ("body.Volumes[*].Size", "body.Volumes[3].SizeX", False),
    ("body.*.Size", "body.Disk.Size", True),
    ("msg[*]", "msg[2].volume_id", True),
    ("msg[*]", "msg[2]#format", True),
    ("body", "body#format", True),
    ("body.Vol", "body.Volumes", False),
])
def test_field_patterns(pattern: str, path: str, hit: bool) -> None:
    assert FieldPattern(pattern).matches(path) is hit


def test_identical_grpc_matches() -> None:
    m = vs.PingResponse(start_time_ns=1, stop_time_ns=2).SerializeToString()
    assert compare_grpc(PING, grpc((m,)), grpc((m,))).verdict is Verdict.MATCH


def test_grpc_extra_message() -> None:
    m = vs.CopyFileResponse(file_content=b"abc").SerializeToString()
    c = compare_grpc(COPY, grpc((m, m)), grpc((m, m, m)))
    assert c.keys == {"message-count"} and (c.diffs[0].left, c.diffs[0].right) == ("2", "3")


def test_grpc_status_and_message() -> None:
    c = compare_grpc(STATUS, grpc(status=b"5", message=b"not%20found"), grpc(status=b"2", message=b"not%20found"))
    assert c.keys == {"grpc-status"}
    c = compare_grpc(STATUS, grpc(status=b"5", message=b"volume%201"), grpc(status=b"5", message=b"volume%202"))
    assert [(d.path, d.left, d.right) for d in c.diffs] == [("grpc-message", "volume 1", "volume 2")]


def test_grpc_trailers_only_vs_not() -> None:
    c = compare_grpc(STATUS, grpc(status=b"5", trailers_only=True), grpc(status=b"5"))
    assert "trailers-only" in c.keys


def test_grpc_message_fields_decoded_through_descriptors() -> None:
    a = vs.VolumeStatusResponse(is_read_only=False, volume_size=100, file_count=3).SerializeToString()
    b = vs.VolumeStatusResponse(is_read_only=True, volume_size=100, file_count=3).SerializeToString()
    c = compare_grpc(STATUS, grpc((a,)), grpc((b,)))
    assert [(d.path, d.left, d.right) for d in c.diffs] == [("msg[0].is_read_only", "<absent>", "true")]


def test_grpc_other_trailers_and_reset() -> None:
    c = compare_grpc(PING, grpc(extra_trailers=((b"x-a", b"1"),)), grpc(extra_trailers=((b"x-a", b"2"),)))
    assert c.keys == {"trailer:x-a"}
    r = GrpcResponse(reset_code=8)
    assert "reset" in compare_grpc(PING, grpc(), r).keys


def test_outcome_errors() -> None:
    ok = Outcome(http())
    refused = Outcome(None, error="connection refused")
    assert compare_outcomes("", ok, refused).keys == {"error"}
    assert compare_outcomes("", refused, refused).verdict is Verdict.MATCH


def test_grpc_frames_survive_encoding_roundtrip() -> None:
    # encode_message is what captures reassemble; a message is compared without its prefix
    payload = vs.PingResponse(start_time_ns=5).SerializeToString()
    assert encode_message(payload)[5:] == payload


def test_grpc_variable_fields_are_masked_but_presence_counts() -> None:
    path = "/volume_server_pb.VolumeServer/VolumeServerStatus"
    a = vs.VolumeServerStatusResponse(version="4.48", memory_status={"goroutines": 10},
                                      disk_statuses=[{"dir": "/a", "free": 10}]).SerializeToString()
    b = vs.VolumeServerStatusResponse(version="4.48", memory_status={"goroutines": 99},
                                      disk_statuses=[{"dir": "/bb", "free": 20}]).SerializeToString()
    assert compare_grpc(path, grpc((a,)), grpc((b,))).verdict is Verdict.MATCH
    c = vs.VolumeServerStatusResponse(version="4.49", disk_statuses=[{"dir": "/a", "free": 10}]).SerializeToString()
    assert compare_grpc(path, grpc((a,)), grpc((c,))).keys == {"msg[*].version", "msg[*].memory_status.goroutines"}
    # the memory status is one masked value: other sub-fields on each side still match
    d = vs.VolumeServerStatusResponse(version="4.48", memory_status={"stack": 5},
                                      disk_statuses=[{"dir": "/a", "free": 10}]).SerializeToString()
    assert compare_grpc(path, grpc((a,)), grpc((d,))).verdict is Verdict.MATCH


def test_request_id_in_grpc_metadata_is_masked() -> None:
    a = grpc(extra_trailers=((b"x-amz-request-id", b"1"),))
    b = grpc(extra_trailers=((b"x-amz-request-id", b"2"),))
    assert compare_grpc(PING, a, b).verdict is Verdict.MATCH


def test_status_disk_figures_are_masked_with_their_length() -> None:
    a = json.dumps({"Version": "4.48", "DiskStatuses": [{"dir": "/a", "free": 9, "used": 1}]}).encode()
    b = json.dumps({"Version": "4.48", "DiskStatuses": [{"dir": "/a", "free": 10, "used": 0}]}).encode()
    ha = [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(a))]
    hb = [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(b))]
    assert compare_http(http(headers=ha, body=a), http(headers=hb, body=b), endpoint="admin.status").verdict is Verdict.MATCH
    assert compare_http(http(headers=ha, body=a), http(headers=hb, body=b), endpoint="admin.read").keys == {
        "header:content-length", "body.DiskStatuses[*].free", "body.DiskStatuses[*].used"}
    c = json.dumps({"Version": "4.49", "DiskStatuses": [{"dir": "/a", "free": 10, "used": 0}]}).encode()
    hc = [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(c))]
    assert compare_http(http(headers=ha, body=a), http(headers=hc, body=c), endpoint="admin.status").keys == {
        "header:content-length", "body.Version"}


def test_text_bodies_are_compared_line_by_line() -> None:
    def page(uptime: int, master: str) -> HttpResponse:
        return http(headers=[(b"Content-Type", b"text/html")],
                    body=f"<html>\n<td>Uptime {uptime}s</td>\n<td>[{master}]</td>\n</html>\n".encode())
    c = compare_http(page(3, "10.0.0.1:9333"), page(4, "127.0.0.1:41000"))
    assert c.keys == {"body~<td>Uptime #s</td>", "body~<td>[#.#.#.#:#]</td>"}
    assert [d.left for d in c.diffs] == ["line 2: <td>Uptime 3s</td>", "line 3: <td>[10.0.0.1:9333]</td>"]
    assert compare_http(page(3, "a"), page(3, "b"), Rules.of(ignore_fields=["body"])).verdict is Verdict.IGNORED


def test_ui_uptime_line_is_masked() -> None:
    def page(uptime: str) -> HttpResponse:
        body = f"<html>\n<td>Up Time</td>\n  <td>{uptime}</td>\n</html>\n".encode()
        return http(headers=[(b"Content-Type", b"text/html"), (b"Content-Length", b"%d" % len(body))], body=body)
    assert compare_http(page("1s"), page("0s"), endpoint="admin.ui").verdict is Verdict.MATCH
    assert compare_http(page("1m5s"), page("59s"), endpoint="admin.ui").verdict is Verdict.MATCH  # length follows
    assert compare_http(page("1s"), page("0s"), endpoint="admin.read").verdict is Verdict.MISMATCH
    assert compare_http(page("1s"), page("x"), endpoint="admin.ui").verdict is Verdict.MISMATCH
