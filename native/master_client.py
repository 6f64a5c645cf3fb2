"""The native server's side of the master: registration and heartbeats, lookups, readonly notices.

`MasterClient.run` (a long-lived task) does what Go's volume server does:

1. ask the seed masters for their configuration (GetMasterConfiguration) until one answers;
2. open `SendHeartbeat` to the current master: a full heartbeat and the EC one, then a full one
   every pulse and a delta whenever `notify_changed()` is called (volumes came or went);
3. follow the master's replies: the volume size limit, a leader elsewhere (reconnect there),
   a request for the full list; the first reply that names no other leader marks the master
   connection up (`state.master_connected`, which /healthz reports);
4. when the stream breaks, reconnect to the next seed with a capped exponential backoff;
5. `stop_heartbeat()` (VolumeServerLeave, shutdown): send the empty heartbeat that makes the
   master drop this server's volumes, close the stream and stay away.

It is also the `MasterLookup` of `native.context` (LookupVolume with Go's 10-minute cache) and
makes the master calls handlers need (VolumeMarkReadonly, Ping). Message building lives in the
sans-IO `native.heartbeat`.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import trio

from native.context import Location, ServerState
from native.identity import PULSE_SECONDS, Identity
from proto.lazy import master_pb2, volume_server_pb2
from weedpy.addresses import MasterAddress
from weedpy.grpc import Channel, ChannelOptions, GrpcError, Status, load_connection_core
from weedpy.imports import freeze_long_lived
from weedpy.logs import get_logger

if TYPE_CHECKING:
    from native.heartbeat import HeartbeatState, StoreSnapshot

__all__ = ["MasterClient", "MasterCallError", "SEND_HEARTBEAT"]

log = get_logger("native.master")

SEED = "/master_pb.Seaweed/"
SEND_HEARTBEAT = SEED + "SendHeartbeat"
LOOKUP_CACHE_SECONDS = 600.0
CHECK_RETRY_SECONDS = 1.79  # Go's checkWithMaster pause between rounds of the seeds
BACKOFF_FIRST = 0.25
RPC_TIMEOUT = 10.0
_OPTIONS = ChannelOptions(connect_timeout=3.0)
# How long an rpc that added or removed volumes waits for the heartbeat that tells the master.
REPORT_WAIT_SECONDS = 2.0

Snapshot = Callable[[], Awaitable["StoreSnapshot"]]
StateProto = Callable[[], "volume_server_pb2.VolumeServerState"]


class MasterCallError(Exception):
    """A call to a master failed; the message is what Go's handlers would report."""


class _Wake:
    """Why the heartbeat sender woke up; set from handlers, consumed by the sender."""

    __slots__ = ("event", "changed", "stop", "full")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.changed = False
        self.stop = False
        self.full = False

    def poke(self) -> None:
        self.event.set()

    def rearm(self) -> None:
        self.event = trio.Event()
        self.changed = self.full = False


