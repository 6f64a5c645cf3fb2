"""SSRF: the addresses a caller can make the volume server dial, differential against Go 4.48.

A counting listener (`counting.py`) on 127.0.0.1 (and 127.0.0.2 and ::1 where the OS lets us bind
them) records every connection. Against a real Go `weed volume`, a native weedpy and a proxy-mode
weedpy started with the same flags (Go's secure default: no `-volume.allowUntrustedRemoteEndpoints`):

- FetchAndWriteNeedle with remote_conf endpoints at loopback (literal, `localhost`, the names
  /etc/hosts maps to loopback, 0.0.0.0, IPv4-mapped, NAT64 and 6to4 forms of 127.0.0.1, ::1),
  link-local and the metadata address (169.254.169.254, `metadata`, `metadata.google.internal`),
  private ranges (10/8, 172.16/12, 192.168/16, fd00::/8) and CGNAT, other schemes, no scheme, an
  empty endpoint, userinfo: every answer (gRPC status and message) equals Go's and the listeners
  see 0 connections. With `-volume.allowUntrustedRemoteEndpoints` both Go and weedpy do dial the
  listener (the control that shows it counts).
- gcs credentials whose token exchange goes to loopback or the metadata address, azure
  endpoints: refused as Go refuses them (the proxy-mode backend runs with the opt-out, so the
  gateway must do it).
- VolumeCopy, VolumeEcShardsCopy and VolumeTailReceiver from sources no master lists (loopback
  in its forms, link-local, metadata, not a bare host:port): Go's messages, 0 connections; in
  Go's order beside its other checks (maintenance mode first for the copies; the source before
  an EC copy's disk_id and the tail receiver's volume), in proxy and mixed modes too.
- The proxy and redirect read modes: a read of a volume another server holds goes to the server
  the master lists, whatever the client puts in Host, X-Forwarded-Host or an absolute-form
  request target: the same status and Location as Go, 0 connections to the listener.
- VolumeTierMoveDatToRemote: only backends the master hands out (the operator's) are dialled.
- Ping: only the server's own masters and known peers, as Go.

A real DNS-rebinding name (one answer at the check, another at the dial) needs a DNS server the
test controls, out of reach offline; `localhost` and /etc/hosts names are the names covered.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proto import remote_pb2
from proto import volume_server_pb2 as vs
from tests.native_core.support import Outcome, call
from tests.reliability.hostile.counting import CountingListener, counting_listeners
from tests.reliability.hostile.support import allocate
from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from tests.support.weedpy_proc import start_weedpy_volume

SERVERS = ("go", "native", "proxy")
VIDS = {"go": 71, "native": 72, "proxy": 73}
ALLOW = "-volume.allowUntrustedRemoteEndpoints"


def _hosts_file_loopback_names() -> list[str]:
    """Names /etc/hosts maps to a loopback address (other than localhost, covered anyway)."""
    names: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/etc/hosts").read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and fields[0].startswith("127."):
                names += [n for n in fields[1:] if n.lower() not in ("localhost", "localhost.localdomain")]
    return sorted(set(names))[:3]


def endpoints(listeners: dict[str, CountingListener]) -> list[str]:
    """Every endpoint Go's secure default refuses, the loopback ones at a counting listener."""
    p = listeners["127.0.0.1"].port
    out = [
        f"http://127.0.0.1:{p}", f"https://127.0.0.1:{p}", f"http://localhost:{p}", f"http://LocalHost:{p}",
        f"http://0.0.0.0:{p}", f"http://[::ffff:127.0.0.1]:{p}", f"http://[64:ff9b::7f00:1]:{p}",
        f"http://[2002:7f00:1::]:{p}", f"http://user:pw@127.0.0.1:{p}/bucket", f"http://127.0.0.1:{p}#@example.com",
        "http://169.254.169.254", f"http://169.254.169.254:{p}/latest/meta-data/", "http://169.254.0.1",
        "http://metadata", "http://metadata.google.internal", "http://METADATA.google.internal:80",
        f"http://10.0.0.1:{p}", f"http://10.255.255.254:{p}", f"http://172.16.0.1:{p}", f"http://172.31.255.1:{p}",
        f"http://192.168.0.1:{p}", f"http://192.168.255.1:{p}", f"http://100.64.0.1:{p}", f"http://[fd00::1]:{p}",
        f"ftp://127.0.0.1:{p}", f"127.0.0.1:{p}", f"localhost:{p}", "s3.example.com", ":80", "http:127.0.0.1",
    ]
    out += [f"http://{name}:{p}" for name in _hosts_file_loopback_names()]
    if "127.0.0.2" in listeners:
        out.append(f"http://127.0.0.2:{listeners['127.0.0.2'].port}")
    if "::1" in listeners:
        out.append(f"http://[::1]:{listeners['::1'].port}")
    return out


