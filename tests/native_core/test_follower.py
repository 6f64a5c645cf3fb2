"""The mixed-mode follower: a read-only view that writes nothing and sees what the owner writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from native.follower import FollowerLocation, FollowerStore
from native.storage import Needle, ReadOnly, Store


def _files(d: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.iterdir())}


def test_view_writes_nothing_and_follows_the_owner(tmp_path: Path) -> None:
    owner = Store.open([str(tmp_path)], max_counts=5)
    follower = FollowerStore([FollowerLocation(str(tmp_path), max_volume_count=5)])
    try:
        owner.allocate_volume(3, collection="pics")
        owner.write_needle(3, Needle.create(1, 0x11, b"one"))
        os.remove(tmp_path / "pics_3.vif")
        before = _files(tmp_path)

        v = follower.find_volume(3)
        assert v is not None and v.collection == "pics"
        assert follower.read_needle(3, 1).data == b"one"
        assert [x.id for x in follower.volumes()] == [3] and follower.location_of(3)[0] == 0
        assert _files(tmp_path) == before  # no .vif written, nothing touched
        with pytest.raises(ReadOnly):
            follower.write_needle(3, Needle.create(2, 0x22, b"two"))

        owner.write_needle(3, Needle.create(2, 0x22, b"two"))  # the owner appends
        assert follower.read_needle(3, 2).data == b"two"
        assert follower.find_volume(3).stats().file_count == 2
        owner.delete_needle(3, 1)
        assert follower.find_volume(3).stats().delete_count == 1

        owner.allocate_volume(4)
        assert follower.find_volume(4) is not None  # found on a miss
        owner.mark_volume_readonly(4, persist=True)
        assert follower.find_volume(4).read_only
        owner.delete_volume(4)
        assert follower.find_volume(4) is None
        assert [x.id for x in follower.volumes()] == [3]
    finally:
        follower.close()
        owner.close()


def test_view_skips_volumes_mid_removal_and_half_created(tmp_path: Path) -> None:
    owner = Store.open([str(tmp_path)], max_counts=5)
    follower = FollowerStore([FollowerLocation(str(tmp_path))])
    try:
        owner.allocate_volume(6)
        (tmp_path / "6.note").write_text("removing")
        assert follower.find_volume(6) is None
        (tmp_path / "6.note").unlink()
        (tmp_path / "7.dat").write_bytes(b"")  # a .dat with no .idx yet
        assert follower.find_volume(7) is None
        assert follower.find_volume(6) is not None
    finally:
        follower.close()
        owner.close()