class MasterClient:
    def __init__(
        self,
        masters: Sequence[str],
        identity: Identity,
        *,
        state: ServerState,
        snapshot: Snapshot,
        state_proto: StateProto,
        on_volume_size_limit: Callable[[int], None] = lambda _limit: None,
        on_configuration: Callable[[master_pb2.GetMasterConfigurationResponse], Awaitable[None]] | None = None,
        pulse: float = PULSE_SECONDS,
        heartbeat: bool = True,
        tls: ssl.SSLContext | None = None,
        on_disconnect: Callable[[str], None] = lambda _master: None,
    ) -> None:
        self.seeds = tuple(MasterAddress.parse(m) for m in masters)
        self._seed_names = tuple(m.strip() for m in masters)  # as given: Go labels disconnections so
        self._on_disconnect = on_disconnect  # a failed heartbeat stream, by master (master_disconnections)
        self._options = dataclasses.replace(_OPTIONS, tls=tls)  # gRPC mTLS to the master when configured
        if not self.seeds:
            raise ValueError("no master addresses")
        self.identity = identity
        self.state = state
        self._snapshot = snapshot
        self._state_proto = state_proto
        self._on_limit = on_volume_size_limit
        self._on_configuration = on_configuration  # e.g. the storage backends of tiered volumes
        self.pulse = pulse
        self._heartbeating = heartbeat
        self._wake = _Wake()
        # notify_changed calls so far, and how many of them a heartbeat sent to the master covers
        self._changes_asked = 0
        self._changes_sent = 0
        self._changes_moved = trio.Event()
        self._session_done: trio.Event | None = None
        self._current: MasterAddress | None = None
        self._cache: dict[int, tuple[float, list[Location]]] = {}
        self.volume_size_limit = 0
        self.preallocate = False
        self._hb: HeartbeatState | None = None  # made with the first heartbeat (`hb`)
        # the push gateway the master names (weed master -metrics.address, -metrics.intervalSeconds)
        self.metrics_address = ""
        self.metrics_interval = 0
        self.configured = trio.Event()  # set once a master has answered GetMasterConfiguration

    # -- MasterLookup ---------------------------------------------------------------------------

    def current_master(self) -> str | None:
        m = self._current
        return None if m is None else f"{m.host}:{m.http_port}"

    def _target(self) -> MasterAddress:
        return self._current or self.seeds[0]

    async def lookup_volume(self, vid: int) -> list[Location]:
        hit = self._cache.get(vid)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        resp = await self.call(
            "LookupVolume", master_pb2.LookupVolumeRequest(volume_or_file_ids=[str(vid)]), master_pb2.LookupVolumeResponse,
        )
        for entry in resp.volume_id_locations:
            if entry.volume_or_file_id != str(vid):
                continue
            if entry.error:
                raise LookupError(entry.error)
            locs = [Location(l.url, l.public_url, l.grpc_port, l.data_center) for l in entry.locations]
            self._cache[vid] = (now + LOOKUP_CACHE_SECONDS, locs)
            return locs
        raise LookupError(f"volume id {vid} not found")

    def invalidate(self, vid: int) -> None:
        self._cache.pop(vid, None)

    # -- plain calls ----------------------------------------------------------------------------

    async def call(self, method: str, request, response_type, *, master: MasterAddress | None = None, timeout: float = RPC_TIMEOUT):
        m = master or self._target()
        try:
            async with Channel(m.host, m.grpc_port, options=self._options) as ch:
                return await ch.unary_unary(SEED + method, request, response_type, timeout=timeout)
        except BaseExceptionGroup as group:  # the channel's task group wraps what the call raised
            raise _unwrap(group) from None

    async def ping(self, target: str) -> int:
        """Ping a master; its start time (Go's remote_time_ns)."""
        addr = MasterAddress.parse(target)
        resp = await self.call("Ping", master_pb2.PingRequest(), master_pb2.PingResponse, master=addr)
        return resp.start_time_ns

    @property
    def hb(self) -> HeartbeatState:
        """What the master was last told (native.heartbeat loads with the master client's
        modules, after the ports listen: start-up time)."""
        if self._hb is None:
            from native.heartbeat import HeartbeatState  # loaded with the master client's modules (start-up time)

            self._hb = HeartbeatState(self.identity)
        return self._hb

    def is_known_master(self, target: str) -> bool:
        """Go's isKnownPingTarget for masters: a seed or the master heartbeated to."""
        known = [f"{m.host}:{m.http_port}" for m in self.seeds]
        cur = self.current_master()
        if cur:
            known.append(cur)
        from native.heartbeat import same_master  # loaded with the master client's modules (start-up time)

        return any(same_master(target, k) for k in known)

    async def mark_volume_readonly(self, req: master_pb2.VolumeMarkReadonlyRequest) -> None:
        """Tell the master a volume's read-only state (Go's notifyMasterVolumeReadonly)."""
        master = self._target()
        try:
            await self._mark_on(master, req)
        except MasterCallError as exc:
            if "Not current leader" not in str(exc):
                raise
            leader = await self._lookup_leader()
            await self._mark_on(leader, req)

    async def _mark_on(self, master: MasterAddress, req: master_pb2.VolumeMarkReadonlyRequest) -> None:
        name = f"{master.host}:{master.http_port}"
        try:
            await self.call("VolumeMarkReadonly", req, master_pb2.VolumeMarkReadonlyResponse, master=master)
        except GrpcError as exc:
            inner = f"set volume {req.volume_id} to read only on master: rpc error: code = {_go_code(exc.status)} desc = {exc.message}"
            raise MasterCallError(f"grpc VolumeMarkReadonly with master {name}: {inner}") from exc
        except (OSError, trio.TooSlowError) as exc:
            raise MasterCallError(f"grpc VolumeMarkReadonly with master {name}: {exc}") from exc

    async def _lookup_leader(self) -> MasterAddress:
        for seed in self.seeds:
            try:
                resp = await self.call("GetMasterConfiguration", master_pb2.GetMasterConfigurationRequest(),
                                       master_pb2.GetMasterConfigurationResponse, master=seed)
            except GrpcError:
                continue
            if resp.leader:
                return MasterAddress.parse(resp.leader)
        raise MasterCallError("heartbeat master rejected mark-readonly and leader lookup failed")

    # -- heartbeats -----------------------------------------------------------------------------

    def notify_changed(self) -> None:
        """Volumes were added or removed: send a delta now."""
        self._changes_asked += 1
        self._wake.changed = True
        self._wake.poke()

    async def changes_reported(self, timeout: float = REPORT_WAIT_SECONDS) -> None:
        """Until a heartbeat covering every change notified so far has gone to the master (at most
        `timeout`; at once without an open stream). An rpc that allocates or mounts a volume then
        answers after the master can know it, so a client that writes to it with replication right
        away finds every copy (Go's delta goes out just after its answer; a slower server loses
        that race)."""
        target = self._changes_asked
        with trio.move_on_after(timeout):
            while self._changes_sent < target and self._current is not None:
                await self._changes_moved.wait()

    def _changes_covered(self, asked: int) -> None:
        self._changes_sent = max(self._changes_sent, asked)
        self._wake_reporters()

    def _wake_reporters(self) -> None:
        self._changes_moved.set()
        self._changes_moved = trio.Event()

    def request_full(self) -> None:
        self._wake.full = True
        self._wake.poke()

    @property
    def heartbeating(self) -> bool:
        return self._heartbeating

    def stop_heartbeat_nowait(self) -> bool:
        """Go's StopHeartbeat: flag it and return; the stream sends the empty heartbeat itself."""
        if not self._heartbeating:
            return True
        self._heartbeating = False
        self.state.heartbeat_stopped = True
        self._wake.stop = True
        self._wake.poke()
        return False

    async def stop_heartbeat(self, timeout: float = 3.0) -> bool:
        """Stop heartbeating (the master drops this server's volumes). True if already stopped."""
        if self.stop_heartbeat_nowait():
            return True
        done = self._session_done
        if done is not None:
            with trio.move_on_after(timeout):
                await done.wait()
        return False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.to_thread.run_sync(_load_master_modules)
        await self.check_with_master()
        backoff = BACKOFF_FIRST
        seed_index = 0
        leader: MasterAddress | None = None
        leader_name = ""
        while self._heartbeating:
            master = leader or self.seeds[seed_index % len(self.seeds)]
            name = leader_name if leader is not None else self._seed_names[seed_index % len(self.seeds)]
            leader = None
            try:
                new_leader = await self._session(master)
            except Exception as exc:  # noqa: BLE001 - any failure of one stream: reconnect, never crash
                self.state.master_connected = False
                self._current = None
                self._on_disconnect(name)
                known = isinstance(exc, (GrpcError, OSError, trio.TooSlowError, trio.BrokenResourceError))
                log.warning("heartbeat to master failed", master=master.dotted, error=str(exc) or repr(exc),
                            retry_in=backoff, exc_info=not known)
                seed_index += 1
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.pulse)
                continue
            self.state.master_connected = False
            backoff = BACKOFF_FIRST
            if new_leader is not None:
                log.info("master leader moved", leader=new_leader)
                try:
                    leader = MasterAddress.parse(new_leader)
                    leader_name = new_leader
                except ValueError:
                    leader = None
                await trio.sleep(BACKOFF_FIRST)

    async def check_with_master(self) -> None:
        """Go's checkWithMaster: the configuration of the first seed that answers, retried forever."""
        while True:
            for seed in self.seeds:
                try:
                    resp = await self.call("GetMasterConfiguration", master_pb2.GetMasterConfigurationRequest(),
                                           master_pb2.GetMasterConfigurationResponse, master=seed, timeout=5)
                except (GrpcError, OSError, trio.TooSlowError) as exc:
                    log.info("master not ready", master=seed.dotted, error=str(exc))
                    continue
                self.metrics_address = resp.metrics_address
                self.metrics_interval = resp.metrics_interval_seconds
                if self._on_configuration is not None:
                    await self._on_configuration(resp)
                self.configured.set()
                return
            await trio.sleep(CHECK_RETRY_SECONDS)

    async def _session(self, master: MasterAddress) -> str | None:
        """One SendHeartbeat stream; returns the new leader to move to, None when stopped."""
        done = self._session_done = trio.Event()
        try:
            return await self._stream(master)
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None
        finally:
            done.set()
            self._session_done = None
            self._wake_reporters()  # waiters look again: the stream they waited on is gone

    async def _stream(self, master: MasterAddress) -> str | None:
        async with Channel(master.host, master.grpc_port, options=self._options) as ch:
            async with ch.stream_stream(SEND_HEARTBEAT, master_pb2.HeartbeatResponse) as call:
                self.hb.reset()
                self._wake.rearm()
                asked = self._changes_asked
                snap = await self._snapshot()
                await call.send_message(self.hb.full(snap, self._state_proto()))
                await call.send_message(self.hb.ec_full(snap))
                self._current = master
                self._changes_covered(asked)
                log.info("heartbeat stream open", master=master.dotted)
                result: list[str | None] = [None]
                received_all = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._receive, call, master, result, nursery.cancel_scope, received_all)
                    if await self._send_loop(call):
                        with trio.move_on_after(2.0):  # let the master read the last heartbeat
                            await received_all.wait()
                    nursery.cancel_scope.cancel()
                return result[0]

    async def _send_loop(self, call) -> bool:
        """Send heartbeats until stopped (True) or cancelled by the receiver."""
        next_full = trio.current_time() + self.pulse
        while True:
            wake = self._wake
            if not (wake.stop or wake.changed or wake.full):
                with trio.move_on_at(next_full):
                    await wake.event.wait()
            if wake.stop or not self._heartbeating:
                await call.send_message(self.hb.leave())
                call.done_writing()
                log.info("heartbeat stopped: told the master this server has no volumes")
                return True
            due = wake.full or trio.current_time() >= next_full
            changed = wake.changed
            asked = self._changes_asked
            wake.rearm()
            snap = await self._snapshot()
            if due:
                await call.send_message(self.hb.full(snap, self._state_proto()))
                next_full = trio.current_time() + self.pulse
            elif changed:
                delta = self.hb.delta(snap)
                if delta is not None:
                    await call.send_message(delta)
            ec_delta = self.hb.ec_delta(snap)  # EC shards go by delta (the full heartbeat omits them)
            if ec_delta is not None:
                await call.send_message(ec_delta)
            self._changes_covered(asked)

    async def _receive(
        self, call, master: MasterAddress, result: list[str | None], scope: trio.CancelScope, finished: trio.Event,
    ) -> None:
        try:
            await self._receive_loop(call, master, result, scope)
        finally:
            finished.set()

    async def _receive_loop(self, call, master: MasterAddress, result: list[str | None], scope: trio.CancelScope) -> None:
        from native.heartbeat import interpret_response  # loaded with the master client's modules (start-up time)

        current = f"{master.host}:{master.http_port}"
        while True:
            try:
                resp = await call.receive_message()
            except GrpcError:
                if self._wake.stop:
                    return  # the master ended the stream after our last heartbeat
                raise
            if resp is None:
                if self._wake.stop:
                    return
                raise GrpcError(Status.UNAVAILABLE, f"master {current} ended the heartbeat stream")
            actions = interpret_response(resp, current, self.volume_size_limit, self.preallocate)
            if actions.duplicated_uuids:
                raise GrpcError(Status.ALREADY_EXISTS, f"master reports duplicate directory uuids {list(actions.duplicated_uuids)}")
            if actions.volume_size_limit is not None:
                self.volume_size_limit = actions.volume_size_limit
                self._on_limit(actions.volume_size_limit)
                self.request_full()
            if actions.preallocate is not None:
                self.preallocate = actions.preallocate
            if actions.resend_full:
                self.request_full()
            if actions.new_leader is not None:
                result[0] = actions.new_leader
                scope.cancel()
                return
            if not self.state.master_connected:
                self.state.master_connected = True
                log.info("registered with master", master=current, volume_size_limit=self.volume_size_limit)


