"""The ssl contexts Go's volume server builds from security.toml, built the same way with `ssl`.

| Go (weed/security, weed/command/volume.go)      | here                  | when                                    |
|---|---|---|
| LoadServerTLS(viper, "grpc.volume")              | `VolumeTls.grpc_server`  | grpc.volume.cert and .key set           |
| LoadClientTLS(viper, "grpc.volume")              | `VolumeTls.grpc_client`  | a cert/key pair and grpc.ca set         |
| startClusterHttpService (https.volume.*)         | `VolumeTls.https_server` | https.volume.cert and .key set          |
| util_http client (https.client.*)                | `VolumeTls.https_client` | https.client.enabled                    |

gRPC is mutual TLS both ways: the server requires a client certificate signed by grpc.ca, the
client verifies the server's chain against grpc.ca without checking its host name (the
certificate files may be shared between hosts), and `allowed_commonNames` /
`allowed_wildcard_domain` restrict the client names a server accepts. The client presents
grpc.volume.client_cert/client_key when both are set, else cert/key.

Where Go falls back to plaintext (an unreadable file, a missing grpc.ca, a bad tls.* value: a
warning, then a server without TLS) weedpy refuses to start with `TlsConfigError`, one line that
names the key and the file. HTTPS is served as HTTP/1.1 (Go also offers h2 through ALPN).
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

from weedpy.security import SecurityConfig

__all__ = ["TlsConfigError", "PeerNames", "ServerTls", "VolumeTls", "load_volume_tls", "GO_CIPHER_SUITES"]


class TlsConfigError(Exception):
    """A TLS setting that cannot be used; the message is one line naming the key and the file."""


# Go's tls.CipherSuites() names (what TlsCipherSuiteByNames accepts) -> OpenSSL's; None: a TLS 1.3
# suite, which neither Go nor OpenSSL's cipher string lets a configuration restrict.
GO_CIPHER_SUITES: dict[str, str | None] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}

_VERSIONS = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclasses.dataclass(frozen=True, slots=True)
class PeerNames:
    """Go's Authenticator: the client certificate names a gRPC server accepts."""

    names: frozenset[str]
    wildcard_domain: str = ""

    def allows(self, common_name: str) -> bool:
        if self.wildcard_domain and common_name.endswith(self.wildcard_domain):
            return True
        return common_name in self.names


@dataclasses.dataclass(frozen=True, slots=True)
class ServerTls:
    context: ssl.SSLContext
    peer_names: PeerNames | None = None  # None: any certificate the CA signed


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeTls:
    """What a volume server serves and dials with; None where security.toml asks for no TLS."""

    grpc_server: ServerTls | None = None
    grpc_client: ssl.SSLContext | None = None
    https_server: ServerTls | None = None  # the admin port (and the public one when it is the same)
    https_client: ssl.SSLContext | None = None  # every HTTP request the server makes is HTTPS
    # What a loopback gRPC endpoint presents to a Go backend that dials it as it dials any peer
    # (the proxy's heartbeat relay): the volume's server identity, else its client one; CA-checked.
    loopback_server: ServerTls | None = None

    @property
    def http_scheme(self) -> str:
        """The scheme of the server's own HTTP requests (Go: https.client.enabled)."""
        return "https" if self.https_client is not None else "http"


def load_volume_tls(sec: SecurityConfig) -> VolumeTls:
    """Every context security.toml asks for, its files read and checked now (TlsConfigError)."""
    grpc_client = _grpc_client(sec)
    return VolumeTls(
        grpc_server=_grpc_server(sec),
        grpc_client=grpc_client,
        https_server=_https_server(sec),
        https_client=_https_client(sec),
        loopback_server=_loopback_server(sec) if grpc_client is not None else None,
    )


