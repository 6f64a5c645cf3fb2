"""Mixed mode: the proxy (gateway/) plus native handlers (native/) and the dual-run differ (difftool/).

This is where the three meet, above all of them: `MixedExtension` is the gateway's
`ProxyExtension`. Without dual-run routes the native side is a read-only view of the Go
backend's files (native.build.build_follower), plus a writer store over the volumes native owns
(weedpy/volume_moves.py: each volume is served by its owner, and moves one at a time). With
`shadow` / `native+verify` routes it is a second store on `-dir.native` that receives every
write too, checked equal to Go's before the backend starts, optionally with a second Go backend
on `-dir.control` as the noise control.

With `-workers=N` all of that stays in this process (the leader): `share` opens the loopback
hop (weedpy/serve/hop.py) over which the workers (weedpy/mixed_worker.py) hand it the requests
routed to native, to a dual-run target or to the differ's API (with volume owners: every
request, served here by its volume's owner, and the owners' admin API), and `attach` gathers
the workers' evidence for the cutover rules once a second.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from difftool.gateway import (
    TeeCall,
    DualRunConfigError,
    GatewayDualRun,
    StoresDiffer,
    check_dual_run_stores,
    control_argv,
    control_dirs,
    dual_run_requested,
)
from gateway.app import RELAY_SOCKET_BUFFER, ProxyServer
from gateway.grpc_proxy import PROXY_SERVER_OPTIONS, GoRelay
from gateway.supervisor import BackendStartError, Supervisor
from native.build import GRPC_OPTIONS, NativeParts, build_follower, build_parts, native_version, open_store
from native.follower import FollowerStore
from native.go_state import WATCHED
from native.storage import StorageError
from native.storage.ownership import Layout, OwnershipError, owned_by_native, recover
from weedpy.config import VolumeConfig
from weedpy.security import SecurityConfig
from weedpy.grpc import ServerCall
from weedpy.serve.grpc_front import CallTarget, NamedTarget
from weedpy.serve.hop import FRONT, HopServer, new_token
from weedpy.serve.guard import Guard
from weedpy.serve.http_front import HttpTarget
from weedpy.serve.live_routes import RoutesHttp
from weedpy.serve.volume_owners import VOLUMES_PREFIX, OwnedSide, VolumeOwners, by_owner
from weedpy.serve.lifecycle import StartupError
from weedpy.serve.routes import RouteTable, Target
from weedpy.serve.workers import WorkerPool
from weedpy.volume_lists import VolumeLists
from weedpy.volume_moves import (
    NativeVolumes, SplitVolumes, VolumeMoves, VolumesApi, move_pause, open_native_owned,
)
from weedpy.weedbin import weed_version
from weedpy.cutover import TEST_FAULT_ENV, VOLUME_FAULT, Cutover, FaultyHttp, fault_switch
from weedpy.volume_rollback import VolumeCutover
from weedpy.logs import get_logger
from weedpy.serve.evidence import Evidence

__all__ = ["MixedExtension", "mixed_server", "GoStateWatch"]

log = get_logger("mixed")

DUAL_RUN_DRAIN_SECONDS = 10.0  # at stop, how long mirrored writes may take to reach the other store
WATCH_LIMIT = 1 << 20  # bytes of a watched call kept (its request and answer are a few bytes)
EVIDENCE_S = 1.0  # how often the workers' answers join the evidence (the rules are checked as often)


class GoStateWatch:
    """The Go relay, telling the read-only view about the calls Go answered that change what it
    holds in memory for a volume (native/go_state.py: marks, loads, commits, unmounts)."""

    name = "go"

    def __init__(self, go: CallTarget, store: FollowerStore) -> None:
        self._go = go
        self._store = store
        self._in_order = trio.Lock()  # one at a time, in the order Go answered them

    async def handle(self, call: ServerCall) -> None:
        if call.method not in WATCHED:
            await self._go.handle(call)
            return
        tee = TeeCall(call, WATCH_LIMIT)
        await self._go.handle(tee)
        response = tee.response_record()
        request = tee.request_record()
        if response.trailer(b"grpc-status") == b"0" and request.messages:
            # Following the call reads the volume's whole .idx and waits for the view's lock, which
            # a thread loading a view holds: a thread's job. Until it is done, lookups of the
            # volumes it changes wait (in threads), so none is served as it was before the call.
            store, req = self._store, request.messages[0]
            answer = response.messages[0] if response.messages else None
            settling = store.go_answering(call.method, req)
            taken = False

            def follow() -> None:
                nonlocal taken
                taken = True  # go_answered releases `settling`, whatever happens
                store.go_answered(call.method, req, answer, settling=settling)

            try:
                async with self._in_order:
                    await trio.to_thread.run_sync(follow)
            finally:
                if not taken:  # cancelled before the thread started
                    store.go_state.end(settling)


def mixed_server(cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, weed: Path) -> ProxyServer:
    return ProxyServer(cfg, security, routes, weed, MixedExtension(cfg, security, routes, weed))


class MixedExtension:
    def __init__(self, cfg: VolumeConfig, security: SecurityConfig, routes: RouteTable, weed: Path) -> None:
        self.cfg = cfg
        self.security = security
        self.routes = routes
        self.weed = weed
        self.native: NativeParts | None = None
        self.dual: GatewayDualRun | None = None
        self.control: Supervisor | None = None
        self._control_http: HttpTarget | None = None
        self.cutover: Cutover | None = None
        self.volume_cutover: VolumeCutover | None = None
        self._fault: tuple[str, str] | None = None
        self._nursery: trio.Nursery | None = None  # where the hop and the evidence gathering run
        self.owned: NativeParts | None = None  # native's writer store over the volumes it owns
        self.moves: VolumeMoves | None = None
        self._via_leader: list[int] = []  # with workers: the volumes whose requests they hand here
        self._native_owned: list[int] = []  # and the ones native owns (their request logs name it)

    async def before_backend(self, proxy: ProxyServer) -> None:
        try:
            self._fault = fault_switch(self.cfg.bind_ip)  # a test-only switch (weedpy/cutover.py)
            pause = move_pause(self.cfg.bind_ip)  # another (weedpy/volume_moves.py)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        await self._open_dual()
        if not dual_run_requested(self.routes):  # dual-run mirrors whole stores: no volume owners
            await self._open_owned(proxy, pause)

    async def _open_owned(self, proxy: ProxyServer, pause: tuple[str, float, str] | None) -> None:
        """Before Go starts: resolve a move a crash interrupted, open native's writer store over the
        volumes it owns, and have the heartbeat relay report them with Go's."""
        layout = Layout.of(self.cfg.dirs, self.cfg["dir.idx"] or None)
        try:
            resolved = await trio.to_thread.run_sync(recover, layout)
            native = await trio.to_thread.run_sync(owned_by_native, layout)
            self.owned = await trio.to_thread.run_sync(open_native_owned, self.cfg, self.security, layout,
                                                       str(self.weed))
        except (OSError, OwnershipError, StorageError) as exc:
            raise StartupError(f"cannot open the volumes native owns: {exc}") from None
        if resolved is not None:
            log.warning("interrupted volume move resolved", volume=resolved["vid"], outcome=resolved["outcome"],
                        step=resolved.get("step"), to=resolved["to"], renamed=len(resolved["renamed"]))
        owners = VolumeOwners(native)
        assert proxy.supervisor is not None and proxy.heartbeat_relay is not None
        self.moves = VolumeMoves(layout, owners, self.owned, proxy.supervisor, pause=pause)
        proxy.before_backend_start = self.moves.wait_for_handover
        proxy.heartbeat_relay.merge = NativeVolumes(owners, self.owned)
        log.info("volume owners", native=native, native_folders=layout.native_dirs())

    async def _open_dual(self) -> None:
        if not dual_run_requested(self.routes):
            return
        try:  # before Go starts: both stores must start equal
            self.native = await trio.to_thread.run_sync(self._open_dual_native)
        except (DualRunConfigError, StoresDiffer, OSError) as exc:
            raise StartupError(str(exc)) from None

    def _open_dual_native(self) -> NativeParts:
        native_cfg = dataclasses.replace(self.cfg, dirs=tuple(check_dual_run_stores(self.cfg)))
        return build_parts(native_cfg, self.security, open_store(native_cfg), heartbeat=False, read_only_view=False,
                           weed_binary=str(self.weed), version=native_version(self.weed))

    async def after_backend(self, nursery: trio.Nursery, proxy: ProxyServer) -> None:
        # The evidence the cutover rules read: each side's answers (the fronts), the differ's samples.
        proxy.evidence = Evidence()
        self.cutover = Cutover(proxy.live, proxy.evidence)
        # per volume: the evidence, and the rule that moves a volume native owns back to Go
        self.volume_cutover = VolumeCutover(proxy.live, proxy.evidence, self.moves)
        volumes_status = self.volume_cutover.status
        if self.moves is not None:  # `/weedpy/volumes`: the owners and moves with the evidence
            self.moves.status_extra = volumes_status
            volumes_status = self.moves.status
        routes_status = self.cutover.status
        proxy.live.status_extra = lambda: {**routes_status(), "volumes": volumes_status()}
        await nursery.start(self.cutover.run)
        await nursery.start(self.volume_cutover.run)
        follower = self.native is None  # no dual-run: the read-only view of Go's files
        if follower:
            self.native = build_follower(self.cfg, self.security, str(self.weed))
        self._apply_fault()
        if follower:
            return
        control_relay = None
        if control_dirs(self.cfg):  # a second Go backend as the differ's noise control
            self.control = proxy.new_supervisor(lambda ports: control_argv(
                proxy.backend_argv(ports, proxy.master_arg), self.cfg, self.dual.null_master.address))
            control_relay = proxy.go_relay(self.control)
            self._control_http = proxy.go_http(self.control)
        assert proxy.supervisor is not None
        self.dual = GatewayDualRun(
            proxy.live, self.native, proxy.supervisor, self.cfg, weed_version(self.weed, 2) or "unknown",
            self.native.ctx.full_version, proxy.guard, GRPC_OPTIONS, PROXY_SERVER_OPTIONS, self.control, control_relay,
            tls=proxy.tls,
        )
        self.dual.engine.observer = self.cutover.judged
        self.dual.engine.report_extra = lambda: {"cutover": self.cutover.status()}
        await nursery.start(self.dual.run)
        if self.control is not None:
            try:
                await nursery.start(self.control.run)
            except BackendStartError as exc:
                raise StartupError(f"the control Go backend failed to start:\n{exc}") from None

    def _apply_fault(self) -> None:
        if self._fault is not None:
            assert self.native is not None
            log.warning("TEST-ONLY FAULT: native answers this endpoint wrongly on purpose", kind=self._fault[0],
                        route=self._fault[1], env=TEST_FAULT_ENV)
            self.native.http = FaultyHttp(self.native.http, *self._fault)
            if self.owned is not None and self._fault[1].startswith(VOLUME_FAULT):  # and the volumes native owns
                self.owned.http = FaultyHttp(self.owned.http, *self._fault)

    def http_targets(self, go: HttpTarget) -> Mapping[Target, HttpTarget]:
        assert self.native is not None
        targets: dict[Target, HttpTarget] = {Target.NATIVE: self.native.http.handle}
        if self.dual is not None:
            targets.update(self.dual.http_targets(go, self._control_http))
        return targets

    def wrap_http(self, front: HttpTarget) -> HttpTarget:
        if self.dual is not None:
            return self.dual.admin(front).handle
        if self.moves is not None:
            api = VolumesApi(self.moves, Guard.from_entries(self.cfg.whitelist + self.security.guard_white_list))
            return RoutesHttp(api.answer, front, prefix=VOLUMES_PREFIX, keep_query=True).handle
        return front

    def owned_side(self) -> OwnedSide | None:
        if self.moves is None or self.owned is None:
            return None
        return OwnedSide(self.moves.owners, self.owned.http.handle, NamedTarget("native", self.owned.router),
                         SplitVolumes(self.moves.owners, self.owned), VolumeLists(self.moves, self.owned).serve)

    def grpc_targets(self, go: GoRelay) -> Mapping[Target, CallTarget]:
        assert self.native is not None
        targets: dict[Target, CallTarget] = {Target.NATIVE: NamedTarget("native", self.native.router)}
        if self.dual is not None:
            targets.update(self.dual.grpc_targets(go))
        else:  # the read-only view follows what Go holds in memory
            store = self.native.ctx.store
            if isinstance(store, FollowerStore):
                targets[Target.GO] = GoStateWatch(go, store)
        return targets

    async def share(self, nursery: trio.Nursery, targets: Mapping[Target, HttpTarget],
                    front: HttpTarget) -> dict[str, Any]:
        """Worker processes reach the native side and the differ over the loopback hop
        (weedpy/serve/hop.py): start its listener; the hop's address and token go to each worker."""
        token = new_token()
        hop_targets = {t.value: h for t, h in targets.items()}
        owned = self.owned_side()
        extra: dict[str, Any] = {}
        if owned is not None:  # a hopped file-id request is served here by its volume's owner
            hop_targets = {name: by_owner(owned.owners, owned.http, h, owned.status) for name, h in hop_targets.items()}
            # The volumes whose requests the workers hand here, updated in place so that the init
            # message of a worker started later carries the current ones.
            self._via_leader[:] = owned.owners.via_leader()
            self._native_owned[:] = owned.owners.native_volumes()
            extra = {"owners": True, "via_leader": self._via_leader, "native_owned": self._native_owned}
        hop = HopServer(token, {**hop_targets, FRONT: front})
        sock = hop.listen()
        self._nursery = nursery
        nursery.start_soon(hop.serve, sock, nursery, RELAY_SOCKET_BUFFER)
        host, port = sock.getsockname()[:2]
        return {"hop": [host, port], "hop_token": token, "hop_all": self.dual is not None, **extra}

    def attach(self, pool: WorkerPool) -> None:
        """Every second, the workers' counts of what they answered join the evidence the cutover
        rules read."""
        assert self._nursery is not None and self.cutover is not None
        self._nursery.start_soon(self._gather_evidence, pool, self.cutover.evidence)
        if self.moves is not None:
            self.moves.owners.publish = functools.partial(self._publish_owners, pool, self.moves.owners)

    async def _publish_owners(self, pool: WorkerPool, owners: VolumeOwners) -> list[int]:
        """Every worker routes by the current owners (native's volumes and the held ones go over
        the hop); the volumes a worker still had requests in flight for, straight to Go."""
        self._via_leader[:] = owners.via_leader()
        self._native_owned[:] = owners.native_volumes()
        # a state change (a worker starting meanwhile resyncs from its init), then a question
        await pool.broadcast({"op": "owners", "via_leader": list(self._via_leader),
                              "native_owned": list(self._native_owned)})
        replies = await pool.ask({"op": "owners_undrained"})
        return sorted({vid for reply in replies for vid in reply.get("undrained", ())})

    @staticmethod
    async def _gather_evidence(pool: WorkerPool, evidence: Evidence) -> None:
        while True:
            await trio.sleep(EVIDENCE_S)
            for reply in await pool.ask({"op": "evidence"}):
                evidence.merge(reply.get("evidence", ()))

    def metrics(self) -> list:
        """The differ's families (dual-run routes), the per-volume ones and the rollbacks, for the
        gateway's metrics port."""
        families = self.dual.metrics() if self.dual is not None else []
        if self.volume_cutover is not None:
            families += self.volume_cutover.metrics()
        return families + (self.cutover.metrics() if self.cutover is not None else [])

    async def drain(self) -> None:
        if self.dual is not None:  # let mirrored writes reach the native store before Go stops
            with trio.move_on_after(DUAL_RUN_DRAIN_SECONDS):
                await self.dual.engine.wait_idle()

    async def close(self) -> None:
        if self.control is not None:
            await self.control.stop()
        if self.native is not None:
            await self.native.close()
        if self.owned is not None:
            await self.owned.close()
