"""Resolved volume configuration: Go's derived defaults, master spellings, modes, -max lists."""

from __future__ import annotations

import pytest

from weedpy.config import Mode, parse_volume_args
from weedpy.flags import FlagError

HARNESS = [
    "--port", "8100", "--port.grpc", "18100", "--port.public", "8100", "--ip", "127.0.0.1",
    "--ip.bind", "127.0.0.1", "--dir", "/d", "--max", "16", "--master", "127.0.0.1:9333",
    "--securityFile", "/c/security.toml", "--readMode", "proxy", "--concurrentUploadLimitMB", "0",
    "--concurrentDownloadLimitMB", "0", "--preStopSeconds", "0", "--inflightUploadDataTimeout", "2s",
]


def test_harness_argv_is_accepted_exactly() -> None:
    cfg = parse_volume_args(HARNESS, environ={})
    assert (cfg.port, cfg.grpc_port, cfg.public_port) == (8100, 18100, 8100)
    assert cfg.masters == ("127.0.0.1:9333",) and cfg.security_file == "/c/security.toml"
    assert cfg.pre_stop_seconds == 0 and cfg["inflightUploadDataTimeout"] == 2.0
    assert cfg.mode is Mode.NATIVE  # no -mode, no WEEDPY_MODE: the native server


def test_derived_defaults_follow_go() -> None:
    cfg = parse_volume_args(["-port=8200", "-ip=10.0.0.5"], environ={})
    assert cfg.grpc_port == 18200 and cfg.public_port == 8200 and not cfg.split_public_port
    assert cfg.bind_ip == "10.0.0.5" and cfg.server_id == "10.0.0.5:8200"
    assert cfg.public_url == "10.0.0.5:8200"
    assert cfg.dirs == ("/tmp",) and cfg.max_counts == (8,)
    assert cfg.masters == ("localhost:9333",)
    assert cfg["inflightDownloadDataTimeout"] == 60.0 and cfg["fileSizeLimitMB"] == 256


def test_deprecated_mserver_is_honoured_when_master_is_absent() -> None:
    assert parse_volume_args(["-mserver=a:1,b:2"], environ={}).masters == ("a:1", "b:2")
    assert parse_volume_args(["-mserver=a:1", "-master=c:3"], environ={}).masters == ("c:3",)


def test_max_applies_to_every_dir_or_per_dir() -> None:
    assert parse_volume_args(["-dir=/a,/b", "-max=5"], environ={}).max_counts == (5, 5)
    assert parse_volume_args(["-dir=/a,/b", "-max=5,7"], environ={}).max_counts == (5, 7)
    with pytest.raises(FlagError, match="-max"):
        parse_volume_args(["-dir=/a,/b", "-max=5,7,9"], environ={})


@pytest.mark.parametrize(
    "env, argv, mode",
    [
        ({}, [], Mode.NATIVE),
        ({"WEEDPY_MODE": "proxy"}, [], Mode.PROXY),
        ({"WEEDPY_MODE": "exec"}, [], Mode.EXEC),
        ({"VOLUME_SERVER_RUST_MODE": "native"}, [], Mode.NATIVE),
        ({"WEEDPY_MODE": "exec"}, ["-mode=proxy"], Mode.PROXY),
    ],
)
def test_mode_precedence(env: dict[str, str], argv: list[str], mode: Mode) -> None:
    assert parse_volume_args(argv, environ=env).mode is mode


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-readMode=sometimes"], "-readMode"),
        (["-mode=turbo"], "-mode"),
        (["-port=70000"], "-port"),
        (["-port=60000"], "-port.grpc"),
        (["-index=btree"], "-index"),
    ],
)
def test_bad_values_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message):
        parse_volume_args(argv, environ={})


def test_env_mode_value_is_validated() -> None:
    with pytest.raises(FlagError, match="invalid mode"):
        parse_volume_args([], environ={"WEEDPY_MODE": "bogus"})


def test_global_config_dir_is_accepted_in_the_volume_flags() -> None:
    assert parse_volume_args(["-config_dir=/etc/x"], environ={}).config_dir == "/etc/x"
    assert parse_volume_args([], environ={}, config_dir="/g").config_dir == "/g"
