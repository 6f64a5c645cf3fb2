"""The soak: two native servers on one master under mixed load, with vacuum, EC encoding and
volume moves in the background and kill -9 of one of them every few minutes; after each kill
the client's ledger (`ledger.py`) checks every key.

Where each volume lives is the soak's own routing table: a move marks the volume read-only on
its server, copies it to the other (VolumeCopy), points the table there, then deletes the source
copy; writes to a read-only volume are refused, never acknowledged, so the copy holds every
acknowledged write. A kill can cut any background step; after the restart the table is the
authority: the volume's copies elsewhere are deleted, leftover EC shards too (a complete set of
them is what a restart serves, as Go's does: the .dat is mounted again once they are gone), and
the volume is marked writable again, before the ledger reads every key. Each EC encode checks
that the ten data shards hold the .dat's bytes in Go's layout. The load pauses for that check (a
read racing a write would be judged against a value not yet acknowledged).
"""

from __future__ import annotations

import collections
import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from proto import volume_server_pb2 as vs
from tests.reliability.ledger import Ledger, check_all, run_writers
from tests.reliability.servers import Crashable
from weedpy.grpc import Channel, GrpcError

__all__ = ["Soak", "ActionFailed", "VIDS"]

VIDS = (1, 2, 3, 4)
KEYS_PER_VID = 40
P = "/volume_server_pb.VolumeServer/"
EC_FILES = [f".ec{i:02d}" for i in range(14)] + [".ecx"]


class ActionFailed(Exception):
    """A background step did not complete (a kill cut it, or the server refused it)."""


_REFUSALS = (GrpcError, OSError, trio.TooSlowError)  # the server said no, or was not there


def _call(method: str, run: Callable[[], Any]) -> Any:
    """`trio.run(run)`; a refusal or a server that is down becomes ActionFailed (anything
    else, a bug, propagates)."""
    try:
        return trio.run(run)
    except _REFUSALS as exc:
        raise ActionFailed(f"{method}: {exc!r}") from None
    except ExceptionGroup as group:
        if group.split(_REFUSALS)[1] is None:
            raise ActionFailed(f"{method}: {group.exceptions[0]!r}") from None
        raise


def _data_shards_differ(dat: Path, shards: list[Path], block: int = 1 << 20) -> str | None:
    """Whether the ten data shards hold the volume's bytes as Go lays them out for a volume under
    10 GiB (read-only meanwhile): the .dat in rows of ten 1 MiB blocks, block k of each row in
    shard k, the last row zero-padded. What differs first, or None."""
    with dat.open("rb") as d:
        handles = [s.open("rb") for s in shards]
        try:
            row = 0
            while True:
                data = d.read(10 * block)
                if not data:
                    break
                for k, h in enumerate(handles):
                    want = data[k * block:(k + 1) * block]
                    got = h.read(block)
                    if got[:len(want)] != want or got[len(want):].strip(b"\0"):
                        return f"shard {k} differs from the .dat in row {row}"
                row += 1
            if any(h.read(1) for h in handles):
                return "a data shard is longer than the .dat's rows"
        finally:
            for h in handles:
                h.close()
    return None


def _unary(port: int, method: str, request: Any, response_type: type, timeout: float = 120) -> Any:
    async def run() -> Any:
        async with Channel("127.0.0.1", port) as ch:
            return await ch.unary_unary(P + method, request, response_type, timeout=timeout)

    return _call(method, run)


def _stream(port: int, method: str, request: Any, response_type: type, timeout: float = 300) -> list[Any]:
    async def run() -> list[Any]:
        out = []
        async with Channel("127.0.0.1", port) as ch:
            async with ch.unary_stream(P + method, request, response_type, timeout=timeout) as responses:
                async for msg in responses:
                    out.append(msg)
        return out

    return _call(method, run)


def _volumes(server: Crashable) -> dict[int, dict]:
    r = httpx.get(f"{server.url}/status", timeout=20)
    return {v["Id"]: v for v in r.json().get("Volumes") or []}


def _listed(server: Crashable) -> set[int]:
    return set(_volumes(server))