def remote_conf(kind: str, endpoint: str) -> remote_pb2.RemoteConf:
    if kind == "wasabi":
        return remote_pb2.RemoteConf(name="r", type="wasabi", wasabi_endpoint=endpoint, wasabi_region="us-east-1",
                                     wasabi_access_key="ak", wasabi_secret_key="sk")
    return remote_pb2.RemoteConf(name="r", type="s3", s3_endpoint=endpoint, s3_region="us-east-1",
                                 s3_access_key="ak", s3_secret_key="sk", s3_force_path_style=True)


def fetch(server: VolumeProc, vid: int, conf: remote_pb2.RemoteConf) -> Outcome:
    req = vs.FetchAndWriteNeedleRequest(
        volume_id=vid, needle_id=0x51, cookie=0x1234, offset=0, size=16, remote_conf=conf,
        remote_location=remote_pb2.RemoteStorageLocation(name="r", bucket="bucket", path="/key"))
    return call(server.grpc_port, "FetchAndWriteNeedle", req, vs.FetchAndWriteNeedleResponse, timeout=30)


@contextlib.contextmanager
def three_servers(work: Path, master: MasterProc, extra: tuple[str, ...] = ()) -> Iterator[dict[str, VolumeProc]]:
    started: dict[str, VolumeProc] = {}
    try:
        started["go"] = start_go_volume(work, master, extra=list(extra), name="go")
        started["native"] = start_weedpy_volume(work, master, extra=["-mode=native", *extra], name="native")
        started["proxy"] = start_weedpy_volume(work, master, extra=["-mode=proxy", *extra], name="proxy")
        yield started
    finally:
        for p in reversed(list(started.values())):
            p.stop()


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, CountingListener]]:
    with counting_listeners() as out:
        yield out


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, master: MasterProc) -> Iterator[dict[str, VolumeProc]]:
    with three_servers(tmp_path_factory.mktemp("ssrf"), master) as s:
        for name, server in s.items():
            allocate(server, VIDS[name])
        yield s


def test_fetch_and_write_needle_refuses_what_go_refuses(
    servers: dict[str, VolumeProc], listeners: dict[str, CountingListener], record_property,
) -> None:
    problems: list[str] = []
    cases = 0
    for kind in ("s3", "wasabi"):
        # an empty endpoint: refused for every S3-compatible type but `s3`, which then goes to AWS
        for endpoint in endpoints(listeners) + ([""] if kind != "s3" else []):
            answers = {name: fetch(servers[name], VIDS[name], remote_conf(kind, endpoint)) for name in SERVERS}
            cases += 1
            go = answers["go"]
            if go.ok or not go.message.startswith("reject remote endpoint: "):
                problems.append(f"{kind} {endpoint!r}: Go did not refuse it: {go}")
            for name in ("native", "proxy"):
                got = answers[name]
                if (got.status, got.message) != (go.status, go.message):
                    problems.append(f"{kind} {endpoint!r} {name}: {got.status} {got.message!r} != Go {go.status} {go.message!r}")
    dialled = {h: lst.connections for h, lst in listeners.items()}
    record_property("cases", cases)
    record_property("listeners", len(listeners))
    record_property("connections", sum(dialled.values()))
    record_property("differences", len(problems))
    assert not problems, "\n".join(problems)
    assert sum(dialled.values()) == 0, dialled


