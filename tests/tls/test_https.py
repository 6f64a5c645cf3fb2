"""HTTPS on the admin port as Go serves it from security.toml's [https.volume], and weedpy's own
HTTP requests over [https.client]: reads and writes with and without client certificates, Go's
answer to plaintext on a TLS port, the public port left plain, and replication between two
weedpy servers (native and proxy) over TLS."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.support.procs import MasterProc, free_port, wait_for_volume_server
from tests.tls.support import Pki, https_client, security_toml, start_weedpy
from weedpy.tls import HTTP_TO_HTTPS_REPLY

pytestmark = pytest.mark.slow


def _assign(master: MasterProc, dc: str, **params: str) -> dict:
    """An assignment from the master, in a collection of the test's own (its data center's name)
    unless one is given. Go 4.48's master can register a volume it grew for the previous test's
    server after that server stopped (the growth races the removal); the volume then stays in
    its layout with a location outside every data center, and each later assign in that layout
    with a `dataCenter` panics in PickForWrite (volume_layout.go:653) and drops the connection.
    A collection per test keeps each test in a layout of its own."""
    a = httpx.get(f"{master.url}/dir/assign", params={"dataCenter": dc, "collection": dc, **params}, timeout=30).json()
    assert "fid" in a, a
    return a


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out


def test_https_requires_client_certificates_when_a_ca_is_set(tmp_path: Path, pki: Pki, tls_master: MasterProc) -> None:
    sec = tmp_path / "security.toml"
    sec.write_text(security_toml(pki, https=True))
    server = start_weedpy(tmp_path, tls_master, pki, mode="native", security_file=sec, name="https-ca",
                          data_center="dc-https-ca", https=True)
    node = f"127.0.0.1:{server.port}"
    try:
        wait_for_volume_server(tls_master, node)
        fid = _assign(tls_master, "dc-https-ca")["fid"]
        with https_client(pki) as client:
            up = client.post(f"https://{node}/{fid}", files={"file": ("a.txt", b"secret")})
            assert up.status_code == 201, up.text
            assert client.get(f"https://{node}/{fid}").content == b"secret"
        with https_client(pki, name=None) as anonymous, pytest.raises(httpx.HTTPError):
            anonymous.get(f"https://{node}/{fid}")
        with https_client(pki, name="rogue") as rogue, pytest.raises(httpx.HTTPError):
            rogue.get(f"https://{node}/{fid}")
        # plaintext on the TLS port: Go's net/http answer, byte for byte
        assert _raw(server.port, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n") == HTTP_TO_HTTPS_REPLY
    finally:
        server.stop()


def test_https_without_a_client_ca_and_a_plain_public_port(tmp_path: Path, pki: Pki, tls_master: MasterProc) -> None:
    sec = tmp_path / "security.toml"
    sec.write_text(security_toml(pki, https=True, https_client_ca=False))
    public_port = free_port()
    server = start_weedpy(tmp_path, tls_master, pki, mode="native", security_file=sec, name="https-noca",
                          data_center="dc-https-noca", https=True, extra=[f"-port.public={public_port}"])
    node = f"127.0.0.1:{server.port}"
    try:
        wait_for_volume_server(tls_master, node)
        fid = _assign(tls_master, "dc-https-noca")["fid"]
        with https_client(pki, name=None) as anonymous:  # no client certificate needed without https.volume.ca
            assert anonymous.post(f"https://{node}/{fid}", files={"file": ("a.txt", b"open")}).status_code == 201
            assert anonymous.get(f"https://{node}/{fid}").content == b"open"
        # Go serves the separate public port without TLS
        assert httpx.get(f"http://127.0.0.1:{public_port}/{fid}", timeout=10).content == b"open"
    finally:
        server.stop()


def test_replication_between_weedpy_servers_over_tls(tmp_path: Path, pki: Pki, tls_master: MasterProc) -> None:
    sec = tmp_path / "security.toml"
    sec.write_text(security_toml(pki, https=True))
    dc = "dc-replication"
    servers = {}
    try:
        for mode in ("native", "proxy"):  # the proxy's HTTP ports are served by two processes
            servers[mode] = start_weedpy(tmp_path, tls_master, pki, mode=mode, security_file=sec, name=f"repl-{mode}",
                                         data_center=dc, https=True, extra=["-workers=2"] if mode == "proxy" else [])
            wait_for_volume_server(tls_master, f"127.0.0.1:{servers[mode].port}")
        nodes = [f"127.0.0.1:{s.port}" for s in servers.values()]
        with https_client(pki) as client:
            for i, writer in enumerate(nodes):  # native replicates to the proxy, the proxy's Go to native
                fid = _assign(tls_master, dc, replication="001", collection="repl")["fid"]
                body = f"replicated from {writer}".encode()
                up = client.post(f"https://{writer}/{fid}", files={"file": ("r.txt", body)})
                assert up.status_code == 201, up.text
                for reader in nodes:
                    got = client.get(f"https://{reader}/{fid}")
                    assert got.status_code == 200 and got.content == body, (writer, reader, got.status_code)
                assert client.delete(f"https://{writer}/{fid}").status_code == 202
                for reader in nodes:
                    assert client.get(f"https://{reader}/{fid}").status_code == 404, (i, reader)
        # whichever process accepts the connection, the port speaks TLS only
        for _ in range(8):
            assert _raw(servers["proxy"].port, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n") == HTTP_TO_HTTPS_REPLY
    finally:
        for s in servers.values():
            s.stop()
