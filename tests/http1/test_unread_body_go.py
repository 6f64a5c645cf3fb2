"""A refused upload whose body is still arriving, differential against Go 4.48.

A real Go `weed volume`, weedpy native and weedpy proxy, all with the same security.toml (a JWT
write key and the whitelist `127.0.0.1`), refuse POSTs before reading their bodies: from
127.0.0.1 without a token (401 "wrong jwt", decided by the volume handler: Go's own in proxy
mode) and from 127.0.0.2 (401 by the whitelist, which the gateway's front decides in proxy mode).
For each refusal:

- 100 KiB sent slowly, in 10 KiB pieces, before the client reads anything: every server reads
  the body before it answers (Go's net/http reads up to 256 KiB a handler left), so the client
  gets its 401 and the connection stays open for the next request;
- 1 MiB declared: every server answers at once with `Connection: close` and closes the
  connection, without reading the body.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from tests.support.weedpy_proc import start_weedpy_volume

KIB = 1024
TOML = '[jwt.signing]\nkey = "unread-body-key"\n[guard]\nwhite_list = "127.0.0.1"\n'
SOURCES = {"jwt": "127.0.0.1", "whitelist": "127.0.0.2"}
DEADLINE = 30.0  # guards against a hang only


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, master: MasterProc) -> Iterator[dict[str, VolumeProc]]:
    work = tmp_path_factory.mktemp("unread-body")
    conf = work / "conf"
    conf.mkdir()
    (conf / "security.toml").write_text(TOML)
    out: dict[str, VolumeProc] = {}
    try:
        out["go"] = start_go_volume(work, master, name="go", config_dir=conf)
        for mode in ("native", "proxy"):
            out[mode] = start_weedpy_volume(work, master, extra=[f"-mode={mode}", f"-config_dir={conf}"], name=mode)
        yield out
    finally:
        for p in out.values():
            p.stop()


@contextlib.contextmanager
def _connect(server: VolumeProc, source: str) -> Iterator[socket.socket]:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE, source_address=(source, 0))
    try:
        yield s
    finally:
        s.close()


def _head(length: int) -> bytes:
    return (b"POST /3,01637037d6 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


def _read_answer(s: socket.socket, buf: bytearray) -> tuple[int, bool]:
    """Read one answer off `buf`/the socket: (status, whether it says Connection: close)."""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        assert data, f"closed before an answer: {bytes(buf)!r}"
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    length = int(fields.get(b"content-length", b"0"))
    while len(rest) < length:
        data = s.recv(65536)
        assert data, "closed in the middle of an answer"
        rest += data
    buf[:] = rest[length:]
    return int(lines[0].split()[1]), fields.get(b"connection", b"").lower() == b"close"


def _ends(s: socket.socket) -> str:
    """How the connection ends after the answer: "closed" (EOF or a reset) or "open"."""
    s.settimeout(5.0)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return "open"
    except OSError:
        pass
    return "closed"


def _slow_small_body(server: VolumeProc, source: str) -> tuple[int, bool, int]:
    """100 KiB in slow pieces, read only after: (status, Connection: close, next request's status)."""
    with _connect(server, source) as s:
        s.sendall(_head(100 * KIB))
        for _ in range(10):
            s.sendall(b"s" * (10 * KIB))
            time.sleep(0.1)  # the pieces arrive after the server has decided
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = bytearray()
        status, close = _read_answer(s, buf)
        next_status = _read_answer(s, buf)[0] if not close else 0
        return status, close, next_status


def _large_body(server: VolumeProc, source: str) -> tuple[int, bool, str]:
    """1 MiB declared, 64 KiB sent, then the answer read: (status, Connection: close, end)."""
    with _connect(server, source) as s:
        s.sendall(_head(1024 * KIB) + b"l" * (64 * KIB))
        buf = bytearray()
        status, close = _read_answer(s, buf)
        return status, close, _ends(s)


@pytest.mark.parametrize("refusal", sorted(SOURCES))
def test_slow_small_body_of_a_refused_post_is_read_as_go_reads_it(servers: dict[str, VolumeProc], refusal: str) -> None:
    got = {name: _slow_small_body(server, SOURCES[refusal]) for name, server in servers.items()}
    assert got["go"] == (401, False, 200), got  # Go read the body, answered, and served the next request
    assert got == {name: got["go"] for name in got}


@pytest.mark.parametrize("refusal", sorted(SOURCES))
def test_large_body_of_a_refused_post_closes_as_go_closes(servers: dict[str, VolumeProc], refusal: str) -> None:
    got = {name: _large_body(server, SOURCES[refusal]) for name, server in servers.items()}
    assert got["go"] == (401, True, "closed"), got
    assert got == {name: got["go"] for name in got}


def test_the_refusals_are_the_jwt_and_the_whitelist(servers: dict[str, VolumeProc]) -> None:
    """The refusals above are the two kinds: the JWT's ("wrong jwt") and the whitelist's (empty)."""
    for name, server in servers.items():
        bodies = {}
        for refusal, source in SOURCES.items():
            with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=DEADLINE) as c:
                r = c.post(f"{server.url}/3,01637037d6", content=b"x")
                bodies[refusal] = (r.status_code, r.content)
        assert bodies["jwt"][0] == bodies["whitelist"][0] == 401, (name, bodies)
        assert b"jwt" in bodies["jwt"][1] and bodies["whitelist"][1] == b"", (name, bodies)