def _grpc_server(sec: SecurityConfig) -> ServerTls | None:
    cert, key = sec.grpc_volume_cert, sec.grpc_volume_key
    if not cert and not key:
        return None
    _pair_set("grpc.volume", cert, key)
    if not sec.grpc_ca:
        raise TlsConfigError("grpc.volume.cert is set but grpc.ca is not: gRPC mTLS needs the CA that signs the clients")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(ctx, "grpc.volume.cert", cert, "grpc.volume.key", key)
    _load_ca(ctx, "grpc.ca", sec.grpc_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    _apply_tls_options(ctx, sec)
    names = None
    if sec.grpc_volume_allowed_common_names or sec.grpc_allowed_wildcard_domain:
        # as Go: "".split(",") keeps one empty name
        names = PeerNames(frozenset(sec.grpc_volume_allowed_common_names.split(",")), sec.grpc_allowed_wildcard_domain)
    return ServerTls(ctx, names)


def _grpc_client(sec: SecurityConfig) -> ssl.SSLContext | None:
    cert_key, key_key = "grpc.volume.client_cert", "grpc.volume.client_key"
    cert, key = sec.grpc_volume_client_cert, sec.grpc_volume_client_key
    if not (cert and key):
        cert_key, key_key = "grpc.volume.cert", "grpc.volume.key"
        cert, key = sec.grpc_volume_cert, sec.grpc_volume_key
    if not (cert and key and sec.grpc_ca):
        return None  # Go dials without TLS
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the chain is verified, the host name is not (as Go's CertVerification)
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_ca(ctx, "grpc.ca", sec.grpc_ca)
    _load_pair(ctx, cert_key, cert, key_key, key)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def _loopback_server(sec: SecurityConfig) -> ServerTls:
    if sec.grpc_volume_cert and sec.grpc_volume_key:
        cert_key, key_key, cert, key = "grpc.volume.cert", "grpc.volume.key", sec.grpc_volume_cert, sec.grpc_volume_key
    else:
        cert_key, key_key = "grpc.volume.client_cert", "grpc.volume.client_key"
        cert, key = sec.grpc_volume_client_cert, sec.grpc_volume_client_key
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(ctx, cert_key, cert, key_key, key)
    _load_ca(ctx, "grpc.ca", sec.grpc_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    return ServerTls(ctx)


def _https_server(sec: SecurityConfig) -> ServerTls | None:
    cert, key, ca = sec.https_volume_cert, sec.https_volume_key, sec.https_volume_ca
    if not cert and not key:
        if ca:
            raise TlsConfigError("https.volume.ca is set but https.volume.cert and https.volume.key are not")
        return None
    _pair_set("https.volume", cert, key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(ctx, "https.volume.cert", cert, "https.volume.key", key)
    if ca:  # Go: a client certificate signed by this CA is required, and the tls.* options apply
        _load_ca(ctx, "https.volume.ca", ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        _apply_tls_options(ctx, sec)
    ctx.set_alpn_protocols(["http/1.1"])
    return ServerTls(ctx)


def _https_client(sec: SecurityConfig) -> ssl.SSLContext | None:
    if not sec.https_client_enabled:
        return None
    cert, key = sec.https_client_cert, sec.https_client_key
    if bool(cert) != bool(key):
        raise TlsConfigError(f"https.client: both cert and key must be set (got cert={cert!r} key={key!r})")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if sec.https_client_ca:
        _load_ca(ctx, "https.client.ca", sec.https_client_ca)
    else:
        ctx.load_default_certs()
    if cert:
        _load_pair(ctx, "https.client.cert", cert, "https.client.key", key)
    if sec.https_client_insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _pair_set(component: str, cert: str, key: str) -> None:
    if not cert:
        raise TlsConfigError(f"{component}.key is set but {component}.cert is not")
    if not key:
        raise TlsConfigError(f"{component}.cert is set but {component}.key is not")


def _read(key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None


def _check_certificates(key: str, path: str) -> None:
    text = _read(key, path).decode("ascii", "replace")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise TlsConfigError(f"{key}: {path} holds no PEM certificate") from None


def _load_ca(ctx: ssl.SSLContext, key: str, path: str) -> None:
    _check_certificates(key, path)
    ctx.load_verify_locations(cafile=path)


def _encrypted_key() -> bytes:
    raise TlsConfigError("encrypted")


def _load_pair(ctx: ssl.SSLContext, cert_key: str, cert: str, key_key: str, key: str) -> None:
    _check_certificates(cert_key, cert)
    _read(key_key, key)
    try:
        ctx.load_cert_chain(cert, key, password=_encrypted_key)
    except TlsConfigError:
        raise TlsConfigError(f"{key_key}: {key} is encrypted (Go reads only unencrypted keys)") from None
    except ssl.SSLError as exc:
        why = exc.reason or "no PEM private key"
        raise TlsConfigError(f"{key_key}: {key} is not the private key of {cert} ({why})") from None


def _version(key: str, name: str) -> ssl.TLSVersion | None:
    if not name:
        return None
    try:
        return _VERSIONS[name]
    except KeyError:
        raise TlsConfigError(f"{key}: invalid tls version {name!r} (one of {', '.join(_VERSIONS)})") from None


def _apply_tls_options(ctx: ssl.SSLContext, sec: SecurityConfig) -> None:
    """Go's tls.min_version, tls.max_version and tls.cipher_suites."""
    low = _version("tls.min_version", sec.tls_min_version)
    high = _version("tls.max_version", sec.tls_max_version)
    if low is not None:
        ctx.minimum_version = low
    if high is not None:
        ctx.maximum_version = high
    names = [n.strip() for n in sec.tls_cipher_suites.strip().split(",")] if sec.tls_cipher_suites.strip() else []
    if not names:
        return
    openssl: list[str] = []
    for name in names:
        if name not in GO_CIPHER_SUITES:
            raise TlsConfigError(f"tls.cipher_suites: invalid tls cipher suite name {name}")
        mapped = GO_CIPHER_SUITES[name]
        if mapped is not None:
            openssl.append(mapped)
    if not openssl:  # only TLS 1.3 suites named: nothing below TLS 1.3 can be negotiated
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return
    try:
        ctx.set_ciphers(":".join(openssl))
    except ssl.SSLError:
        raise TlsConfigError(f"tls.cipher_suites: this OpenSSL offers none of {', '.join(names)}") from None
