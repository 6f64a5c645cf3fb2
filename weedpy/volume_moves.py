"""Mixed mode's per-volume owners: native's writer store, moving a volume between Go and native,
native's volumes in Go's heartbeat, and calls that name volumes of both sides.

This joins the gateway (Go's own rpcs, the heartbeat relay) and native (a writer store over the
`.weedpy-native` folders) above both, as weedpy/mixed.py does. Who owns a volume is where its
files are (native/storage/ownership.py); the fronts route each request by the owner of the volume
it names and hold it while that volume moves (weedpy/serve/volume_owners.py).

A move (`VolumeMoves.move`, `POST /weedpy/volumes/VID/move?to=native|go`, `weedpy cutover move`):

    journal hold -> the gate closes -> drain (requests in flight finish) -> the old owner unmounts
    (Go: VolumeUnmount on its own port, it flushes and closes the files) -> rename the files
    -> the new owner mounts them -> journal done, removed -> the gate opens with the new owner

Any failure on the way undoes what was done (the files go back, the old owner mounts them again)
and the gate opens with the old owner. From Go's unmount to the end of the move a supervisor's
restart of Go waits (`wait_for_handover`, the backend's before-start hook), so Go never loads a
volume whose files are leaving or arriving. A crash is resolved at the next start from the
journal (`ownership.recover`). docs/volume-ownership.md.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import trio

from gateway.backend import BackendView
from native.build import NativeParts, build_parts, native_version, open_store
from native.storage.ownership import (
    GO,
    NATIVE,
    Layout,
    STEPS,
    OwnershipError,
    remove_journal,
    rename_volume,
    volume_files,
    write_journal,
)
from proto import master_pb2
from proto import volume_server_pb2 as vs
from weedpy.config import VolumeConfig
from weedpy.grpc import Channel, DataReceived, GrpcError, MessageReader, ServerCall, Status, encode_message, percent_decode
from weedpy.logs import get_logger
from weedpy.security import SecurityConfig
from weedpy.serve.grpc_front import CallTarget, request_id_trailer
from weedpy.serve.guard import Guard
from weedpy.serve.live_routes import is_loopback
from weedpy.serve.volume_owners import VOLUMES_PREFIX, ReplayCall, VolumeHeld, VolumeOwners

__all__ = [
    "MOVE_PAUSE_ENV", "VOLUMES_PREFIX", "MoveRefused", "VolumeMoves", "VolumesApi", "NativeVolumes", "SplitVolumes",
    "CapturedCall", "open_native_owned", "move_pause",
]

log = get_logger("volume_moves")

P = "/volume_server_pb.VolumeServer/"
MOVE_PAUSE_ENV = "WEEDPY_TEST_ONLY_MOVE_PAUSE"  # STEP:SECONDS[:TO], a pause after the journal names STEP
GO_RPC_TIMEOUT = 60.0
HISTORY = 50


class MoveRefused(Exception):
    """A move that cannot start or did not complete; `status` is the admin API's answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def move_pause(bind_ip: str, environ: Mapping[str, str] | None = None) -> tuple[str, float, str] | None:
    """(step, seconds, to) from `WEEDPY_TEST_ONLY_MOVE_PAUSE=STEP:SECONDS[:TO]`: a test-only pause
    after the journal names STEP (of moves to TO, else of every move), so a test can kill the
    server there. A server not bound to loopback refuses to start with it set (ValueError)."""
    raw = (environ if environ is not None else os.environ).get(MOVE_PAUSE_ENV)
    if not raw:
        return None
    step, _, rest = raw.partition(":")
    seconds, _, to = rest.partition(":")
    try:
        pause = float(seconds)
    except ValueError:
        pause = -1.0
    if step not in STEPS or pause < 0 or to not in ("", GO, NATIVE):
        raise ValueError(f"{MOVE_PAUSE_ENV}={raw!r}: expected STEP:SECONDS[:go|native], STEP one of "
                         f"{', '.join(STEPS)}")
    if not is_loopback(bind_ip):
        raise ValueError(f"{MOVE_PAUSE_ENV} is set: it is for tests only; a server bound to "
                         f"{bind_ip or 'every address'} refuses it")
    return step, pause, to


