"""Per-volume owners in mixed mode: which side serves each volume, and the gate a move closes.

Mixed mode serves every request that touches one volume's files from that volume's owner, Go or
native (docs/volume-ownership.md). The fronts ask `VolumeOwners` for the owner of the volume a
request names: HTTP file-id endpoints by the volume id in the path (`volume_of_path`), gRPC calls
by the volume id(s) in their first request message (`request_volumes`, read before routing and
replayed to the side chosen, `ReplayCall`). Every such request is counted in flight for its
volume while it runs.

A move closes the volume's gate (`hold`): requests that arrive wait, up to `hold_limit`
seconds (then `VolumeHeld`: 503 / UNAVAILABLE); `drain` waits until the requests already
running have finished; `release` opens the gate with the new owner, and the waiting requests
go to it. Nothing here touches files: weedpy/volume_moves.py does the move itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import trio

from weedpy.grpc import DataReceived, ServerCall, encode_message
from weedpy.http1 import Exchange
from weedpy.serve.replies import json_error
from weedpy.serve.routes import GRPC_SERVICE, http_endpoint, request_path

__all__ = [
    "GO", "NATIVE", "OWNED_HTTP", "OWNED_STATUS", "VolumeHeld", "VolumeOwners", "volume_of_path", "volume_methods",
    "request_volumes", "ReplayCall", "BATCH_DELETE", "ALLOCATE_VOLUME", "DELETE_COLLECTION",
    "OwnedSide", "VOLUMES_PREFIX", "HOLD_LIMIT_S", "serve_by_owner", "by_owner", "owned_request",
    "StatusMerge", "WorkerVolumes",
]

GO, NATIVE = "go", "native"
VOLUMES_PREFIX = b"/weedpy/volumes"  # the admin API of the owners (weedpy/volume_moves.py)
HOLD_LIMIT_S = 10.0
# The HTTP endpoints whose path names a file id (so a volume).
OWNED_HTTP = frozenset({"admin.read", "admin.write", "admin.delete", "public.read"})
# The HTTP endpoints that list the server's volumes: both sides' are merged into one list.
OWNED_STATUS = frozenset({"admin.status", "admin.ui"})
BATCH_DELETE = GRPC_SERVICE + "BatchDelete"
ALLOCATE_VOLUME = GRPC_SERVICE + "AllocateVolume"
DELETE_COLLECTION = GRPC_SERVICE + "DeleteCollection"
RECEIVE_FILE = GRPC_SERVICE + "ReceiveFile"


class VolumeHeld(Exception):
    """A request waited for a volume's move longer than the hold limit."""

    def __init__(self, vid: int, waited: float) -> None:
        super().__init__(f"volume {vid} is being moved between Go and native; held {waited:g}s, try again")
        self.vid = vid


