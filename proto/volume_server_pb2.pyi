from proto import remote_pb2 as _remote_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChecksumAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECKSUM_NONE: _ClassVar[ChecksumAlgorithm]
    CHECKSUM_CRC32C: _ClassVar[ChecksumAlgorithm]

class VolumeScrubMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNKNOWN: _ClassVar[VolumeScrubMode]
    INDEX: _ClassVar[VolumeScrubMode]
    FULL: _ClassVar[VolumeScrubMode]
    LOCAL: _ClassVar[VolumeScrubMode]
    CHECKSUM: _ClassVar[VolumeScrubMode]
    READS: _ClassVar[VolumeScrubMode]
CHECKSUM_NONE: ChecksumAlgorithm
CHECKSUM_CRC32C: ChecksumAlgorithm
UNKNOWN: VolumeScrubMode
INDEX: VolumeScrubMode
FULL: VolumeScrubMode
LOCAL: VolumeScrubMode
CHECKSUM: VolumeScrubMode
READS: VolumeScrubMode

class VolumeServerState(_message.Message):
    __slots__ = ("maintenance", "version")
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    maintenance: bool
    version: int
    def __init__(self, maintenance: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class BatchDeleteRequest(_message.Message):
    __slots__ = ("file_ids", "skip_cookie_check")
    FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    SKIP_COOKIE_CHECK_FIELD_NUMBER: _ClassVar[int]
    file_ids: _containers.RepeatedScalarFieldContainer[str]
    skip_cookie_check: bool
    def __init__(self, file_ids: _Optional[_Iterable[str]] = ..., skip_cookie_check: _Optional[bool] = ...) -> None: ...

class BatchDeleteResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DeleteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DeleteResult, _Mapping]]] = ...) -> None: ...

class DeleteResult(_message.Message):
    __slots__ = ("file_id", "status", "error", "size", "version")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    status: int
    error: str
    size: int
    version: int
    def __init__(self, file_id: _Optional[str] = ..., status: _Optional[int] = ..., error: _Optional[str] = ..., size: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VacuumVolumeCheckRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VacuumVolumeCheckResponse(_message.Message):
    __slots__ = ("garbage_ratio",)
    GARBAGE_RATIO_FIELD_NUMBER: _ClassVar[int]
    garbage_ratio: float
    def __init__(self, garbage_ratio: _Optional[float] = ...) -> None: ...

class VacuumVolumeCompactRequest(_message.Message):
    __slots__ = ("volume_id", "preallocate")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    PREALLOCATE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    preallocate: int
    def __init__(self, volume_id: _Optional[int] = ..., preallocate: _Optional[int] = ...) -> None: ...

class VacuumVolumeCompactResponse(_message.Message):
    __slots__ = ("processed_bytes", "load_avg_1m")
    PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_1M_FIELD_NUMBER: _ClassVar[int]
    processed_bytes: int
    load_avg_1m: float
    def __init__(self, processed_bytes: _Optional[int] = ..., load_avg_1m: _Optional[float] = ...) -> None: ...

class VacuumVolumeCommitRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VacuumVolumeCommitResponse(_message.Message):
    __slots__ = ("is_read_only", "volume_size")
    IS_READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SIZE_FIELD_NUMBER: _ClassVar[int]
    is_read_only: bool
    volume_size: int
    def __init__(self, is_read_only: _Optional[bool] = ..., volume_size: _Optional[int] = ...) -> None: ...

class VacuumVolumeCleanupRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VacuumVolumeCleanupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AllocateVolumeRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "preallocate", "replication", "ttl", "memory_map_max_size_mb", "disk_type", "version")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PREALLOCATE_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MAP_MAX_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    preallocate: int
    replication: str
    ttl: str
    memory_map_max_size_mb: int
    disk_type: str
    version: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., preallocate: _Optional[int] = ..., replication: _Optional[str] = ..., ttl: _Optional[str] = ..., memory_map_max_size_mb: _Optional[int] = ..., disk_type: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AllocateVolumeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeSyncStatusRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VolumeSyncStatusResponse(_message.Message):
    __slots__ = ("volume_id", "collection", "replication", "ttl", "tail_offset", "compact_revision", "idx_file_size", "version")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    TAIL_OFFSET_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    IDX_FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    replication: str
    ttl: str
    tail_offset: int
    compact_revision: int
    idx_file_size: int
    version: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., replication: _Optional[str] = ..., ttl: _Optional[str] = ..., tail_offset: _Optional[int] = ..., compact_revision: _Optional[int] = ..., idx_file_size: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class VolumeIncrementalCopyRequest(_message.Message):
    __slots__ = ("volume_id", "since_ns")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    since_ns: int
    def __init__(self, volume_id: _Optional[int] = ..., since_ns: _Optional[int] = ...) -> None: ...

class VolumeIncrementalCopyResponse(_message.Message):
    __slots__ = ("file_content",)
    FILE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    file_content: bytes
    def __init__(self, file_content: _Optional[bytes] = ...) -> None: ...

class VolumeMountRequest(_message.Message):
    __slots__ = ("volume_id", "collection")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ...) -> None: ...

class VolumeMountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeUnmountRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VolumeUnmountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeConsolidateIndexRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VolumeConsolidateIndexResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeDeleteRequest(_message.Message):
    __slots__ = ("volume_id", "only_empty", "keep_remote_data", "only_garbage")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    ONLY_EMPTY_FIELD_NUMBER: _ClassVar[int]
    KEEP_REMOTE_DATA_FIELD_NUMBER: _ClassVar[int]
    ONLY_GARBAGE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    only_empty: bool
    keep_remote_data: bool
    only_garbage: bool
    def __init__(self, volume_id: _Optional[int] = ..., only_empty: _Optional[bool] = ..., keep_remote_data: _Optional[bool] = ..., only_garbage: _Optional[bool] = ...) -> None: ...

class VolumeDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeMarkReadonlyRequest(_message.Message):
    __slots__ = ("volume_id", "persist", "can_delete")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    PERSIST_FIELD_NUMBER: _ClassVar[int]
    CAN_DELETE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    persist: bool
    can_delete: bool
    def __init__(self, volume_id: _Optional[int] = ..., persist: _Optional[bool] = ..., can_delete: _Optional[bool] = ...) -> None: ...

class VolumeMarkReadonlyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeMarkWritableRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VolumeMarkWritableResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeConfigureRequest(_message.Message):
    __slots__ = ("volume_id", "replication")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    replication: str
    def __init__(self, volume_id: _Optional[int] = ..., replication: _Optional[str] = ...) -> None: ...

class VolumeConfigureResponse(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: str
    def __init__(self, error: _Optional[str] = ...) -> None: ...

class VolumeStatusRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VolumeStatusResponse(_message.Message):
    __slots__ = ("is_read_only", "volume_size", "file_count", "file_deleted_count")
    IS_READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FILE_DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    is_read_only: bool
    volume_size: int
    file_count: int
    file_deleted_count: int
    def __init__(self, is_read_only: _Optional[bool] = ..., volume_size: _Optional[int] = ..., file_count: _Optional[int] = ..., file_deleted_count: _Optional[int] = ...) -> None: ...

class GetStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStateResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: VolumeServerState
    def __init__(self, state: _Optional[_Union[VolumeServerState, _Mapping]] = ...) -> None: ...

class SetStateRequest(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: VolumeServerState
    def __init__(self, state: _Optional[_Union[VolumeServerState, _Mapping]] = ...) -> None: ...

class SetStateResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: VolumeServerState
    def __init__(self, state: _Optional[_Union[VolumeServerState, _Mapping]] = ...) -> None: ...

class VolumeCopyRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "replication", "ttl", "source_data_node", "disk_type", "io_byte_per_second")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DATA_NODE_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    IO_BYTE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    replication: str
    ttl: str
    source_data_node: str
    disk_type: str
    io_byte_per_second: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., replication: _Optional[str] = ..., ttl: _Optional[str] = ..., source_data_node: _Optional[str] = ..., disk_type: _Optional[str] = ..., io_byte_per_second: _Optional[int] = ...) -> None: ...

class VolumeCopyResponse(_message.Message):
    __slots__ = ("last_append_at_ns", "processed_bytes")
    LAST_APPEND_AT_NS_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    last_append_at_ns: int
    processed_bytes: int
    def __init__(self, last_append_at_ns: _Optional[int] = ..., processed_bytes: _Optional[int] = ...) -> None: ...

class CopyFileRequest(_message.Message):
    __slots__ = ("volume_id", "ext", "compaction_revision", "stop_offset", "collection", "is_ec_volume", "ignore_source_file_not_found")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    EXT_FIELD_NUMBER: _ClassVar[int]
    COMPACTION_REVISION_FIELD_NUMBER: _ClassVar[int]
    STOP_OFFSET_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IS_EC_VOLUME_FIELD_NUMBER: _ClassVar[int]
    IGNORE_SOURCE_FILE_NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    ext: str
    compaction_revision: int
    stop_offset: int
    collection: str
    is_ec_volume: bool
    ignore_source_file_not_found: bool
    def __init__(self, volume_id: _Optional[int] = ..., ext: _Optional[str] = ..., compaction_revision: _Optional[int] = ..., stop_offset: _Optional[int] = ..., collection: _Optional[str] = ..., is_ec_volume: _Optional[bool] = ..., ignore_source_file_not_found: _Optional[bool] = ...) -> None: ...

class CopyFileResponse(_message.Message):
    __slots__ = ("file_content", "modified_ts_ns")
    FILE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_TS_NS_FIELD_NUMBER: _ClassVar[int]
    file_content: bytes
    modified_ts_ns: int
    def __init__(self, file_content: _Optional[bytes] = ..., modified_ts_ns: _Optional[int] = ...) -> None: ...

class ReceiveFileRequest(_message.Message):
    __slots__ = ("info", "file_content")
    INFO_FIELD_NUMBER: _ClassVar[int]
    FILE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    info: ReceiveFileInfo
    file_content: bytes
    def __init__(self, info: _Optional[_Union[ReceiveFileInfo, _Mapping]] = ..., file_content: _Optional[bytes] = ...) -> None: ...

class ReceiveFileInfo(_message.Message):
    __slots__ = ("volume_id", "ext", "collection", "is_ec_volume", "shard_id", "file_size", "disk_id", "disk_type")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    EXT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IS_EC_VOLUME_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    ext: str
    collection: str
    is_ec_volume: bool
    shard_id: int
    file_size: int
    disk_id: int
    disk_type: str
    def __init__(self, volume_id: _Optional[int] = ..., ext: _Optional[str] = ..., collection: _Optional[str] = ..., is_ec_volume: _Optional[bool] = ..., shard_id: _Optional[int] = ..., file_size: _Optional[int] = ..., disk_id: _Optional[int] = ..., disk_type: _Optional[str] = ...) -> None: ...

