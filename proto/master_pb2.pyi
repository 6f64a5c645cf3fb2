from proto import volume_server_pb2 as _volume_server_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DiskTag(_message.Message):
    __slots__ = ("disk_id", "tags", "type", "max_volume_count")
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    disk_id: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    type: str
    max_volume_count: int
    def __init__(self, disk_id: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., type: _Optional[str] = ..., max_volume_count: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("ip", "port", "public_url", "max_file_key", "data_center", "rack", "admin_port", "volumes", "new_volumes", "deleted_volumes", "has_no_volumes", "ec_shards", "new_ec_shards", "deleted_ec_shards", "has_no_ec_shards", "max_volume_counts", "grpc_port", "location_uuids", "id", "state", "disk_tags", "disk_total_bytes", "disk_free_bytes", "volume_digest", "changed_volumes")
    class MaxVolumeCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DiskTotalBytesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DiskFreeBytesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_URL_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    ADMIN_PORT_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    NEW_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    DELETED_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    HAS_NO_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    EC_SHARDS_FIELD_NUMBER: _ClassVar[int]
    NEW_EC_SHARDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_EC_SHARDS_FIELD_NUMBER: _ClassVar[int]
    HAS_NO_EC_SHARDS_FIELD_NUMBER: _ClassVar[int]
    MAX_VOLUME_COUNTS_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_UUIDS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DISK_TAGS_FIELD_NUMBER: _ClassVar[int]
    DISK_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VOLUME_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CHANGED_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    ip: str
    port: int
    public_url: str
    max_file_key: int
    data_center: str
    rack: str
    admin_port: int
    volumes: _containers.RepeatedCompositeFieldContainer[VolumeInformationMessage]
    new_volumes: _containers.RepeatedCompositeFieldContainer[VolumeShortInformationMessage]
    deleted_volumes: _containers.RepeatedCompositeFieldContainer[VolumeShortInformationMessage]
    has_no_volumes: bool
    ec_shards: _containers.RepeatedCompositeFieldContainer[VolumeEcShardInformationMessage]
    new_ec_shards: _containers.RepeatedCompositeFieldContainer[VolumeEcShardInformationMessage]
    deleted_ec_shards: _containers.RepeatedCompositeFieldContainer[VolumeEcShardInformationMessage]
    has_no_ec_shards: bool
    max_volume_counts: _containers.ScalarMap[str, int]
    grpc_port: int
    location_uuids: _containers.RepeatedScalarFieldContainer[str]
    id: str
    state: _volume_server_pb2.VolumeServerState
    disk_tags: _containers.RepeatedCompositeFieldContainer[DiskTag]
    disk_total_bytes: _containers.ScalarMap[str, int]
    disk_free_bytes: _containers.ScalarMap[str, int]
    volume_digest: int
    changed_volumes: _containers.RepeatedCompositeFieldContainer[VolumeInformationMessage]
    def __init__(self, ip: _Optional[str] = ..., port: _Optional[int] = ..., public_url: _Optional[str] = ..., max_file_key: _Optional[int] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ..., admin_port: _Optional[int] = ..., volumes: _Optional[_Iterable[_Union[VolumeInformationMessage, _Mapping]]] = ..., new_volumes: _Optional[_Iterable[_Union[VolumeShortInformationMessage, _Mapping]]] = ..., deleted_volumes: _Optional[_Iterable[_Union[VolumeShortInformationMessage, _Mapping]]] = ..., has_no_volumes: _Optional[bool] = ..., ec_shards: _Optional[_Iterable[_Union[VolumeEcShardInformationMessage, _Mapping]]] = ..., new_ec_shards: _Optional[_Iterable[_Union[VolumeEcShardInformationMessage, _Mapping]]] = ..., deleted_ec_shards: _Optional[_Iterable[_Union[VolumeEcShardInformationMessage, _Mapping]]] = ..., has_no_ec_shards: _Optional[bool] = ..., max_volume_counts: _Optional[_Mapping[str, int]] = ..., grpc_port: _Optional[int] = ..., location_uuids: _Optional[_Iterable[str]] = ..., id: _Optional[str] = ..., state: _Optional[_Union[_volume_server_pb2.VolumeServerState, _Mapping]] = ..., disk_tags: _Optional[_Iterable[_Union[DiskTag, _Mapping]]] = ..., disk_total_bytes: _Optional[_Mapping[str, int]] = ..., disk_free_bytes: _Optional[_Mapping[str, int]] = ..., volume_digest: _Optional[int] = ..., changed_volumes: _Optional[_Iterable[_Union[VolumeInformationMessage, _Mapping]]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("volume_size_limit", "leader", "metrics_address", "metrics_interval_seconds", "storage_backends", "duplicated_uuids", "preallocate", "resend_full_volume_list", "volume_digest_supported")
    VOLUME_SIZE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    METRICS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    METRICS_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BACKENDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATED_UUIDS_FIELD_NUMBER: _ClassVar[int]
    PREALLOCATE_FIELD_NUMBER: _ClassVar[int]
    RESEND_FULL_VOLUME_LIST_FIELD_NUMBER: _ClassVar[int]
    VOLUME_DIGEST_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    volume_size_limit: int
    leader: str
    metrics_address: str
    metrics_interval_seconds: int
    storage_backends: _containers.RepeatedCompositeFieldContainer[StorageBackend]
    duplicated_uuids: _containers.RepeatedScalarFieldContainer[str]
    preallocate: bool
    resend_full_volume_list: bool
    volume_digest_supported: bool
    def __init__(self, volume_size_limit: _Optional[int] = ..., leader: _Optional[str] = ..., metrics_address: _Optional[str] = ..., metrics_interval_seconds: _Optional[int] = ..., storage_backends: _Optional[_Iterable[_Union[StorageBackend, _Mapping]]] = ..., duplicated_uuids: _Optional[_Iterable[str]] = ..., preallocate: _Optional[bool] = ..., resend_full_volume_list: _Optional[bool] = ..., volume_digest_supported: _Optional[bool] = ...) -> None: ...

class VolumeInformationMessage(_message.Message):
    __slots__ = ("id", "size", "collection", "file_count", "delete_count", "deleted_byte_count", "read_only", "read_only_can_delete", "replica_placement", "version", "ttl", "compact_revision", "modified_at_second", "remote_storage_name", "remote_storage_key", "disk_type", "disk_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETED_BYTE_COUNT_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_CAN_DELETE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_SECOND_FIELD_NUMBER: _ClassVar[int]
    REMOTE_STORAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    REMOTE_STORAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    size: int
    collection: str
    file_count: int
    delete_count: int
    deleted_byte_count: int
    read_only: bool
    read_only_can_delete: bool
    replica_placement: int
    version: int
    ttl: int
    compact_revision: int
    modified_at_second: int
    remote_storage_name: str
    remote_storage_key: str
    disk_type: str
    disk_id: int
    def __init__(self, id: _Optional[int] = ..., size: _Optional[int] = ..., collection: _Optional[str] = ..., file_count: _Optional[int] = ..., delete_count: _Optional[int] = ..., deleted_byte_count: _Optional[int] = ..., read_only: _Optional[bool] = ..., read_only_can_delete: _Optional[bool] = ..., replica_placement: _Optional[int] = ..., version: _Optional[int] = ..., ttl: _Optional[int] = ..., compact_revision: _Optional[int] = ..., modified_at_second: _Optional[int] = ..., remote_storage_name: _Optional[str] = ..., remote_storage_key: _Optional[str] = ..., disk_type: _Optional[str] = ..., disk_id: _Optional[int] = ...) -> None: ...

class VolumeShortInformationMessage(_message.Message):
    __slots__ = ("id", "collection", "replica_placement", "version", "ttl", "disk_type", "disk_id", "read_only", "read_only_can_delete")
    ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_CAN_DELETE_FIELD_NUMBER: _ClassVar[int]
    id: int
    collection: str
    replica_placement: int
    version: int
    ttl: int
    disk_type: str
    disk_id: int
    read_only: bool
    read_only_can_delete: bool
    def __init__(self, id: _Optional[int] = ..., collection: _Optional[str] = ..., replica_placement: _Optional[int] = ..., version: _Optional[int] = ..., ttl: _Optional[int] = ..., disk_type: _Optional[str] = ..., disk_id: _Optional[int] = ..., read_only: _Optional[bool] = ..., read_only_can_delete: _Optional[bool] = ...) -> None: ...

class VolumeEcShardInformationMessage(_message.Message):
    __slots__ = ("id", "collection", "ec_index_bits", "disk_type", "expire_at_sec", "disk_id", "shard_sizes", "file_count", "delete_count", "encode_ts_ns")
    ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    EC_INDEX_BITS_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_AT_SEC_FIELD_NUMBER: _ClassVar[int]
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_SIZES_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TS_NS_FIELD_NUMBER: _ClassVar[int]
    id: int
    collection: str
    ec_index_bits: int
    disk_type: str
    expire_at_sec: int
    disk_id: int
    shard_sizes: _containers.RepeatedScalarFieldContainer[int]
    file_count: int
    delete_count: int
    encode_ts_ns: int
    def __init__(self, id: _Optional[int] = ..., collection: _Optional[str] = ..., ec_index_bits: _Optional[int] = ..., disk_type: _Optional[str] = ..., expire_at_sec: _Optional[int] = ..., disk_id: _Optional[int] = ..., shard_sizes: _Optional[_Iterable[int]] = ..., file_count: _Optional[int] = ..., delete_count: _Optional[int] = ..., encode_ts_ns: _Optional[int] = ...) -> None: ...

class StorageBackend(_message.Message):
    __slots__ = ("type", "id", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    properties: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SuperBlockExtra(_message.Message):
    __slots__ = ("erasure_coding",)
    class ErasureCoding(_message.Message):
        __slots__ = ("data", "parity", "volume_ids")
        DATA_FIELD_NUMBER: _ClassVar[int]
        PARITY_FIELD_NUMBER: _ClassVar[int]
        VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
        data: int
        parity: int
        volume_ids: _containers.RepeatedScalarFieldContainer[int]
        def __init__(self, data: _Optional[int] = ..., parity: _Optional[int] = ..., volume_ids: _Optional[_Iterable[int]] = ...) -> None: ...
    ERASURE_CODING_FIELD_NUMBER: _ClassVar[int]
    erasure_coding: SuperBlockExtra.ErasureCoding
    def __init__(self, erasure_coding: _Optional[_Union[SuperBlockExtra.ErasureCoding, _Mapping]] = ...) -> None: ...

class KeepConnectedRequest(_message.Message):
    __slots__ = ("client_type", "client_address", "version", "filer_group", "data_center", "rack")
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FILER_GROUP_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    client_address: str
    version: str
    filer_group: str
    data_center: str
    rack: str
    def __init__(self, client_type: _Optional[str] = ..., client_address: _Optional[str] = ..., version: _Optional[str] = ..., filer_group: _Optional[str] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ...) -> None: ...

class VolumeLocation(_message.Message):
    __slots__ = ("url", "public_url", "new_vids", "deleted_vids", "leader", "data_center", "grpc_port", "new_ec_vids", "deleted_ec_vids", "remote_vids", "read_only_vids", "read_only_can_delete_vids")
    URL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_URL_FIELD_NUMBER: _ClassVar[int]
    NEW_VIDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_VIDS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    NEW_EC_VIDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_EC_VIDS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_VIDS_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_VIDS_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_CAN_DELETE_VIDS_FIELD_NUMBER: _ClassVar[int]
    url: str
    public_url: str
    new_vids: _containers.RepeatedScalarFieldContainer[int]
    deleted_vids: _containers.RepeatedScalarFieldContainer[int]
    leader: str
    data_center: str
    grpc_port: int
    new_ec_vids: _containers.RepeatedScalarFieldContainer[int]
    deleted_ec_vids: _containers.RepeatedScalarFieldContainer[int]
    remote_vids: _containers.RepeatedScalarFieldContainer[int]
    read_only_vids: _containers.RepeatedScalarFieldContainer[int]
    read_only_can_delete_vids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, url: _Optional[str] = ..., public_url: _Optional[str] = ..., new_vids: _Optional[_Iterable[int]] = ..., deleted_vids: _Optional[_Iterable[int]] = ..., leader: _Optional[str] = ..., data_center: _Optional[str] = ..., grpc_port: _Optional[int] = ..., new_ec_vids: _Optional[_Iterable[int]] = ..., deleted_ec_vids: _Optional[_Iterable[int]] = ..., remote_vids: _Optional[_Iterable[int]] = ..., read_only_vids: _Optional[_Iterable[int]] = ..., read_only_can_delete_vids: _Optional[_Iterable[int]] = ...) -> None: ...

class ClusterNodeUpdate(_message.Message):
    __slots__ = ("node_type", "address", "is_add", "filer_group", "created_at_ns")
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IS_ADD_FIELD_NUMBER: _ClassVar[int]
    FILER_GROUP_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    node_type: str
    address: str
    is_add: bool
    filer_group: str
    created_at_ns: int
    def __init__(self, node_type: _Optional[str] = ..., address: _Optional[str] = ..., is_add: _Optional[bool] = ..., filer_group: _Optional[str] = ..., created_at_ns: _Optional[int] = ...) -> None: ...

class KeepConnectedResponse(_message.Message):
    __slots__ = ("volume_location", "cluster_node_update", "lock_ring_update")
    VOLUME_LOCATION_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NODE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    LOCK_RING_UPDATE_FIELD_NUMBER: _ClassVar[int]
    volume_location: VolumeLocation
    cluster_node_update: ClusterNodeUpdate
    lock_ring_update: LockRingUpdate
    def __init__(self, volume_location: _Optional[_Union[VolumeLocation, _Mapping]] = ..., cluster_node_update: _Optional[_Union[ClusterNodeUpdate, _Mapping]] = ..., lock_ring_update: _Optional[_Union[LockRingUpdate, _Mapping]] = ...) -> None: ...

class LockRingUpdate(_message.Message):
    __slots__ = ("filer_group", "servers", "version")
    FILER_GROUP_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    filer_group: str
    servers: _containers.RepeatedScalarFieldContainer[str]
    version: int
    def __init__(self, filer_group: _Optional[str] = ..., servers: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ...) -> None: ...

class LookupVolumeRequest(_message.Message):
    __slots__ = ("volume_or_file_ids", "collection")
    VOLUME_OR_FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    volume_or_file_ids: _containers.RepeatedScalarFieldContainer[str]
    collection: str
    def __init__(self, volume_or_file_ids: _Optional[_Iterable[str]] = ..., collection: _Optional[str] = ...) -> None: ...

class LookupVolumeResponse(_message.Message):
    __slots__ = ("volume_id_locations",)
    class VolumeIdLocation(_message.Message):
        __slots__ = ("volume_or_file_id", "locations", "error", "auth")
        VOLUME_OR_FILE_ID_FIELD_NUMBER: _ClassVar[int]
        LOCATIONS_FIELD_NUMBER: _ClassVar[int]
        ERROR_FIELD_NUMBER: _ClassVar[int]
        AUTH_FIELD_NUMBER: _ClassVar[int]
        volume_or_file_id: str
        locations: _containers.RepeatedCompositeFieldContainer[Location]
        error: str
        auth: str
        def __init__(self, volume_or_file_id: _Optional[str] = ..., locations: _Optional[_Iterable[_Union[Location, _Mapping]]] = ..., error: _Optional[str] = ..., auth: _Optional[str] = ...) -> None: ...
    VOLUME_ID_LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    volume_id_locations: _containers.RepeatedCompositeFieldContainer[LookupVolumeResponse.VolumeIdLocation]
    def __init__(self, volume_id_locations: _Optional[_Iterable[_Union[LookupVolumeResponse.VolumeIdLocation, _Mapping]]] = ...) -> None: ...

class Location(_message.Message):
    __slots__ = ("url", "public_url", "grpc_port", "data_center", "data_in_remote", "read_only", "read_only_can_delete")
    URL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_URL_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    DATA_IN_REMOTE_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_CAN_DELETE_FIELD_NUMBER: _ClassVar[int]
    url: str
    public_url: str
    grpc_port: int
    data_center: str
    data_in_remote: bool
    read_only: bool
    read_only_can_delete: bool
    def __init__(self, url: _Optional[str] = ..., public_url: _Optional[str] = ..., grpc_port: _Optional[int] = ..., data_center: _Optional[str] = ..., data_in_remote: _Optional[bool] = ..., read_only: _Optional[bool] = ..., read_only_can_delete: _Optional[bool] = ...) -> None: ...

class AssignRequest(_message.Message):
    __slots__ = ("count", "replication", "collection", "ttl", "data_center", "rack", "data_node", "memory_map_max_size_mb", "writable_volume_count", "disk_type", "expected_data_size")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    DATA_NODE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MAP_MAX_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    WRITABLE_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DATA_SIZE_FIELD_NUMBER: _ClassVar[int]
    count: int
    replication: str
    collection: str
    ttl: str
    data_center: str
    rack: str
    data_node: str
    memory_map_max_size_mb: int
    writable_volume_count: int
    disk_type: str
    expected_data_size: int
    def __init__(self, count: _Optional[int] = ..., replication: _Optional[str] = ..., collection: _Optional[str] = ..., ttl: _Optional[str] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ..., data_node: _Optional[str] = ..., memory_map_max_size_mb: _Optional[int] = ..., writable_volume_count: _Optional[int] = ..., disk_type: _Optional[str] = ..., expected_data_size: _Optional[int] = ...) -> None: ...

class VolumeGrowRequest(_message.Message):
    __slots__ = ("writable_volume_count", "replication", "collection", "ttl", "data_center", "rack", "data_node", "memory_map_max_size_mb", "disk_type")
    WRITABLE_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    DATA_NODE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MAP_MAX_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    writable_volume_count: int
    replication: str
    collection: str
    ttl: str
    data_center: str
    rack: str
    data_node: str
    memory_map_max_size_mb: int
    disk_type: str
    def __init__(self, writable_volume_count: _Optional[int] = ..., replication: _Optional[str] = ..., collection: _Optional[str] = ..., ttl: _Optional[str] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ..., data_node: _Optional[str] = ..., memory_map_max_size_mb: _Optional[int] = ..., disk_type: _Optional[str] = ...) -> None: ...

class AssignResponse(_message.Message):
    __slots__ = ("fid", "count", "error", "auth", "replicas", "location")
    FID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    fid: str
    count: int
    error: str
    auth: str
    replicas: _containers.RepeatedCompositeFieldContainer[Location]
    location: Location
    def __init__(self, fid: _Optional[str] = ..., count: _Optional[int] = ..., error: _Optional[str] = ..., auth: _Optional[str] = ..., replicas: _Optional[_Iterable[_Union[Location, _Mapping]]] = ..., location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...

class StatisticsRequest(_message.Message):
    __slots__ = ("replication", "collection", "ttl", "disk_type")
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    replication: str
    collection: str
    ttl: str
    disk_type: str
    def __init__(self, replication: _Optional[str] = ..., collection: _Optional[str] = ..., ttl: _Optional[str] = ..., disk_type: _Optional[str] = ...) -> None: ...

class StatisticsResponse(_message.Message):
    __slots__ = ("total_size", "used_size", "file_count", "logical_total_size", "logical_used_size")
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    USED_SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_USED_SIZE_FIELD_NUMBER: _ClassVar[int]
    total_size: int
    used_size: int
    file_count: int
    logical_total_size: int
    logical_used_size: int
    def __init__(self, total_size: _Optional[int] = ..., used_size: _Optional[int] = ..., file_count: _Optional[int] = ..., logical_total_size: _Optional[int] = ..., logical_used_size: _Optional[int] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CollectionListRequest(_message.Message):
    __slots__ = ("include_normal_volumes", "include_ec_volumes")
    INCLUDE_NORMAL_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EC_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    include_normal_volumes: bool
    include_ec_volumes: bool
    def __init__(self, include_normal_volumes: _Optional[bool] = ..., include_ec_volumes: _Optional[bool] = ...) -> None: ...

class CollectionListResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...

class CollectionStatisticsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CollectionStatisticsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionStatistics]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionStatistics, _Mapping]]] = ...) -> None: ...

class CollectionStatistics(_message.Message):
    __slots__ = ("collection", "file_count", "delete_count", "deleted_byte_count", "size", "physical_size", "volume_count")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETED_BYTE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    file_count: int
    delete_count: int
    deleted_byte_count: int
    size: int
    physical_size: int
    volume_count: int
    def __init__(self, collection: _Optional[str] = ..., file_count: _Optional[int] = ..., delete_count: _Optional[int] = ..., deleted_byte_count: _Optional[int] = ..., size: _Optional[int] = ..., physical_size: _Optional[int] = ..., volume_count: _Optional[int] = ...) -> None: ...

class CollectionDeleteRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CollectionDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DiskInfo(_message.Message):
    __slots__ = ("type", "volume_count", "max_volume_count", "free_volume_count", "active_volume_count", "volume_infos", "ec_shard_infos", "remote_volume_count", "disk_id", "tags", "max_volume_count_by_disk", "disk_total_bytes", "disk_free_bytes")
    class MaxVolumeCountByDiskEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    FREE_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_INFOS_FIELD_NUMBER: _ClassVar[int]
    EC_SHARD_INFOS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_VOLUME_COUNT_FIELD_NUMBER: _ClassVar[int]
    DISK_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MAX_VOLUME_COUNT_BY_DISK_FIELD_NUMBER: _ClassVar[int]
    DISK_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    type: str
    volume_count: int
    max_volume_count: int
    free_volume_count: int
    active_volume_count: int
    volume_infos: _containers.RepeatedCompositeFieldContainer[VolumeInformationMessage]
    ec_shard_infos: _containers.RepeatedCompositeFieldContainer[VolumeEcShardInformationMessage]
    remote_volume_count: int
    disk_id: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    max_volume_count_by_disk: _containers.ScalarMap[int, int]
    disk_total_bytes: int
    disk_free_bytes: int
    def __init__(self, type: _Optional[str] = ..., volume_count: _Optional[int] = ..., max_volume_count: _Optional[int] = ..., free_volume_count: _Optional[int] = ..., active_volume_count: _Optional[int] = ..., volume_infos: _Optional[_Iterable[_Union[VolumeInformationMessage, _Mapping]]] = ..., ec_shard_infos: _Optional[_Iterable[_Union[VolumeEcShardInformationMessage, _Mapping]]] = ..., remote_volume_count: _Optional[int] = ..., disk_id: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., max_volume_count_by_disk: _Optional[_Mapping[int, int]] = ..., disk_total_bytes: _Optional[int] = ..., disk_free_bytes: _Optional[int] = ...) -> None: ...

class DataNodeInfo(_message.Message):
    __slots__ = ("id", "diskInfos", "grpc_port", "address")
    class DiskInfosEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DiskInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DiskInfo, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    DISKINFOS_FIELD_NUMBER: _ClassVar[int]
    GRPC_PORT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    diskInfos: _containers.MessageMap[str, DiskInfo]
    grpc_port: int
    address: str
    def __init__(self, id: _Optional[str] = ..., diskInfos: _Optional[_Mapping[str, DiskInfo]] = ..., grpc_port: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class RackInfo(_message.Message):
    __slots__ = ("id", "data_node_infos", "diskInfos")
    class DiskInfosEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DiskInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DiskInfo, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_NODE_INFOS_FIELD_NUMBER: _ClassVar[int]
    DISKINFOS_FIELD_NUMBER: _ClassVar[int]
    id: str
    data_node_infos: _containers.RepeatedCompositeFieldContainer[DataNodeInfo]
    diskInfos: _containers.MessageMap[str, DiskInfo]
    def __init__(self, id: _Optional[str] = ..., data_node_infos: _Optional[_Iterable[_Union[DataNodeInfo, _Mapping]]] = ..., diskInfos: _Optional[_Mapping[str, DiskInfo]] = ...) -> None: ...

class DataCenterInfo(_message.Message):
    __slots__ = ("id", "rack_infos", "diskInfos")
    class DiskInfosEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DiskInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DiskInfo, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    RACK_INFOS_FIELD_NUMBER: _ClassVar[int]
    DISKINFOS_FIELD_NUMBER: _ClassVar[int]
    id: str
    rack_infos: _containers.RepeatedCompositeFieldContainer[RackInfo]
    diskInfos: _containers.MessageMap[str, DiskInfo]
    def __init__(self, id: _Optional[str] = ..., rack_infos: _Optional[_Iterable[_Union[RackInfo, _Mapping]]] = ..., diskInfos: _Optional[_Mapping[str, DiskInfo]] = ...) -> None: ...

class TopologyInfo(_message.Message):
    __slots__ = ("id", "data_center_infos", "diskInfos")
    class DiskInfosEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DiskInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DiskInfo, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_INFOS_FIELD_NUMBER: _ClassVar[int]
    DISKINFOS_FIELD_NUMBER: _ClassVar[int]
    id: str
    data_center_infos: _containers.RepeatedCompositeFieldContainer[DataCenterInfo]
    diskInfos: _containers.MessageMap[str, DiskInfo]
    def __init__(self, id: _Optional[str] = ..., data_center_infos: _Optional[_Iterable[_Union[DataCenterInfo, _Mapping]]] = ..., diskInfos: _Optional[_Mapping[str, DiskInfo]] = ...) -> None: ...

class VolumeListRequest(_message.Message):
    __slots__ = ("collection", "volume_ids", "default_collection_only", "remote_storage_name", "local_volume_only", "topology_only")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VOLUME_IDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_COLLECTION_ONLY_FIELD_NUMBER: _ClassVar[int]
    REMOTE_STORAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCAL_VOLUME_ONLY_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_ONLY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    volume_ids: _containers.RepeatedScalarFieldContainer[int]
    default_collection_only: bool
    remote_storage_name: str
    local_volume_only: bool
    topology_only: bool
    def __init__(self, collection: _Optional[str] = ..., volume_ids: _Optional[_Iterable[int]] = ..., default_collection_only: _Optional[bool] = ..., remote_storage_name: _Optional[str] = ..., local_volume_only: _Optional[bool] = ..., topology_only: _Optional[bool] = ...) -> None: ...

class VolumeListResponse(_message.Message):
    __slots__ = ("topology_info", "volume_size_limit_mb")
    TOPOLOGY_INFO_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SIZE_LIMIT_MB_FIELD_NUMBER: _ClassVar[int]
    topology_info: TopologyInfo
    volume_size_limit_mb: int
    def __init__(self, topology_info: _Optional[_Union[TopologyInfo, _Mapping]] = ..., volume_size_limit_mb: _Optional[int] = ...) -> None: ...

class VolumeListStreamResponse(_message.Message):
    __slots__ = ("header", "data_center", "rack", "data_node", "disk_type", "volume_infos", "ec_shard_infos")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    DATA_NODE_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_INFOS_FIELD_NUMBER: _ClassVar[int]
    EC_SHARD_INFOS_FIELD_NUMBER: _ClassVar[int]
    header: VolumeListResponse
    data_center: str
    rack: str
    data_node: str
    disk_type: str
    volume_infos: _containers.RepeatedCompositeFieldContainer[VolumeInformationMessage]
    ec_shard_infos: _containers.RepeatedCompositeFieldContainer[VolumeEcShardInformationMessage]
    def __init__(self, header: _Optional[_Union[VolumeListResponse, _Mapping]] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ..., data_node: _Optional[str] = ..., disk_type: _Optional[str] = ..., volume_infos: _Optional[_Iterable[_Union[VolumeInformationMessage, _Mapping]]] = ..., ec_shard_infos: _Optional[_Iterable[_Union[VolumeEcShardInformationMessage, _Mapping]]] = ...) -> None: ...

class LookupEcVolumeRequest(_message.Message):
    __slots__ = ("volume_id",)
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    def __init__(self, volume_id: _Optional[int] = ...) -> None: ...

class LookupEcVolumeResponse(_message.Message):
    __slots__ = ("volume_id", "shard_id_locations")
    class EcShardIdLocation(_message.Message):
        __slots__ = ("shard_id", "locations")
        SHARD_ID_FIELD_NUMBER: _ClassVar[int]
        LOCATIONS_FIELD_NUMBER: _ClassVar[int]
        shard_id: int
        locations: _containers.RepeatedCompositeFieldContainer[Location]
        def __init__(self, shard_id: _Optional[int] = ..., locations: _Optional[_Iterable[_Union[Location, _Mapping]]] = ...) -> None: ...
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    volume_id: int
    shard_id_locations: _containers.RepeatedCompositeFieldContainer[LookupEcVolumeResponse.EcShardIdLocation]
    def __init__(self, volume_id: _Optional[int] = ..., shard_id_locations: _Optional[_Iterable[_Union[LookupEcVolumeResponse.EcShardIdLocation, _Mapping]]] = ...) -> None: ...

class VacuumVolumeRequest(_message.Message):
    __slots__ = ("garbage_threshold", "volume_id", "collection")
    GARBAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    garbage_threshold: float
    volume_id: int
    collection: str
    def __init__(self, garbage_threshold: _Optional[float] = ..., volume_id: _Optional[int] = ..., collection: _Optional[str] = ...) -> None: ...

class VacuumVolumeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DisableVacuumRequest(_message.Message):
    __slots__ = ("by_plugin",)
    BY_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    by_plugin: bool
    def __init__(self, by_plugin: _Optional[bool] = ...) -> None: ...

class DisableVacuumResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnableVacuumRequest(_message.Message):
    __slots__ = ("by_plugin",)
    BY_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    by_plugin: bool
    def __init__(self, by_plugin: _Optional[bool] = ...) -> None: ...

class EnableVacuumResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VolumeMarkReadonlyRequest(_message.Message):
    __slots__ = ("ip", "port", "volume_id", "collection", "replica_placement", "version", "ttl", "disk_type", "is_readonly")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    DISK_TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_READONLY_FIELD_NUMBER: _ClassVar[int]
    ip: str
    port: int
    volume_id: int
    collection: str
    replica_placement: int
    version: int
    ttl: int
    disk_type: str
    is_readonly: bool
    def __init__(self, ip: _Optional[str] = ..., port: _Optional[int] = ..., volume_id: _Optional[int] = ..., collection: _Optional[str] = ..., replica_placement: _Optional[int] = ..., version: _Optional[int] = ..., ttl: _Optional[int] = ..., disk_type: _Optional[str] = ..., is_readonly: _Optional[bool] = ...) -> None: ...

class VolumeMarkReadonlyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMasterConfigurationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMasterConfigurationResponse(_message.Message):
    __slots__ = ("metrics_address", "metrics_interval_seconds", "storage_backends", "default_replication", "leader", "volume_size_limit_m_b", "volume_preallocate", "maintenance_scripts", "maintenance_sleep_minutes")
    METRICS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    METRICS_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BACKENDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REPLICATION_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    VOLUME_SIZE_LIMIT_M_B_FIELD_NUMBER: _ClassVar[int]
    VOLUME_PREALLOCATE_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_SCRIPTS_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_SLEEP_MINUTES_FIELD_NUMBER: _ClassVar[int]
    metrics_address: str
    metrics_interval_seconds: int
    storage_backends: _containers.RepeatedCompositeFieldContainer[StorageBackend]
    default_replication: str
    leader: str
    volume_size_limit_m_b: int
    volume_preallocate: bool
    maintenance_scripts: str
    maintenance_sleep_minutes: int
    def __init__(self, metrics_address: _Optional[str] = ..., metrics_interval_seconds: _Optional[int] = ..., storage_backends: _Optional[_Iterable[_Union[StorageBackend, _Mapping]]] = ..., default_replication: _Optional[str] = ..., leader: _Optional[str] = ..., volume_size_limit_m_b: _Optional[int] = ..., volume_preallocate: _Optional[bool] = ..., maintenance_scripts: _Optional[str] = ..., maintenance_sleep_minutes: _Optional[int] = ...) -> None: ...

class ListClusterNodesRequest(_message.Message):
    __slots__ = ("client_type", "filer_group", "limit")
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILER_GROUP_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    filer_group: str
    limit: int
    def __init__(self, client_type: _Optional[str] = ..., filer_group: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListClusterNodesResponse(_message.Message):
    __slots__ = ("cluster_nodes",)
    class ClusterNode(_message.Message):
        __slots__ = ("address", "version", "created_at_ns", "data_center", "rack")
        ADDRESS_FIELD_NUMBER: _ClassVar[int]
        VERSION_FIELD_NUMBER: _ClassVar[int]
        CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
        DATA_CENTER_FIELD_NUMBER: _ClassVar[int]
        RACK_FIELD_NUMBER: _ClassVar[int]
        address: str
        version: str
        created_at_ns: int
        data_center: str
        rack: str
        def __init__(self, address: _Optional[str] = ..., version: _Optional[str] = ..., created_at_ns: _Optional[int] = ..., data_center: _Optional[str] = ..., rack: _Optional[str] = ...) -> None: ...
    CLUSTER_NODES_FIELD_NUMBER: _ClassVar[int]
    cluster_nodes: _containers.RepeatedCompositeFieldContainer[ListClusterNodesResponse.ClusterNode]
    def __init__(self, cluster_nodes: _Optional[_Iterable[_Union[ListClusterNodesResponse.ClusterNode, _Mapping]]] = ...) -> None: ...

class LeaseAdminTokenRequest(_message.Message):
    __slots__ = ("previous_token", "previous_lock_time", "lock_name", "client_name", "message")
    PREVIOUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_LOCK_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCK_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    previous_token: int
    previous_lock_time: int
    lock_name: str
    client_name: str
    message: str
    def __init__(self, previous_token: _Optional[int] = ..., previous_lock_time: _Optional[int] = ..., lock_name: _Optional[str] = ..., client_name: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class LeaseAdminTokenResponse(_message.Message):
    __slots__ = ("token", "lock_ts_ns")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOCK_TS_NS_FIELD_NUMBER: _ClassVar[int]
    token: int
    lock_ts_ns: int
    def __init__(self, token: _Optional[int] = ..., lock_ts_ns: _Optional[int] = ...) -> None: ...

class ReleaseAdminTokenRequest(_message.Message):
    __slots__ = ("previous_token", "previous_lock_time", "lock_name")
    PREVIOUS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_LOCK_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCK_NAME_FIELD_NUMBER: _ClassVar[int]
    previous_token: int
    previous_lock_time: int
    lock_name: str
    def __init__(self, previous_token: _Optional[int] = ..., previous_lock_time: _Optional[int] = ..., lock_name: _Optional[str] = ...) -> None: ...

class ReleaseAdminTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAdminLockStatusRequest(_message.Message):
    __slots__ = ("lock_name",)
    LOCK_NAME_FIELD_NUMBER: _ClassVar[int]
    lock_name: str
    def __init__(self, lock_name: _Optional[str] = ...) -> None: ...

class GetAdminLockStatusResponse(_message.Message):
    __slots__ = ("is_locked", "client_name", "message")
    IS_LOCKED_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    is_locked: bool
    client_name: str
    message: str
    def __init__(self, is_locked: _Optional[bool] = ..., client_name: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

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

class RaftAddServerRequest(_message.Message):
    __slots__ = ("id", "address", "voter")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    voter: bool
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., voter: _Optional[bool] = ...) -> None: ...

class RaftAddServerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftRemoveServerRequest(_message.Message):
    __slots__ = ("id", "force")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RaftRemoveServerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftListClusterServersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftListClusterServersResponse(_message.Message):
    __slots__ = ("cluster_servers",)
    class ClusterServers(_message.Message):
        __slots__ = ("id", "address", "suffrage", "isLeader")
        ID_FIELD_NUMBER: _ClassVar[int]
        ADDRESS_FIELD_NUMBER: _ClassVar[int]
        SUFFRAGE_FIELD_NUMBER: _ClassVar[int]
        ISLEADER_FIELD_NUMBER: _ClassVar[int]
        id: str
        address: str
        suffrage: str
        isLeader: bool
        def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., suffrage: _Optional[str] = ..., isLeader: _Optional[bool] = ...) -> None: ...
    CLUSTER_SERVERS_FIELD_NUMBER: _ClassVar[int]
    cluster_servers: _containers.RepeatedCompositeFieldContainer[RaftListClusterServersResponse.ClusterServers]
    def __init__(self, cluster_servers: _Optional[_Iterable[_Union[RaftListClusterServersResponse.ClusterServers, _Mapping]]] = ...) -> None: ...

class RaftLeadershipTransferRequest(_message.Message):
    __slots__ = ("target_id", "target_address")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    target_id: str
    target_address: str
    def __init__(self, target_id: _Optional[str] = ..., target_address: _Optional[str] = ...) -> None: ...

class RaftLeadershipTransferResponse(_message.Message):
    __slots__ = ("previous_leader", "new_leader")
    PREVIOUS_LEADER_FIELD_NUMBER: _ClassVar[int]
    NEW_LEADER_FIELD_NUMBER: _ClassVar[int]
    previous_leader: str
    new_leader: str
    def __init__(self, previous_leader: _Optional[str] = ..., new_leader: _Optional[str] = ...) -> None: ...

class VolumeGrowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