def open_native_owned(cfg: VolumeConfig, security: SecurityConfig, layout: Layout, weed: str) -> NativeParts:
    """Native's writer store over the `.weedpy-native` folders (blocking: loads their volumes), with
    the handlers over it and no heartbeat of its own (the relay reports its volumes); its state
    (maintenance mode) is Go's `state.pb`, followed."""
    layout.ensure_native_folders()
    native_cfg = dataclasses.replace(cfg, dirs=tuple(layout.native_dirs()))
    store = open_store(native_cfg, idx_directory=layout.native_idx_dir())
    return build_parts(native_cfg, security, store, heartbeat=False, read_only_view=False, weed_binary=weed,
                       version=native_version(weed), state_dir=layout.state_dir())


class NativeVolumes:
    """The heartbeat relay's `VolumeMerge`: native's volumes, and the ones Go must not report gone."""

    def __init__(self, owners: VolumeOwners, native: NativeParts) -> None:
        self._owners = owners
        self._native = native

    def away_from_go(self) -> frozenset[int]:
        return self._owners.away_from_go()

    async def native_volumes(self) -> tuple[list[master_pb2.VolumeInformationMessage], int]:
        snap = await self._native.snapshot()
        return [v.full_message() for v in snap.volumes], snap.max_file_key

    def volume_size_limit(self, limit: int) -> None:
        self._native.ctx.store.volume_size_limit = limit


