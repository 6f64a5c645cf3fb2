"""Storage errors, one class per outcome a caller must tell apart.

```
StorageError                      base; http_status 500, grpc_status INTERNAL
├── NotFound                      no such needle (or TTL-expired)              404
│   ├── Deleted                   the needle exists but was deleted            404
│   └── VolumeGone                (a worker) the leader removed the volume     404
├── CookieMismatch                the file id's cookie is not the stored one   404 on reads
├── VolumeNotFound                no such volume in this store                 404
├── VolumeExists                  allocate of an id already mounted            409
├── ReadOnly                      the volume refuses writes (or deletes)       403
├── VolumeFull                    the volume cannot grow any further           507
├── NoFreeLocation                no disk location can take a new volume       507
├── Corrupted                     bytes on disk do not parse or fail the CRC   500
│   └── ChecksumMismatch          data CRC differs from the stored CRC
├── OffsetWidthMismatch           .vif / .idx written with another offset width 500
├── UnsupportedVolume             version or remote tier we cannot serve       501
├── InvalidFileId                 a file id / needle id / cookie does not parse 400
├── WouldBlock                    (blocking=False) it would wait for a lock
└── VolumeClosed                  an append met a closed volume before writing 500
```

`http_status` and `grpc_status` are hints for the handlers; a handler whose Go counterpart uses a
different code for the same outcome (a cookie mismatch on DELETE is 400, on write 500) overrides
it there. Never branch on message text.
"""

from __future__ import annotations

__all__ = [
    "StorageError",
    "NotFound",
    "Deleted",
    "CookieMismatch",
    "VolumeNotFound",
    "VolumeExists",
    "ReadOnly",
    "VolumeFull",
    "NoFreeLocation",
    "Corrupted",
    "ChecksumMismatch",
    "OffsetWidthMismatch",
    "UnsupportedVolume",
    "InvalidFileId",
    "VolumeClosed",
    "BEFORE_WRITING",
]


class StorageError(Exception):
    """Base of every error the storage engine raises on purpose."""

    http_status: int = 500
    grpc_status: str = "INTERNAL"


class NotFound(StorageError):
    http_status = 404
    grpc_status = "NOT_FOUND"


class Deleted(NotFound):
    """The needle's map entry is a tombstone (readable only with read_deleted)."""


class CookieMismatch(StorageError):
    http_status = 404
    grpc_status = "PERMISSION_DENIED"


class VolumeNotFound(StorageError):
    http_status = 404
    grpc_status = "NOT_FOUND"


class VolumeExists(StorageError):
    http_status = 409
    grpc_status = "ALREADY_EXISTS"


class ReadOnly(StorageError):
    http_status = 403
    grpc_status = "FAILED_PRECONDITION"


class VolumeFull(StorageError):
    http_status = 507
    grpc_status = "RESOURCE_EXHAUSTED"


class NoFreeLocation(StorageError):
    http_status = 507
    grpc_status = "RESOURCE_EXHAUSTED"


class Corrupted(StorageError):
    """On-disk bytes that cannot be what Go wrote: bad header, short record, overrun fields."""


class ChecksumMismatch(Corrupted):
    pass


class OffsetWidthMismatch(StorageError):
    """A volume written with 4-byte offsets opened as 5-byte (or the reverse): refuse, never guess."""


class UnsupportedVolume(StorageError):
    http_status = 501
    grpc_status = "UNIMPLEMENTED"


class InvalidFileId(StorageError, ValueError):
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"


class WouldBlock(StorageError):
    """The operation would wait for a lock another thread or process holds (the caller asked it
    not to): do it again where waiting is allowed (a worker thread)."""


class VolumeGone(NotFound):
    """The leader removed this volume (unmount, delete) since this process opened it: to a reader,
    as absent as a needle of a deleted volume."""


class VolumeClosed(StorageError):
    """An append (or its catch-up) found the volume closed (unmounted, deleted, replaced by a
    tier move or a worker's reload) before it wrote anything. Not raised once the record is
    written (a sync that meets a close raises plain StorageError: the record is in the files)."""


# What an append on a volume object refuses with before it writes a byte, for a reason that may
# be the object's replacement (Store.write_needle answers from the store's volume then): read-only
# marks a move sets on the old object, its close, or (a worker) the leader's removal. Any other
# error stands: the append may have written (an I/O error, a failed sync) or the refusal is the
# volume's own answer (a cookie mismatch); Go tries an append once.
BEFORE_WRITING = (ReadOnly, VolumeClosed, VolumeGone)