class ReceiveFileResponse(_message.Message):
    __slots__ = ("bytes_written", "error")
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    bytes_written: int
    error: str
    def __init__(self, bytes_written: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class ReadNeedleBlobRequest(_message.Message):
    __slots__ = ("volume_id", "offset", "size")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    offset: int
    size: int
    def __init__(self, volume_id: _Optional[int] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ReadNeedleBlobResponse(_message.Message):
    __slots__ = ("needle_blob",)
    NEEDLE_BLOB_FIELD_NUMBER: _ClassVar[int]
    needle_blob: bytes
    def __init__(self, needle_blob: _Optional[bytes] = ...) -> None: ...

class ReadNeedleMetaRequest(_message.Message):
    __slots__ = ("volume_id", "needle_id", "offset", "size")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    needle_id: int
    offset: int
    size: int
    def __init__(self, volume_id: _Optional[int] = ..., needle_id: _Optional[int] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ReadNeedleMetaResponse(_message.Message):
    __slots__ = ("cookie", "last_modified", "crc", "ttl", "append_at_ns")
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    CRC_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    APPEND_AT_NS_FIELD_NUMBER: _ClassVar[int]
    cookie: int
    last_modified: int
    crc: int
    ttl: str
    append_at_ns: int
    def __init__(self, cookie: _Optional[int] = ..., last_modified: _Optional[int] = ..., crc: _Optional[int] = ..., ttl: _Optional[str] = ..., append_at_ns: _Optional[int] = ...) -> None: ...

class WriteNeedleBlobRequest(_message.Message):
    __slots__ = ("volume_id", "needle_id", "size", "needle_blob")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_BLOB_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    needle_id: int
    size: int
    needle_blob: bytes
    def __init__(self, volume_id: _Optional[int] = ..., needle_id: _Optional[int] = ..., size: _Optional[int] = ..., needle_blob: _Optional[bytes] = ...) -> None: ...

class WriteNeedleBlobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadAllNeedlesRequest(_message.Message):
    __slots__ = ("volume_ids",)
    VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
    volume_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, volume_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ReadAllNeedlesResponse(_message.Message):
    __slots__ = ("volume_id", "needle_id", "cookie", "needle_blob", "needle_blob_compressed", "last_modified", "crc", "name", "mime")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_ID_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_BLOB_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_BLOB_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    CRC_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    needle_id: int
    cookie: int
    needle_blob: bytes
    needle_blob_compressed: bool
    last_modified: int
    crc: int
    name: bytes
    mime: bytes
    def __init__(self, volume_id: _Optional[int] = ..., needle_id: _Optional[int] = ..., cookie: _Optional[int] = ..., needle_blob: _Optional[bytes] = ..., needle_blob_compressed: _Optional[bool] = ..., last_modified: _Optional[int] = ..., crc: _Optional[int] = ..., name: _Optional[bytes] = ..., mime: _Optional[bytes] = ...) -> None: ...

class VolumeTailSenderRequest(_message.Message):
    __slots__ = ("volume_id", "since_ns", "idle_timeout_seconds")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    since_ns: int
    idle_timeout_seconds: int
    def __init__(self, volume_id: _Optional[int] = ..., since_ns: _Optional[int] = ..., idle_timeout_seconds: _Optional[int] = ...) -> None: ...

class VolumeTailSenderResponse(_message.Message):
    __slots__ = ("needle_header", "needle_body", "is_last_chunk", "version")
    NEEDLE_HEADER_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_BODY_FIELD_NUMBER: _ClassVar[int]
    IS_LAST_CHUNK_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    needle_header: bytes
    needle_body: bytes
    is_last_chunk: bool
    version: int
    def __init__(self, needle_header: _Optional[bytes] = ..., needle_body: _Optional[bytes] = ..., is_last_chunk: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class VolumeTailReceiverRequest(_message.Message):
    __slots__ = ("volume_id", "since_ns", "idle_timeout_seconds", "source_volume_server")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VOLUME_SERVER_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    since_ns: int
    idle_timeout_seconds: int
    source_volume_server: str
    def __init__(self, volume_id: _Optional[int] = ..., since_ns: _Optional[int] = ..., idle_timeout_seconds: _Optional[int] = ..., source_volume_server: _Optional[str] = ...) -> None: ...

class VolumeTailReceiverResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardsGenerateRequest(_message.Message):
    __slots__ = ("volume_id", "collection")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ...) -> None: ...

class VolumeEcShardsGenerateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardsRebuildRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "unsafe_ignore_sidecar")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    UNSAFE_IGNORE_SIDECAR_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    unsafe_ignore_sidecar: bool
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., unsafe_ignore_sidecar: _Optional[bool] = ...) -> None: ...

class VolumeEcShardsRebuildResponse(_message.Message):
    __slots__ = ("rebuilt_shard_ids",)
    REBUILT_SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    rebuilt_shard_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rebuilt_shard_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class VolumeEcShardsCopyRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "shard_ids", "copy_ecx_file", "source_data_node", "copy_ecj_file", "copy_vif_file", "disk_id", "copy_ecsum_file", "io_byte_per_second")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    COPY_ECX_FILE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DATA_NODE_FIELD_NUMBER: _ClassVar[int]
    COPY_ECJ_FILE_FIELD_NUMBER: _ClassVar[int]
    COPY_VIF_FILE_FIELD_NUMBER: _ClassVar[int]
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    COPY_ECSUM_FILE_FIELD_NUMBER: _ClassVar[int]
    IO_BYTE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    shard_ids: _containers.RepeatedScalarFieldContainer[int]
    copy_ecx_file: bool
    source_data_node: str
    copy_ecj_file: bool
    copy_vif_file: bool
    disk_id: int
    copy_ecsum_file: bool
    io_byte_per_second: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., shard_ids: _Optional[_Iterable[int]] = ..., copy_ecx_file: _Optional[bool] = ..., source_data_node: _Optional[str] = ..., copy_ecj_file: _Optional[bool] = ..., copy_vif_file: _Optional[bool] = ..., disk_id: _Optional[int] = ..., copy_ecsum_file: _Optional[bool] = ..., io_byte_per_second: _Optional[int] = ...) -> None: ...

class VolumeEcShardsCopyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardsDeleteRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "shard_ids", "full_teardown", "encode_ts_ns", "delete_generations_older_than")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    FULL_TEARDOWN_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    DELETE_GENERATIONS_OLDER_THAN_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    shard_ids: _containers.RepeatedScalarFieldContainer[int]
    full_teardown: bool
    encode_ts_ns: int
    delete_generations_older_than: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., shard_ids: _Optional[_Iterable[int]] = ..., full_teardown: _Optional[bool] = ..., encode_ts_ns: _Optional[int] = ..., delete_generations_older_than: _Optional[int] = ...) -> None: ...

class VolumeEcShardsDeleteResponse(_message.Message):
    __slots__ = ("full_teardown_done",)
    FULL_TEARDOWN_DONE_FIELD_NUMBER: _ClassVar[int]
    full_teardown_done: bool
    def __init__(self, full_teardown_done: _Optional[bool] = ...) -> None: ...

class VolumeEcShardsMountRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "shard_ids", "source_disk_type", "recover_missing_index")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    RECOVER_MISSING_INDEX_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    shard_ids: _containers.RepeatedScalarFieldContainer[int]
    source_disk_type: str
    recover_missing_index: bool
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., shard_ids: _Optional[_Iterable[int]] = ..., source_disk_type: _Optional[str] = ..., recover_missing_index: _Optional[bool] = ...) -> None: ...

class VolumeEcShardsMountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardsUnmountRequest(_message.Message):
    __slots__ = ("volume_id", "shard_ids", "encode_ts_ns")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    shard_ids: _containers.RepeatedScalarFieldContainer[int]
    encode_ts_ns: int
    def __init__(self, volume_id: _Optional[int] = ..., shard_ids: _Optional[_Iterable[int]] = ..., encode_ts_ns: _Optional[int] = ...) -> None: ...

class VolumeEcShardsUnmountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardReadRequest(_message.Message):
    __slots__ = ("volume_id", "shard_id", "offset", "size", "file_key", "encode_ts_ns")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_KEY_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    shard_id: int
    offset: int
    size: int
    file_key: int
    encode_ts_ns: int
    def __init__(self, volume_id: _Optional[int] = ..., shard_id: _Optional[int] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ..., file_key: _Optional[int] = ..., encode_ts_ns: _Optional[int] = ...) -> None: ...

class VolumeEcShardReadResponse(_message.Message):
    __slots__ = ("data", "is_deleted", "encode_ts_ns")
    DATA_FIELD_NUMBER: _ClassVar[int]
    IS_DELETED_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    is_deleted: bool
    encode_ts_ns: int
    def __init__(self, data: _Optional[bytes] = ..., is_deleted: _Optional[bool] = ..., encode_ts_ns: _Optional[int] = ...) -> None: ...

class VolumeEcBlobDeleteRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "file_key", "version")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILE_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    file_key: int
    version: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., file_key: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class VolumeEcBlobDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardsToVolumeRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "from_staged", "disk_type")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FROM_STAGED_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    from_staged: bool
    disk_type: str
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., from_staged: _Optional[bool] = ..., disk_type: _Optional[str] = ...) -> None: ...

class VolumeEcShardsToVolumeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeEcShardsInfoRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class VolumeEcShardsInfoResponse(_message.Message):
    __slots__ = ("ec_shard_infos", "volume_size", "file_count", "file_deleted_count", "ec_shard_config")
    EC_SHARD_INFOS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FILE_DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    EC_SHARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ec_shard_infos: _containers.RepeatedCompositeFieldContainer[EcShardInfo]
    volume_size: int
    file_count: int
    file_deleted_count: int
    ec_shard_config: EcShardConfig
    def __init__(self, ec_shard_infos: _Optional[_Iterable[_Union[EcShardInfo, _Mapping]]] = ..., volume_size: _Optional[int] = ..., file_count: _Optional[int] = ..., file_deleted_count: _Optional[int] = ..., ec_shard_config: _Optional[_Union[EcShardConfig, _Mapping]] = ...) -> None: ...

