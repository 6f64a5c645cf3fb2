"""MasterClient against recording masters, in process: leader redirection, deltas on notice,
the volume size limit, lookups with Go's cache, leave."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from native.context import ServerState
from native.heartbeat import Identity, snapshot_store
from native.master_client import MasterClient
from native.storage import Store
from proto import master_pb2, volume_server_pb2
from tests.native_core.recording_master import RecordingMaster

IDENT = Identity("127.0.0.1", 18999, 28999, "127.0.0.1:18999", "127.0.0.1:18999")


async def _until(pred, timeout: float = 10.0, what: str = "condition") -> None:
    with trio.move_on_after(timeout):
        while not pred():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"{what} not met in {timeout}s")


def _client(masters: list[str], store: Store, state: ServerState, **kw) -> MasterClient:
    async def snapshot():
        return snapshot_store(store)

    def limit(v: int) -> None:
        store.volume_size_limit = v

    return MasterClient(masters, IDENT, state=state, snapshot=snapshot, state_proto=volume_server_pb2.VolumeServerState,
                        on_volume_size_limit=limit, **kw)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open([str(tmp_path)], max_counts=4)
    yield s
    s.close()


async def test_moves_to_the_leader_a_follower_names(store: Store) -> None:
    follower, leader = RecordingMaster().start(), RecordingMaster(volume_size_limit=64 << 20).start()
    follower.leader_override = leader.address
    state = ServerState()
    mc = _client([follower.address], store, state)
    try:
        async with trio.open_nursery() as n:
            n.start_soon(mc.run)
            await _until(lambda: state.master_connected, what="registration with the leader")
            assert mc.current_master() == leader.address
            assert store.volume_size_limit == 64 << 20
            assert follower.streams == 1 and leader.streams == 1
            assert leader.snapshot()[0].id == IDENT.server_id  # a full heartbeat first, at the leader too
            n.cancel_scope.cancel()
    finally:
        follower.stop()
        leader.stop()


async def test_deltas_on_notice_and_leave(store: Store) -> None:
    m = RecordingMaster().start()
    state = ServerState()
    mc = _client([m.address], store, state, pulse=60.0)
    try:
        async with trio.open_nursery() as n:
            n.start_soon(mc.run)
            await _until(lambda: state.master_connected, what="registration")
            # the master's first answer sets the volume size limit, which asks for a full heartbeat:
            # once it went out, a change is reported by delta (before, that full one would carry it)
            await _until(lambda: sum(1 for h in m.snapshot() if h.id) >= 2, what="the full heartbeat after registration")
            store.allocate_volume(5, collection="c")
            mc.notify_changed()
            await _until(lambda: any(h.new_volumes for h in m.snapshot()), what="a delta naming volume 5")
            delta = next(h for h in m.snapshot() if h.new_volumes)
            assert [(v.id, v.collection) for v in delta.new_volumes] == [(5, "c")] and not delta.volumes
            store.delete_volume(5)
            mc.notify_changed()
            await _until(lambda: any(h.deleted_volumes for h in m.snapshot()), what="a delta removing volume 5")
            assert not await mc.stop_heartbeat()
            last = m.snapshot()[-1]
            assert last.has_no_volumes and not last.id and state.heartbeat_stopped
            assert await mc.stop_heartbeat()  # idempotent
            n.cancel_scope.cancel()
        assert m.streams == 1
    finally:
        m.stop()


async def test_lookups_are_cached_and_errors_are_gos(store: Store) -> None:
    m = RecordingMaster().start()
    m.locations["7"] = [master_pb2.Location(url="10.0.0.1:8080", public_url="pub:8080", grpc_port=18080, data_center="dc")]
    mc = _client([m.address], store, ServerState())
    try:
        locs = await mc.lookup_volume(7)
        assert [(l.url, l.public_url, l.grpc_port, l.data_center) for l in locs] == [("10.0.0.1:8080", "pub:8080", 18080, "dc")]
        await mc.lookup_volume(7)
        assert m.lookups == 1  # cached
        mc.invalidate(7)
        await mc.lookup_volume(7)
        assert m.lookups == 2
        with pytest.raises(LookupError, match="volume id 8 not found"):
            await mc.lookup_volume(8)
        assert mc.is_known_master(m.address) and mc.is_known_master(f"{m.address}.{m.grpc_port}")
        assert not mc.is_known_master("127.0.0.1:1")
        assert await mc.ping(m.address) > 0
    finally:
        m.stop()


async def test_reconnects_after_the_master_goes_away(store: Store) -> None:
    m = RecordingMaster().start()
    state = ServerState()
    mc = _client([m.address], store, state, pulse=0.5)
    try:
        async with trio.open_nursery() as n:
            n.start_soon(mc.run)
            await _until(lambda: state.master_connected, what="registration")
            m.stop()
            await _until(lambda: not state.master_connected, what="the loss noticed")
            again = RecordingMaster()
            again.http_port, again.grpc_port = m.http_port, m.grpc_port
            again.start(fresh_ports_if_taken=False)
            try:
                await _until(lambda: state.master_connected, timeout=15, what="re-registration")
                assert again.snapshot()[0].id == IDENT.server_id
            finally:
                n.cancel_scope.cancel()
                again.stop()
    finally:
        pass