def _service_account(token_uri: str) -> str:
    """Inline gcs service-account credentials (a real RSA key) whose token exchange goes to `token_uri`."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "k", "private_key": key,
                       "client_email": "a@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri})


def test_gcs_and_azure_endpoints_refused_as_go(
    servers: dict[str, VolumeProc], listeners: dict[str, CountingListener], record_property,
) -> None:
    """The proxy-mode backend runs with the opt-out flag, so the gateway must refuse these itself."""
    p = listeners["127.0.0.1"].port
    before = sum(lst.connections for lst in listeners.values())
    confs = {
        "gcs token_uri loopback": remote_pb2.RemoteConf(
            name="r", type="gcs", gcs_google_application_credentials=_service_account(f"http://127.0.0.1:{p}/token")),
        "gcs token_uri metadata": remote_pb2.RemoteConf(
            name="r", type="gcs", gcs_google_application_credentials=_service_account("http://169.254.169.254/token")),
        "gcs credentials path": remote_pb2.RemoteConf(name="r", type="gcs", gcs_google_application_credentials="/etc/hosts"),
        "gcs authorized_user": remote_pb2.RemoteConf(
            name="r", type="gcs", gcs_google_application_credentials='{"type":"authorized_user","token_uri":"http://127.0.0.1:%d/"}' % p),
        "azure endpoint loopback": remote_pb2.RemoteConf(
            name="r", type="azure", azure_account_name="acct", azure_account_key="a2V5", azure_endpoint=f"http://127.0.0.1:{p}"),
        "azure endpoint private": remote_pb2.RemoteConf(
            name="r", type="azure", azure_account_name="acct", azure_account_key="a2V5", azure_endpoint="http://10.1.2.3"),
    }
    problems = []
    for what, conf in confs.items():
        answers = {name: fetch(servers[name], VIDS[name], conf) for name in SERVERS}
        go = answers["go"]
        for name in ("native", "proxy"):
            got = answers[name]
            if what == "gcs credentials path":
                # Go 4.48 reads the file the caller names and parses it; weedpy refuses any path
                same = got.message == "reject remote credentials: gcs credentials must be inline JSON"
                same = same and go.message.startswith("reject remote credentials: ")
            else:
                same = (got.status, got.message) == (go.status, go.message) and go.message.startswith("reject remote")
            if not same:
                problems.append(f"{what} {name}: {got.status} {got.message!r} != Go {go.status} {go.message!r}")
    dialled = sum(lst.connections for lst in listeners.values()) - before
    record_property("cases", len(confs))
    record_property("connections", dialled)
    record_property("differences", len(problems))
    assert not problems, "\n".join(problems)
    assert dialled == 0


def test_the_opt_out_does_dial_the_listener(tmp_path: Path, master: MasterProc, listeners: dict[str, CountingListener],
                                             record_property) -> None:
    """The control: with `-volume.allowUntrustedRemoteEndpoints` Go and native both reach the listener."""
    lst = listeners["127.0.0.1"]
    conf = remote_conf("s3", f"http://127.0.0.1:{lst.port}")
    reached = {}
    go = start_go_volume(tmp_path, master, extra=[ALLOW], name="go-allow")
    try:
        native = start_weedpy_volume(tmp_path, master, extra=["-mode=native", ALLOW], name="native-allow")
        try:
            for name, server, vid in (("go", go, 75), ("native", native, 76)):
                allocate(server, vid)
                before = lst.connections
                out = fetch(server, vid, conf)
                assert not out.ok and out.message.startswith("read from remote "), (name, out)
                reached[name] = lst.connections - before
        finally:
            native.stop()
    finally:
        go.stop()
    record_property("connections", sum(reached.values()))
    assert all(n > 0 for n in reached.values()), reached


# -- proxy and redirect read modes -------------------------------------------------------------

FID_KEY = "0a1b2c3d00c0ffee"
BODY = b"held by another server"


def _head(raw: bytes) -> tuple[int, str]:
    """(status, Location) of the first response in `raw` (0 when there is none)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not head[0].startswith("HTTP/1.1 "):
        return 0, ""
    location = next((line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("location:")), "")
    return int(head[0].split()[1]), location


