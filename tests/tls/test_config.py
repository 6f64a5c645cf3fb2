"""weedpy.tls without Go: what security.toml turns into (contexts, refusals naming the file), the
gRPC name check and client identity over real loopback sockets, and the proxy backend's own
security.toml."""

from __future__ import annotations

import functools
import ssl
import tomllib
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization

from gateway.backend_args import backend_security_toml, managed_backend_environ
from proto import volume_server_pb2 as vs
from proto.services import RPCS
from tests.tls.support import VS, Pki, grpc_client_context
from weedpy.grpc import Channel, ChannelOptions, GrpcError, Router, Status, serve_listeners
from weedpy.security import SecurityConfig, load_security
from weedpy.tls import TlsConfigError, TlsListener, load_volume_tls, open_tls_stream


def _sec(pki: Pki, **kw: object) -> SecurityConfig:
    base: dict[str, object] = dict(grpc_volume_cert=str(pki.cert("volume")), grpc_volume_key=str(pki.key("volume")),
                                   grpc_ca=str(pki.ca))
    base.update(kw)
    return SecurityConfig(**base)  # type: ignore[arg-type]


def test_no_tls_settings_mean_no_contexts() -> None:
    tls = load_volume_tls(SecurityConfig())
    assert (tls.grpc_server, tls.grpc_client, tls.https_server, tls.https_client, tls.loopback_server) == (None,) * 5
    assert tls.http_scheme == "http"


def test_grpc_mtls_contexts(pki: Pki) -> None:
    tls = load_volume_tls(_sec(pki, https_client_enabled=True, https_client_ca=str(pki.ca)))
    assert tls.grpc_server is not None and tls.grpc_server.context.verify_mode == ssl.CERT_REQUIRED
    assert tls.grpc_client is not None and not tls.grpc_client.check_hostname  # Go checks the chain, not the name
    assert tls.loopback_server is not None and tls.https_server is None
    assert tls.http_scheme == "https"


@pytest.mark.parametrize("change, message", [
    ({"grpc_volume_cert": "/nonexistent/volume.crt"}, "grpc.volume.cert: cannot read /nonexistent/volume.crt: No such file"),
    ({"grpc_ca": "KEY"}, "grpc.ca: KEY holds no PEM certificate"),
    ({"grpc_volume_key": "OTHER_KEY"}, "grpc.volume.key: OTHER_KEY is not the private key of CERT"),
    ({"grpc_ca": ""}, "grpc.volume.cert is set but grpc.ca is not"),
    ({"grpc_volume_key": ""}, "grpc.volume.cert is set but grpc.volume.key is not"),
    ({"https_volume_ca": "CA"}, "https.volume.ca is set but https.volume.cert and https.volume.key are not"),
    ({"tls_min_version": "TLS 9"}, "tls.min_version: invalid tls version 'TLS 9'"),
    ({"tls_cipher_suites": "TLS_NOPE"}, "tls.cipher_suites: invalid tls cipher suite name TLS_NOPE"),
    ({"https_client_enabled": True, "https_client_cert": "CERT"}, "https.client: both cert and key must be set"),
])
def test_unusable_settings_refuse_with_one_line_naming_the_file(pki: Pki, change: dict, message: str) -> None:
    names = {"KEY": str(pki.key("volume")), "OTHER_KEY": str(pki.key("other")), "CA": str(pki.ca),
             "CERT": str(pki.cert("volume"))}
    change = {k: names.get(v, v) if isinstance(v, str) else v for k, v in change.items()}
    for placeholder in sorted(names, key=len, reverse=True):  # OTHER_KEY before KEY
        message = message.replace(placeholder, names[placeholder])
    with pytest.raises(TlsConfigError) as err:
        load_volume_tls(_sec(pki, **change))
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_an_encrypted_key_is_refused_not_prompted_for(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.key("volume").read_bytes(), None)
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(TlsConfigError, match=f"grpc.volume.key: {encrypted} is encrypted"):
        load_volume_tls(_sec(pki, grpc_volume_key=str(encrypted)))


