"""Authorization matrix, differential against Go 4.48 with the same security.toml.

Three configurations, each served by a real Go `weed volume` and a real weedpy (native; proxy
mode too where the gateway decides itself, the whitelist):

- JWT: write and read keys set. Generated tokens (valid HS256/384/512, alg none in three
  spellings, RS256 and HS512 headers over HMAC signatures, a wrong key, the read key for writes
  and the write key for reads, another needle's fid, `_N` suffixes on either side, exp and nbf
  on both sides of now, non-numeric and fractional dates, missing or non-string fid, garbage) in
  the query, the Authorization header and the AT cookie, and the precedence between them (query >
  header > cookie, the first non-empty wins even when invalid), for writes, reads and deletes.
- Empty keys: the same tokens where no key is set.
- Whitelist `127.0.0.1, 127.0.0.8/30`: clients from several loopback addresses, with and without
  a spoofed X-Forwarded-For, for writes, deletes and reads, and gRPC admin calls from
  non-whitelisted peers.

Every decision (the status; for gRPC the code and message) must equal Go's.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.reliability.hostile.support import allocate
from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from tests.support.weedpy_proc import start_weedpy_volume

WRITE_KEY, READ_KEY = "matrix-write-key", "matrix-read-key"
JWT_TOML = f'[jwt.signing]\nkey = "{WRITE_KEY}"\n[jwt.signing.read]\nkey = "{READ_KEY}"\n'
EMPTY_TOML = '[jwt.signing]\nkey = ""\n[jwt.signing.read]\nkey = ""\n'
WHITELIST_TOML = '[guard]\nwhite_list = "127.0.0.1, 127.0.0.8/30"\n'
COOKIE = "0badc0de"


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(key: str, claims: dict, alg: str = "HS256", sig_alg: str | None = None, header: object = None) -> str:
    h = _b64(json.dumps(header if header is not None else {"alg": alg, "typ": "JWT"}).encode())
    p = _b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(sig_alg or alg, hashlib.sha256)
    if (sig_alg or alg).lower() == "none":
        return f"{h}.{p}."
    return f"{h}.{p}.{_b64(hmac.new(key.encode(), f'{h}.{p}'.encode(), digest).digest())}"


def token_kinds(fid: str, now: int) -> dict[str, str]:
    """Named tokens for the file id `fid` (vid,keycookie)."""
    vid, rest = fid.split(",")
    other = f"{vid},{int(rest[:-8], 16) + 1:x}{rest[-8:]}"
    W, R = WRITE_KEY, READ_KEY
    out = {}
    for name, key in (("w", W), ("r", R)):
        out |= {
            f"{name}_hs256": token(key, {"fid": fid, "exp": now + 600}),
            f"{name}_hs384": token(key, {"fid": fid}, "HS384"),
            f"{name}_hs512": token(key, {"fid": fid}, "HS512"),
            f"{name}_other_fid": token(key, {"fid": other}),
            f"{name}_suffix_in_claim": token(key, {"fid": fid + "_1"}),
            f"{name}_exp_past": token(key, {"fid": fid, "exp": now - 30}),
            f"{name}_nbf_future": token(key, {"fid": fid, "nbf": now + 600}),
            f"{name}_nbf_past": token(key, {"fid": fid, "nbf": now - 30}),
            f"{name}_exp_string": token(key, {"fid": fid, "exp": "tomorrow"}),
            f"{name}_exp_float": token(key, {"fid": fid, "exp": now + 600.5}),
            f"{name}_no_fid": token(key, {"exp": now + 600}),
            f"{name}_fid_number": token(key, {"fid": 3}),
            f"{name}_FID_upper": token(key, {"FID": fid}),
            f"{name}_rs256_header": token(key, {"fid": fid}, "RS256", sig_alg="HS256"),
            f"{name}_hs256_header_hs512_sig": token(key, {"fid": fid}, "HS256", sig_alg="HS512"),
            f"{name}_header_not_object": token(key, {"fid": fid}, header=["HS256"]),
        }
    out |= {
        "alg_none": token("", {"fid": fid}, "none"),
        "alg_None": token("", {"fid": fid}, "None", sig_alg="none"),
        "alg_NONE_hmac": token(W, {"fid": fid}, "NONE", sig_alg="HS256"),
        "wrong_key": token("not-the-key", {"fid": fid}),
        "empty_key": token("", {"fid": fid}),
        "garbage": "a.b.c",
        "two_parts": "a.b",
        "truncated_sig": token(W, {"fid": fid})[:-3],
    }
    return out


@dataclasses.dataclass(frozen=True)
class Req:
    label: str
    method: str
    path: str
    params: dict
    headers: dict
    source: str = "127.0.0.1"


def _send(server: VolumeProc, r: Req, client: httpx.Client) -> int:
    files = {"file": ("m.txt", b"matrix", "text/plain")} if r.method == "POST" else None
    resp = client.request(r.method, f"{server.url}{r.path}", params=r.params, headers=r.headers, files=files)
    return resp.status_code


def _clients() -> dict[str, httpx.Client]:
    return {}


def _client(cache: dict[str, httpx.Client], source: str) -> httpx.Client:
    if source not in cache:
        cache[source] = httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)
    return cache[source]


@contextlib.contextmanager
def _servers(work: Path, master: MasterProc, toml: str, modes: tuple[str, ...]) -> Iterator[dict[str, VolumeProc]]:
    conf = work / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "security.toml").write_text(toml)
    out: dict[str, VolumeProc] = {}
    try:
        out["go"] = start_go_volume(work, master, name="go", config_dir=conf)
        for mode in modes:
            out[mode] = start_weedpy_volume(work, master, extra=[f"-mode={mode}", f"-config_dir={conf}"], name=mode)
        yield out
    finally:
        for p in out.values():
            p.stop()


def _diff(servers: dict[str, VolumeProc], reqs_for: dict[str, list[Req]]) -> tuple[int, list[str]]:
    statuses: dict[str, list[int]] = {}
    cache: dict[str, httpx.Client] = {}
    try:
        for name, server in servers.items():
            statuses[name] = [_send(server, r, _client(cache, r.source)) for r in reqs_for[name]]
    finally:
        for c in cache.values():
            c.close()
    problems = []
    base = reqs_for["go"]
    for name in servers:
        if name == "go":
            continue
        for i, r in enumerate(base):
            if statuses[name][i] != statuses["go"][i]:
                problems.append(f"{name} {r.label}: {statuses[name][i]}, Go {statuses['go'][i]}")
    return len(base), problems


def _vids(servers: dict[str, VolumeProc], first: int) -> dict[str, int]:
    vids = {}
    for i, (name, server) in enumerate(servers.items()):
        vids[name] = first + i
        allocate(server, vids[name])
    return vids


def _fid(vid: int, key: int) -> str:
    return f"{vid},{key:x}{COOKIE}"


def _upload(server: VolumeProc, fid: str, key: str | None) -> None:
    headers = {"Authorization": "Bearer " + token(key, {"fid": fid})} if key else {}
    r = httpx.post(f"{server.url}/{fid}", files={"file": ("s.txt", b"seed", "text/plain")}, headers=headers, timeout=10)
    assert r.status_code in (201, 204), (fid, r.status_code, r.text)


def _token_matrix(vid: int, now: int, key_base: int) -> list[Req]:
    """Requests for one server: every token kind in every place, for writes, reads and deletes,
    plus precedence pairs. File keys are laid out the same on every server."""
    reqs: list[Req] = []
    k = key_base
    read_fid = _fid(vid, 1)
    for method in ("POST", "GET", "DELETE"):
        for place in ("query", "header", "cookie"):
            probe = _fid(vid, 9999)  # kinds are built per fid below; names are fid-independent
            for kind in token_kinds(probe, now):
                if method == "GET":
                    fid = read_fid
                else:
                    k += 1
                    fid = _fid(vid, k)
                tok = token_kinds(fid, now)[kind]
                params, headers = {}, {}
                if place == "query":
                    params["jwt"] = tok
                elif place == "header":
                    headers["Authorization"] = "Bearer " + tok
                else:
                    headers["Cookie"] = "AT=" + tok
                reqs.append(Req(f"{method} {place} {kind}", method, "/" + fid, params, headers))
        k += 1
        fid = read_fid if method == "GET" else _fid(vid, k)
        good = token_kinds(fid, now)["r_hs256" if method == "GET" else "w_hs256"]
        pairs = {
            "bad query beats good header": ({"jwt": "bad"}, {"Authorization": "Bearer " + good}),
            "good query beats bad header": ({"jwt": good}, {"Authorization": "Bearer bad"}),
            "bad header beats good cookie": ({}, {"Authorization": "Bearer bad", "Cookie": "AT=" + good}),
            "good header beats bad cookie": ({}, {"Authorization": "Bearer " + good, "Cookie": "AT=bad"}),
            "empty query falls to header": ({"jwt": ""}, {"Authorization": "Bearer " + good}),
            "lower-case bearer": ({}, {"Authorization": "bearer " + good}),
            "bearer without token": ({}, {"Authorization": "Bearer"}),
            "basic scheme": ({}, {"Authorization": "Basic " + good}),
            "second AT cookie": ({}, {"Cookie": "AT=bad; AT=" + good}),
            "quoted cookie": ({}, {"Cookie": f'AT="{good}"'}),
        }
        for label, (params, headers) in pairs.items():
            reqs.append(Req(f"{method} {label}", method, "/" + fid, params, headers))
        # a _N suffix on the request: the claim names the fid without it
        k += 1
        fid = _fid(vid, k)
        sfx = token_kinds(fid, now)["r_hs256" if method == "GET" else "w_hs256"]
        path = "/" + (read_fid if method == "GET" else fid) + "_5"
        if method == "GET":
            sfx = token_kinds(read_fid, now)["r_hs256"]
        reqs.append(Req(f"{method} request _N suffix", method, path, {}, {"Authorization": "Bearer " + sfx}))
    return reqs


def _seed_files(server: VolumeProc, reqs: list[Req], key: str | None) -> None:
    vid = int(reqs[0].path[1:].split(",")[0])
    _upload(server, _fid(vid, 1), key)
    for r in reqs:
        if r.method == "DELETE":
            fid = r.path[1:].split("_")[0].split("?")[0]
            _upload(server, fid, key)


@pytest.fixture(scope="module")
def master_shared(master: MasterProc) -> MasterProc:
    return master


def _jwt_like(tmp: Path, master: MasterProc, toml: str, key: str | None, first_vid: int) -> tuple[int, list[str]]:
    with _servers(tmp, master, toml, ("native",)) as servers:
        vids = _vids(servers, first_vid)
        now = int(time.time())
        reqs_for = {name: _token_matrix(vids[name], now, 100) for name in servers}
        for name, server in servers.items():
            _seed_files(server, reqs_for[name], key)
        return _diff(servers, reqs_for)


def test_jwt_decisions_equal_go(tmp_path: Path, master: MasterProc, record_property) -> None:
    cases, problems = _jwt_like(tmp_path, master, JWT_TOML, WRITE_KEY, 31)
    record_property("cases", cases)
    record_property("differences", len(problems))
    assert cases >= 200
    assert not problems, "\n".join(problems)


def test_empty_keys_decisions_equal_go(tmp_path: Path, master: MasterProc, record_property) -> None:
    cases, problems = _jwt_like(tmp_path, master, EMPTY_TOML, None, 41)
    record_property("cases", cases)
    assert not problems, "\n".join(problems)


SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.11", "127.0.0.12")


def _grpc_admin(server: VolumeProc, source: str) -> tuple[str, str]:
    """DeleteCollection (an admin rpc) from `source`: the status code and message."""
    from proto import volume_server_pb2 as vs
    from weedpy.grpc import Channel, ChannelOptions, GrpcError

    async def connect() -> trio.abc.Stream:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.bind((source, 0))
        await sock.connect(("127.0.0.1", server.grpc_port))
        return trio.SocketStream(sock)

    async def run() -> tuple[str, str]:
        async with Channel("127.0.0.1", server.grpc_port, options=ChannelOptions(connector=connect)) as ch:
            try:
                await ch.unary_unary("/volume_server_pb.VolumeServer/DeleteCollection",
                                     vs.DeleteCollectionRequest(collection="matrix-none"), vs.DeleteCollectionResponse,
                                     timeout=10)
                return "OK", ""
            except GrpcError as exc:
                return exc.status.name, exc.message

    return trio.run(run)


def test_whitelist_decisions_equal_go(tmp_path: Path, master: MasterProc, record_property) -> None:
    with _servers(tmp_path, master, WHITELIST_TOML, ("native", "proxy")) as servers:
        vids = _vids(servers, 51)
        reqs_for: dict[str, list[Req]] = {}
        for name, server in servers.items():
            vid = vids[name]
            _upload(server, _fid(vid, 1), None)
            reqs, k = [], 100
            for source in SOURCES:
                for spoof in ({}, {"X-Forwarded-For": "127.0.0.1"}, {"X-Real-IP": "127.0.0.1"}):
                    for method in ("POST", "DELETE", "GET"):
                        k += 1
                        fid = _fid(vid, 1) if method == "GET" else _fid(vid, k)
                        if method == "DELETE":
                            _upload(server, fid, None)
                        label = f"{method} from {source} {'spoofed ' + next(iter(spoof)) if spoof else ''}"
                        reqs.append(Req(label, method, "/" + fid, {}, dict(spoof), source))
            reqs_for[name] = reqs
        cases, problems = _diff(servers, reqs_for)
        grpc = {name: [_grpc_admin(server, s) for s in SOURCES] for name, server in servers.items()}
        for name in servers:
            for s, got, want in zip(SOURCES, grpc[name], grpc["go"]):
                if got != want:
                    problems.append(f"{name} gRPC DeleteCollection from {s}: {got}, Go {want}")
        record_property("cases", cases + len(SOURCES))
        record_property("differences", len(problems))
        assert any(code != "OK" for code, _ in grpc["go"]), grpc["go"]  # the whitelist was in force
        assert not problems, "\n".join(problems)


def test_guard_takes_entries_as_go_does() -> None:
    """Regression (found by the whitelist matrix): entries were trimmed, so `a, 10.0.0.0/8`
    allowed 10.x where Go's untrimmed " 10.0.0.0/8" does not parse and allows nobody there."""
    from weedpy.security import load_security
    from weedpy.serve.guard import Guard

    g = Guard.from_entries(tuple("127.0.0.1, 127.0.0.8/30".split(",")))
    assert g.allows("127.0.0.1") and not g.allows("127.0.0.9") and g.restricts
    assert not Guard.from_entries((" 127.0.0.1",)).allows("127.0.0.1")
    assert not Guard.from_entries((" 10.0.0.0/8",)).restricts  # only unparsable CIDRs: Go's empty list
    assert Guard.from_entries(("",)).restricts  # an empty piece is still an IP entry in Go
    assert Guard.from_entries(("10.0.0.0/8",)).allows("10.1.2.3")
    assert load_security(None, environ={"WEED_GUARD_WHITE_LIST": "127.0.0.1, 127.0.0.8/30"}).guard_white_list == (
        "127.0.0.1", " 127.0.0.8/30")