def hostile_reads(fid: str, p: int) -> dict[str, bytes]:
    """Requests for a file held elsewhere that try to steer where the server goes for it."""
    evil = f"127.0.0.1:{p}"
    return {
        "plain": f"GET /{fid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "Host header": f"GET /{fid} HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n\r\n",
        "X-Forwarded-Host": (f"GET /{fid} HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: {evil}\r\n"
                             f"X-Forwarded-Proto: http\r\nForwarded: host={evil}\r\nConnection: close\r\n\r\n"),
        "absolute-form target": f"GET http://{evil}/{fid} HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n\r\n",
        "collection with an address": f"GET /{fid}?collection=@{evil}&proxied=false HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "HEAD with Host": f"HEAD /{fid} HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n\r\n",
    }


def _read_mode_differences(readers: dict[str, tuple[VolumeProc, str]], holder_urls: dict[str, str],
                           lst: CountingListener, expect_plain: tuple[int, str]) -> tuple[int, list[str]]:
    from tests.reliability.hostile.support import raw_exchange

    answers: dict[str, dict[str, tuple[int, str]]] = {}
    for name, (server, fid) in readers.items():
        answers[name] = {}
        for what, req in hostile_reads(fid, lst.port).items():
            status, location = _head(raw_exchange(server.port, req.encode()))
            answers[name][what] = (status, location.replace(holder_urls[fid], "HOLDER"))
    problems = [f"{name} {what}: {answers[name][what]} != Go {answers['go'][what]}"
                for name in readers if name != "go" for what in answers["go"] if answers[name][what] != answers["go"][what]]
    problems += [f"Go {what}: {a}" for what, a in answers["go"].items() if a[0] not in (200, 301)]
    if answers["go"]["plain"] != expect_plain:
        problems.append(f"Go plain read: {answers['go']['plain']} != {expect_plain}")
    return len(answers["go"]) * len(readers), problems


def test_proxy_read_mode_goes_only_where_the_master_says(
    servers: dict[str, VolumeProc], listeners: dict[str, CountingListener], record_property,
) -> None:
    from tests.reliability.hostile.support import upload

    lst = listeners["127.0.0.1"]
    for name in ("go", "native"):
        upload(servers[name], f"{VIDS[name]},{FID_KEY}", BODY)
    on_go, on_native = f"{VIDS['go']},{FID_KEY}", f"{VIDS['native']},{FID_KEY}"
    before = lst.connections
    readers = {"go": (servers["go"], on_native), "native": (servers["native"], on_go), "proxy": (servers["proxy"], on_go)}
    holders = {on_go: f"127.0.0.1:{servers['go'].port}", on_native: f"127.0.0.1:{servers['native'].port}"}
    cases, problems = _read_mode_differences(readers, holders, lst, (200, ""))
    record_property("cases", cases)
    record_property("connections", lst.connections - before)
    assert not problems, "\n".join(problems)
    assert lst.connections == before


def test_redirect_read_mode_points_only_where_the_master_says(
    tmp_path: Path, master: MasterProc, servers: dict[str, VolumeProc], listeners: dict[str, CountingListener],
    record_property,
) -> None:
    from tests.reliability.hostile.support import upload

    lst = listeners["127.0.0.1"]
    fid = f"{VIDS['go']},{FID_KEY}"
    upload(servers["go"], fid, BODY)
    before = lst.connections
    with three_servers(tmp_path, master, ("-readMode=redirect",)) as redirecting:
        readers = {name: (redirecting[name], fid) for name in SERVERS}
        cases, problems = _read_mode_differences(readers, {fid: f"127.0.0.1:{servers['go'].port}"}, lst,
                                                 (301, f"http://HOLDER/{fid}?proxied=true"))
    record_property("cases", cases)
    record_property("connections", lst.connections - before)
    assert not problems, "\n".join(problems)
    assert lst.connections == before


# -- tier backends -----------------------------------------------------------------------------