class EcShardInfo(_message.Message):
    __slots__ = ("shard_id", "size", "collection", "volume_id")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    shard_id: int
    size: int
    collection: str
    volume_id: int
    def __init__(self, shard_id: _Optional[int] = ..., size: _Optional[int] = ..., collection: _Optional[str] = ..., volume_id: _Optional[int] = ...) -> None: ...

class ReadVolumeFileStatusRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class ReadVolumeFileStatusResponse(_message.Message):
    __slots__ = ("volume_id", "idx_file_timestamp_seconds", "idx_file_size", "dat_file_timestamp_seconds", "dat_file_size", "file_count", "compaction_revision", "collection", "disk_type", "volume_info", "version")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    IDX_FILE_TIMESTAMP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDX_FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DAT_FILE_TIMESTAMP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DAT_FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPACTION_REVISION_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_INFO_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    idx_file_timestamp_seconds: int
    idx_file_size: int
    dat_file_timestamp_seconds: int
    dat_file_size: int
    file_count: int
    compaction_revision: int
    collection: str
    disk_type: str
    volume_info: VolumeInfo
    version: int
    def __init__(self, volume_id: _Optional[int] = ..., idx_file_timestamp_seconds: _Optional[int] = ..., idx_file_size: _Optional[int] = ..., dat_file_timestamp_seconds: _Optional[int] = ..., dat_file_size: _Optional[int] = ..., file_count: _Optional[int] = ..., compaction_revision: _Optional[int] = ..., collection: _Optional[str] = ..., disk_type: _Optional[str] = ..., volume_info: _Optional[_Union[VolumeInfo, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class DiskStatus(_message.Message):
    __slots__ = ("dir", "all", "used", "free", "percent_free", "percent_used", "disk_type", "error")
    DIR_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FREE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_USED_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    dir: str
    all: int
    used: int
    free: int
    percent_free: float
    percent_used: float
    disk_type: str
    error: str
    def __init__(self, dir: _Optional[str] = ..., all: _Optional[int] = ..., used: _Optional[int] = ..., free: _Optional[int] = ..., percent_free: _Optional[float] = ..., percent_used: _Optional[float] = ..., disk_type: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class MemStatus(_message.Message):
    __slots__ = ("goroutines", "all", "used", "free", "self", "heap", "stack")
    GOROUTINES_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    SELF_FIELD_NUMBER: _ClassVar[int]
    HEAP_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    goroutines: int
    all: int
    used: int
    free: int
    self: int
    heap: int
    stack: int
    def __init__(self_, goroutines: _Optional[int] = ..., all: _Optional[int] = ..., used: _Optional[int] = ..., free: _Optional[int] = ..., self: _Optional[int] = ..., heap: _Optional[int] = ..., stack: _Optional[int] = ...) -> None: ...

class RemoteFile(_message.Message):
    __slots__ = ("backend_type", "backend_id", "key", "offset", "file_size", "modified_time", "extension")
    BACKEND_TYPE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_TIME_FIELD_NUMBER: _ClassVar[int]
    EXTENSION_FIELD_NUMBER: _ClassVar[int]
    backend_type: str
    backend_id: str
    key: str
    offset: int
    file_size: int
    modified_time: int
    extension: str
    def __init__(self, backend_type: _Optional[str] = ..., backend_id: _Optional[str] = ..., key: _Optional[str] = ..., offset: _Optional[int] = ..., file_size: _Optional[int] = ..., modified_time: _Optional[int] = ..., extension: _Optional[str] = ...) -> None: ...

class VolumeInfo(_message.Message):
    __slots__ = ("files", "version", "replication", "bytes_offset", "dat_file_size", "expire_at_sec", "read_only", "ec_shard_config", "read_only_can_delete")
    FILES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    BYTES_OFFSET_FIELD_NUMBER: _ClassVar[int]
    DAT_FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_SEC_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    EC_SHARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_CAN_DELETE_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[RemoteFile]
    version: int
    replication: str
    bytes_offset: int
    dat_file_size: int
    expire_at_sec: int
    read_only: bool
    ec_shard_config: EcShardConfig
    read_only_can_delete: bool
    def __init__(self, files: _Optional[_Iterable[_Union[RemoteFile, _Mapping]]] = ..., version: _Optional[int] = ..., replication: _Optional[str] = ..., bytes_offset: _Optional[int] = ..., dat_file_size: _Optional[int] = ..., expire_at_sec: _Optional[int] = ..., read_only: _Optional[bool] = ..., ec_shard_config: _Optional[_Union[EcShardConfig, _Mapping]] = ..., read_only_can_delete: _Optional[bool] = ...) -> None: ...

class EcShardConfig(_message.Message):
    __slots__ = ("data_shards", "parity_shards", "encode_ts_ns", "block_size")
    DATA_SHARDS_FIELD_NUMBER: _ClassVar[int]
    PARITY_SHARDS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    data_shards: int
    parity_shards: int
    encode_ts_ns: int
    block_size: int
    def __init__(self, data_shards: _Optional[int] = ..., parity_shards: _Optional[int] = ..., encode_ts_ns: _Optional[int] = ..., block_size: _Optional[int] = ...) -> None: ...

class EcBitrotProtection(_message.Message):
    __slots__ = ("algorithm", "block_size", "generation", "ec_shard_config", "shards", "encode_uuid")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    EC_SHARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_UUID_FIELD_NUMBER: _ClassVar[int]
    algorithm: ChecksumAlgorithm
    block_size: int
    generation: int
    ec_shard_config: EcShardConfig
    shards: _containers.RepeatedCompositeFieldContainer[EcShardChecksums]
    encode_uuid: bytes
    def __init__(self, algorithm: _Optional[_Union[ChecksumAlgorithm, str]] = ..., block_size: _Optional[int] = ..., generation: _Optional[int] = ..., ec_shard_config: _Optional[_Union[EcShardConfig, _Mapping]] = ..., shards: _Optional[_Iterable[_Union[EcShardChecksums, _Mapping]]] = ..., encode_uuid: _Optional[bytes] = ...) -> None: ...

class EcShardChecksums(_message.Message):
    __slots__ = ("shard_id", "covered_size", "block_crc32c")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    COVERED_SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_CRC32C_FIELD_NUMBER: _ClassVar[int]
    shard_id: int
    covered_size: int
    block_crc32c: bytes
    def __init__(self, shard_id: _Optional[int] = ..., covered_size: _Optional[int] = ..., block_crc32c: _Optional[bytes] = ...) -> None: ...

class OldVersionVolumeInfo(_message.Message):
    __slots__ = ("files", "version", "replication", "BytesOffset", "dat_file_size", "DestroyTime", "read_only")
    FILES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    BYTESOFFSET_FIELD_NUMBER: _ClassVar[int]
    DAT_FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DESTROYTIME_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[RemoteFile]
    version: int
    replication: str
    BytesOffset: int
    dat_file_size: int
    DestroyTime: int
    read_only: bool
    def __init__(self, files: _Optional[_Iterable[_Union[RemoteFile, _Mapping]]] = ..., version: _Optional[int] = ..., replication: _Optional[str] = ..., BytesOffset: _Optional[int] = ..., dat_file_size: _Optional[int] = ..., DestroyTime: _Optional[int] = ..., read_only: _Optional[bool] = ...) -> None: ...

class VolumeTierMoveDatToRemoteRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "destination_backend_name", "keep_local_dat_file", "concurrency")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_BACKEND_NAME_FIELD_NUMBER: _ClassVar[int]
    KEEP_LOCAL_DAT_FILE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    destination_backend_name: str
    keep_local_dat_file: bool
    concurrency: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., destination_backend_name: _Optional[str] = ..., keep_local_dat_file: _Optional[bool] = ..., concurrency: _Optional[int] = ...) -> None: ...

class VolumeTierMoveDatToRemoteResponse(_message.Message):
    __slots__ = ("processed", "processedPercentage")
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    PROCESSEDPERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    processed: int
    processedPercentage: float
    def __init__(self, processed: _Optional[int] = ..., processedPercentage: _Optional[float] = ...) -> None: ...

class VolumeTierMoveDatFromRemoteRequest(_message.Message):
    __slots__ = ("volume_id", "collection", "keep_remote_dat_file", "concurrency")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEEP_REMOTE_DAT_FILE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    collection: str
    keep_remote_dat_file: bool
    concurrency: int
    def __init__(self, volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., keep_remote_dat_file: _Optional[bool] = ..., concurrency: _Optional[int] = ...) -> None: ...

class VolumeTierMoveDatFromRemoteResponse(_message.Message):
    __slots__ = ("processed", "processedPercentage")
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    PROCESSEDPERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    processed: int
    processedPercentage: float
    def __init__(self, processed: _Optional[int] = ..., processedPercentage: _Optional[float] = ...) -> None: ...

class VolumeServerStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeServerStatusResponse(_message.Message):
    __slots__ = ("disk_statuses", "memory_status", "version", "data_center", "rack", "state")
    DISK_STATUSES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    disk_statuses: _containers.RepeatedCompositeFieldContainer[DiskStatus]
    memory_status: MemStatus
    version: str
    data_center: str
    rack: str
    state: VolumeServerState
    def __init__(self, disk_statuses: _Optional[_Iterable[_Union[DiskStatus, _Mapping]]] = ..., memory_status: _Optional[_Union[MemStatus, _Mapping]] = ..., version: _Optional[str] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ..., state: _Optional[_Union[VolumeServerState, _Mapping]] = ...) -> None: ...

class VolumeServerLeaveRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeServerLeaveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FetchAndWriteNeedleRequest(_message.Message):
    __slots__ = ("volume_id", "needle_id", "cookie", "offset", "size", "replicas", "auth", "download_concurrency", "remote_conf", "remote_location")
    class Replica(_message.Message):
        __slots__ = ("url", "public_url", "grpc_port")
        URL_FIELD_NUMBER: _ClassVar[int]
        PUBLIC_URL_FIELD_NUMBER: _ClassVar[int]
        GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
        url: str
        public_url: str
        grpc_port: int
        def __init__(self, url: _Optional[str] = ..., public_url: _Optional[str] = ..., grpc_port: _Optional[int] = ...) -> None: ...
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_ID_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CONF_FIELD_NUMBER: _ClassVar[int]
    REMOTE_LOCATION_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    needle_id: int
    cookie: int
    offset: int
    size: int
    replicas: _containers.RepeatedCompositeFieldContainer[FetchAndWriteNeedleRequest.Replica]
    auth: str
    download_concurrency: int
    remote_conf: _remote_pb2.RemoteConf
    remote_location: _remote_pb2.RemoteStorageLocation
    def __init__(self, volume_id: _Optional[int] = ..., needle_id: _Optional[int] = ..., cookie: _Optional[int] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[FetchAndWriteNeedleRequest.Replica, _Mapping]]] = ..., auth: _Optional[str] = ..., download_concurrency: _Optional[int] = ..., remote_conf: _Optional[_Union[_remote_pb2.RemoteConf, _Mapping]] = ..., remote_location: _Optional[_Union[_remote_pb2.RemoteStorageLocation, _Mapping]] = ...) -> None: ...

