"""The public surface of native.storage: every exported name exists and is documented."""

from __future__ import annotations

import native.storage as storage


def test_all_names_resolve_and_are_unique() -> None:
    assert len(storage.__all__) == len(set(storage.__all__))
    for name in storage.__all__:
        assert hasattr(storage, name), name
        assert not name.startswith("_")


def test_handler_entry_points_exist() -> None:
    for meth in (
        "write_needle", "read_needle", "read_needle_meta", "open_needle_stream", "delete_needle",
        "allocate_volume", "mount_volume", "unmount_volume", "delete_volume", "delete_collection",
        "mark_volume_readonly", "mark_volume_writable", "configure_volume", "volumes", "volume",
        "find_volume", "volume_stats", "disk_statuses", "check_disk_space", "expired_volumes", "close",
    ):
        assert callable(getattr(storage.Store, meth)), meth
    for meth in ("stats", "read_record", "write_needle_blob", "iter_records", "needle_value", "mark_readonly", "mark_writable"):
        assert callable(getattr(storage.Volume, meth)), meth
    for error in ("NotFound", "Deleted", "CookieMismatch", "ReadOnly", "VolumeFull", "Corrupted"):
        assert issubclass(getattr(storage, error), storage.StorageError)
    assert issubclass(storage.Deleted, storage.NotFound)
