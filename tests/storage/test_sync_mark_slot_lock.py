"""The sync mark (`SharedSlot.mark_sync`) takes the slot lock, an OFD lock owned by the process:
it must never release a hold another thread of the same process has on that slot."""

from __future__ import annotations

import threading
from pathlib import Path

from native.storage._fileio import OS_FILES
from native.storage._shared import SharedSlot
from weedpy.sharedmem import SharedBlock
from tests.storage.test_fsync_across_commit import SlowSyncFiles
from tests.storage.test_shared_volume import VID, _shared_pair, mk


class _HeldPwrite:
    """`OS_FILES` whose first pwrite waits for `release` (an append in progress, slot lock held)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        return OS_FILES.pwrite(fd, data, offset)

    def __getattr__(self, name: str):
        return getattr(OS_FILES, name)


def test_a_sync_ending_on_a_removed_volume_does_not_release_the_slot_of_the_volume_now_in_it(tmp_path: Path) -> None:
    """Volume 3 is deleted while its sync waits on the disk; volume 4, allocated next, takes the
    freed slot, and a thread of the same process appends to it (slot lock held). The old sync's
    end (`mark_sync(False)` under volume 3's write lock, not 4's) must not let another process
    take the slot lock in the middle of that append: both would write at the same offsets."""
    leader, worker, block = _shared_pair(tmp_path)
    old = leader.volume(VID)
    old.write_needle(mk(1, b"one"))
    index = old.shared.index
    slow = SlowSyncFiles()
    old.files = slow
    slow.fd = old._dat_fd
    syncer = threading.Thread(target=lambda: _ignore(old.sync_appended), daemon=True)
    syncer.start()
    assert slow.entered.wait(30)
    leader.delete_volume(VID)
    new = leader.allocate_volume(VID + 1)
    assert new.shared.index == index  # the lowest free slot: the one just freed
    held = _HeldPwrite()
    new.files = held
    appender = threading.Thread(target=lambda: new.write_needle(mk(2, b"two")), daemon=True)
    appender.start()
    assert held.entered.wait(30)  # the append holds volume 4's slot lock
    other = SharedSlot(SharedBlock.attach(block.fd), index)  # another process's description
    try:
        assert not other.lock(blocking=False)
        slow.release.set()
        syncer.join(0.5)  # volume 3's sync ends (its mark cleared once the append lets go of the slot)
        # volume 4's append still runs and must still exclude the others
        assert not other.lock(blocking=False), "the slot lock was released under a running append"
    finally:
        held.release.set()
        appender.join(30)
        syncer.join(30)
    assert not appender.is_alive() and not syncer.is_alive()
    assert new.shared.words()[8] == 0  # no sync mark left behind
    assert other.lock(blocking=False)  # the append is over: free now
    other.unlock()


def _ignore(call) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - the volume was deleted under the sync: its error is expected
        pass


def test_a_volume_mounted_in_a_freed_slot_does_not_inherit_its_sync_marks(tmp_path: Path) -> None:
    """A worker killed in the middle of a sync leaves its bit until a successor starts in its
    place; a volume the leader mounts in that slot meanwhile (the old one removed) is not being
    synced by anyone: every event loop appends to it."""
    leader, worker, _ = _shared_pair(tmp_path)
    index = leader.volume(VID).shared.index
    worker.volume(VID).shared.mark_sync(True)  # worker 1 killed in the middle of a sync
    leader.delete_volume(VID)
    new = leader.allocate_volume(VID + 1)
    assert new.shared.index == index
    new.write_needle(mk(1, b"one"), blocking=False)  # no WouldBlock
