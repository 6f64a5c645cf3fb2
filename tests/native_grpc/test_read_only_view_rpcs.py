"""The native rpcs mixed mode routes to its read-only view of Go's files (native/follower.py): a
view holds no EC volumes, and an answer that looks for one must not fail on that."""

from __future__ import annotations

from pathlib import Path

import pytest

from native.context import NativeContext, go_version
from native.follower import FollowerLocation, FollowerStore
from native.grpc import Services, StateFile
from native.grpc._volumes import volume_needle_status
from native.storage import Store
from proto import volume_server_pb2 as vs
from tests.native_grpc.support import _FakeMaster, _NoMasterLookup
from weedpy.config import parse_volume_args
from weedpy.grpc import GrpcError, Status
from weedpy.http1 import UpstreamPool
from weedpy.security import SecurityConfig
from weedpy.serve.guard import Guard


async def test_needle_status_in_a_read_only_view(tmp_path: Path) -> None:
    store = Store.open([str(tmp_path)], max_counts=5)  # what Go would have written
    store.allocate_volume(3)
    store.close()
    cfg = parse_volume_args([f"-dir={tmp_path}", "-ip=127.0.0.1", "-master=127.0.0.1:1"], environ={})
    view = FollowerStore([FollowerLocation(str(tmp_path))])
    ctx = NativeContext(cfg=cfg, security=SecurityConfig(), store=view, version=go_version(5),
                        master=_NoMasterLookup(), http_pool=UpstreamPool())
    svc = Services(ctx, _FakeMaster(), StateFile(str(tmp_path), follow=True), Guard.from_entries(()),
                   read_only_view=True)
    try:
        for vid, text, status in ((7, "volume not found 7", Status.UNKNOWN), (3, "needle not found 1", Status.NOT_FOUND)):
            with pytest.raises(GrpcError) as info:
                await volume_needle_status(svc, vs.VolumeNeedleStatusRequest(volume_id=vid, needle_id=1), None)
            assert (info.value.status, info.value.message) == (status, text)
    finally:
        view.close()
