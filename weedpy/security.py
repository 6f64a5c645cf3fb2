"""security.toml: where Go finds it, and the keys a volume server reads from it."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SecurityConfig", "find_security_file", "load_security"]

_SEARCH_DIRS = (".", "~/.seaweedfs", "/usr/local/etc/seaweedfs", "/etc/seaweedfs")


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityConfig:
    path: Path | None = None
    jwt_signing_key: str = ""
    jwt_expires_after_seconds: int = 10
    jwt_read_key: str = ""
    jwt_read_expires_after_seconds: int = 60
    guard_white_list: tuple[str, ...] = ()
    access_ui: bool = False
    https_volume_cert: str = ""
    https_volume_key: str = ""
    https_volume_ca: str = ""
    grpc_volume_cert: str = ""
    grpc_volume_key: str = ""
    grpc_ca: str = ""

    @property
    def grpc_tls(self) -> bool:
        return bool(self.grpc_volume_cert or self.grpc_ca)

    @property
    def https(self) -> bool:
        return bool(self.https_volume_cert and self.https_volume_key)


def find_security_file(security_file: str | None, config_dir: str | None) -> Path | None:
    """An explicit file wins; else `security.toml` in config_dir, then Go's search path."""
    if security_file:
        return Path(security_file)
    dirs = ([config_dir] if config_dir else []) + list(_SEARCH_DIRS)
    for d in dirs:
        candidate = Path(os.path.expanduser(d)) / "security.toml"
        if candidate.is_file():
            return candidate
    return None


def _get(tree: Mapping[str, Any], dotted: str, environ: Mapping[str, str], default: Any) -> Any:
    env = "WEED_" + dotted.upper().replace(".", "_")
    if env in environ:
        raw = environ[env]
        if isinstance(default, bool):
            return raw.lower() in ("1", "t", "true")
        if isinstance(default, int):
            return int(raw)
        return raw
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    if isinstance(node, Mapping):
        return default
    return node


def load_security(path: Path | None, environ: Mapping[str, str] | None = None) -> SecurityConfig:
    """Read the keys the volume server uses; a missing file means no security (as in Go)."""
    env = os.environ if environ is None else environ
    tree: Mapping[str, Any] = {}
    if path is not None:
        text = path.read_text()
        tree = tomllib.loads(text) if text.strip() else {}
    wl = _get(tree, "guard.white_list", env, "")
    if isinstance(wl, str):
        wl_items = tuple(x.strip() for x in wl.split(",") if x.strip())
    else:
        wl_items = tuple(str(x).strip() for x in wl if str(x).strip())
    return SecurityConfig(
        path=path,
        jwt_signing_key=str(_get(tree, "jwt.signing.key", env, "")),
        jwt_expires_after_seconds=int(_get(tree, "jwt.signing.expires_after_seconds", env, 10)),
        jwt_read_key=str(_get(tree, "jwt.signing.read.key", env, "")),
        jwt_read_expires_after_seconds=int(_get(tree, "jwt.signing.read.expires_after_seconds", env, 60)),
        guard_white_list=wl_items,
        access_ui=bool(_get(tree, "access.ui", env, False)),
        https_volume_cert=str(_get(tree, "https.volume.cert", env, "")),
        https_volume_key=str(_get(tree, "https.volume.key", env, "")),
        https_volume_ca=str(_get(tree, "https.volume.ca", env, "")),
        grpc_volume_cert=str(_get(tree, "grpc.volume.cert", env, "")),
        grpc_volume_key=str(_get(tree, "grpc.volume.key", env, "")),
        grpc_ca=str(_get(tree, "grpc.ca", env, "")),
    )