class FetchAndWriteNeedleResponse(_message.Message):
    __slots__ = ("e_tag",)
    E_TAG_FIELD_NUMBER: _ClassVar[int]
    e_tag: str
    def __init__(self, e_tag: _Optional[str] = ...) -> None: ...

class ScrubVolumeRequest(_message.Message):
    __slots__ = ("mode", "volume_ids", "mark_broken_volumes_readonly")
    MODE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
    MARK_BROKEN_VOLUMES_READONLY_FIELD_NUMBER: _ClassVar[int]
    mode: VolumeScrubMode
    volume_ids: _containers.RepeatedScalarFieldContainer[int]
    mark_broken_volumes_readonly: bool
    def __init__(self, mode: _Optional[_Union[VolumeScrubMode, str]] = ..., volume_ids: _Optional[_Iterable[int]] = ..., mark_broken_volumes_readonly: _Optional[bool] = ...) -> None: ...

class ScrubVolumeResponse(_message.Message):
    __slots__ = ("total_volumes", "total_files", "broken_volume_ids", "details")
    TOTAL_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    BROKEN_VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    total_volumes: int
    total_files: int
    broken_volume_ids: _containers.RepeatedScalarFieldContainer[int]
    details: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, total_volumes: _Optional[int] = ..., total_files: _Optional[int] = ..., broken_volume_ids: _Optional[_Iterable[int]] = ..., details: _Optional[_Iterable[str]] = ...) -> None: ...

