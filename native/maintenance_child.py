"""A compaction's copy and a scrub in a child process: their Python work off the server's GIL.

A serving process answers every request from one event-loop thread. Maintenance run in a thread
of that process holds the process's GIL for its Python work (decoding and re-encoding records,
checking them), and the event loop waits for the GIL to come back (docs/performance.md,
"Event-loop stalls"). A child process has a GIL of its own, and its CPU and I/O priority can be
lowered without the inversion a lowered thread causes (native/lowprio.py): nothing in the
server waits for the child but the maintenance call itself.

What runs in the child: the copy of a compaction (`copy_live`: live needles into `.cpd`/`.cpx`,
both fsynced) and a scrub's reading and checking of records (`scrub_records`). What stays in the
server: the compaction's checks, lock and prelude (its `.idx` snapshot offset and revision,
which the commit needs), and the whole commit. The child reads the volume through descriptors
the server opened (a duplicate of the `.dat`, the `.idx`), so the files it reads are the ones
the server pinned, whatever happens to the names meanwhile. Its results are the same bytes and
texts as the in-process functions' (the same code runs there). A child that dies or is killed
(a cancelled call) leaves partial `.cpd`/`.cpx` as an abandoned compaction does in Go; the
volume serves on, and the next compaction truncates them. A compaction's child also ends when
its volume is closed (unmounted or deleted: the copy fails as it does in a thread, `volume N is
closed`) and when its server has died: no copy goes on into files a later compaction writes.

The child is a fresh interpreter (`python -c`, not a fork of the serving process, whose
threads may hold locks at the fork): about 80 ms of CPU to start, once per call.
Protocol, one line each on the child's stdout: `P <offset>` (compaction progress), `W <text>`
(a warning the server logs), `D <json>` (done: the result), `E <text>` (failed: the message).
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from native.lowprio import lower_this_thread
from native.storage import (
    CompactResult, IdxCodec, OsFileOps, StorageError, SuperBlock, VacuumError, begin_compaction, copy_in_process,
    copy_live,
    next_super_block, pin_for_scrub, scrub_records, scrub_volume, ttl_seconds,
)

__all__ = ["CHILD_NICE", "ENV", "in_child", "compact_copy_in_child", "scrub_in_child", "child_main"]

log = logging.getLogger("weedpy.storage")

CHILD_NICE = 19  # the child's nice increment; its I/O goes in the idle class
ENV = "WEEDPY_MAINTENANCE_CHILD"  # "0": compaction copies and scrubs in the server's threads instead


def in_child(env: Mapping[str, str] = os.environ) -> bool:
    """Whether maintenance runs in a child process (the default; `WEEDPY_MAINTENANCE_CHILD=0`: not)."""
    return env.get(ENV, "1") != "0"

_BOOT = "from native.maintenance_child import child_main; child_main()"


# -- the server's side ------------------------------------------------------------------------------


_REAP_WAIT_S = 0.01  # how long `_finish` waits for a killed child before a thread takes over
_POLL_S = 0.5  # how often a compaction's reader looks at its volume while the child is silent


def _spawn(job: dict[str, Any], fds: tuple[int, ...]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _BOOT, json.dumps(job)], pass_fds=fds,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True)


def _lines(proc: subprocess.Popen, what: str, v=None) -> Iterator[tuple[str, str]]:
    """The child's protocol lines; warnings logged here; raises VacuumError on `E` or a child
    that ended without a result. With `v`, StorageError once `v` is closed (unmounted, deleted:
    what the copy's next read of `v` raises in the server's thread), looked at with every line
    and every `_POLL_S` between them; the caller then ends the child, so no copy goes on into
    the `.cpd`/`.cpx` a volume mounted again may be compacted into."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while True:
        while b"\n" not in buf:
            if v is not None:
                if v._closed:
                    raise StorageError(f"volume {v.id} is closed")
                if not select.select([fd], [], [], _POLL_S)[0]:
                    continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                rc = proc.wait()
                raise VacuumError(f"{what} process ended without a result (exit status {rc})")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        kind, _, text = line.decode(errors="replace").partition(" ")
        if kind == "W":
            log.warning("%s", text)
        elif kind == "E":
            raise VacuumError(text)
        else:
            if v is not None and v._closed:
                raise StorageError(f"volume {v.id} is closed")
            yield kind, text


def _finish(proc: subprocess.Popen) -> None:
    """Kill the child if it still runs (an abandoned call) and reap it. An abandoned call's
    generator may be closed on the event loop's thread, and a killed child waiting on the disk
    (its I/O is in the idle class) dies only when that I/O ends: past a moment, a thread of its
    own reaps it instead."""
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=_REAP_WAIT_S)
        except subprocess.TimeoutExpired:
            threading.Thread(target=proc.wait, name="maintenance-child-reaper", daemon=True).start()


def compact_copy_in_child(report_every: int):
    """A `copy` for `compact_steps`: the prelude here, the copy in a child process. Yields only
    the progress offsets a caller advancing `report_every` at a time would stop at (the first
    needle past each target), not every needle's."""

    def copy(v, bytes_per_second: int, now_s: int | None) -> Iterator[int]:
        if getattr(v, "is_remote", False):  # read through the tier's backend: stays here
            return (yield from copy_in_process(v, bytes_per_second, now_s))
        begin_compaction(v)
        dat_fd, _ = v.pinned_dat()
        try:
            job = {
                "job": "compact", "dat_fd": dat_fd, "idx_fd": v._idx_fd, "idx_size": v.compact_idx_offset,
                "width": v.codec.offsets.width, "version": v.version, "super_block": next_super_block(v).encode().hex(),
                "ttl_seconds": ttl_seconds(v), "now": now_s, "bytes_per_second": bytes_per_second,
                "cpd": v.file_name(".cpd"), "cpx": v.file_name(".cpx"), "volume_id": v.id, "report_every": report_every,
                "server": os.getpid(),
            }
            proc = _spawn(job, (dat_fd, v._idx_fd))
        finally:
            os.close(dat_fd)
        try:
            for kind, text in _lines(proc, "compaction", v):
                if kind == "P":
                    yield int(text)
                elif kind == "D":
                    return CompactResult(**json.loads(text))
        finally:
            _finish(proc)
        raise AssertionError("unreachable")

    return copy


