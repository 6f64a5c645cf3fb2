"""weedpy's storage engine: reads and writes SeaweedFS volumes byte-compatibly with Go's `weed`.

A data directory can move between Go and weedpy in either direction with no conversion: the
needle records (v1/v2/v3, Go's padding bytes included), `.idx` rows (4- or 5-byte offsets),
super block and `.vif` are written exactly as Go writes them.

Layers, bottom up:

- codecs, sans-IO (bytes in, records out): `Needle` + `encode_needle`/`decode_needle`/
  `decode_meta`, `IdxCodec`, `SuperBlock`, `VolumeInfo`, `TTL`, `ReplicaPlacement`, `FileId`;
- `NeedleMap`: id -> (offset, size) with Go's counters: a sorted base (16 bytes/entry, resolved
  in bulk and kept in a `.nmx` map file every process maps) plus an overlay of later changes;
- `Volume`: one volume's files; many readers (lock-free `pread`) alongside one writer;
- `DiskLocation` (one `-dir`) and `Store` (all of them): what the HTTP/gRPC handlers call.

Everything here blocks; call it from worker threads (`trio.to_thread.run_sync`). The calls an
event loop makes directly take `blocking=False` and raise `WouldBlock` instead of waiting for a
lock another thread or process holds (`native.offload.storage_call` then runs them in a thread).

Handler entry points (all on `Store`; `vid` is the volume id, `needle_id` the key):

- `write_needle(vid, needle, *, check_cookie=True, fsync=False) -> WriteResult(offset, size, unchanged)`
- `read_needle(vid, needle_id, cookie=None, *, read_deleted=False) -> Needle`
- `read_needle_meta(vid, needle_id, cookie=None, *, read_deleted=False) -> (Needle, data_size)`
- `open_needle_stream(vid, needle_id, cookie=None, *, read_deleted=False) -> NeedleStream`
- `delete_needle(vid, needle_id, cookie=None, *, checksum=None) -> int` (deleted record size)
- `allocate_volume`, `mount_volume`, `unmount_volume`, `delete_volume`, `delete_collection`,
  `mark_volume_readonly(vid, can_delete=, persist=)`, `mark_volume_writable`, `configure_volume`
- vacuum: `check_compact_volume`, `compact_volume` (a generator of progress offsets),
  `commit_compact_volume`, `cleanup_compact_volume` (see `_vacuum.py`)
- `volumes()`, `volume(vid)`, `find_volume(vid)`, `volume_stats()`, `disk_statuses()`,
  `check_disk_space()`, `expired_volumes()`; per volume: `stats()`, `dat_path`, `idx_path`,
  `vif_path`, `read_record`, `write_needle_blob`, `iter_records`, `needle_value`.

Errors are typed (see `_errors.py`): `NotFound`, `Deleted`, `CookieMismatch`, `ReadOnly`,
`VolumeFull`, `Corrupted`/`ChecksumMismatch`, `VolumeNotFound`, `OffsetWidthMismatch`, ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._exports import lazy_exports

# Each module and the names it exports: a module loads with the first use of one of its names
# (`_exports`): a server's start-up imports what its first requests need.
_MODULES: dict[str, tuple[str, ...]] = {
    "._consolidate": ("consolidate_volume_index",),
    "._crc": ("crc32c", "etag", "legacy_crc_value"),
    "._disk": ("DiskLocation", "DiskStatus", "MinFreeSpace", "disk_status", "parse_min_free_spaces"),
    "._fs": ("remove_file",),
    "._errors": ("ChecksumMismatch", "CookieMismatch", "Corrupted", "Deleted", "InvalidFileId", "NoFreeLocation", "NotFound", "OffsetWidthMismatch", "ReadOnly", "StorageError", "UnsupportedVolume", "VolumeExists", "VolumeFull", "VolumeNotFound", "VolumeGone",
                  "WouldBlock", "VolumeClosed", "BEFORE_WRITING"),
    "._idx": ("IdxCodec", "IdxColumns", "IdxEntry"),
    "._go_body": ("BodyRead", "needle_string", "read_body"),
    "._fileio": ("OS_FILES", "FileOps", "OsFileOps"),
    "._integrity": ("IntegrityResult", "check_volume_tail"),
    "._names": ("parse_volume_base", "volume_base_name", "volume_file_name"),
    "._needle": ("FLAG_CHUNK_MANIFEST", "FLAG_GZIP", "FLAG_HAS_LAST_MODIFIED", "FLAG_HAS_MIME", "FLAG_HAS_NAME", "FLAG_HAS_PAIRS", "FLAG_HAS_TTL", "PAIR_NAME_PREFIX", "Needle", "NeedleHeader", "decode_meta", "decode_needle", "encode_needle", "go_json_pairs", "parse_header", "record_size"),
    "._needle_map": ("MapCounters", "NeedleMap", "NeedleValue"),
    "._recover": ("TailRepair", "plan_tail_repair", "repair_directory", "repair_volume_files"),
    "._reader": ("END_OF_VOLUME", "NEED_DATA", "NeedleReader", "Record", "TornRecord"),
    "._replica": ("ReplicaPlacement",),
    "._scrub": ("pin_for_scrub", "read_bytes_error", "scrub_index", "scrub_records", "scrub_volume"),
    "._since": ("ScannedRecord", "last_append_at_ns", "locate_since", "scan_records"),
    "._store": ("Store", "VolumeLookup"),
    "._stream": ("NeedleStream",),
    "._superblock": ("SuperBlock",),
    "._ttl": ("EMPTY_TTL", "TTL"),
    "._types": ("CHECKSUM_SIZE", "CURRENT_VERSION", "DATA_SIZE_SIZE", "DEFAULT_OFFSET_BYTES", "NEEDLE_HEADER_SIZE", "PAGED_READ_LIMIT", "SUPER_BLOCK_SIZE", "TOMBSTONE_SIZE", "VERSION1", "VERSION2", "VERSION3", "FileId", "OffsetCodec", "actual_size", "format_needle_id_cookie", "normalize_disk_type", "padding_length", "parse_fid_path", "parse_needle_id_cookie", "parse_volume_id", "readable_disk_type"),
    "._vif": ("VolumeInfo", "load_volume_info", "save_volume_info"),
    "._vacuum": ("FAKE_TOMBSTONE_COOKIE", "CompactResult", "VacuumError", "begin_compaction", "cleanup_compact",
                  "commit_compact", "compact", "compact_steps", "copy_in_process", "copy_live", "next_super_block",
                  "ttl_seconds"),
    "._volume": ("ReadOnlyReasons", "RecordInfo", "Volume", "VolumeStats", "WriteResult"),
    "._shared": ("SharedSlot", "VolumeTable"),
}
__getattr__, __dir__ = lazy_exports(__name__, _MODULES, globals())

if TYPE_CHECKING:  # what type checkers and editors see
    from ._consolidate import consolidate_volume_index
    from ._crc import crc32c, etag, legacy_crc_value
    from ._disk import DiskLocation, DiskStatus, MinFreeSpace, disk_status, parse_min_free_spaces
    from ._fs import remove_file
    from ._errors import (
        ChecksumMismatch,
        CookieMismatch,
        Corrupted,
        Deleted,
        InvalidFileId,
        NoFreeLocation,
        NotFound,
        OffsetWidthMismatch,
        ReadOnly,
        StorageError,
        UnsupportedVolume,
        VolumeExists,
        VolumeFull,
        VolumeNotFound,
        VolumeGone,
        WouldBlock,
        VolumeClosed,
        BEFORE_WRITING,
    )
    from ._idx import IdxCodec, IdxColumns, IdxEntry
    from ._go_body import BodyRead, needle_string, read_body
    from ._fileio import OS_FILES, FileOps, OsFileOps
    from ._integrity import IntegrityResult, check_volume_tail
    from ._names import parse_volume_base, volume_base_name, volume_file_name
    from ._needle import (
        FLAG_CHUNK_MANIFEST,
        FLAG_GZIP,
        FLAG_HAS_LAST_MODIFIED,
        FLAG_HAS_MIME,
        FLAG_HAS_NAME,
        FLAG_HAS_PAIRS,
        FLAG_HAS_TTL,
        PAIR_NAME_PREFIX,
        Needle,
        NeedleHeader,
        decode_meta,
        decode_needle,
        encode_needle,
        go_json_pairs,
        parse_header,
        record_size,
    )
    from ._needle_map import MapCounters, NeedleMap, NeedleValue
    from ._recover import TailRepair, plan_tail_repair, repair_directory, repair_volume_files
    from ._reader import END_OF_VOLUME, NEED_DATA, NeedleReader, Record, TornRecord
    from ._replica import ReplicaPlacement
    from ._scrub import pin_for_scrub, read_bytes_error, scrub_index, scrub_records, scrub_volume
    from ._since import ScannedRecord, last_append_at_ns, locate_since, scan_records
    from ._store import Store, VolumeLookup
    from ._stream import NeedleStream
    from ._superblock import SuperBlock
    from ._ttl import EMPTY_TTL, TTL
    from ._types import (
        CHECKSUM_SIZE,
        CURRENT_VERSION,
        DATA_SIZE_SIZE,
        DEFAULT_OFFSET_BYTES,
        NEEDLE_HEADER_SIZE,
        PAGED_READ_LIMIT,
        SUPER_BLOCK_SIZE,
        TOMBSTONE_SIZE,
        VERSION1,
        VERSION2,
        VERSION3,
        FileId,
        OffsetCodec,
        actual_size,
        format_needle_id_cookie,
        normalize_disk_type,
        padding_length,
        parse_fid_path,
        parse_needle_id_cookie,
        parse_volume_id,
        readable_disk_type,
    )
    from ._vif import VolumeInfo, load_volume_info, save_volume_info
    from ._vacuum import (FAKE_TOMBSTONE_COOKIE, CompactResult, VacuumError, begin_compaction, cleanup_compact,
                          commit_compact, compact, compact_steps, copy_in_process, copy_live, next_super_block,
                          ttl_seconds)
    from ._volume import ReadOnlyReasons, RecordInfo, Volume, VolumeStats, WriteResult
    from ._shared import SharedSlot, VolumeTable

__all__ = [
    "FileOps",
    "OsFileOps",
    "OS_FILES",
    "TailRepair",
    "plan_tail_repair",
    "repair_directory",
    "repair_volume_files",
    # store and volumes
    "Store",
    "VolumeLookup",
    "DiskLocation",
    "DiskStatus",
    "disk_status",
    "MinFreeSpace",
    "parse_min_free_spaces",
    "Volume",
    "VolumeStats",
    "VolumeTable",
    "SharedSlot",
    "VolumeGone",
    "WouldBlock",
    "VolumeClosed",
    "BEFORE_WRITING",
    "WriteResult",
    "ReadOnlyReasons",
    "RecordInfo",
    "NeedleStream",
    "NeedleMap",
    "NeedleValue",
    "MapCounters",
    # vacuum
    "compact",
    "compact_steps",
    "commit_compact",
    "cleanup_compact",
    "CompactResult",
    "VacuumError",
    "FAKE_TOMBSTONE_COOKIE",
    "consolidate_volume_index",
    # integrity scrubs
    "scrub_index",
    "scrub_volume",
    "read_bytes_error",
    # records by append time
    "ScannedRecord",
    "scan_records",
    "locate_since",
    "last_append_at_ns",
    # files
    "remove_file",
    # records and codecs
    "Needle",
    "NeedleHeader",
    "encode_needle",
    "decode_needle",
    "decode_meta",
    "parse_header",
    "record_size",
    "BodyRead",
    "read_body",
    "needle_string",
    "go_json_pairs",
    "NeedleReader",
    "Record",
    "TornRecord",
    "NEED_DATA",
    "END_OF_VOLUME",
    "IdxCodec",
    "IdxColumns",
    "IdxEntry",
    "SuperBlock",
    "VolumeInfo",
    "load_volume_info",
    "save_volume_info",
    "TTL",
    "EMPTY_TTL",
    "ReplicaPlacement",
    "FileId",
    "OffsetCodec",
    "IntegrityResult",
    "check_volume_tail",
    "crc32c",
    "legacy_crc_value",
    "etag",
    # names and ids
    "volume_base_name",
    "volume_file_name",
    "parse_volume_base",
    "parse_volume_id",
    "parse_needle_id_cookie",
    "parse_fid_path",
    "format_needle_id_cookie",
    "normalize_disk_type",
    "readable_disk_type",
    "actual_size",
    "padding_length",
    # constants
    "FLAG_GZIP",
    "FLAG_HAS_NAME",
    "FLAG_HAS_MIME",
    "FLAG_HAS_LAST_MODIFIED",
    "FLAG_HAS_TTL",
    "FLAG_HAS_PAIRS",
    "FLAG_CHUNK_MANIFEST",
    "PAIR_NAME_PREFIX",
    "VERSION1",
    "VERSION2",
    "VERSION3",
    "CURRENT_VERSION",
    "DEFAULT_OFFSET_BYTES",
    "NEEDLE_HEADER_SIZE",
    "PAGED_READ_LIMIT",
    "DATA_SIZE_SIZE",
    "CHECKSUM_SIZE",
    "SUPER_BLOCK_SIZE",
    "TOMBSTONE_SIZE",
    # errors
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
]