class ScrubEcVolumeRequest(_message.Message):
    __slots__ = ("mode", "volume_ids", "force_deleted_needles_check")
    MODE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
    FORCE_DELETED_NEEDLES_CHECK_FIELD_NUMBER: _ClassVar[int]
    mode: VolumeScrubMode
    volume_ids: _containers.RepeatedScalarFieldContainer[int]
    force_deleted_needles_check: bool
    def __init__(self, mode: _Optional[_Union[VolumeScrubMode, str]] = ..., volume_ids: _Optional[_Iterable[int]] = ..., force_deleted_needles_check: _Optional[bool] = ...) -> None: ...

class ScrubEcVolumeResponse(_message.Message):
    __slots__ = ("total_volumes", "total_files", "broken_volume_ids", "broken_shard_infos", "details")
    TOTAL_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    BROKEN_VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
    BROKEN_SHARD_INFOS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    total_volumes: int
    total_files: int
    broken_volume_ids: _containers.RepeatedScalarFieldContainer[int]
    broken_shard_infos: _containers.RepeatedCompositeFieldContainer[EcShardInfo]
    details: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, total_volumes: _Optional[int] = ..., total_files: _Optional[int] = ..., broken_volume_ids: _Optional[_Iterable[int]] = ..., broken_shard_infos: _Optional[_Iterable[_Union[EcShardInfo, _Mapping]]] = ..., details: _Optional[_Iterable[str]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("selections", "from_file_ids", "filter", "input_serialization", "output_serialization")
    class Filter(_message.Message):
        __slots__ = ("field", "operand", "value")
        FIELD_FIELD_NUMBER: _ClassVar[int]
        OPERAND_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        field: str
        operand: str
        value: str
        def __init__(self, field: _Optional[str] = ..., operand: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class InputSerialization(_message.Message):
        __slots__ = ("compression_type", "csv_input", "json_input", "parquet_input")
        class CSVInput(_message.Message):
            __slots__ = ("file_header_info", "record_delimiter", "field_delimiter", "quote_character", "quote_escape_character", "comments", "allow_quoted_record_delimiter")
            FILE_HEADER_INFO_FIELD_NUMBER: _ClassVar[int]
            RECORD_DELIMITER_FIELD_NUMBER: _ClassVar[int]
            FIELD_DELIMITER_FIELD_NUMBER: _ClassVar[int]
            QUOTE_CHARACTER_FIELD_NUMBER: _ClassVar[int]
            QUOTE_ESCAPE_CHARACTER_FIELD_NUMBER: _ClassVar[int]
            COMMENTS_FIELD_NUMBER: _ClassVar[int]
            ALLOW_QUOTED_RECORD_DELIMITER_FIELD_NUMBER: _ClassVar[int]
            file_header_info: str
            record_delimiter: str
            field_delimiter: str
            quote_character: str
            quote_escape_character: str
            comments: str
            allow_quoted_record_delimiter: bool
            def __init__(self, file_header_info: _Optional[str] = ..., record_delimiter: _Optional[str] = ..., field_delimiter: _Optional[str] = ..., quote_character: _Optional[str] = ..., quote_escape_character: _Optional[str] = ..., comments: _Optional[str] = ..., allow_quoted_record_delimiter: _Optional[bool] = ...) -> None: ...
        class JSONInput(_message.Message):
            __slots__ = ("type",)
            TYPE_FIELD_NUMBER: _ClassVar[int]
            type: str
            def __init__(self, type: _Optional[str] = ...) -> None: ...
        class ParquetInput(_message.Message):
            __slots__ = ()
            def __init__(self) -> None: ...
        COMPRESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
        CSV_INPUT_FIELD_NUMBER: _ClassVar[int]
        JSON_INPUT_FIELD_NUMBER: _ClassVar[int]
        PARQUET_INPUT_FIELD_NUMBER: _ClassVar[int]
        compression_type: str
        csv_input: QueryRequest.InputSerialization.CSVInput
        json_input: QueryRequest.InputSerialization.JSONInput
        parquet_input: QueryRequest.InputSerialization.ParquetInput
        def __init__(self, compression_type: _Optional[str] = ..., csv_input: _Optional[_Union[QueryRequest.InputSerialization.CSVInput, _Mapping]] = ..., json_input: _Optional[_Union[QueryRequest.InputSerialization.JSONInput, _Mapping]] = ..., parquet_input: _Optional[_Union[QueryRequest.InputSerialization.ParquetInput, _Mapping]] = ...) -> None: ...
    class OutputSerialization(_message.Message):
        __slots__ = ("csv_output", "json_output")
        class CSVOutput(_message.Message):
            __slots__ = ("quote_fields", "record_delimiter", "field_delimiter", "quote_character", "quote_escape_character")
            QUOTE_FIELDS_FIELD_NUMBER: _ClassVar[int]
            RECORD_DELIMITER_FIELD_NUMBER: _ClassVar[int]
            FIELD_DELIMITER_FIELD_NUMBER: _ClassVar[int]
            QUOTE_CHARACTER_FIELD_NUMBER: _ClassVar[int]
            QUOTE_ESCAPE_CHARACTER_FIELD_NUMBER: _ClassVar[int]
            quote_fields: str
            record_delimiter: str
            field_delimiter: str
            quote_character: str
            quote_escape_character: str
            def __init__(self, quote_fields: _Optional[str] = ..., record_delimiter: _Optional[str] = ..., field_delimiter: _Optional[str] = ..., quote_character: _Optional[str] = ..., quote_escape_character: _Optional[str] = ...) -> None: ...
        class JSONOutput(_message.Message):
            __slots__ = ("record_delimiter",)
            RECORD_DELIMITER_FIELD_NUMBER: _ClassVar[int]
            record_delimiter: str
            def __init__(self, record_delimiter: _Optional[str] = ...) -> None: ...
        CSV_OUTPUT_FIELD_NUMBER: _ClassVar[int]
        JSON_OUTPUT_FIELD_NUMBER: _ClassVar[int]
        csv_output: QueryRequest.OutputSerialization.CSVOutput
        json_output: QueryRequest.OutputSerialization.JSONOutput
        def __init__(self, csv_output: _Optional[_Union[QueryRequest.OutputSerialization.CSVOutput, _Mapping]] = ..., json_output: _Optional[_Union[QueryRequest.OutputSerialization.JSONOutput, _Mapping]] = ...) -> None: ...
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    FROM_FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INPUT_SERIALIZATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SERIALIZATION_FIELD_NUMBER: _ClassVar[int]
    selections: _containers.RepeatedScalarFieldContainer[str]
    from_file_ids: _containers.RepeatedScalarFieldContainer[str]
    filter: QueryRequest.Filter
    input_serialization: QueryRequest.InputSerialization
    output_serialization: QueryRequest.OutputSerialization
    def __init__(self, selections: _Optional[_Iterable[str]] = ..., from_file_ids: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[QueryRequest.Filter, _Mapping]] = ..., input_serialization: _Optional[_Union[QueryRequest.InputSerialization, _Mapping]] = ..., output_serialization: _Optional[_Union[QueryRequest.OutputSerialization, _Mapping]] = ...) -> None: ...

class QueriedStripe(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: bytes
    def __init__(self, records: _Optional[bytes] = ...) -> None: ...

class VolumeNeedleStatusRequest(_message.Message):
    __slots__ = ("volume_id", "needle_id")
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    NEEDLE_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    needle_id: int
    def __init__(self, volume_id: _Optional[int] = ..., needle_id: _Optional[int] = ...) -> None: ...

class VolumeNeedleStatusResponse(_message.Message):
    __slots__ = ("needle_id", "cookie", "size", "last_modified", "crc", "ttl")
    NEEDLE_ID_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    CRC_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    needle_id: int
    cookie: int
    size: int
    last_modified: int
    crc: int
    ttl: str
    def __init__(self, needle_id: _Optional[int] = ..., cookie: _Optional[int] = ..., size: _Optional[int] = ..., last_modified: _Optional[int] = ..., crc: _Optional[int] = ..., ttl: _Optional[str] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("target", "target_type")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    target: str
    target_type: str
    def __init__(self, target: _Optional[str] = ..., target_type: _Optional[str] = ...) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("start_time_ns", "remote_time_ns", "stop_time_ns")
    START_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    STOP_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    start_time_ns: int
    remote_time_ns: int
    stop_time_ns: int
    def __init__(self, start_time_ns: _Optional[int] = ..., remote_time_ns: _Optional[int] = ..., stop_time_ns: _Optional[int] = ...) -> None: ...