class VolumeOwners:
    """Owners (native for the ids in `native`, Go for every other), in-flight counts, gates."""

    def __init__(self, native: Iterable[int] = (), *, hold_limit: float = HOLD_LIMIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._native: set[int] = set(native)
        self._clock = clock
        self._came: dict[int, float] = {}  # when each volume came to native while this server ran
        self._inflight: dict[int, int] = {}
        self._held: dict[int, trio.Event] = {}
        self._idle: dict[int, trio.Event] = {}
        self.hold_limit = hold_limit
        self.new_volumes = GO  # the side AllocateVolume creates a volume on
        # With worker processes: tell them `via_leader()` and wait until they route by it; the
        # volumes whose requests a worker still had in flight straight to Go after the hold limit.
        self.publish: Callable[[], Awaitable[list[int]]] | None = None

    def side(self, vid: int) -> str:
        return NATIVE if vid in self._native else GO

    def native_volumes(self) -> list[int]:
        return sorted(self._native)

    def native_since(self, vid: int) -> float | None:
        """When (`clock`) `vid` last came to native; None for one native owned at start."""
        return self._came.get(vid)

    def held(self) -> list[int]:
        return sorted(self._held)

    def away_from_go(self) -> frozenset[int]:
        """Volumes Go does not own now or is handing over: owned by native, or held for a move."""
        return frozenset(self._native | set(self._held))

    def via_leader(self) -> list[int]:
        """The volumes a worker process must not relay straight to Go: native's and the held ones."""
        return sorted(self._native | set(self._held))

    async def published(self) -> list[int]:
        """`publish` when there are workers (see above); [] otherwise."""
        return await self.publish() if self.publish is not None else []

    def inflight(self, vid: int) -> int:
        return self._inflight.get(vid, 0)

    # -- requests ----------------------------------------------------------------------------------

    async def enter(self, vids: Sequence[int]) -> dict[int, str]:
        """Count a request in flight for each volume (waiting at a closed gate first); the owners.
        Raises VolumeHeld after `hold_limit` seconds at a gate."""
        deadline = trio.current_time() + self.hold_limit
        ordered = sorted(set(vids))
        while True:
            held = next((self._held[v] for v in ordered if v in self._held), None)
            if held is None:
                break
            with trio.move_on_at(deadline):
                await held.wait()
            if not held.is_set():
                vid = next(v for v in ordered if self._held.get(v) is held)
                raise VolumeHeld(vid, self.hold_limit)
        for v in ordered:
            self._inflight[v] = self._inflight.get(v, 0) + 1
        return {v: self.side(v) for v in ordered}

    def leave(self, vids: Iterable[int]) -> None:
        for v in sorted(set(vids)):
            n = self._inflight.get(v, 0) - 1
            if n > 0:
                self._inflight[v] = n
                continue
            self._inflight.pop(v, None)
            idle = self._idle.pop(v, None)
            if idle is not None:
                idle.set()

    @contextlib.asynccontextmanager
    async def using(self, vids: Sequence[int]) -> AsyncIterator[dict[int, str]]:
        sides = await self.enter(vids)
        try:
            yield sides
        finally:
            self.leave(sides)

    # -- a move ------------------------------------------------------------------------------------

    def hold(self, vid: int) -> None:
        """Close the gate: requests for `vid` from now on wait."""
        if vid in self._held:
            raise RuntimeError(f"volume {vid} is held already")
        self._held[vid] = trio.Event()

    async def drain(self, vid: int, timeout: float) -> bool:
        """Wait until no request for `vid` is in flight; False after `timeout` seconds."""
        with trio.move_on_after(timeout):
            while self._inflight.get(vid):
                idle = self._idle.setdefault(vid, trio.Event())
                await idle.wait()
            return True
        return False

    def release(self, vid: int, owner: str) -> None:
        """Open the gate with `owner` serving the volume; the waiting requests go on to it."""
        self.set_owner(vid, owner)
        gate = self._held.pop(vid, None)
        if gate is not None:
            gate.set()

    def forget_native(self, held_by_native: Iterable[int]) -> None:
        """Native deleted volumes (DeleteCollection): the ones it no longer holds are Go's again."""
        keep = set(held_by_native) | set(self._held)
        self._native &= keep
        self._came = {v: t for v, t in self._came.items() if v in self._native}

    def set_owner(self, vid: int, owner: str) -> None:
        if owner == NATIVE:
            if vid not in self._native:
                self._came[vid] = self._clock()
            self._native.add(vid)
        else:
            self._native.discard(vid)
            self._came.pop(vid, None)


HttpHandler = Callable[[Exchange], Awaitable[None]]
# Serves a volume-listing request (OWNED_STATUS) through the route's handler, native's volumes merged in.
StatusMerge = Callable[[Exchange, HttpHandler], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class OwnedSide:
    """What the fronts need to route by volume owner: the owners, native's writer handlers (HTTP,
    gRPC: a `CallTarget`), the answer to a call naming volumes of both sides (`SplitCalls`), and
    the volume lists with native's volumes merged in (`status`)."""

    owners: VolumeOwners
    http: Callable[[Any], Awaitable[None]]
    grpc: Any
    split: Any = None
    status: StatusMerge | None = None


async def serve_by_owner(owners: VolumeOwners, owned: HttpHandler, exch: Exchange, vid: int,
                         handler: HttpHandler) -> str | None:
    """Serve a request for volume `vid` from its owner, after any move of it: `owned` (native's
    writer store) or `handler` (the route's target). NATIVE when native served it, else None; 503
    when it was held past the hold limit."""
    try:
        sides = await owners.enter((vid,))
    except VolumeHeld as exc:
        await exch.send(json_error(503, str(exc)))
        exch.status = 503
        return None
    try:
        if sides[vid] == NATIVE:
            await owned(exch)
            return NATIVE
        await handler(exch)
        return None
    finally:
        owners.leave((vid,))


def by_owner(owners: VolumeOwners, owned: HttpHandler, handler: HttpHandler,
             status: StatusMerge | None = None) -> HttpHandler:
    """`handler` with the file-id requests of volumes native owns served by `owned`, and the volume
    lists merged by `status` (the leader's end of a worker's hop: the worker's front routed them by
    the table alone)."""

    async def handle(exch: Exchange) -> None:
        endpoint, vid = owned_request(exch)
        if vid is not None:
            await serve_by_owner(owners, owned, exch, vid, handler)
        elif status is not None and endpoint in OWNED_STATUS:
            await status(exch, handler)
        else:
            await handler(exch)

    return handle


def owned_request(exch: Exchange) -> tuple[str, int | None]:
    """The endpoint of a request and, for a file-id request (read, write, delete), its volume."""
    req = exch.request
    path = request_path(req.target)
    endpoint = http_endpoint(exch.port_kind, req.method, path)
    return endpoint, volume_of_path(path) if endpoint in OWNED_HTTP else None


class WorkerVolumes:
    """A worker process's side of the owners: the volumes whose requests go to the leader (`via`:
    native's and the ones being moved; the leader serves them by owner), the ones native owns
    (`native`: what the worker's request log names as their target), and the requests this worker
    relays straight to Go counted per volume, so that a move waits for them (`update`). The volume
    lists (`/status`, the UI) go to the leader too, which merges both sides' volumes."""

    def __init__(self, via: Iterable[int] = (), native: Iterable[int] = ()) -> None:
        self.via = frozenset(via)
        self.native = frozenset(native)
        self._direct = VolumeOwners()  # counts only: nothing is ever held here

    def owner_of(self, vid: int) -> str | None:
        """NATIVE for a volume native owns (its requests went to the leader's writer store), else None."""
        return NATIVE if vid in self.native else None

    def route(self, direct: HttpHandler, leader: HttpHandler) -> HttpHandler:
        async def handle(exch: Exchange) -> None:
            endpoint, vid = owned_request(exch)
            if vid is None:
                await (leader if endpoint in OWNED_STATUS else direct)(exch)
            elif vid in self.via:
                await leader(exch)
            else:
                await self._direct.enter((vid,))
                try:
                    await direct(exch)
                finally:
                    self._direct.leave((vid,))

        return handle

    async def update(self, via: Iterable[int], native: Iterable[int], timeout: float) -> list[int]:
        """Route by `via` from now on, then wait (up to `timeout`) until the requests of those
        volumes already relayed straight to Go are done; the volumes that still have some."""
        self.via = frozenset(via)
        self.native = frozenset(native)
        deadline = trio.current_time() + timeout
        for vid in sorted(self.via):
            await self._direct.drain(vid, max(0.0, deadline - trio.current_time()))
        return [vid for vid in sorted(self.via) if self._direct.inflight(vid)]


# -- which volume a request names ----------------------------------------------------------------


def volume_of_path(path: bytes) -> int | None:
    """The volume id of a file-id path (`/3,01637037d6`, `/3/01637037d6.jpg`), else None."""
    start = 1 if path.startswith(b"/") else 0
    end = start
    n = len(path)
    while end < n and 48 <= path[end] <= 57:
        end += 1
    if end == start or end - start > 10 or end == n or path[end] not in (44, 47):  # ',' or '/'
        return None
    vid = int(path[start:end])
    return vid if vid < 1 << 32 else None


@functools.cache
def _request_types() -> dict[str, tuple[type, str]]:
    """Full method -> (request class, how it names volumes: volume_id | volume_ids | file_ids | info)."""
    from proto import volume_server_pb2 as vs  # the messages load with the first gRPC call (start-up time)

    out: dict[str, tuple[type, str]] = {}
    service = vs.DESCRIPTOR.services_by_name["VolumeServer"]
    for method in service.methods:
        cls = getattr(vs, method.input_type.name)
        fields = cls.DESCRIPTOR.fields_by_name
        path = GRPC_SERVICE + method.name
        if "volume_id" in fields:
            out[path] = (cls, "volume_id")
        elif "volume_ids" in fields:
            out[path] = (cls, "volume_ids")
        elif path == BATCH_DELETE:
            out[path] = (cls, "file_ids")
        elif path == RECEIVE_FILE:
            out[path] = (cls, "info")
    return out


def volume_methods() -> frozenset[str]:
    """The rpcs whose first request message names the volume(s) they touch."""
    return frozenset(_request_types())


def request_volumes(method: str, raw: bytes) -> list[int] | None:
    """The volume ids the first request message of `method` names (in request order, BatchDelete
    one per file id, None for a file id that does not parse); None when it names none or does
    not decode (the call then goes where the route table says, and fails there as it would)."""
    spec = _request_types().get(method)
    if spec is None:
        return None
    cls, how = spec
    try:
        req = cls.FromString(raw)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError (its module loads with the messages)
        return None
    if how == "volume_id":
        return [req.volume_id]
    if how == "volume_ids":
        return list(req.volume_ids) or None
    if how == "info":
        return [req.info.volume_id] if req.HasField("info") else None
    vids = [volume_of_path(b"/" + fid.encode("latin-1", "replace")) for fid in req.file_ids]
    return vids if vids and all(v is not None for v in vids) else None


class ReplayCall:
    """A `ServerCall` whose first request message, already read to route the call, is given
    again to whoever serves it (message by message or as raw DATA); the rest passes through."""

    __slots__ = ("_call", "_first")

    def __init__(self, call: ServerCall, first: bytes) -> None:
        self._call = call
        self._first: bytes | None = first

    def __getattr__(self, name: str) -> object:
        return getattr(self._call, name)

    @property
    def input_ready(self) -> bool:
        return self._first is not None or self._call.input_ready

    @property
    def input_ended(self) -> bool:
        return self._first is None and self._call.input_ended

    async def receive_message(self) -> bytes | None:
        first, self._first = self._first, None
        return first if first is not None else await self._call.receive_message()

    async def receive_data(self) -> DataReceived | None:
        first, self._first = self._first, None
        if first is not None:  # acknowledged when it was read
            return DataReceived(self._call.stream_id, encode_message(first), 0)
        return await self._call.receive_data()