def tier_move(server: VolumeProc, vid: int, backend: str) -> Outcome:
    import trio

    from weedpy.grpc import Channel, GrpcError

    async def run() -> Outcome:
        req = vs.VolumeTierMoveDatToRemoteRequest(volume_id=vid, destination_backend_name=backend)
        try:
            async with Channel("127.0.0.1", server.grpc_port) as ch:
                async with ch.unary_stream("/volume_server_pb.VolumeServer/VolumeTierMoveDatToRemote", req,
                                           vs.VolumeTierMoveDatToRemoteResponse, timeout=60) as rs:
                    async for _ in rs:
                        pass
        except GrpcError as exc:
            return Outcome(None, exc.status.name, exc.message)
        except BaseExceptionGroup as group:  # the stream's task group re-raises it grouped
            found = group.subgroup(GrpcError)
            if found is None:
                raise
            exc = found.exceptions[0]
            while isinstance(exc, BaseExceptionGroup):
                exc = exc.exceptions[0]
            return Outcome(None, exc.status.name, exc.message)
        return Outcome(True)

    return trio.run(run)


def _unordered(message: str) -> str:
    """Go lists the supported backends in map order (random): compare them as a set."""
    head, sep, rest = message.partition("supported: [")
    return head + sep + " ".join(sorted(rest.rstrip("]").split())) + "]" if sep else message


def test_tier_backends_are_the_operators_only(tmp_path: Path, listeners: dict[str, CountingListener],
                                               record_property) -> None:
    """A caller can only name a backend the master's operator configured: a name it made up is
    refused as Go refuses it, without a connection; the configured one (here at loopback, the
    operator's choice, which Go does not second-guess) is dialled by every mode, as by Go."""
    from tests.support.procs import start_master

    lst = listeners["127.0.0.1"]
    (tmp_path / "master.toml").write_text(f"""
[storage.backend]
  [storage.backend.s3.default]
  enabled = true
  aws_access_key_id = "ak"
  aws_secret_access_key = "sk"
  region = "us-east-1"
  bucket = "tier"
  endpoint = "http://127.0.0.1:{lst.port}"
  force_path_style = true
""")
    tier_master = start_master(tmp_path)
    problems = []
    try:
        with three_servers(tmp_path, tier_master) as s:
            vids = {"go": 81, "native": 82, "proxy": 83}
            for name, server in s.items():
                allocate(server, vids[name])
            before = lst.connections
            made_up = {name: tier_move(s[name], vids[name], f"s3.127.0.0.1:{lst.port}") for name in SERVERS}
            for name in ("native", "proxy"):
                if (made_up[name].status, _unordered(made_up[name].message)) != (made_up["go"].status, _unordered(made_up["go"].message)):
                    problems.append(f"made-up backend {name}: {made_up[name]} != Go {made_up['go']}")
            if lst.connections != before or "not found" not in made_up["go"].message:
                problems.append(f"made-up backend: Go {made_up['go']}, {lst.connections - before} connections")
            reached = {}
            for name in SERVERS:
                at = lst.connections
                out = tier_move(s[name], vids[name], "s3.default")
                reached[name] = lst.connections - at
                if out.ok:
                    problems.append(f"configured backend {name}: a move to a listener that closes succeeded")
            if not all(reached.values()):
                problems.append(f"configured backend not dialled by every mode: {reached}")
    finally:
        tier_master.stop()
    record_property("cases", 2 * len(SERVERS))
    record_property("differences", len(problems))
    assert not problems, "\n".join(problems)


# -- peer sources: VolumeCopy, VolumeEcShardsCopy, VolumeTailReceiver ---------------------------

def stream_outcome(server: VolumeProc, method: str, req, response_type: type) -> Outcome:
    import trio

    from weedpy.grpc import Channel, GrpcError

    async def run() -> Outcome:
        try:
            async with Channel("127.0.0.1", server.grpc_port) as ch:
                async with ch.unary_stream("/volume_server_pb.VolumeServer/" + method, req, response_type,
                                           timeout=30) as rs:
                    async for _ in rs:
                        pass
        except GrpcError as exc:
            return Outcome(None, exc.status.name, exc.message)
        except BaseExceptionGroup as group:  # the stream's task group re-raises it grouped
            found = group.subgroup(GrpcError)
            if found is None:
                raise
            exc = found.exceptions[0]
            while isinstance(exc, BaseExceptionGroup):
                exc = exc.exceptions[0]
            return Outcome(None, exc.status.name, exc.message)
        return Outcome(True)

    return trio.run(run)


