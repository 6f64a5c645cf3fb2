"""Harness for the hostile-input tests: a raw-socket HTTP client, a recording tap in front of the
Go backend of a proxy-mode weedpy, and the three servers the corpus runs against.

The tap is how a test sees "exactly what Go saw": proxy mode is started with `-weedBinary` set to a
small wrapper that moves Go's HTTP listener to another port and listens on the port the gateway
dials, copying every byte through and appending the gateway-to-Go direction of each connection to
a file. The test then reads those files back as requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httptools

from tests.support.procs import MasterProc, VolumeProc, start_go_volume
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.http1 import NEED_DATA, ProtocolError, Request, ServerConnection, Data, EndOfMessage
from weedpy.weedbin import find_weed_binary

__all__ = [
    "RawResponse", "raw_exchange", "parse_responses", "parse_requests", "SeenRequest", "write_tap_wrapper",
    "tap_requests", "Servers", "start_servers", "allocate", "upload",
]


@dataclasses.dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    body: bytes


class _ResponseCollector:
    def __init__(self) -> None:
        self.done: list[RawResponse] = []
        self.open: RawResponse | None = None  # a response whose head is complete
        self._body = bytearray()
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self._body = bytearray()
        self.open = None

    def on_headers_complete(self) -> None:
        self.open = RawResponse(self.parser.get_status_code(), b"")

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        self.open = None
        if status >= 200:  # 100 Continue and friends are not answers
            self.done.append(RawResponse(status, bytes(self._body)))


def parse_responses(raw: bytes) -> tuple[list[RawResponse], bool]:
    """Every final response in a byte stream the server then closed, and whether the stream parsed
    cleanly to its end (false: the server sent bytes that are not a response). A response whose
    body runs until the close counts once its head is complete."""
    c = _ResponseCollector()
    try:
        c.parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        return c.done, False
    if c.open is not None and c.open.status >= 200:
        c.done.append(RawResponse(c.open.status, bytes(c._body)))
    return c.done, True


def raw_exchange(port: int, payload: bytes, *, timeout: float = 3.0, pieces: list[bytes] | None = None,
                 gap: float = 0.0) -> bytes:
    """Send `payload` (or `pieces`, `gap` seconds apart) on a fresh connection and read until the
    server closes or `timeout` passes with nothing more; returns every byte the server sent."""
    out = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            for i, piece in enumerate(pieces if pieces is not None else [payload]):
                if i and gap:
                    time.sleep(gap)
                s.sendall(piece)
        except OSError:
            pass  # the server may close early (e.g. after a 400); read what it sent
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            except OSError:
                break
            if not data:
                break
            out += data
    return bytes(out)


@dataclasses.dataclass(frozen=True, slots=True)
class SeenRequest:
    method: bytes
    target: bytes
    body: bytes


def parse_requests(raw: bytes) -> tuple[list[SeenRequest], str | None]:
    """Requests in a client-to-server byte stream as our HTTP/1.1 reader frames them, and the error
    that stopped it (None when the stream ended on a request boundary)."""
    conn = ServerConnection()
    conn.receive_data(raw)
    conn.receive_data(b"")
    out: list[SeenRequest] = []
    head: Request | None = None
    body = bytearray()
    try:
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                return out, "incomplete"
            if isinstance(ev, Request):
                head, body = ev, bytearray()
            elif isinstance(ev, Data):
                body += ev.data
            elif isinstance(ev, EndOfMessage):
                assert head is not None
                out.append(SeenRequest(head.method, head.target, bytes(body)))
                head = None
            else:
                return out, None
    except ProtocolError as exc:
        return out, str(exc)


# -- the tap in front of Go -------------------------------------------------------------------

_WRAPPER = '''\
#!{python}
"""weed, with its HTTP listener behind a recording tap (tests/reliability/hostile)."""
import os, signal, socket, subprocess, sys, threading, itertools
REAL = {weed!r}
RECORD = {record!r}
argv = sys.argv[1:]
front = None
if "volume" in argv:
    for i, a in enumerate(argv):
        if a.startswith("-port="):
            front = int(a.split("=", 1)[1])
    if front is not None:
        s = socket.socket(); s.bind(("127.0.0.1", 0)); hidden = s.getsockname()[1]; s.close()
        argv = [("-port=%d" % hidden) if a == "-port=%d" % front else
                ("-port.public=%d" % hidden) if a == "-port.public=%d" % front else a for a in argv]
child = subprocess.Popen([REAL, *argv])
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda n, f: child.send_signal(n))
def pump(src, dst, path):
    f = open(path, "ab") if path else None
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if f:
                f.write(data); f.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        if f:
            f.close()
        for s in (src, dst):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def serve():
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", front)); ls.listen(512)
    for n in itertools.count():
        c, _ = ls.accept()
        for _ in range(200):
            try:
                g = socket.create_connection(("127.0.0.1", hidden)); break
            except OSError:
                import time; time.sleep(0.05)
        else:
            c.close(); continue
        threading.Thread(target=pump, args=(c, g, os.path.join(RECORD, "conn-%06d.bin" % n)), daemon=True).start()
        threading.Thread(target=pump, args=(g, c, None), daemon=True).start()
if front is not None:
    threading.Thread(target=serve, daemon=True).start()
sys.exit(child.wait())
'''


def write_tap_wrapper(workdir: Path) -> tuple[Path, Path]:
    """A `-weedBinary` for proxy mode whose Go sees its HTTP requests through a recording tap;
    returns (wrapper path, directory of recorded connections)."""
    record = workdir / "tap"
    record.mkdir(parents=True, exist_ok=True)
    wrapper = workdir / "weed-tap"
    wrapper.write_text(_WRAPPER.format(python=sys.executable, weed=str(find_weed_binary()), record=str(record)))
    wrapper.chmod(0o755)
    return wrapper, record


def tap_requests(record: Path) -> list[tuple[str, list[SeenRequest], str | None]]:
    """What Go received on each tapped connection, as requests (name, requests, framing error)."""
    out = []
    for p in sorted(record.glob("conn-*.bin")):
        reqs, err = parse_requests(p.read_bytes())
        out.append((p.name, reqs, err))
    return out


# -- servers ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Servers:
    go: VolumeProc
    native: VolumeProc
    proxy: VolumeProc
    tap: Path

    def by_name(self, name: str) -> VolumeProc:
        return {"go": self.go, "native": self.native, "proxy": self.proxy}[name]


def allocate(server: VolumeProc, vid: int) -> None:
    from tests.native_http.support import allocate_go

    allocate_go(server, vid)


def upload(server: VolumeProc, fid: str, data: bytes) -> None:
    import httpx

    r = httpx.post(f"{server.url}/{fid}", files={"file": ("f.bin", data, "application/octet-stream")}, timeout=30)
    assert r.status_code in (201, 204), (server.url, r.status_code, r.text)


@contextlib.contextmanager
def start_servers(work: Path, master: MasterProc, *, extra: tuple[str, ...] = (), config_dir: Path | None = None,
                  vids: tuple[int, int, int] = (11, 12, 13)) -> Iterator[Servers]:
    """A plain Go volume server, a native weedpy and a proxy-mode weedpy whose Go is tapped, each
    with one volume of its own (ids `vids`, in that order)."""
    wrapper, record = write_tap_wrapper(work)
    cfg = [f"-config_dir={config_dir}"] if config_dir else []
    started: list[VolumeProc] = []
    try:
        go = start_go_volume(work, master, extra=list(extra), name="go", config_dir=config_dir)
        started.append(go)
        native = start_weedpy_volume(work, master, extra=["-mode=native", *cfg, *extra], name="native")
        started.append(native)
        proxy = start_weedpy_volume(work, master, extra=["-mode=proxy", f"-weedBinary={wrapper}", *cfg, *extra],
                                    name="proxy")
        started.append(proxy)
        for server, vid in zip(started, vids):
            allocate(server, vid)
        yield Servers(go, native, proxy, record)
    finally:
        for p in reversed(started):
            p.stop()