class VolumeMoves:
    """Moves volumes between Go (`go`: the backend's endpoints) and native's writer store, one at a time."""

    def __init__(self, layout: Layout, owners: VolumeOwners, native: NativeParts, go: BackendView,
                 *, pause: tuple[str, float, str] | None = None) -> None:
        self.layout = layout
        self.owners = owners
        self.native = native
        self.go = go
        self.pause = pause
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.status_extra: Callable[[], dict[str, Any]] | None = None  # the per-volume evidence (volume_rollback.py)
        self._one_at_a_time = trio.Lock()
        # Held from Go's unmount to the end of a move: a restart of Go waits for it (before_start).
        self._handover = threading.Lock()

    def wait_for_handover(self) -> None:
        """Blocking (the backend supervisor's before-start hook): return once no move is between
        Go's unmount and its end, so a Go starting now loads a volume whole or not at all."""
        with self._handover:
            pass

    @contextlib.asynccontextmanager
    async def steady(self) -> AsyncIterator[bool]:
        """No move starts or runs inside (a list of both sides' volumes is then consistent): waits
        for a running move, up to the hold limit; yields False when it was still running then."""
        lock, taken = self._one_at_a_time, False
        with trio.move_on_after(self.owners.hold_limit):
            await lock.acquire()
            taken = True
        try:
            yield taken
        finally:
            if taken:
                lock.release()

    def status(self) -> dict[str, Any]:
        doc = {"native": self.owners.native_volumes(), "moving": self.owners.held(),
               "new_volumes": self.owners.new_volumes, "moves": list(reversed(self.history))}
        if self.status_extra is not None:
            doc.update(self.status_extra())
        return doc

    # -- the move --------------------------------------------------------------------------------

    async def move(self, vid: int, to: str, by: str) -> dict[str, Any]:
        """Move volume `vid` to `to`; the record of the move. MoveRefused when it cannot start
        (nothing changed) or had to be undone (the old owner serves the volume again)."""
        if to not in (GO, NATIVE):
            raise MoveRefused(400, f"to must be go or native, not {to!r}")
        async with self._one_at_a_time:
            frm = self.owners.side(vid)
            if frm == to:
                raise MoveRefused(409, f"volume {vid} is owned by {to} already")
            try:
                files = await trio.to_thread.run_sync(volume_files, self.layout, vid, frm)
            except OwnershipError as exc:
                raise MoveRefused(409, str(exc)) from None
            if not files:
                raise MoveRefused(404, f"volume {vid} has no files on the {frm} side")
            record: dict[str, Any] = {"vid": vid, "from": frm, "to": to, "by": by, "at": time.time()}
            t0 = trio.current_time()
            done: list[str] = []
            handover = False
            await self._journal(record, "hold")
            self.owners.hold(vid)
            try:
                await self._journal(record, "drain")
                if vid in await self.owners.published():  # worker processes: they hand it to us now
                    raise MoveRefused(503, f"requests for volume {vid} a worker relayed to Go still in flight after "
                                           f"{self.owners.hold_limit:g}s; try again later")
                if not await self.owners.drain(vid, self.owners.hold_limit):
                    raise MoveRefused(503, f"requests for volume {vid} still in flight after "
                                           f"{self.owners.hold_limit:g}s (a long copy or tail?); try again later")
                await self._journal(record, "unmount")
                await trio.to_thread.run_sync(self._handover.acquire)
                handover = True
                await self._unmount(frm, vid)
                done.append("unmount")
                await self._journal(record, "rename")
                pairs = await trio.to_thread.run_sync(rename_volume, self.layout, vid, frm, to)
                done.append("rename")
                await self._journal(record, "mount", files=pairs)
                await self._mount(to, vid)
                done.append("mount")
                await self._journal(record, "done", files=pairs)
                await trio.to_thread.run_sync(remove_journal, self.layout)
            except BaseException as exc:
                with trio.CancelScope(shield=True):
                    undone = await self._undo(vid, frm, to, done)
                    self.owners.release(vid, frm)
                    await self.owners.published()
                record.update(outcome="undone" if undone else "failed", error=str(exc) or type(exc).__name__,
                              held_ms=round((trio.current_time() - t0) * 1000, 3))
                self.history.append(record)
                log.error("volume move undone", **record)
                if isinstance(exc, MoveRefused):
                    raise
                if isinstance(exc, Exception):
                    raise MoveRefused(500 if not isinstance(exc, GrpcError) else 503,
                                      f"volume {vid} stays with {frm}: {exc}") from exc
                raise
            finally:
                if handover:
                    self._handover.release()
            self.owners.release(vid, to)
            await self.owners.published()
            record.update(outcome="moved", held_ms=round((trio.current_time() - t0) * 1000, 3), files=len(pairs))
            self.history.append(record)
            log.info("volume moved", **record)
            return record

    async def _journal(self, record: dict[str, Any], step: str, files: list[tuple[str, str]] | None = None) -> None:
        doc = {"vid": record["vid"], "from": record["from"], "to": record["to"], "by": record["by"], "step": step,
               "files": [list(p) for p in files or ()]}
        await trio.to_thread.run_sync(write_journal, self.layout, doc)
        if self.pause is not None and self.pause[0] == step and self.pause[2] in ("", record["to"]):
            log.warning("TEST-ONLY: the move pauses here", step=step, seconds=self.pause[1], volume=record["vid"])
            await trio.sleep(self.pause[1])

    async def _undo(self, vid: int, frm: str, to: str, done: list[str]) -> bool:
        """Put the volume back with `frm` (shielded); False when that could not be done whole (the
        journal then stays for the next start to resolve)."""
        ok = True
        if "mount" in done:
            try:
                await self._unmount(to, vid)
            except Exception as exc:  # noqa: BLE001 - the files must go back whatever the new owner says
                log.error("undo: unmount on the new side failed", volume=vid, side=to, error=str(exc))
        try:
            if await trio.to_thread.run_sync(volume_files, self.layout, vid, to):
                await trio.to_thread.run_sync(rename_volume, self.layout, vid, to, frm)
        except (OSError, OwnershipError) as exc:
            log.error("undo: the files could not go back; the next start resolves the journal", volume=vid,
                      error=str(exc))
            return False
        if "unmount" in done:
            try:
                await self._mount(frm, vid)
            except Exception as exc:  # noqa: BLE001 - Go mounts it at its next start; native at the next start
                log.error("undo: the old owner could not mount the volume again", volume=vid, side=frm, error=str(exc))
                ok = False
        await trio.to_thread.run_sync(remove_journal, self.layout)
        return ok

    async def _unmount(self, side: str, vid: int) -> None:
        if side == GO:
            await self._go_call("VolumeUnmount", vs.VolumeUnmountRequest(volume_id=vid), vs.VolumeUnmountResponse)
        else:
            await trio.to_thread.run_sync(self.native.ctx.store.unmount_volume, vid)

    async def _mount(self, side: str, vid: int) -> None:
        if side == GO:
            await self._go_call("VolumeMount", vs.VolumeMountRequest(volume_id=vid), vs.VolumeMountResponse)
        else:
            await trio.to_thread.run_sync(self.native.ctx.store.mount_volume, vid)

    async def _go_call(self, method: str, req: Any, resp_type: type) -> Any:
        endpoints = self.go.current()
        if endpoints is None:
            raise GrpcError(Status.UNAVAILABLE, "the Go backend is not running")
        async with Channel(*endpoints.grpc) as go:
            return await go.unary_unary(P + method, req, resp_type, timeout=GO_RPC_TIMEOUT)


