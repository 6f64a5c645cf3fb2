"""security.toml: where Go finds it, and the keys a volume server reads from it.

Go reads the file with viper: the first `security.toml` in `-config_dir`, `.`, `~/.seaweedfs`,
`/usr/local/etc/seaweedfs`, `/etc/seaweedfs`; keys are case-insensitive (`allowed_commonNames`
and `allowed_commonnames` are one key); a non-empty environment variable `WEED_` + the key
upper-cased with dots as underscores (`WEED_GRPC_VOLUME_CERT`) wins over the file. Paths in the
file are used as written (relative ones against the working directory), as Go does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SecurityConfig", "find_security_file", "load_security", "security_env_name", "VOLUME_SECURITY_KEYS"]

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
    # what the volume server presents when it dials (Go: falls back to cert/key unless both are set)
    grpc_volume_client_cert: str = ""
    grpc_volume_client_key: str = ""
    grpc_volume_allowed_common_names: str = ""  # comma-separated; "" with no wildcard: any name
    grpc_allowed_wildcard_domain: str = ""
    tls_min_version: str = ""  # "TLS 1.2", "TLS 1.3", ... ("" = the library's default)
    tls_max_version: str = ""
    tls_cipher_suites: str = ""  # Go's names, comma-separated
    https_client_enabled: bool = False
    https_client_cert: str = ""
    https_client_key: str = ""
    https_client_ca: str = ""
    https_client_insecure_skip_verify: bool = False

    @property
    def grpc_tls(self) -> bool:
        """The gRPC server speaks TLS (Go: when grpc.volume.cert and .key are both set)."""
        return bool(self.grpc_volume_cert and self.grpc_volume_key)

    @property
    def https(self) -> bool:
        """The admin port speaks HTTPS (Go: when https.volume.cert and .key are both set)."""
        return bool(self.https_volume_cert and self.https_volume_key)


# (dotted key, field, default) for every key the volume server reads; the default's type is the
# key's type. Also what the proxy writes into its Go backend's security.toml (gateway/backend_args).
VOLUME_SECURITY_KEYS: tuple[tuple[str, str, Any], ...] = (
    ("jwt.signing.key", "jwt_signing_key", ""),
    ("jwt.signing.expires_after_seconds", "jwt_expires_after_seconds", 10),
    ("jwt.signing.read.key", "jwt_read_key", ""),
    ("jwt.signing.read.expires_after_seconds", "jwt_read_expires_after_seconds", 60),
    ("access.ui", "access_ui", False),
    ("https.volume.cert", "https_volume_cert", ""),
    ("https.volume.key", "https_volume_key", ""),
    ("https.volume.ca", "https_volume_ca", ""),
    ("grpc.volume.cert", "grpc_volume_cert", ""),
    ("grpc.volume.key", "grpc_volume_key", ""),
    ("grpc.ca", "grpc_ca", ""),
    ("grpc.volume.client_cert", "grpc_volume_client_cert", ""),
    ("grpc.volume.client_key", "grpc_volume_client_key", ""),
    ("grpc.volume.allowed_commonNames", "grpc_volume_allowed_common_names", ""),
    ("grpc.allowed_wildcard_domain", "grpc_allowed_wildcard_domain", ""),
    ("tls.min_version", "tls_min_version", ""),
    ("tls.max_version", "tls_max_version", ""),
    ("tls.cipher_suites", "tls_cipher_suites", ""),
    ("https.client.enabled", "https_client_enabled", False),
    ("https.client.cert", "https_client_cert", ""),
    ("https.client.key", "https_client_key", ""),
    ("https.client.ca", "https_client_ca", ""),
    ("https.client.insecure_skip_verify", "https_client_insecure_skip_verify", False),
)


def security_env_name(dotted: str) -> str:
    """The environment variable viper reads for a key: `grpc.volume.cert` -> `WEED_GRPC_VOLUME_CERT`."""
    return "WEED_" + dotted.upper().replace(".", "_")


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


def _bool(value: Any) -> bool:
    """Go's cast.ToBool for strings (strconv.ParseBool); anything unparsable is false."""
    if isinstance(value, bool):
        return value
    return str(value).strip() in ("1", "t", "T", "TRUE", "true", "True")


def _get(tree: Mapping[str, Any], dotted: str, environ: Mapping[str, str], default: Any) -> Any:
    raw = environ.get(security_env_name(dotted), "")
    if raw:  # viper ignores an empty variable
        value: Any = raw
    else:
        node: Any = tree
        for part in dotted.lower().split("."):
            if not isinstance(node, Mapping):
                return default
            match = [v for k, v in node.items() if k.lower() == part]
            if not match:
                return default
            node = match[-1]
        if isinstance(node, Mapping):
            return default
        value = node
    if isinstance(default, bool):
        return _bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, str) and isinstance(value, list):
        return ",".join(str(x) for x in value)
    return value if not isinstance(default, str) else str(value)


def load_security(path: Path | None, environ: Mapping[str, str] | None = None) -> SecurityConfig:
    """Read the keys the volume server uses; a missing file means no security (as in Go)."""
    env = os.environ if environ is None else environ
    tree: Mapping[str, Any] = {}
    if path is not None:
        text = path.read_text()
        import tomllib  # only when there is a file to read (start-up time)

        tree = tomllib.loads(text) if text.strip() else {}
    values = {field: _get(tree, dotted, env, default) for dotted, field, default in VOLUME_SECURITY_KEYS}
    wl = _get(tree, "guard.white_list", env, "")
    return SecurityConfig(
        path=path,
        guard_white_list=tuple(wl.split(",")) if wl else (),  # as Go: split, nothing trimmed
        **values,
    )
