"""TLS as Go's volume server reads it from security.toml: ssl contexts (`load_volume_tls`) and
the trio streams and listeners that use them (docs/security.md)."""

from ._config import GO_CIPHER_SUITES, PeerNames, ServerTls, TlsConfigError, VolumeTls, load_volume_tls
from ._trio import (
    HANDSHAKE_TIMEOUT,
    HTTP_TO_HTTPS_REPLY,
    TlsHandshakeError,
    TlsListener,
    TlsStream,
    open_tls_stream,
    serve_https,
)

__all__ = [
    "GO_CIPHER_SUITES",
    "HANDSHAKE_TIMEOUT",
    "HTTP_TO_HTTPS_REPLY",
    "PeerNames",
    "ServerTls",
    "TlsConfigError",
    "TlsHandshakeError",
    "TlsListener",
    "TlsStream",
    "VolumeTls",
    "load_volume_tls",
    "open_tls_stream",
    "serve_https",
]