def peer_targets(listeners: dict[str, CountingListener]) -> list[str]:
    """Peer addresses (`host:port.grpcPort`) no master lists, which Go's secure default refuses."""
    p = listeners["127.0.0.1"].port
    out = [f"127.0.0.1:{p}.{p}", f"localhost:{p}.{p}", f"0.0.0.0:{p}.{p}", f"[::ffff:127.0.0.1]:{p}.{p}",
           f"http://127.0.0.1:{p}", f"127.0.0.1:{p}/x", f"user@127.0.0.1:{p}", "169.254.169.254:80.81",
           "metadata:80.81", "metadata.google.internal:80.81", f"[fe80::1]:{p}.{p}"]
    if "127.0.0.2" in listeners:
        q = listeners["127.0.0.2"].port
        out.append(f"127.0.0.2:{q}.{q}")
    if "::1" in listeners:
        q = listeners["::1"].port
        out.append(f"[::1]:{q}.{q}")
    return out


def test_peer_sources_refused_as_go(servers: dict[str, VolumeProc], listeners: dict[str, CountingListener],
                                    record_property) -> None:
    """A copy or tail source that is not a listed volume server is refused as Go refuses it,
    even on loopback where every server of this test lives (this server's own `-ip`)."""
    before = sum(lst.connections for lst in listeners.values())
    problems = []
    cases = 0
    for target in peer_targets(listeners):
        rpcs = {
            "VolumeCopy": lambda name: stream_outcome(servers[name], "VolumeCopy", vs.VolumeCopyRequest(
                volume_id=99, source_data_node=target), vs.VolumeCopyResponse),
            "VolumeEcShardsCopy": lambda name: call(servers[name].grpc_port, "VolumeEcShardsCopy", vs.VolumeEcShardsCopyRequest(
                volume_id=99, shard_ids=[0], copy_ecx_file=True, source_data_node=target), vs.VolumeEcShardsCopyResponse),
            "VolumeTailReceiver": lambda name: call(servers[name].grpc_port, "VolumeTailReceiver", vs.VolumeTailReceiverRequest(
                volume_id=VIDS[name], source_volume_server=target, idle_timeout_seconds=1), vs.VolumeTailReceiverResponse),
        }
        for rpc, run in rpcs.items():
            answers = {name: run(name) for name in SERVERS}
            cases += 1
            go = answers["go"]
            if go.ok or not go.message.startswith("invalid source"):
                problems.append(f"{rpc} {target!r}: Go did not refuse it: {go}")
            for name in ("native", "proxy"):
                got = answers[name]
                if (got.status, got.message) != (go.status, go.message):
                    problems.append(f"{rpc} {target!r} {name}: {got.status} {got.message!r} != Go {go.status} {go.message!r}")
    dialled = sum(lst.connections for lst in listeners.values()) - before
    record_property("cases", cases)
    record_property("connections", dialled)
    record_property("differences", len(problems))
    assert not problems, "\n".join(problems)
    assert dialled == 0


ORDER_MODES = ("go", "native", "proxy", "mixed")


def _order_cases(server: VolumeProc, vid: int, source: str) -> dict[str, Outcome]:
    """Each rpc that dials a caller's source, with the other things Go 4.48 checks set either way."""
    missing = 99

    def copy(v: int) -> Outcome:
        return stream_outcome(server, "VolumeCopy", vs.VolumeCopyRequest(volume_id=v, source_data_node=source),
                              vs.VolumeCopyResponse)

    def ec_copy(disk: int) -> Outcome:
        return call(server.grpc_port, "VolumeEcShardsCopy", vs.VolumeEcShardsCopyRequest(
            volume_id=missing, shard_ids=[0], copy_ecx_file=True, source_data_node=source, disk_id=disk),
            vs.VolumeEcShardsCopyResponse)

    def tail(v: int) -> Outcome:
        return call(server.grpc_port, "VolumeTailReceiver", vs.VolumeTailReceiverRequest(
            volume_id=v, source_volume_server=source, idle_timeout_seconds=1), vs.VolumeTailReceiverResponse)

    return {"VolumeCopy held": copy(vid), "VolumeCopy missing": copy(missing), "VolumeEcShardsCopy disk 0": ec_copy(0),
            "VolumeEcShardsCopy disk 5 of 1": ec_copy(5), "VolumeTailReceiver held": tail(vid),
            "VolumeTailReceiver missing": tail(missing)}


