"""Endpoint naming, route table loading and the storage ownership rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from weedpy.serve.routes import (
    ALL_ENDPOINTS, GRPC_METHODS, MUTATING_ENDPOINTS, RouteTableError, Target, http_endpoint, load_route_table,
    parse_route_table, request_path,
)
from proto.services import VOLUME_SERVER


@pytest.mark.parametrize(
    "port, method, path, name",
    [
        ("admin", b"GET", b"/3,01637037d6", "admin.read"),
        ("admin", b"HEAD", b"/3/01637037d6/a.jpg", "admin.read"),
        ("admin", b"POST", b"/3,01637037d6", "admin.write"),
        ("admin", b"PUT", b"/3,01637037d6", "admin.write"),
        ("admin", b"DELETE", b"/3,01637037d6", "admin.delete"),
        ("admin", b"OPTIONS", b"/3,01637037d6", "admin.options"),
        ("admin", b"PATCH", b"/3,01637037d6", "admin.unsupported"),
        ("admin", b"POST", b"/status", "admin.status"),
        ("admin", b"GET", b"/readyz", "admin.healthz"),
        ("admin", b"GET", b"/ui/index.html", "admin.ui"),
        ("admin", b"GET", b"/seaweedfsstatic/bootstrap.css", "admin.static"),
        ("admin", b"GET", b"/stats/disk", "admin.stats"),
        ("public", b"GET", b"/3,01637037d6", "public.read"),
        ("public", b"GET", b"/status", "public.read"),
        ("public", b"POST", b"/3,01637037d6", "public.other"),
        ("public", b"OPTIONS", b"/x", "public.options"),
        ("public", b"GET", b"/favicon.ico", "public.static"),
    ],
)
def test_http_endpoint_names_follow_go_dispatch(port: str, method: bytes, path: bytes, name: str) -> None:
    assert http_endpoint(port, method, path) == name


def test_request_path_strips_query_and_absolute_form() -> None:
    assert request_path(b"/3,01?x=1") == b"/3,01"
    assert request_path(b"http://h:1/status?pretty=y") == b"/status"


def test_grpc_method_list_is_the_4_48_service() -> None:
    assert set(GRPC_METHODS) == {rpc.name for rpc in VOLUME_SERVER}


def test_builtin_table_sends_everything_to_go() -> None:
    table = load_route_table(None)
    assert all(table.lookup(e).target is Target.GO for e in ALL_ENDPOINTS)
    assert table.owner_of_writes() == "go"


def test_table_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "routes.toml"
    f.write_text(
        'version = "v7"\ndefault = "go"\n[routes]\n"admin.status" = "native"\n'
        '"public.read" = { target = "shadow", sample_pct = 5, ignore_headers = ["Server"] }\n'
    )
    table = load_route_table(f)
    assert table.version == "v7"
    assert table.lookup("admin.status").target is Target.NATIVE
    assert table.lookup("public.read").sample_pct == 5 and table.lookup("public.read").ignore_headers == ("Server",)
    assert table.lookup("admin.read").target is Target.GO


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"routes": {"admin.reed": "go"}}, "unknown endpoint 'admin.reed'"),
        ({"routes": {"admin.read": "python"}}, "unknown target 'python'"),
        ({"routes": {"admin.read": {"target": "go", "sample": 1}}}, "unknown key"),
        ({"routes": {"admin.read": {"target": "shadow", "sample_pct": 101}}}, "sample_pct"),
        ({"defaults": "go"}, "unknown top-level"),
        ({"routes": {"admin.write": "native"}}, "one side"),
        ({"default": "native", "routes": {"/volume_server_pb.VolumeServer/VolumeCopy": "shadow"}}, "one side"),
    ],
)
def test_bad_tables_are_refused_with_the_entry_named(doc: dict, message: str) -> None:
    with pytest.raises(RouteTableError, match=message):
        parse_route_table(doc)


def test_all_writers_on_native_is_allowed() -> None:
    table = parse_route_table({"routes": {e: "native" for e in MUTATING_ENDPOINTS}})
    assert table.owner_of_writes() == "native"


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(RouteTableError, match="cannot read"):
        load_route_table(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("routes = [")
    with pytest.raises(RouteTableError, match="not valid TOML"):
        load_route_table(bad)


# -- native_pct ---------------------------------------------------------------------------------

def test_file_key_is_the_same_for_every_spelling_of_a_file() -> None:
    from weedpy.serve.routes import file_key

    spellings = [b"/3,01637037d6", b"/3,1637037d6", b"/3/01637037d6", b"/3/01637037D6.jpg",
                 b"/3/01637037d6/photo.jpg", b"/3,01637037d6_1", b"/3,01637037d6.png"]
    assert {file_key(p) for p in spellings} == {b"3,1"}
    assert file_key(b"/3,02637037d6") == b"3,2" and file_key(b"/4,01637037d6") == b"4,1"
    assert file_key(b"/3,00000000d6637037") == b"3,0"  # a key of zero
    assert file_key(b"/status") == b"/status" and file_key(b"/3,zz") == b"/3,zz"


def test_native_share_splits_files_near_the_target_and_stably() -> None:
    import random

    from weedpy.serve.routes import native_share

    rng = random.Random(15)
    paths = [f"/{rng.randrange(1, 200)},{rng.getrandbits(40):x}{rng.getrandbits(32):08x}".encode()
             for _ in range(10_000)]
    shares = [native_share(p) for p in paths]
    assert all(0 <= s < 100 for s in shares)
    for pct in (1, 10, 25, 50, 90):
        got = sum(s < pct for s in shares) / len(shares) * 100
        assert abs(got - pct) < 2, (pct, got)
    # stable: the same file, any spelling, any time, any process (no per-process hash seed)
    assert [native_share(p) for p in paths[:100]] == shares[:100]
    assert native_share(b"/3,01637037d6") == native_share(b"/3/01637037d6/name.jpg")
    # sequential keys (how a master assigns them) split as well as random ones
    seq = [native_share(f"/7,{k:x}{0xdeadbeef:08x}".encode()) for k in range(1, 10_001)]
    assert abs(sum(s < 20 for s in seq) / 100 - 20) < 2


def test_native_share_is_pinned() -> None:
    """The split must not change between releases: a file would move sides on an upgrade."""
    from weedpy.serve.routes import native_share

    assert round(native_share(b"/3,01637037d6"), 6) == PINNED_SHARE


def test_native_pct_rules() -> None:
    ok = parse_route_table({"routes": {"admin.read": {"target": "native", "native_pct": 10},
                                       "public.read": {"target": "native+verify", "native_pct": 0}}})
    assert ok.lookup("admin.read").native_pct == 10.0 and ok.lookup("admin.read").go_side is Target.GO
    assert ok.lookup("public.read").go_side is Target.SHADOW
    assert ok.targets() == {Target.GO, Target.NATIVE, Target.NATIVE_VERIFY, Target.SHADOW}
    for bad, needle in [
        ({"admin.status": {"target": "native", "native_pct": 10}}, "only admin.read and public.read"),
        ({"admin.read": {"target": "go", "native_pct": 10}}, "needs target native"),
        ({"admin.read": {"target": "native", "native_pct": 101}}, "0 to 100"),
        ({"admin.read": {"target": "native", "auto_rollback": {"window_s": 5}}}, "needs max_real_diff_pct"),
        ({"admin.read": {"target": "native", "auto_rollback": {"max_5xx_pct": 5, "x": 1}}}, "unknown key"),
    ]:
        with pytest.raises(RouteTableError, match=needle):
            parse_route_table({"routes": bad})
    with pytest.raises(RouteTableError, match="'default': auto_rollback"):
        parse_route_table({"default": {"target": "native", "auto_rollback": {"max_5xx_pct": 1}}})

PINNED_SHARE = 13.993878  # native_share(b"/3,01637037d6") since native_pct exists
