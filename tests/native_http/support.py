"""Harness for native HTTP tests: a NativeHttp served in-process (own trio loop in a thread, or
trio as the guest of uvloop with the reads and uploads served from uvloop's callbacks) over a
temp-dir Store, a master lookup over the master's HTTP API, and Go counterparts with the same
volumes so the same requests can go to both."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import httpx
import trio

from native.context import Location, NativeContext
from native.http.app import NativeHttp
from native.http.uv_serve import NativeUvHttp
from native.storage import Store
from tests.support.procs import MasterProc, VolumeProc, start_go_volume, start_master
from weedpy.config import parse_volume_args
from weedpy.http1 import UpstreamPool, serve_connection
from weedpy.http1._fastio import listening_socket, serve_fast
from weedpy.security import SecurityConfig
from weedpy.serve.http_front import FrontState, HttpFront
from weedpy.serve.routes import Target, native_route_table
from weedpy.serve.uv_host import run_trio_on_uvloop

__all__ = ["HttpMasterLookup", "NativeServer", "start_native", "go_and_native", "grow_go_volumes", "write_security"]


class HttpMasterLookup:
    """MasterLookup over `GET /dir/lookup` (tests only; the server proper uses gRPC).

    The in-process native server never heartbeats, so the master does not know it; with
    `self_location` and `store`, its own volumes are added to the answer as the master would
    list them once it did."""

    def __init__(self, master_url: str | None, self_location: Location | None = None, store: Store | None = None) -> None:
        self.master_url = master_url
        self.self_location = self_location
        self.store = store
        self.invalidated: list[int] = []

    async def lookup_volume(self, vid: int) -> list[Location]:
        mine = [self.self_location] if (self.self_location and self.store and self.store.has_volume(vid)) else []
        if self.master_url is None:
            if mine:
                return mine
            raise LookupError(f"volume id {vid} not found")
        def get() -> dict:
            return httpx.get(f"{self.master_url}/dir/lookup", params={"volumeId": vid}, timeout=10).json()
        doc = await trio.to_thread.run_sync(get)
        if doc.get("error") and not mine:
            raise LookupError(doc["error"])
        locs = [Location(loc["url"], loc["publicUrl"], loc.get("grpcPort", 0)) for loc in doc.get("locations", [])]
        return locs + [m for m in mine if all(l.url != m.url for l in locs)]

    def invalidate(self, vid: int) -> None:
        self.invalidated.append(vid)

    def current_master(self) -> str | None:
        return self.master_url


@dataclasses.dataclass
class NativeServer:
    port: int
    public_port: int
    store: Store
    app: NativeHttp
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"


def write_security(dirpath: Path, text: str) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    p = dirpath / "security.toml"
    p.write_text(text)
    return p


@contextlib.contextmanager
def start_native(
    data_dir: Path, *, flags: tuple[str, ...] = (), master_url: str | None = None,
    security: SecurityConfig | None = None, split_public: bool = False, volumes: tuple[int, ...] = (),
    replication: str = "000", volume_replication: dict[int, str] | None = None, loop: str = "trio",
) -> Iterator[NativeServer]:
    """`loop`: `trio` serves every request through trio's connection loop and `NativeHttp.handle`;
    `uvloop` as a native server process does by default (native/http/uv_serve.py, behind the
    front of native mode's route table)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # Listening sockets first, on ports the OS picks: nobody can take them before they are bound.
    listeners = [("admin", listening_socket("127.0.0.1", 0))]
    if split_public:
        listeners.append(("public", listening_socket("127.0.0.1", 0)))
    port = listeners[0][1].getsockname()[1]
    public_port = listeners[-1][1].getsockname()[1]
    argv = [f"-port={port}", "-port.grpc=1", "-ip=127.0.0.1", f"-dir={data_dir}", "-max=50", f"-port.public={public_port}",
            "-master=127.0.0.1:1", *flags]
    cfg = parse_volume_args(argv, environ={})
    store = Store.open([str(data_dir)], max_counts=50)
    for vid in volumes:
        if not store.has_volume(vid):
            store.allocate_volume(vid, replication=(volume_replication or {}).get(vid, replication))
    ctx = NativeContext(
        cfg=cfg, security=security or SecurityConfig(), store=store, version="8000GB 4.48", full_version="8000GB 4.48 pypi",
        master=HttpMasterLookup(master_url, Location(f"127.0.0.1:{port}", f"127.0.0.1:{public_port}", 1), store),
        http_pool=UpstreamPool(),
    )
    # The server stands in for one registered with the master behind HttpMasterLookup: /healthz
    # answers 200 as a heartbeating Go server's does.
    ctx.state.master_connected = True
    app = NativeHttp(ctx)
    idle = float(cfg.idle_timeout) if cfg.idle_timeout > 0 else 1e9  # as weedpy/serve/lifecycle.py's _idle
    stop = threading.Event()
    started = threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        front = HttpFront(native_route_table(None), {Target.NATIVE: app.handle}, app.guard,
                          ctx.server_header.encode(), FrontState(), meter=ctx.metrics.meter)
        uv = NativeUvHttp(app, front)
        async with trio.open_nursery() as nursery:
            for kind, sock in listeners:
                if loop == "uvloop":
                    nursery.start_soon(uv, sock, kind, front.handle, idle, nursery, None)
                    continue

                async def on_conn(stream, kind=kind) -> None:
                    await serve_connection(stream, app.handle, idle_timeout=idle, port_kind=kind)
                nursery.start_soon(serve_fast, sock, on_conn, nursery)
            started.set()
            while not stop.is_set():
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    def run() -> None:
        try:
            if loop == "uvloop":
                run_trio_on_uvloop(main)
            else:
                trio.run(main)
        except BaseException as exc:  # surfaced by the fixture
            errors.append(exc)
            started.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(10)
    try:
        yield NativeServer(port, public_port, store, app, data_dir)
    finally:
        stop.set()
        t.join(10)
        store.close()
        if errors:
            raise errors[0]


@contextlib.contextmanager
def go_and_native(
    work: Path, *, volumes: int = 2, flags: tuple[str, ...] = (), go_extra: tuple[str, ...] = (),
    config_dir: Path | None = None, split_public: bool = False, **native_kw: Any,
) -> Iterator[tuple[VolumeProc, NativeServer]]:
    """The two sides of a differential test: a plain Go volume server on its own master with
    volumes 1..`volumes` grown, and the native handlers holding the same volume ids.
    `flags` go to both, `go_extra` (and `config_dir`) to Go only, `native_kw` to `start_native`;
    `split_public` gives both a separate public port."""
    master = start_master(work / "m-go")
    try:
        go = start_go_volume(work, master, extra=[*flags, *go_extra], config_dir=config_dir, split_public=split_public)
        try:
            ids = grow_go_volumes(master, go, volumes)
            assert ids == list(range(1, volumes + 1))
            with start_native(work / "native", volumes=tuple(ids), flags=flags, split_public=split_public,
                              **native_kw) as py:
                yield go, py
        finally:
            go.stop()
    finally:
        master.stop()


def grow_go_volumes(master: MasterProc, server: VolumeProc, count: int, replication: str = "000") -> list[int]:
    """Volumes created through the master on a fresh Go server: ids 1..count."""
    from tests.support.procs import wait_for_volume_server

    wait_for_volume_server(master, f"127.0.0.1:{server.port}")
    r = httpx.get(f"{master.url}/vol/grow", params={"count": count, "replication": replication}, timeout=60)
    assert r.status_code == 200, r.text
    ids = []
    for vid in range(1, count + 1):
        doc = httpx.get(f"{master.url}/dir/lookup", params={"volumeId": vid}).json()
        if doc.get("locations"):
            ids.append(vid)
    return ids



def allocate_go(server: VolumeProc, vid: int, replication: str = "000", collection: str = "") -> None:
    """AllocateVolume on a Go volume server over gRPC (the master learns it from heartbeats)."""
    from proto import volume_server_pb2 as vs
    from weedpy.grpc import Channel

    async def run() -> None:
        async with Channel("127.0.0.1", server.grpc_port) as ch:
            await ch.unary_unary(
                "/volume_server_pb.VolumeServer/AllocateVolume",
                vs.AllocateVolumeRequest(volume_id=vid, replication=replication, collection=collection, version=3),
                vs.AllocateVolumeResponse, timeout=30,
            )

    trio.run(run)


def wait_lookup(master: MasterProc, vid: int, count: int, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = httpx.get(f"{master.url}/dir/lookup", params={"volumeId": vid}, timeout=10).json()
        if len(doc.get("locations") or []) >= count:
            return
        time.sleep(0.2)
    raise TimeoutError(f"volume {vid} not at {count} locations: {doc}")


__all__ += ["allocate_go", "wait_lookup"]
