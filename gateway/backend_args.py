"""Translate a weedpy VolumeConfig into the Go `weed volume` command line (exec and managed backend)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from weedpy.config import GO_VOLUME_FLAG_NAMES, VOLUME_FLAGS, VolumeConfig, go_flag_text
from weedpy.flags import environ_without_flags

__all__ = ["BackendPorts", "exec_argv", "backend_argv", "backend_environ", "security_config_dir"]

_SPECS = {s.name: s for s in VOLUME_FLAGS}

# Flags the gateway decides for the managed backend instead of passing the operator's value.
_GATEWAY_OWNED = frozenset({
    "ip", "ip.bind", "port", "port.grpc", "port.public", "master", "mserver", "preStopSeconds",
    "whiteList", "id", "publicUrl", "options", "metricsIp", "volume.allowUntrustedRemoteEndpoints",
})


@dataclasses.dataclass(frozen=True, slots=True)
class BackendPorts:
    http: int
    grpc: int
    public: int | None  # a separate public listener, only when the front splits it


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
    if cfg["metricsPort"]:
        argv.append(f"-metricsIp={cfg['metricsIp'] or cfg.bind_ip}")
    return argv


def backend_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """Our environment minus the variables Go would read as volume flags (PORT, DIR, IP, ...)."""
    return environ_without_flags(VOLUME_FLAGS, environ)
