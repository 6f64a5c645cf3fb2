"""The Go command lines weedpy builds: exec mode and the managed backend."""

from __future__ import annotations

from pathlib import Path

from gateway.backend_args import BackendPorts, backend_argv, backend_environ, exec_argv, security_config_dir
from weedpy.config import parse_volume_args


def test_exec_translates_every_explicit_flag_to_go_form() -> None:
    cfg = parse_volume_args(
        ["--port", "8100", "--dir", "/d", "--pprof", "--inflightUploadDataTimeout", "90s", "--mode", "exec",
         "--readMode", "redirect"], environ={})
    argv = exec_argv(cfg, "/bin/weed", "/conf")
    assert argv[:3] == ["/bin/weed", "-config_dir=/conf", "volume"]
    assert {"-port=8100", "-dir=/d", "-pprof=true", "-inflightUploadDataTimeout=1m30s", "-readMode=redirect"} <= set(argv)
    assert "-master=localhost:9333" in argv
    assert not any(a.startswith("-mode") for a in argv)


def test_backend_gets_private_ports_and_the_relay_as_master() -> None:
    cfg = parse_volume_args(["-port=8100", "-ip=10.1.2.3", "-whiteList=10.0.0.1", "-max=3",
                             "-preStopSeconds=5", "-publicUrl=x:1", "-idleTimeout=40"], environ={})
    argv = backend_argv(cfg, "/bin/weed", BackendPorts(50001, 50002, None), "127.0.0.1:9.19", None)
    assert argv[1] == "volume"
    assert {"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=50001", "-port.grpc=50002", "-port.public=50001",
            "-master=127.0.0.1:9.19", "-preStopSeconds=0", "-max=3", "-idleTimeout=40",
            "-volume.allowUntrustedRemoteEndpoints=true"} <= set(argv)  # the gateway checks peers itself
    assert not any(a.startswith(("-whiteList", "-publicUrl", "-ip=10.")) for a in argv)


def test_backend_with_split_public_port() -> None:
    cfg = parse_volume_args(["-port=8100", "-port.public=8101"], environ={})
    argv = backend_argv(cfg, "/bin/weed", BackendPorts(1, 2, 3), "m", None)
    assert "-port.public=3" in argv


def test_backend_environment_has_no_flag_variables() -> None:
    env = backend_environ({"PORT": "1", "DIR": "/x", "IP_BIND": "y", "HOME": "/h", "WEEDPY_MODE": "proxy"})
    assert env == {"HOME": "/h", "WEEDPY_MODE": "proxy"}


def test_security_file_becomes_a_config_dir(tmp_path: Path) -> None:
    named = tmp_path / "security.toml"
    named.write_text("[jwt.signing]\nkey = \"k\"\n")
    cfg = parse_volume_args([f"--securityFile={named}"], environ={})
    assert security_config_dir(cfg) == str(tmp_path)
    other = tmp_path / "sec-alt.toml"
    other.write_text("[jwt.signing]\nkey = \"k2\"\n")
    d = security_config_dir(parse_volume_args([f"--securityFile={other}"], environ={}))
    assert d is not None and (Path(d) / "security.toml").read_text() == other.read_text()
