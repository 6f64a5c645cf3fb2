"""Volumes tiered to remote storage: the backends the master configures (`_backends`), the
object store interface they call (`_object_store`; the client is supplied from outside
storage), the volume that serves its `.dat` from one of them (`_volume`) and the switch between
local and remote (`_move`). See docs/remote-tiering.md."""

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