def scrub_in_child(v) -> tuple[int, list[str]]:
    """`scrub_volume(v)` with the reading and checking of records in a child process."""
    if getattr(v, "is_remote", False):
        return scrub_volume(v)  # read through the tier's backend: stays here
    pinned = pin_for_scrub(v)
    if isinstance(pinned, str):
        return 0, [pinned]
    idx_fd, idx_size, dat_fd = pinned
    try:
        job = {"job": "scrub", "dat_fd": dat_fd, "idx_fd": idx_fd, "idx_size": idx_size,
               "width": v.codec.offsets.width, "version": v.version, "volume_id": v.id,
               "server": os.getpid()}
        proc = _spawn(job, (dat_fd, idx_fd))
    finally:
        os.close(dat_fd)
        os.close(idx_fd)
    try:
        for kind, text in _lines(proc, "scrub"):
            if kind == "D":
                count, errs = json.loads(text)
                return count, errs
    finally:
        _finish(proc)
    raise AssertionError("unreachable")


# -- the child's side -------------------------------------------------------------------------------


class _LineHandler(logging.Handler):
    """The copy's warnings (records dropped), sent to the server as `W` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        _say("W", record.getMessage().replace("\n", " "))


def _say(kind: str, text: str) -> None:
    sys.stdout.write(f"{kind} {text}\n")
    sys.stdout.flush()


class _Served:
    """What the child checks before each record it reads and before it creates a file: that
    its server still runs (killed or crashed, an orphan copy would go on writing the
    `.cpd`/`.cpx` that the next server's compaction of the volume opens again: the child ends at
    once) and, for a compaction, that the volume was not deleted meanwhile (its `.dat` has no
    name left: the copy fails as it does in the server's thread, `volume N is closed`, rather
    than leave a `.cpx` behind). Not the parent-death signal: that fires when the server's
    *thread* that spawned the child ends, and worker threads idle out."""

    def __init__(self, job: dict[str, Any], *, volume_deleted_fails: bool) -> None:
        self.server, self.dat_fd, self.volume_id = job["server"], job["dat_fd"], job["volume_id"]
        self.volume_deleted_fails = volume_deleted_fails

    def check(self) -> None:
        if os.getppid() != self.server:
            os._exit(1)
        if self.volume_deleted_fails and not os.fstat(self.dat_fd).st_nlink:
            raise StorageError(f"volume {self.volume_id} is closed")

    def pread(self, length: int, offset: int) -> bytes:
        self.check()
        return os.pread(self.dat_fd, length, offset)


class _ServedFiles(OsFileOps):
    """The operating system's file calls, `_Served.check`ed before a file is opened."""

    def __init__(self, served: _Served) -> None:
        self._served = served

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:  # type: ignore[override]
        self._served.check()
        return os.open(path, flags, mode)


def _read_idx(fd: int, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = os.pread(fd, size - len(buf), len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _compact(job: dict[str, Any]) -> None:
    served = _Served(job, volume_deleted_fails=True)
    codec = IdxCodec.for_width(job["width"])
    now = job["now"]
    if now is None:
        import time  # the child only

        now = int(time.time())
    steps = copy_live(
        served.pread, _read_idx(job["idx_fd"], job["idx_size"]), codec,
        job["version"], SuperBlock.decode(bytes.fromhex(job["super_block"])), job["ttl_seconds"], now,
        job["bytes_per_second"], _ServedFiles(served), job["cpd"], job["cpx"], volume_id=job["volume_id"])
    every, target = job["report_every"], job["report_every"]
    try:
        while True:
            offset = next(steps)
            if offset > target:
                _say("P", str(offset))
                target = offset + every
    except StopIteration as stop:
        r: CompactResult = stop.value
        _say("D", json.dumps({"ran": r.ran, "copied": r.copied, "skipped": r.skipped, "expired": r.expired,
                              "dat_size": r.dat_size}))


def _scrub(job: dict[str, Any]) -> None:
    buf = _read_idx(job["idx_fd"], job["idx_size"])
    # a scrub in the server's thread reads its own duplicate of the .dat to the end too
    count, errs = scrub_records(buf, _Served(job, volume_deleted_fails=False).pread, job["volume_id"],
                                job["version"], IdxCodec.for_width(job["width"]))
    _say("D", json.dumps([count, errs]))


def child_main() -> None:
    """The child's entry (`python -c`): one job from argv[1], its lines on stdout."""
    lower_this_thread(CHILD_NICE, io_idle=True)
    job = json.loads(sys.argv[1])
    logging.getLogger("weedpy.storage").addHandler(_LineHandler())
    logging.getLogger("weedpy.storage").propagate = False
    try:
        (_compact if job["job"] == "compact" else _scrub)(job)
    except (StorageError, OSError) as exc:
        _say("E", str(exc).replace("\n", " "))
        sys.exit(1)
    except Exception as exc:  # a bug: one line the server reports, not a traceback on its stderr
        _say("E", f"{job['job']} process failed: {type(exc).__name__}: {exc}".replace("\n", " "))
        sys.exit(1)
