"""Translate a weedpy VolumeConfig into the Go `weed volume` command line (exec and managed backend).

The managed backend gets a security.toml of its own (`backend_config_dir`): the gateway answers
on the front ports, so the backend's own ports (on 127.0.0.1 only) serve plain gRPC and HTTP,
while everything the backend dials (peers, the master through the heartbeat relay, replication)
uses the operator's client certificates. Exec mode runs Go with the operator's file as it is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weedpy.config import GO_VOLUME_FLAG_NAMES, VOLUME_FLAGS, VolumeConfig
from weedpy.flags import environ_without_flags, go_flag_text
from weedpy.security import VOLUME_SECURITY_KEYS, SecurityConfig, security_env_name

__all__ = [
    "BackendPorts", "exec_argv", "backend_argv", "backend_environ", "security_config_dir", "backend_security_toml",
    "backend_config_dir", "managed_backend_environ",
]

_SPECS = {s.name: s for s in VOLUME_FLAGS}

# Flags the gateway decides for the managed backend instead of passing the operator's value.
_GATEWAY_OWNED = frozenset({
    "ip", "ip.bind", "port", "port.grpc", "port.public", "master", "mserver", "preStopSeconds",
    "whiteList", "id", "publicUrl", "options", "metricsIp", "metricsPort", "volume.allowUntrustedRemoteEndpoints",
})


@dataclasses.dataclass(frozen=True, slots=True)
class BackendPorts:
    http: int
    grpc: int
    public: int | None  # a separate public listener, only when the front splits it
    metrics: int | None = None  # a private -metricsPort, only when the front serves one (it scrapes this)


def _go_flags(cfg: VolumeConfig, skip: frozenset[str]) -> list[str]:
    """The operator's explicit Go flags in `-name=value` form, in flag-table order."""
    out = []
    for name in _SPECS:
        if name in GO_VOLUME_FLAG_NAMES and name in cfg.flags.explicit and name not in skip:
            out.append(f"-{name}={go_flag_text(_SPECS[name], cfg.flags[name])}")
    return out


def _global_flags(cfg: VolumeConfig, config_dir: str | None) -> list[str]:
    out = []
    if config_dir:
        out.append(f"-config_dir={config_dir}")
    for name in ("v", "logdir", "logtostderr", "alsologtostderr"):
        if name in cfg.flags.explicit:
            out.append(f"-{name}={go_flag_text(_SPECS[name], cfg.flags[name])}")
    return out


def security_config_dir(cfg: VolumeConfig) -> str | None:
    """A directory whose security.toml is the operator's -securityFile (Go only reads config dirs)."""
    if not cfg.security_file:
        return cfg.config_dir
    src = Path(cfg.security_file)
    if src.name == "security.toml":
        return str(src.parent.resolve())
    tmp = Path(tempfile.mkdtemp(prefix="weedpy-security-"))
    shutil.copyfile(src, tmp / "security.toml")
    return str(tmp)


def exec_argv(cfg: VolumeConfig, weed: str | os.PathLike[str], config_dir: str | None) -> list[str]:
    """`weed [globals] volume` with the operator's flags, for -mode=exec."""
    skip = frozenset({"options", "mserver"})
    argv = [str(weed), *_global_flags(cfg, config_dir), "volume", *_go_flags(cfg, skip)]
    argv.append(f"-master={','.join(cfg.masters)}")
    return argv


def backend_argv(
    cfg: VolumeConfig, weed: str | os.PathLike[str], ports: BackendPorts, master_arg: str, config_dir: str | None,
) -> list[str]:
    """The managed backend: private loopback ports, masters through the gateway's relay."""
    argv = [str(weed), *_global_flags(cfg, config_dir), "volume", *_go_flags(cfg, _GATEWAY_OWNED)]
    argv += [
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-port={ports.http}",
        f"-port.grpc={ports.grpc}",
        f"-port.public={ports.public or ports.http}",
        f"-master={master_arg}",
        "-preStopSeconds=0",
        # The gateway applies the endpoint rules itself (gateway/request_checks.py).
        "-volume.allowUntrustedRemoteEndpoints=true",
    ]
    if ports.metrics:  # the front's metrics port serves these families with the gateway's own
        argv += [f"-metricsPort={ports.metrics}", "-metricsIp=127.0.0.1"]
    return argv


def backend_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """Our environment minus the variables Go would read as volume flags (PORT, DIR, IP, ...)."""
    return environ_without_flags(VOLUME_FLAGS, environ)


# security.toml keys the backend must not see as the operator set them: the gateway terminates TLS
# on the front ports and enforces the whitelist itself.
_FRONT_ONLY = frozenset({
    "grpc.volume.cert", "grpc.volume.key", "grpc.volume.allowed_commonNames", "grpc.allowed_wildcard_domain",
    "https.volume.cert", "https.volume.key", "https.volume.ca",
})
_PATH_KEYS = frozenset({"grpc.ca", "https.client.cert", "https.client.key", "https.client.ca"})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string (\", \\, \uXXXX escapes)


def backend_security_toml(sec: SecurityConfig) -> str:
    """The managed backend's security.toml: the operator's resolved settings (file and WEED_
    variables), minus the server side of TLS and the whitelist, with the client identity the
    volume dials with as grpc.volume.client_cert/client_key; paths made absolute."""
    values: dict[str, Any] = {dotted: getattr(sec, field) for dotted, field, _ in VOLUME_SECURITY_KEYS}
    for key in _FRONT_ONLY:
        values[key] = ""
    cert, key = sec.grpc_volume_client_cert, sec.grpc_volume_client_key
    if not (cert and key):
        cert, key = sec.grpc_volume_cert, sec.grpc_volume_key
    values["grpc.volume.client_cert"], values["grpc.volume.client_key"] = cert, key
    for k in _PATH_KEYS | {"grpc.volume.client_cert", "grpc.volume.client_key"}:
        if values[k]:
            values[k] = os.path.abspath(values[k])
    tables: dict[str, list[str]] = {}
    for dotted, value in values.items():
        table, _, leaf = dotted.rpartition(".")
        tables.setdefault(table, []).append(f"{leaf} = {_toml_value(value)}")
    out = ["# written by weedpy for its managed Go backend; the operator's file is " + (str(sec.path) if sec.path else "none")]
    for table, lines in sorted(tables.items()):  # a table before its sub-tables
        out += ["", f"[{table}]", *lines]
    return "\n".join(out) + "\n"


def backend_config_dir(cfg: VolumeConfig, sec: SecurityConfig) -> Path:
    """A private directory (0700) for the backend's `-config_dir`: its security.toml (0600) and
    the operator's volume.toml when their -config_dir has one. The caller removes it at stop."""
    d = Path(tempfile.mkdtemp(prefix="weedpy-backend-"))
    target = d / "security.toml"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(backend_security_toml(sec))
    if cfg.config_dir and (Path(cfg.config_dir) / "volume.toml").is_file():
        shutil.copyfile(Path(cfg.config_dir) / "volume.toml", d / "volume.toml")
    return d


def managed_backend_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The managed backend's environment: `backend_environ` minus the WEED_ variables of the
    security keys (already resolved into its security.toml, which they would override)."""
    drop = {security_env_name(dotted) for dotted, _, _ in VOLUME_SECURITY_KEYS} | {security_env_name("guard.white_list")}
    return {k: v for k, v in backend_environ(environ).items() if k not in drop}
