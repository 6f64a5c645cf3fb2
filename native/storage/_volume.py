"""A volume: one `.dat` of needle records, its `.idx` of map rows, its `.vif`, and the map.

Concurrency: any number of readers alongside one writer. Writes, deletes and map updates are
serialised by `_write_lock`; reads look the needle up in the map (its own short lock) and
`os.pread` the record with no volume lock at all. That is safe because `.dat` is append-only:
a record the map points at is never rewritten. Closing waits for in-flight preads so a
descriptor is never reused under a reader.

`Volume` is composed of one part per job, all on the fields of `VolumeBase` (`_volume_base`):
opening (`_volume_load`), reads (`_volume_read`), writes (`_volume_write`), state changes
(`_volume_state`) and serving it from several processes at once (`_volume_shared`: the readers
follow the `.idx` other processes append to, appends take the volume's shared lock). They are
mixins rather than collaborators so the hot paths (`read_plain`, `read_needle`, `write_needle`)
stay one method call on the volume, with no hop in between.
"""

from __future__ import annotations

from ._volume_base import ReadOnlyReasons, RecordInfo, VolumeStats, WriteResult
from ._volume_load import VolumeLoading
from ._volume_read import VolumeReads
from ._volume_shared import VolumeSharing
from ._volume_state import VolumeStateChanges
from ._volume_write import VolumeWrites

__all__ = ["Volume", "VolumeStats", "WriteResult", "ReadOnlyReasons", "RecordInfo"]


class Volume(VolumeLoading, VolumeWrites, VolumeReads, VolumeStateChanges, VolumeSharing):
    """Open with `Volume.load(...)` (existing) or `Volume.create(...)` (new)."""

    def __repr__(self) -> str:
        return f"<Volume {self.id} {self.collection!r} {self.directory} ro={self.read_only}>"
