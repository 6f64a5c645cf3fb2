"""The server's small pure helpers: route-table rules per mode, -tags, -max=0 sizing, state.pb."""

from __future__ import annotations

from pathlib import Path

import pytest

from native.build import adjust_volume_max
from native.grpc import StateFile, StateVersionMismatch
from native.storage import DiskStatus, Store
from proto import volume_server_pb2 as vs
from weedpy.config import parse_volume_args
from weedpy.serve.routes import mixed_route_problem, native_route_table, parse_route_table, unsupported_targets


def test_native_mode_tables() -> None:
    assert native_route_table(None).default.target.value == "native"
    assert unsupported_targets(native_route_table(None)) == []
    mixed = parse_route_table({"default": "go", "routes": {"admin.status": "native"}})
    assert "admin.read" in unsupported_targets(mixed) and "admin.status" not in unsupported_targets(mixed)
    off = parse_route_table({"default": "native", "routes": {"admin.ui": "off"}})
    assert unsupported_targets(off) == []


def test_mixed_mode_rules() -> None:
    ok = parse_route_table({"default": "go", "routes": {"admin.read": "native", "admin.status": "native",
                                                         "/volume_server_pb.VolumeServer/GetState": "native"}})
    assert mixed_route_problem(ok) is None
    health = parse_route_table({"default": "go", "routes": {"admin.healthz": "native"}})
    assert "admin.healthz" in (mixed_route_problem(health) or "")
    writes = parse_route_table({"default": "native", "routes": {"admin.read": "go"}})  # every writer native
    assert "must stay on go" in (mixed_route_problem(writes) or "")


def _folder_tags(tags: str, n: int) -> list[tuple[str, ...]]:
    dirs = ",".join(f"/d{i}" for i in range(n))
    return parse_volume_args([f"-dir={dirs}", f"-tags={tags}", "-ip=127.0.0.1"], environ={}).folder_tags()


def test_folder_tags_as_go_parses_them() -> None:
    assert _folder_tags("", 2) == [(), ()]
    assert _folder_tags("Fast:ssd", 2) == [("fast", "ssd"), ("fast", "ssd")]
    assert _folder_tags("a,b:c", 3) == [("a",), ("b", "c"), ()]


def test_auto_max_counts_follow_free_space(tmp_path: Path) -> None:
    gib = 1 << 30

    def statfs(d: str) -> DiskStatus:
        return DiskStatus(d, 100 * gib, 90 * gib, 10 * gib, 10.0, 90.0)

    store = Store.open([str(tmp_path / "a"), str(tmp_path / "b")], max_counts=[0, 7], statfs=statfs,
                       min_free_spaces=None)
    try:
        assert not adjust_volume_max(store, 0)  # no size limit from the master yet: nothing to do
        store.allocate_volume(1)
        assert adjust_volume_max(store, 4 * gib)
        # one volume held; its unused 4 GiB are claimed; (10 - 4) // 4 more fit
        assert store.locations[0].max_volume_count == 1 + 1 and store.locations[1].max_volume_count == 7
        assert not adjust_volume_max(store, 4 * gib)  # unchanged
        assert adjust_volume_max(store, 64 * gib) and store.locations[0].max_volume_count == 1
    finally:
        store.close()


def test_state_file_versions_and_persistence(tmp_path: Path) -> None:
    sf = StateFile(str(tmp_path))
    assert sf.proto() == vs.VolumeServerState()
    assert sf.update(None) == vs.VolumeServerState()
    st = sf.update(vs.VolumeServerState(maintenance=True))
    assert st.maintenance and st.version == 1
    with pytest.raises(StateVersionMismatch, match=r"got 1, want 0"):
        sf.update(vs.VolumeServerState(maintenance=False))
    again = StateFile(str(tmp_path))
    assert again.maintenance and again.proto().version == 1  # read back from state.pb, as Go would
    follower = StateFile(str(tmp_path), follow=True)
    sf.update(vs.VolumeServerState(maintenance=False, version=1))
    assert not follower.maintenance and follower.proto().version == 2  # re-read on every look
    with pytest.raises(PermissionError):
        follower.update(vs.VolumeServerState(version=2))


def test_a_followed_state_file_being_rewritten_keeps_the_last_state(tmp_path: Path) -> None:
    """Go saves state.pb by truncating then writing: a follower that reads it in between keeps the
    state it had (a saved state is never empty: its version is at least 1)."""
    follower = StateFile(str(tmp_path), follow=True)
    assert follower.proto() == vs.VolumeServerState()
    (tmp_path / "state.pb").write_bytes(b"")  # no state saved yet: empty is the empty state
    assert follower.proto() == vs.VolumeServerState()
    (tmp_path / "state.pb").write_bytes(vs.VolumeServerState(maintenance=True, version=1).SerializeToString())
    assert follower.maintenance
    (tmp_path / "state.pb").write_bytes(b"")  # Go's O_TRUNC, before its write
    assert follower.maintenance and follower.proto().version == 1
    (tmp_path / "state.pb").write_bytes(vs.VolumeServerState(version=2).SerializeToString())
    assert not follower.maintenance and follower.proto().version == 2
