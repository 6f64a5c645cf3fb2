"""Harness for the native core tests: native and Go volume servers as real processes, each with
its own master when they must not see each other, and a synchronous gRPC helper."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import trio

from proto import volume_server_pb2 as vs
from tests.support import logs
from tests.support.waiting import wait_until
from tests.support.procs import MasterProc, VolumeProc, clean_env, start_go_volume, start_master, wait_for_volume_server
from tests.support.weedpy_proc import start_weedpy_volume
from weedpy.grpc import Channel, GrpcError

__all__ = ["Outcome", "call", "start_native", "start_go", "go_and_native_cluster", "lookup_urls", "Side"]

VS = "/volume_server_pb.VolumeServer/"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """An rpc's result: the response, or Go's error (status name and message)."""

    response: Any = None
    status: str = "OK"
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def call(grpc_port: int, method: str, request: Any, response_type: type, *, timeout: float = 20, service: str = VS) -> Outcome:
    async def run() -> Outcome:
        async with Channel("127.0.0.1", grpc_port) as ch:
            try:
                return Outcome(await ch.unary_unary(service + method, request, response_type, timeout=timeout))
            except GrpcError as exc:
                return Outcome(None, exc.status.name, exc.message)

    return trio.run(run)


def start_native(
    workdir: Path, master: MasterProc, *, name: str = "native", extra: Sequence[str] = (), data_dir: Path | None = None,
) -> VolumeProc:
    """`weedpy-volume -mode=native`, ready once /healthz says 200 (started again on fresh ports if
    one was taken; stopped again if it never is ready)."""
    return start_weedpy_volume(workdir, master, name=name, extra=["-mode=native", *extra], data_dir=data_dir)


def start_go(workdir: Path, master: MasterProc, *, name: str = "go", extra: Sequence[str] = (), **kw: Any) -> VolumeProc:
    return start_go_volume(workdir, master, name=name, extra=list(extra), **kw)


@contextlib.contextmanager
def go_and_native_cluster(work: Path) -> Iterator[tuple[MasterProc, VolumeProc, VolumeProc]]:
    """One master with a Go volume server and a native one, both registered. Go trusts loopback
    peers (`-volume.allowUntrustedRemoteEndpoints`, as the upstream harness starts it), so it can
    copy from the native server; native trusts servers its master lists."""
    master = start_master(work)
    go = native = None
    try:
        go = start_go(work, master, extra=["-volume.allowUntrustedRemoteEndpoints"])
        native = start_native(work, master)
        wait_for_volume_server(master, f"127.0.0.1:{go.port}")
        wait_for_volume_server(master, f"127.0.0.1:{native.port}")
        yield master, go, native
    finally:
        for p in (native, go):
            if p is not None:
                p.stop()
        master.stop()




def lookup_urls(master: MasterProc, vid: int) -> list[str]:
    try:
        doc = httpx.get(f"{master.url}/dir/lookup", params={"volumeId": vid}, timeout=5).json()
    except httpx.HTTPError:
        return []
    return sorted(loc["url"] for loc in doc.get("locations") or [])


@dataclasses.dataclass
class Side:
    """One server under comparison and its own master."""

    name: str
    master: MasterProc
    volume: VolumeProc

    @property
    def grpc(self) -> int:
        return self.volume.grpc_port

    @property
    def url(self) -> str:
        return self.volume.url

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.volume.port}"

    def stop(self) -> None:
        self.volume.stop()
        self.master.stop()


def start_pair_sides(workdir: Path, *, native_extra: Sequence[str] = (), go_extra: Sequence[str] = ()) -> tuple[Side, Side]:
    """A Go and a native volume server, each registered with a master of its own."""
    started: list = []
    try:
        gm = start_master(workdir / "go-side")
        started.append(gm)
        nm = start_master(workdir / "native-side")
        started.append(nm)
        go = start_go(workdir / "go-side", gm, extra=go_extra)
        started.append(go)
        native = start_native(workdir / "native-side", nm, extra=native_extra)
    except BaseException:
        for proc in reversed(started):  # a server that never came up must not leave the others running
            proc.stop()
        raise
    return Side("go", gm, go), Side("weedpy", nm, native)


__all__.append("start_pair_sides")


def start_mixed(tmp_path: Path, master: MasterProc, data: Path, *, workers: int = 1, extra: Sequence[str] = (),
                env: dict[str, str] | None = None) -> VolumeProc:
    """A mixed-mode server on `data`, its worker processes (if any) ready."""
    server = start_weedpy_volume(tmp_path, master, extra=["-mode=mixed", f"-workers={workers}", *extra], data_dir=data,
                                 env=clean_env(env))
    if workers > 1:
        wait_until(lambda: any(e.get("event") == "worker ready" for e in logs.log_events(server.proc.log_path)),
                        what="the worker processes")
    return server


def allocate_volume(server: VolumeProc, vid: int) -> None:
    out = call(server.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3),
               vs.AllocateVolumeResponse)
    assert out.ok, out


def move_volume(server: VolumeProc, vid: int, to: str, timeout: float = 60) -> dict:
    """Move a volume of a mixed server to `to` (`native` or `go`) and check it moved."""
    r = httpx.post(f"{server.url}/weedpy/volumes/{vid}/move?to={to}", timeout=timeout)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["outcome"] == "moved" and doc["to"] == to, doc
    return doc