def test_refused_sources_answer_in_gos_order(tmp_path: Path, master: MasterProc,
                                             listeners: dict[str, CountingListener], record_property) -> None:
    """Go 4.48 (without the opt-out) answers maintenance mode before a copy's refused source, and
    refuses the source (an empty one too) before an EC copy's disk_id or the tail receiver's volume.
    Every mode answers the same in each case, and no one dials the source."""
    p = listeners["127.0.0.1"].port
    sources = (f"127.0.0.1:{p}.{p}", "")
    before = sum(lst.connections for lst in listeners.values())
    started: dict[str, VolumeProc] = {}
    answers: dict[str, dict[str, Outcome]] = {}
    try:
        started["go"] = start_go_volume(tmp_path, master, name="go")
        for mode in ORDER_MODES[1:]:
            started[mode] = start_weedpy_volume(tmp_path, master, extra=[f"-mode={mode}"], name=mode)
        for i, (mode, server) in enumerate(started.items()):
            allocate(server, 61 + i)
        for phase in ("serving", "maintenance"):
            for i, (mode, server) in enumerate(started.items()):
                if phase == "maintenance":
                    state = call(server.grpc_port, "SetState", vs.SetStateRequest(
                        state=vs.VolumeServerState(maintenance=True)), vs.SetStateResponse)
                    assert state.ok and state.response.state.maintenance, (mode, state)
                for source in sources:
                    self_address = f"127.0.0.1:{server.port}"
                    for case, out in _order_cases(server, 61 + i, source).items():
                        answers.setdefault(f"{phase} {source or 'empty'} {case}", {})[mode] = Outcome(
                            None, out.status, out.message.replace(self_address, "SELF"))
    finally:
        for server in reversed(list(started.values())):
            server.stop()
    problems = []
    for case, by_mode in answers.items():
        go = by_mode["go"]
        expect = ("volume server SELF is in maintenance mode" if case.startswith("maintenance") and "Copy" in case
                  else "invalid source ")
        if not go.message.startswith(expect):  # the order the modes follow, as Go 4.48 showed it
            problems.append(f"{case}: Go answered {go.status} {go.message!r}, not {expect!r}")
        for mode in ORDER_MODES[1:]:
            got = by_mode[mode]
            if (got.status, got.message) != (go.status, go.message):
                problems.append(f"{case} {mode}: {got.status} {got.message!r} != Go {go.status} {go.message!r}")
    dialled = sum(lst.connections for lst in listeners.values()) - before
    record_property("cases", len(answers))
    record_property("connections", dialled)
    record_property("differences", len(problems))
    assert not problems, "\n".join(problems)
    assert dialled == 0


def test_ping_reaches_only_known_targets(servers: dict[str, VolumeProc], listeners: dict[str, CountingListener],
                                         record_property) -> None:
    """Go 4.48 pings only its own masters and known peers: a caller's address gets Go's refusal."""
    p = listeners["127.0.0.1"].port
    before = sum(lst.connections for lst in listeners.values())
    problems = []
    cases = 0
    for target_type in ("volumeServer", "filer", "master"):
        for target in (f"127.0.0.1:{p}", f"127.0.0.1:{p}.{p}", f"localhost:{p}", "169.254.169.254:80", "metadata:80"):
            answers = {name: call(servers[name].grpc_port, "Ping", vs.PingRequest(target=target, target_type=target_type),
                                  vs.PingResponse, timeout=15) for name in SERVERS}
            cases += 1
            go = answers["go"]
            if go.ok:
                problems.append(f"Ping {target_type} {target}: Go answered it")
            for name in ("native", "proxy"):
                got = answers[name]
                if (got.status, got.message) != (go.status, go.message):
                    problems.append(f"Ping {target_type} {target} {name}: {got.status} {got.message!r} != Go {go.message!r}")
    dialled = sum(lst.connections for lst in listeners.values()) - before
    record_property("cases", cases)
    record_property("connections", dialled)
    assert not problems, "\n".join(problems)
    assert dialled == 0
