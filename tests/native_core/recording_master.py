"""A fake master that records what a volume server sends it: heartbeats (every message of every
SendHeartbeat stream, in order) and VolumeMarkReadonly notices. It answers the first heartbeat
of a stream as a Go leader does (volume size limit, itself as leader) and serves
GetMasterConfiguration and Ping. Runs its own trio loop in a thread, for process tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import trio

from proto import master_pb2
from proto.services import RPCS
from tests.support.procs import free_port_pair
from weedpy.grpc import Context, Router, serve_listeners

__all__ = ["RecordingMaster"]

M = "/master_pb.Seaweed/"


class RecordingMaster:
    def __init__(self, volume_size_limit: int = 32 << 20) -> None:
        self.http_port, self.grpc_port = free_port_pair()
        self.limit = volume_size_limit
        self.heartbeats: list[master_pb2.Heartbeat] = []
        self.marks: list[master_pb2.VolumeMarkReadonlyRequest] = []
        self.streams = 0
        self.leader_override: str | None = None
        self.locations: dict[str, list[master_pb2.Location]] = {}  # LookupVolume answers by volume id
        self.lookups = 0
        self._lock = threading.Lock()
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self, *, fresh_ports_if_taken: bool = True) -> "RecordingMaster":
        """Serve on grpc_port (the volume server dials the master's port + 10000). If someone took
        the picked port in the meantime, pick another pair, unless the ports were set on purpose
        (`fresh_ports_if_taken=False`: a master coming back at the same address)."""
        ready = threading.Event()
        failed: list[BaseException] = []

        async def main() -> None:
            self._stop = trio.Event()
            self._token = trio.lowlevel.current_trio_token()
            for attempt in range(3):
                try:
                    listeners = await trio.open_tcp_listeners(self.grpc_port, host="127.0.0.1")
                    break
                except OSError:
                    if not fresh_ports_if_taken or attempt == 2:
                        raise
                    self.http_port, self.grpc_port = free_port_pair()
            async with trio.open_nursery() as n:
                await n.start(serve_listeners, listeners, self._router())
                ready.set()
                await self._stop.wait()
                n.cancel_scope.cancel()

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as exc:  # re-raised by start()
                failed.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise TimeoutError("the recording master did not start serving in 30s")
        if failed:
            raise RuntimeError(f"the recording master could not start: {failed[0]!r}") from failed[0]
        return self

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            try:
                self._token.run_sync_soon(self._stop.set)  # callable from any thread, trio or not
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(10)

    def _router(self) -> Router:
        r = Router()

        async def heartbeat(requests, ctx: Context):
            with self._lock:
                self.streams += 1
            first = True
            async for hb in requests:
                with self._lock:
                    self.heartbeats.append(hb)
                if first:
                    first = False
                    yield master_pb2.HeartbeatResponse(
                        volume_size_limit=self.limit, leader=self.leader_override or self.address,
                    )

        async def configuration(req, ctx: Context) -> master_pb2.GetMasterConfigurationResponse:
            return master_pb2.GetMasterConfigurationResponse(leader=self.address, volume_size_limit_m_b=self.limit >> 20)

        async def mark(req, ctx: Context) -> master_pb2.VolumeMarkReadonlyResponse:
            with self._lock:
                self.marks.append(req)
            return master_pb2.VolumeMarkReadonlyResponse()

        async def ping(req, ctx: Context) -> master_pb2.PingResponse:
            now = time.time_ns()
            return master_pb2.PingResponse(start_time_ns=now, stop_time_ns=now)

        async def lookup(req, ctx: Context) -> master_pb2.LookupVolumeResponse:
            resp = master_pb2.LookupVolumeResponse()
            with self._lock:
                self.lookups += 1
            for vid in req.volume_or_file_ids:
                entry = resp.volume_id_locations.add(volume_or_file_id=vid)
                if vid in self.locations:
                    entry.locations.extend(self.locations[vid])
                else:
                    entry.error = f"volume id {vid} not found"
            return resp

        r.add(RPCS[M + "LookupVolume"], lookup)
        r.add(RPCS[M + "SendHeartbeat"], heartbeat)
        r.add(RPCS[M + "GetMasterConfiguration"], configuration)
        r.add(RPCS[M + "VolumeMarkReadonly"], mark)
        r.add(RPCS[M + "Ping"], ping)
        return r

    def snapshot(self) -> list[master_pb2.Heartbeat]:
        with self._lock:
            return list(self.heartbeats)

    def wait_for(self, predicate: Callable[[list[master_pb2.Heartbeat]], bool], timeout: float = 15.0) -> list[master_pb2.Heartbeat]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if predicate(got):
                return got
            time.sleep(0.05)
        raise TimeoutError(f"heartbeats never satisfied the condition; got {len(self.snapshot())}")