# -- the admin API -------------------------------------------------------------------------------


class VolumesApi:
    """`/weedpy/volumes` on the admin port (same access rule as `/weedpy/routes`):

        GET  /weedpy/volumes                         owners, moves in progress, the last moves, the
                                                     per-volume evidence and rollbacks
        POST /weedpy/volumes/VID/move?to=native|go   move one volume (answers when it is done)
        POST /weedpy/volumes/new?owner=native|go     the side AllocateVolume creates volumes on
    """

    def __init__(self, moves: VolumeMoves, guard: Guard) -> None:
        self.moves = moves
        self.guard = guard

    def allows(self, client: str) -> bool:
        return is_loopback(client) or (self.guard.restricts and self.guard.allows(client))

    async def answer(self, method: str, path: str, body: bytes, client: str) -> tuple[int, dict[str, Any]]:
        if not self.allows(client):
            return 403, {"error": "the volumes API answers loopback and whitelisted clients only"}
        path, _, query = path.partition("?")
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        rest = path[len(VOLUMES_PREFIX):].strip("/")
        if rest == "" and method in ("GET", "HEAD"):
            return 200, self.moves.status()
        parts = rest.split("/")
        if method != "POST":
            return 405, {"error": f"{method} is not allowed here (GET /weedpy/volumes; POST .../VID/move, .../new)"}
        if parts == ["new"]:
            owner = args.get("owner", "")
            if owner not in (GO, NATIVE):
                return 400, {"error": "owner must be go or native"}
            self.moves.owners.new_volumes = owner
            log.info("new volumes go to", owner=owner, by=f"api {client}")
            return 200, self.moves.status()
        if len(parts) != 2 or parts[1] != "move" or not parts[0].isdigit():
            return 404, {"error": "not found (POST /weedpy/volumes/VID/move?to=native|go)"}
        try:
            record = await self.moves.move(int(parts[0]), args.get("to", ""), f"api {client}")
        except MoveRefused as exc:
            return exc.status, {"error": str(exc), "volume": int(parts[0])}
        return 200, record


# -- calls naming volumes of both sides -----------------------------------------------------------


