"""Volumes tiered to remote storage: the backends the master configures (`_backends`), the
object store interface they call (`_object_store`; the client is supplied from outside
storage), the volume that serves its `.dat` from one of them (`_volume`) and the switch between
local and remote (`_move`). See docs/remote-tiering.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exports import lazy_exports

# Each module and the names it exports, loaded with the first use of one of them (`_exports`).
_MODULES: dict[str, tuple[str, ...]] = {
    "._apply": ("apply_storage_backends",),
    "._backends": ("BackendRegistry", "S3Backend", "TierError", "backend_name_to_type_id"),
    "._move": ("drop_first_remote_file", "fsync_dir", "swap_to_local", "swap_to_remote"),
    "._object_store": ("ObjectStoreClient", "ObjectStoreError", "ObjectStoreFactory", "ObjectStoreSettings"),
    "._volume": ("RemoteFile", "TieredVolume", "remote_files"),
}
__getattr__, __dir__ = lazy_exports(__name__, _MODULES, globals())

if TYPE_CHECKING:  # what type checkers and editors see
    from ._apply import apply_storage_backends
    from ._backends import BackendRegistry, S3Backend, TierError, backend_name_to_type_id
    from ._move import drop_first_remote_file, fsync_dir, swap_to_local, swap_to_remote
    from ._object_store import ObjectStoreClient, ObjectStoreError, ObjectStoreFactory, ObjectStoreSettings
    from ._volume import RemoteFile, TieredVolume, remote_files

__all__ = [
    "BackendRegistry",
    "S3Backend",
    "TierError",
    "backend_name_to_type_id",
    "ObjectStoreClient",
    "ObjectStoreError",
    "ObjectStoreFactory",
    "ObjectStoreSettings",
    "RemoteFile",
    "TieredVolume",
    "remote_files",
    "apply_storage_backends",
    "swap_to_remote",
    "swap_to_local",
    "drop_first_remote_file",
    "fsync_dir",
]