@dataclasses.dataclass
class Soak:
    servers: list[Crashable]
    led: Ledger
    rng: random.Random
    route: dict[int, int] = dataclasses.field(default_factory=dict)  # volume id -> index in servers
    done: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    interrupted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    repairs: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    kills: int = 0
    checks: int = 0
    ec_bytes: int = 0
    moved_bytes: int = 0
    log: list[str] = dataclasses.field(default_factory=list)

    def url_for(self, vid: int) -> str:
        return self.servers[self.route[vid]].url

    def _grpc(self, i: int) -> int:
        proc = self.servers[i].proc
        if proc is None:
            raise ActionFailed(f"server {i} is down")
        return proc.grpc_port

    # background steps (blocking; run in a thread) -----------------------------------------------

    def vacuum(self, vid: int) -> None:
        port = self._grpc(self.route[vid])
        _unary(port, "VacuumVolumeCheck", vs.VacuumVolumeCheckRequest(volume_id=vid), vs.VacuumVolumeCheckResponse)
        _stream(port, "VacuumVolumeCompact", vs.VacuumVolumeCompactRequest(volume_id=vid),
                vs.VacuumVolumeCompactResponse)
        _unary(port, "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=vid), vs.VacuumVolumeCommitResponse)
        _unary(port, "VacuumVolumeCleanup", vs.VacuumVolumeCleanupRequest(volume_id=vid),
               vs.VacuumVolumeCleanupResponse)

    def ec_encode(self, vid: int) -> None:
        """Read-only, generate the 14 shards and the .ecx (checked on disk), delete them, writable."""
        i = self.route[vid]
        port = self._grpc(i)
        _unary(port, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=vid), vs.VolumeMarkReadonlyResponse)
        try:
            _unary(port, "VolumeEcShardsGenerate", vs.VolumeEcShardsGenerateRequest(volume_id=vid),
                   vs.VolumeEcShardsGenerateResponse, timeout=600)
            files = [self.servers[i].data_dir / f"{vid}{ext}" for ext in EC_FILES]
            missing = [f.name for f in files if not f.exists()]
            if missing:
                raise ActionFailed(f"EC encode of volume {vid} left no {missing}")
            wrong = _data_shards_differ(self.servers[i].data_dir / f"{vid}.dat", files[:10])
            if wrong:
                raise ActionFailed(f"EC encode of volume {vid}: {wrong}")
            self.ec_bytes += sum(f.stat().st_size for f in files)
            _unary(port, "VolumeEcShardsDelete", vs.VolumeEcShardsDeleteRequest(volume_id=vid, shard_ids=list(range(14))),
                   vs.VolumeEcShardsDeleteResponse)
        finally:
            _unary(port, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=vid),
                   vs.VolumeMarkWritableResponse)

    def move(self, vid: int) -> None:
        """To the other server: read-only here, VolumeCopy there, route there, delete here."""
        src = self.route[vid]
        dst = 1 - src
        src_port, dst_port = self._grpc(src), self._grpc(dst)
        source = self.servers[src].proc
        assert source is not None
        try:
            size = _volumes(self.servers[src]).get(vid, {}).get("Size", 0)
        except httpx.HTTPError as exc:
            raise ActionFailed(f"status of server {src}: {exc!r}") from None
        _unary(src_port, "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=vid),
               vs.VolumeMarkReadonlyResponse)
        try:
            _stream(dst_port, "VolumeCopy", vs.VolumeCopyRequest(
                volume_id=vid, source_data_node=f"127.0.0.1:{source.port}.{source.grpc_port}"), vs.VolumeCopyResponse)
            _unary(dst_port, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=vid),
                   vs.VolumeMarkWritableResponse)
        except ActionFailed:
            _unary(src_port, "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=vid),
                   vs.VolumeMarkWritableResponse)
            raise
        self.moved_bytes += size
        self.route[vid] = dst
        time.sleep(1)  # requests already sent to the source finish there
        _unary(src_port, "VolumeDelete", vs.VolumeDeleteRequest(volume_id=vid), vs.VolumeDeleteResponse)

    def repair(self) -> None:
        """After a restart: each volume only where the table says, no EC shards left, writable."""
        for vid in VIDS:
            home = self.route[vid]
            for i, server in enumerate(self.servers):
                if i != home and vid in _listed(server):
                    _unary(self._grpc(i), "VolumeDelete", vs.VolumeDeleteRequest(volume_id=vid),
                           vs.VolumeDeleteResponse)
                    self.repairs["stray_copy_deleted"] += 1
            data_dir = self.servers[home].data_dir
            if any((data_dir / f"{vid}{ext}").exists() for ext in EC_FILES):
                # an encode the kill cut: a complete set of shards is what a restart serves (as
                # Go does, the .dat beside it is not loaded); delete it and mount the .dat again
                _unary(self._grpc(home), "VolumeEcShardsDelete",
                       vs.VolumeEcShardsDeleteRequest(volume_id=vid, shard_ids=list(range(14))), vs.VolumeEcShardsDeleteResponse)
                self.repairs["ec_shards_deleted"] += 1
                if vid not in _listed(self.servers[home]):
                    _unary(self._grpc(home), "VolumeMount", vs.VolumeMountRequest(volume_id=vid), vs.VolumeMountResponse)
            if vid not in _listed(self.servers[home]):
                self.led.violation(f"volume {vid} is not on server {home}, where the last completed move put it")
                continue
            _unary(self._grpc(home), "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=vid),
                   vs.VolumeMarkWritableResponse)

    # the run -----------------------------------------------------------------------------------

    async def _actor(self, stop: trio.Event, gap: tuple[float, float]) -> None:
        steps: dict[str, Callable[[int], None]] = {"vacuum": self.vacuum, "ec_encode": self.ec_encode,
                                                   "move": self.move}
        while True:
            with trio.move_on_after(self.rng.uniform(*gap)):
                await stop.wait()
            if stop.is_set():
                return
            kind = self.rng.choice(sorted(steps))
            vid = self.rng.choice(VIDS)
            t0 = time.monotonic()
            try:
                await trio.to_thread.run_sync(steps[kind], vid)
            except ActionFailed as exc:
                self.interrupted[kind] += 1
                self.log.append(f"{kind} {vid} cut: {exc}")
            else:
                self.done[kind] += 1
                self.log.append(f"{kind} {vid} {time.monotonic() - t0:.1f}s")

    async def run(self, seconds: float, kill_every: tuple[float, float], action_gap: tuple[float, float],
                  progress: Callable[[dict], None]) -> None:
        """Rounds of load with background steps, each ended by kill -9 of a random server, its
        restart, the repair and the ledger's check, until `seconds` have passed."""
        end = time.monotonic() + seconds
        round_no = 0
        while time.monotonic() < end and not self.led.violations:
            round_no += 1
            length = min(self.rng.uniform(*kill_every), max(1.0, end - time.monotonic()))
            victim = self.rng.randrange(len(self.servers))
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: run_writers(self.url_for, self.led, stop, writers=12, seed=round_no,
                                                       max_size=256 * 1024, timeout=30, pause=0.005))
                nursery.start_soon(self._actor, stop, action_gap)
                await trio.sleep(length)
                await trio.to_thread.run_sync(self.servers[victim].kill)
                self.kills += 1
                await trio.sleep(self.rng.uniform(0.0, 2.0))  # the load meets the dead server a moment
                stop.set()
            await trio.to_thread.run_sync(self.servers[victim].start)
            await trio.sleep(2)  # the master hears of the restarted server (VolumeCopy asks it)
            try:
                await trio.to_thread.run_sync(self.repair)
            except ActionFailed as exc:
                self.led.violation(f"repair after kill {self.kills}: {exc}")
            await check_all(self.url_for, self.led)
            self.checks += 1
            progress(self.figures())

    def figures(self) -> dict:
        led = self.led
        return dict(kills=self.kills, checks=self.checks, acked_writes=led.acked_writes,
                    acked_deletes=led.acked_deletes, acked_mib=round(led.acked_bytes / 2**20, 1),
                    unknown_ops=led.unknown, unknown_applied=led.unknown_applied, reads_checked=led.reads_checked,
                    vacuums=self.done["vacuum"], ec_encodes=self.done["ec_encode"], moves=self.done["move"],
                    steps_cut=sum(self.interrupted.values()), stray_copies_deleted=self.repairs["stray_copy_deleted"],
                    ec_leftovers_deleted=self.repairs["ec_shards_deleted"], ec_mib=round(self.ec_bytes / 2**20, 1),
                    moved_mib=round(self.moved_bytes / 2**20, 1), violations=len(led.violations))
