"""In-process native gRPC server for handler tests: the real `build_router` over a temp-dir Store,
served on a loopback port inside the test's trio loop, with a client that returns Go-style
outcomes. Nothing here starts Go; see test_*_go.py for that."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import trio

from weedpy.serve.guard import Guard
from native.context import NativeContext, go_version
from native.grpc import Services, StateFile, build_router
from native.storage import Needle, Store
from proto import master_pb2
from proto import volume_server_pb2 as vs
from tests.support.procs import free_port
from weedpy.config import parse_volume_args
from weedpy.grpc import Channel, GrpcError, serve_listeners
from weedpy.http1 import UpstreamPool
from weedpy.security import SecurityConfig

__all__ = ["Served", "serve_native", "native_services", "Outcome", "needle"]

P = "/volume_server_pb.VolumeServer/"


@dataclasses.dataclass(frozen=True)
class Outcome:
    response: Any = None
    status: str = "OK"
    message: str = ""
    messages: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == "OK"


class _NoMasterLookup:
    async def lookup_volume(self, vid: int):
        raise LookupError(f"volume id {vid} not found")

    def invalidate(self, vid: int) -> None:
        pass

    def current_master(self) -> str | None:
        return None


class _FakeMaster:
    def __init__(self) -> None:
        self.changes = 0

    def notify_changed(self) -> None:
        self.changes += 1

    def stop_heartbeat_nowait(self) -> bool:
        return True

    def is_known_master(self, target: str) -> bool:
        return False

    async def ping(self, target: str) -> int:
        return 0

    async def mark_volume_readonly(self, req: master_pb2.VolumeMarkReadonlyRequest) -> None:
        return None


@dataclasses.dataclass
class Served:
    store: Store
    port: int
    svc: Services
    data_dir: Path
    master: _FakeMaster

    @property
    def address(self) -> str:
        """Go's `ip:port.grpcPort` form (the HTTP port is not served in-process)."""
        return f"127.0.0.1:1.{self.port}"

    async def call(self, method: str, request: Any, response_type: type, timeout: float = 30) -> Outcome:
        async with Channel("127.0.0.1", self.port) as ch:
            try:
                return Outcome(await ch.unary_unary(P + method, request, response_type, timeout=timeout))
            except GrpcError as exc:
                return Outcome(None, exc.status.name, exc.message)

    async def stream(self, method: str, request: Any, response_type: type, timeout: float = 60) -> Outcome:
        out: list = []
        async with Channel("127.0.0.1", self.port) as ch:
            try:
                async with ch.unary_stream(P + method, request, response_type, timeout=timeout) as responses:
                    async for msg in responses:
                        out.append(msg)
            except GrpcError as exc:
                return Outcome(None, exc.status.name, exc.message, tuple(out))
        return Outcome(None, messages=tuple(out))

    async def client_stream(self, method: str, requests: Sequence[Any], response_type: type) -> Outcome:
        async with Channel("127.0.0.1", self.port) as ch:
            try:
                return Outcome(await ch.stream_unary(P + method, list(requests), response_type, timeout=30))
            except GrpcError as exc:
                return Outcome(None, exc.status.name, exc.message)

    async def set_maintenance(self, on: bool = True) -> None:
        state = self.svc.state_file.proto()
        self.svc.state_file.update(vs.VolumeServerState(maintenance=on, version=state.version))


@contextlib.contextmanager
def native_services(
    data_dir: Path, *, grpc_port: int = 1, flags: Sequence[str] = (), whitelist: Sequence[str] = (),
    volumes: Sequence[int] = (),
) -> Iterator[Services]:
    """What `build_router` takes: a real NativeContext over a Store in `data_dir` (closed on exit),
    a fake master, the state file and the whitelist guard. Nothing is served or bound here; the
    HTTP port only appears in messages (`volume server IP:PORT is in maintenance mode`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [f"-port={free_port()}", f"-port.grpc={grpc_port}", "-ip=127.0.0.1", f"-dir={data_dir}", "-max=50",
            "-master=127.0.0.1:1", *flags]
    cfg = parse_volume_args(argv, environ={})
    store = Store.open([str(data_dir)], max_counts=50)
    try:
        for vid in volumes:
            store.allocate_volume(vid)
        ctx = NativeContext(
            cfg=cfg, security=SecurityConfig(), store=store, version=go_version(5), master=_NoMasterLookup(),
            http_pool=UpstreamPool(),
        )
        yield Services(ctx, _FakeMaster(), StateFile(str(data_dir)), Guard.from_entries(whitelist))
    finally:
        store.close()


@contextlib.asynccontextmanager
async def serve_native(
    data_dir: Path, *, flags: Sequence[str] = (), whitelist: Sequence[str] = (), volumes: Sequence[int] = (),
) -> AsyncIterator[Served]:
    # The listener is bound first, on a port the OS picks, so no other process can take it
    # between choosing the port and binding it.
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    listener = trio.SocketListener(sock)
    try:
        with native_services(data_dir, grpc_port=port, flags=flags, whitelist=whitelist, volumes=volumes) as svc:
            router = build_router(svc)
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_listeners, [listener], router)
                try:
                    yield Served(svc.ctx.store, port, svc, data_dir, svc.master)  # type: ignore[arg-type]
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        await listener.aclose()


def needle(nid: int, data: bytes, cookie: int = 0xABCD, **kw: Any) -> Needle:
    kw.setdefault("name", "a.txt")
    kw.setdefault("mime", "text/plain")
    kw.setdefault("last_modified", 1_700_000_000)
    return Needle.create(nid, cookie, data, **kw)
