"""Volumes tiered to remote storage: the backends the master configures (`_backends`) and the
volume that serves its `.dat` from one of them (`_volume`). See docs/remote-tiering.md."""

from ._apply import apply_storage_backends
from ._backends import BackendRegistry, S3Backend, TierError, backend_name_to_type_id
from ._volume import RemoteFile, TieredVolume, remote_files

__all__ = ["BackendRegistry", "S3Backend", "TierError", "backend_name_to_type_id", "RemoteFile", "TieredVolume",
           "remote_files", "apply_storage_backends"]
