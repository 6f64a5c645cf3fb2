"""TLS test harness: a test CA (trustme), security.toml files, a Go master that requires gRPC mTLS,
`weed shell` over mTLS, weedpy servers in each mode, and synchronous mTLS gRPC / HTTPS clients."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import trio
import trustme

from tests.support.procs import (
    MasterProc, VolumeProc, clean_env, free_port, free_port_pair, on_fresh_ports, start_master, start_proc,
    wait_tcp,
)
from tests.support.weedpy_proc import weedpy_volume_argv
from tests.support.waiting import wait_until
from weedpy.grpc import Channel, ChannelOptions, GrpcError
from weedpy.weedbin import find_weed_binary

__all__ = [
    "Pki", "make_pki", "security_toml", "start_tls_master", "shell", "start_weedpy", "grpc_call", "Outcome",
    "VS", "https_client", "grpc_client_context", "master_dir",
]

VS = "/volume_server_pb.VolumeServer/"


@dataclasses.dataclass(frozen=True)
class Pki:
    """Files of one test CA: `ca.crt`, and NAME.crt / NAME.key for each issued name; plus a
    second, unrelated CA (`rogue-ca.crt`) with a `rogue` certificate."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


NAMES = ("master", "volume", "client", "other")


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.crt"))
    for name in NAMES:  # every certificate carries 127.0.0.1 and localhost, and both key usages
        leaf = ca.issue_cert("127.0.0.1", "localhost", common_name=name)
        leaf.cert_chain_pems[0].write_to_path(str(d / f"{name}.crt"))
        leaf.private_key_pem.write_to_path(str(d / f"{name}.key"))
    rogue_ca = trustme.CA()
    rogue_ca.cert_pem.write_to_path(str(d / "rogue-ca.crt"))
    rogue = rogue_ca.issue_cert("127.0.0.1", common_name="client")
    rogue.cert_chain_pems[0].write_to_path(str(d / "rogue.crt"))
    rogue.private_key_pem.write_to_path(str(d / "rogue.key"))
    return Pki(d)


def security_toml(
    pki: Pki, *, https: bool = False, https_client_ca: bool = True, allowed_common_names: str | None = None,
) -> str:
    """One file for every party, as operators deploy it: the master, the volume servers and the
    shell each read their own [grpc.*] section; `https` adds HTTPS on the volume admin ports
    (client certificates required when `https_client_ca`) and HTTPS for the servers' own requests."""
    lines = [
        "[grpc]", f'ca = "{pki.ca}"',
        "[grpc.master]", f'cert = "{pki.cert("master")}"', f'key = "{pki.key("master")}"',
        "[grpc.volume]", f'cert = "{pki.cert("volume")}"', f'key = "{pki.key("volume")}"',
    ]
    if allowed_common_names is not None:
        lines.append(f'allowed_commonNames = "{allowed_common_names}"')
    lines += ["[grpc.client]", f'cert = "{pki.cert("client")}"', f'key = "{pki.key("client")}"']
    if https:
        lines += ["[https.volume]", f'cert = "{pki.cert("volume")}"', f'key = "{pki.key("volume")}"']
        if https_client_ca:
            lines.append(f'ca = "{pki.ca}"')
        lines += ["[https.client]", "enabled = true", f'cert = "{pki.cert("client")}"',
                  f'key = "{pki.key("client")}"', f'ca = "{pki.ca}"']
    return "\n".join(lines) + "\n"


def start_tls_master(workdir: Path, pki: Pki) -> MasterProc:
    """A Go master that serves gRPC with mTLS only: it reads security.toml from its working directory."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "security.toml").write_text(security_toml(pki))
    return start_master(workdir)


def master_dir(master: MasterProc) -> Path:
    """The master's working directory: its security.toml serves `weed shell` too."""
    return master.proc.log_path.parent.parent


def shell(master: MasterProc, commands: str, cwd: Path | None = None, timeout: float = 60) -> str:
    """`weed shell` run in `cwd` (default: the master's directory), whose security.toml gives it
    the [grpc.client] certificate."""
    cwd = cwd or master_dir(master)
    out = subprocess.run(
        [str(find_weed_binary()), "shell", f"-master={master.address}"], input=commands, capture_output=True,
        text=True, timeout=timeout, cwd=cwd, env=clean_env(),
    )
    return out.stdout + out.stderr


def grpc_client_context(pki: Pki, name: str | None = "client", ca: Path | None = None) -> ssl.SSLContext:
    """A client context like Go's gRPC dial option: the CA's chain checked, no host name check;
    `name`: the certificate presented (None: none)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=str(ca or pki.ca))
    if name is not None:
        ctx.load_cert_chain(str(pki.cert(name)), str(pki.key(name)))
    ctx.set_alpn_protocols(["h2"])
    return ctx


def https_client(pki: Pki, name: str | None = "client", timeout: float = 10) -> httpx.Client:
    """An HTTPS client trusting the test CA, presenting NAME's certificate (None: no certificate)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if name is not None:
        ctx.load_cert_chain(str(pki.cert(name)), str(pki.key(name)))
    return httpx.Client(verify=ctx, timeout=timeout)


@dataclasses.dataclass(frozen=True)
class Outcome:
    response: Any = None
    status: str = "OK"
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def grpc_call(
    port: int, method: str, request: Any, response_type: type, tls: ssl.SSLContext | None, *, timeout: float = 10,
) -> Outcome:
    """One unary call to 127.0.0.1:port (`tls` None: plaintext); the status instead of raising."""

    async def run() -> Outcome:
        async with Channel("127.0.0.1", port, options=ChannelOptions(tls=tls, connect_timeout=5)) as ch:
            try:
                return Outcome(await ch.unary_unary(VS + method, request, response_type, timeout=timeout))
            except GrpcError as exc:
                return Outcome(None, exc.status.name, exc.message)

    return trio.run(run)


def start_weedpy(
    workdir: Path, master: MasterProc, pki: Pki, *, mode: str, security_file: Path, name: str,
    data_center: str, extra: Sequence[str] = (), https: bool = False,
) -> VolumeProc:
    """`weedpy-volume -mode=MODE -securityFile=FILE` in its own data center (so the master's
    assignments for that data center land on it), ready once /healthz answers 200 over the
    scheme it serves."""
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    scheme = "https" if https else "http"

    def start() -> VolumeProc:
        port, grpc_port = free_port_pair()
        argv = weedpy_volume_argv(
            port=port, grpc_port=grpc_port, public_port=port, data_dir=data_dir, master=master.address,
            extra=[f"-mode={mode}", f"-securityFile={security_file}", f"-dataCenter={data_center}", *extra],
        )
        proc = start_proc(argv, workdir / "logs" / f"{name}-{port}.log", cwd=workdir, env=clean_env())
        try:
            with https_client(pki, timeout=2) as client:
                def healthy() -> bool:
                    try:
                        return client.get(f"{scheme}://127.0.0.1:{port}/healthz").status_code == 200
                    except httpx.HTTPError:
                        return False
                wait_until(healthy, timeout=60, what=f"{name} healthz", proc=proc)
            wait_tcp("127.0.0.1", grpc_port, proc=proc)
        except BaseException:
            proc.stop()
            raise
        return VolumeProc(proc, port, grpc_port, port, data_dir)

    return on_fresh_ports(start)


__all__.append("free_port")