_GO_CODES = {
    Status.CANCELLED: "Canceled", Status.UNKNOWN: "Unknown", Status.INVALID_ARGUMENT: "InvalidArgument",
    Status.DEADLINE_EXCEEDED: "DeadlineExceeded", Status.NOT_FOUND: "NotFound", Status.ALREADY_EXISTS: "AlreadyExists",
    Status.PERMISSION_DENIED: "PermissionDenied", Status.RESOURCE_EXHAUSTED: "ResourceExhausted",
    Status.FAILED_PRECONDITION: "FailedPrecondition", Status.ABORTED: "Aborted", Status.OUT_OF_RANGE: "OutOfRange",
    Status.UNIMPLEMENTED: "Unimplemented", Status.INTERNAL: "Internal", Status.UNAVAILABLE: "Unavailable",
    Status.DATA_LOSS: "DataLoss", Status.UNAUTHENTICATED: "Unauthenticated",
}


def _go_code(status: Status) -> str:
    """grpc-go's codes.Code.String(), as it appears in `rpc error: code = X desc = ...`."""
    return _GO_CODES.get(status, f"Code({int(status)})")


def go_rpc_error(exc: GrpcError) -> str:
    return f"rpc error: code = {_go_code(exc.status)} desc = {exc.message}"


__all__.append("go_rpc_error")


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The first real error of a task group; the group itself if it carries a cancellation."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for e in g.exceptions:
            if isinstance(e, BaseExceptionGroup):
                walk(e)
            else:
                leaves.append(e)

    walk(group)
    if any(not isinstance(e, Exception) for e in leaves) or not leaves:
        return group
    return leaves[0]


def _load_master_modules() -> None:
    """What the first call to a master needs, imported ahead in a worker thread so that the
    event loop answers its first requests meanwhile (start-up time): the master's and the
    volume server's messages (`proto.lazy`), the heartbeat's records (native.heartbeat) and
    h2's connection machinery."""
    _ = master_pb2.Heartbeat, volume_server_pb2.VolumeServerState
    import native.heartbeat  # noqa: F401 - the report records and message building
    load_connection_core()
    freeze_long_lived()  # out of the collector's full passes, as start-up's imports (weedpy/imports.py)