def test_tls_options_restrict_versions_and_ciphers(pki: Pki) -> None:
    tls = load_volume_tls(_sec(pki, tls_min_version="TLS 1.2", tls_max_version="TLS 1.2",
                               tls_cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"))
    assert tls.grpc_server is not None
    ctx = tls.grpc_server.context
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    assert [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"] == ["ECDHE-ECDSA-AES128-GCM-SHA256"]


def test_security_toml_keys_are_case_insensitive_and_environment_wins(tmp_path: Path) -> None:
    f = tmp_path / "security.toml"
    f.write_text('[grpc.volume]\nallowed_commonnames = "a,b"\ncert = "from-file"\n[HTTPS.client]\nEnabled = true\n')
    sec = load_security(f, environ={"WEED_GRPC_VOLUME_CERT": "from-env", "WEED_GRPC_VOLUME_KEY": ""})
    assert sec.grpc_volume_allowed_common_names == "a,b"
    assert sec.grpc_volume_cert == "from-env" and sec.grpc_volume_key == ""  # an empty variable is ignored
    assert sec.https_client_enabled is True


async def _serve(pki: Pki, tls_sec: SecurityConfig, nursery: trio.Nursery) -> int:
    tls = load_volume_tls(tls_sec)
    assert tls.grpc_server is not None
    router = Router()

    async def ping(req: vs.PingRequest, ctx: object) -> vs.PingResponse:
        return vs.PingResponse(remote_time_ns=1)

    router.add(RPCS[VS + "Ping"], ping)
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await nursery.start(functools.partial(serve_listeners, [TlsListener(listener, tls.grpc_server)], router))
    return port


async def _ping(port: int, ctx: ssl.SSLContext) -> Status:
    async with Channel("127.0.0.1", port, options=ChannelOptions(tls=ctx, connect_timeout=5)) as ch:
        try:
            await ch.unary_unary(VS + "Ping", vs.PingRequest(), vs.PingResponse, timeout=5)
        except GrpcError as exc:
            return exc.status
    return Status.OK


async def test_allowed_common_names_refuse_other_clients(pki: Pki) -> None:
    async with trio.open_nursery() as nursery:
        port = await _serve(pki, _sec(pki, grpc_volume_allowed_common_names="master,client"), nursery)
        assert await _ping(port, grpc_client_context(pki, "client")) == Status.OK
        assert await _ping(port, grpc_client_context(pki, "other")) == Status.UNAVAILABLE
        assert await _ping(port, grpc_client_context(pki, None)) == Status.UNAVAILABLE
        nursery.cancel_scope.cancel()


async def test_wildcard_domain_accepts_names_by_suffix(pki: Pki) -> None:
    async with trio.open_nursery() as nursery:
        port = await _serve(pki, _sec(pki, grpc_allowed_wildcard_domain="ther"), nursery)  # "other" ends with it
        assert await _ping(port, grpc_client_context(pki, "other")) == Status.OK
        assert await _ping(port, grpc_client_context(pki, "client")) == Status.UNAVAILABLE
        nursery.cancel_scope.cancel()


async def test_the_client_presents_client_cert_when_both_are_set(pki: Pki) -> None:
    """Go prefers grpc.volume.client_cert/client_key for dialing and falls back to cert/key."""
    seen: list[str] = []
    server_tls = load_volume_tls(_sec(pki))
    assert server_tls.grpc_server is not None
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    tls_listener = TlsListener(listener, server_tls.grpc_server)

    async def accept_one() -> None:
        stream = await tls_listener.accept()
        await stream.handshake()
        seen.append(stream.peer_common_name())
        await stream.aclose()

    for sec, name in [(_sec(pki, grpc_volume_client_cert=str(pki.cert("other")),
                            grpc_volume_client_key=str(pki.key("other"))), "other"),
                      (_sec(pki, grpc_volume_client_cert=str(pki.cert("other"))), "volume")]:
        client = load_volume_tls(sec).grpc_client
        assert client is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_one)
            stream = await open_tls_stream("127.0.0.1", port, client)
            await stream.aclose()
        assert seen[-1] == name
    await tls_listener.aclose()


def test_the_proxy_backend_security_toml(pki: Pki, tmp_path: Path) -> None:
    sec = _sec(pki, grpc_volume_allowed_common_names="x", https_volume_cert=str(pki.cert("volume")),
               https_volume_key=str(pki.key("volume")), https_client_enabled=True, https_client_ca="rel/ca.crt",
               jwt_signing_key="k\"ey", guard_white_list=("10.0.0.1",))
    doc = tomllib.loads(backend_security_toml(sec))
    vol = doc["grpc"]["volume"]
    assert vol["cert"] == vol["key"] == vol["allowed_commonNames"] == ""  # the front terminates TLS
    assert (vol["client_cert"], vol["client_key"]) == (str(pki.cert("volume")), str(pki.key("volume")))
    assert doc["https"]["volume"] == {"cert": "", "key": "", "ca": ""}
    assert doc["https"]["client"]["enabled"] is True and Path(doc["https"]["client"]["ca"]).is_absolute()
    assert doc["jwt"]["signing"]["key"] == 'k"ey' and "guard" not in doc
    env = managed_backend_environ({"WEED_GRPC_VOLUME_CERT": "x", "WEED_JWT_SIGNING_KEY": "y", "HOME": "/h",
                                   "WEED_SOMETHING_ELSE": "z", "PORT": "1"})
    assert env == {"HOME": "/h", "WEED_SOMETHING_ELSE": "z"}