class CapturedCall:
    """A call with one request message (`request`) whose answer is kept instead of sent: for asking
    one side its part of a call that names volumes of both (the real call gives the rest)."""

    def __init__(self, call: ServerCall, request: bytes) -> None:
        self._call = call
        self._request: bytes | None = request
        self._reader = MessageReader(max_length=None)
        self.messages: list[bytes] = []
        self.headers_sent = False
        self.status: Status | None = None
        self.message = ""

    def __getattr__(self, name: str) -> object:  # method, headers, peer, metadata, deadline, options
        return getattr(self._call, name)

    finished = property(lambda self: self.status is not None)
    input_ready = property(lambda self: True)
    input_ended = property(lambda self: self._request is None)
    reset_by_peer = property(lambda self: False)

    async def receive_message(self) -> bytes | None:
        request, self._request = self._request, None
        return request

    async def receive_data(self) -> DataReceived | None:
        request, self._request = self._request, None
        return None if request is None else DataReceived(self._call.stream_id, encode_message(request), 0)

    def acknowledge(self, n: int) -> None:
        pass

    def send_headers(self, headers, end_stream: bool = False) -> None:
        self.headers_sent = True
        if end_stream:
            self.send_trailers(headers)

    def send_initial_metadata(self, metadata=()) -> None:
        self.headers_sent = True

    async def send_data(self, data: bytes) -> None:
        self._reader.feed(data, 0)
        while (msg := self._reader.next_message()) is not None:
            self.messages.append(msg)

    async def send_message(self, payload: bytes) -> None:
        self.headers_sent = True
        self.messages.append(payload)

    def send_trailers(self, headers) -> None:
        values = dict(headers)
        try:
            self.status = Status(int(values.get(b"grpc-status", b"2")))
        except ValueError:
            self.status = Status.UNKNOWN
        self.message = percent_decode(values.get(b"grpc-message", b""))

    def finish(self, status: Status, message: str = "", metadata=()) -> None:
        self.status, self.message = status, message

    def reset(self, error_code: int = 8) -> None:
        self.status, self.message = Status.CANCELLED, "reset"


async def _ask(target: CallTarget, call: ServerCall, request: bytes) -> CapturedCall:
    cap = CapturedCall(call, request)
    try:
        await target.handle(cap)  # type: ignore[arg-type]
    except GrpcError as exc:
        cap.status, cap.message = exc.status, exc.message
    if cap.status is None:
        cap.status, cap.message = Status.INTERNAL, "no status"
    return cap


class SplitVolumes:
    """The gRPC front's `SplitCalls`: BatchDelete of file ids on both sides, each side asked for
    its own, the results in request order; DeleteCollection on both sides."""

    def __init__(self, owners: VolumeOwners, native: NativeParts) -> None:
        self._owners = owners
        self._native = native

    async def both(self, call: ServerCall, go: CallTarget, native: CallTarget) -> None:
        first = await call.receive_message()
        if first is None:
            await go.handle(call)
            return
        owners = self._owners
        try:  # native's volumes are not moving while it deletes them
            async with owners.using(owners.native_volumes() + owners.held()):
                answer = await _ask(native, call, first)
                owners.forget_native(v.id for v in self._native.ctx.store.volumes())
            await owners.published()
        except VolumeHeld as exc:
            raise GrpcError(Status.UNAVAILABLE, str(exc)) from None
        if answer.status is not Status.OK:
            raise GrpcError(answer.status, answer.message, request_id_trailer(call))
        await go.handle(ReplayCall(call, first))  # type: ignore[arg-type]

    async def batch_delete(self, call: ServerCall, first: bytes, vids: list[int], sides: Mapping[int, str],
                           go: CallTarget, native: CallTarget) -> None:
        req = vs.BatchDeleteRequest.FromString(first)
        where = [sides[v] for v in vids]
        answers: dict[str, CapturedCall] = {}

        async def ask(side: str, target: CallTarget) -> None:
            part = vs.BatchDeleteRequest()
            part.CopyFrom(req)
            del part.file_ids[:]
            part.file_ids.extend(fid for fid, s in zip(req.file_ids, where) if s == side)
            answers[side] = await _ask(target, call, part.SerializeToString())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, GO, go)
            nursery.start_soon(ask, NATIVE, native)
        for side in (GO, NATIVE):
            if answers[side].status is not Status.OK:
                raise GrpcError(answers[side].status, answers[side].message, request_id_trailer(call))
        results = {side: iter(vs.BatchDeleteResponse.FromString(b"".join(answers[side].messages[:1])).results)
                   for side in (GO, NATIVE)}
        merged = vs.BatchDeleteResponse()
        for side in where:
            merged.results.append(next(results[side]))
        await call.send_message(merged.SerializeToString())
        call.finish(Status.OK, metadata=request_id_trailer(call))
