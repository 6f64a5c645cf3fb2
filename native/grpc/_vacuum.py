"""Vacuum rpcs (Go's volume_grpc_vacuum.go, as the 4.48 binary answers them).

VacuumVolumeCheck reports the garbage ratio; VacuumVolumeCompact streams a progress message each
time the compaction passes another 128 MiB of the source `.dat` (so small volumes send none);
VacuumVolumeCommit and VacuumVolumeCleanup finish or discard it. The last three refuse while
the server is in maintenance mode and check the admin whitelist first. A missing volume is
NOT_FOUND (`...: volume not found`), any other failure Unknown with Go's `<step> volume N:`
prefix. The work runs in worker threads (`maintenance_thread`: native/lowprio.py), the
compaction's copy in a child process (native/maintenance_child.py): the compaction advances one
report interval per thread hop, so a cancelled call stops within one interval (and kills the
child).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping

import trio

from native.grpc._common import check_admin, float32, go_error
from native.grpc._guards import check_maintenance
from native.grpc._services import Handler, Services
from native.maintenance_child import compact_copy_in_child, in_child
from native.offload import maintenance_thread
from native.storage import StorageError, VolumeNotFound
from proto import volume_server_pb2 as vs
from weedpy.grpc import Context, Status

__all__ = [
    "HANDLERS", "vacuum_volume_check", "vacuum_volume_compact", "vacuum_volume_commit", "vacuum_volume_cleanup",
    "REPORT_INTERVAL",
]

REPORT_INTERVAL = 128 << 20  # Go reports compaction progress every 128 MiB of source offset


def _not_found(step: str, vid: int, exc: BaseException):
    return go_error(f"{step} volume {vid}: {exc}: volume not found", Status.NOT_FOUND)


def _load_per_cpu() -> float:
    try:
        return float32(os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 0.0


def _advance(steps: Iterator[int], target: int) -> int | None:
    """Run the compaction until it passes `target` (that offset) or finishes (None)."""
    for offset in steps:
        if offset > target:
            return offset
    return None


async def vacuum_volume_check(
    svc: Services, req: vs.VacuumVolumeCheckRequest, ctx: Context,
) -> vs.VacuumVolumeCheckResponse:
    try:
        ratio = await trio.to_thread.run_sync(svc.store.check_compact_volume, req.volume_id)
    except VolumeNotFound as exc:
        raise go_error(f"{exc}: volume not found", Status.NOT_FOUND) from None
    return vs.VacuumVolumeCheckResponse(garbage_ratio=ratio)


async def vacuum_volume_compact(
    svc: Services, req: vs.VacuumVolumeCompactRequest, ctx: Context,
) -> AsyncIterator[vs.VacuumVolumeCompactResponse]:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    vid = req.volume_id
    bytes_per_second = int(svc.ctx.cfg["compactionMBps"] or 0) * 1024 * 1024
    done = _Counted(svc, "compact", "vacuuming_compact_count")
    try:
        try:
            steps = svc.store.compact_volume(vid, preallocate=req.preallocate, bytes_per_second=bytes_per_second,
                                             copy=compact_copy_in_child(REPORT_INTERVAL) if in_child() else None)
        except VolumeNotFound as exc:
            raise _not_found("compact", vid, exc) from None
        target = REPORT_INTERVAL
        try:
            while True:
                try:
                    offset = await maintenance_thread(_advance, steps, target)
                except (StorageError, OSError) as exc:
                    raise go_error(f"compact volume {vid}: {exc}") from None
                if offset is None:
                    done.ok = True
                    return
                yield vs.VacuumVolumeCompactResponse(processed_bytes=offset, load_avg_1m=_load_per_cpu())
                target = offset + REPORT_INTERVAL
        finally:
            steps.close()
    finally:
        done.count()


class _Counted:
    """Go's vacuum metrics around a compact or commit: vacuuming_seconds{type} and the
    success-labelled counter, whatever the outcome."""

    def __init__(self, svc: Services, kind: str, counter: str) -> None:
        self._metrics = svc.ctx.metrics
        self._kind = kind
        self._counter = counter
        self._t0 = time.perf_counter()
        self.ok = False

    def count(self) -> None:
        m = self._metrics
        m.family("vacuuming_seconds").labels(self._kind).observe(time.perf_counter() - self._t0)
        m.family(self._counter).labels("true" if self.ok else "false").inc()


async def vacuum_volume_commit(
    svc: Services, req: vs.VacuumVolumeCommitRequest, ctx: Context,
) -> vs.VacuumVolumeCommitResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    vid = req.volume_id
    done = _Counted(svc, "commit", "vacuuming_commit_count")
    try:
        if svc.ctx.state.stopping:
            raise go_error(f"commit compact volume {vid}: volume id {vid} skips compact because volume is stopping")
        try:
            read_only, size = await maintenance_thread(svc.store.commit_compact_volume, vid)
        except VolumeNotFound as exc:
            raise _not_found("commit compact", vid, exc) from None
        except (StorageError, OSError) as exc:
            raise go_error(f"commit compact volume {vid}: {exc}") from None
        done.ok = True
    finally:
        done.count()
    return vs.VacuumVolumeCommitResponse(is_read_only=read_only, volume_size=size)


async def vacuum_volume_cleanup(
    svc: Services, req: vs.VacuumVolumeCleanupRequest, ctx: Context,
) -> vs.VacuumVolumeCleanupResponse:
    check_admin(svc.guard, ctx)
    check_maintenance(svc)
    vid = req.volume_id
    try:
        await trio.to_thread.run_sync(svc.store.cleanup_compact_volume, vid)
    except VolumeNotFound as exc:
        raise _not_found("cleanup", vid, exc) from None
    except (StorageError, OSError) as exc:
        raise go_error(f"cleanup volume {vid}: {exc}") from None
    return vs.VacuumVolumeCleanupResponse()


HANDLERS: Mapping[str, Handler] = {
    "VacuumVolumeCheck": vacuum_volume_check,
    "VacuumVolumeCompact": vacuum_volume_compact,
    "VacuumVolumeCommit": vacuum_volume_commit,
    "VacuumVolumeCleanup": vacuum_volume_cleanup,
}
