from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RemoteConf(_message.Message):
    __slots__ = ("type", "name", "s3_access_key", "s3_secret_key", "s3_region", "s3_endpoint", "s3_storage_class", "s3_force_path_style", "s3_support_tagging", "s3_v4_signature", "gcs_google_application_credentials", "gcs_project_id", "azure_account_name", "azure_account_key", "azure_client_id", "azure_endpoint", "backblaze_key_id", "backblaze_application_key", "backblaze_endpoint", "backblaze_region", "aliyun_access_key", "aliyun_secret_key", "aliyun_endpoint", "aliyun_region", "tencent_secret_id", "tencent_secret_key", "tencent_endpoint", "baidu_access_key", "baidu_secret_key", "baidu_endpoint", "baidu_region", "wasabi_access_key", "wasabi_secret_key", "wasabi_endpoint", "wasabi_region", "filebase_access_key", "filebase_secret_key", "filebase_endpoint", "storj_access_key", "storj_secret_key", "storj_endpoint", "contabo_access_key", "contabo_secret_key", "contabo_endpoint", "contabo_region", "upload_concurrency", "download_concurrency")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    S3_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    S3_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    S3_REGION_FIELD_NUMBER: _ClassVar[int]
    S3_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    S3_STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    S3_FORCE_PATH_STYLE_FIELD_NUMBER: _ClassVar[int]
    S3_SUPPORT_TAGGING_FIELD_NUMBER: _ClassVar[int]
    S3_V4_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    GCS_GOOGLE_APPLICATION_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    GCS_PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AZURE_ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    AZURE_ACCOUNT_KEY_FIELD_NUMBER: _ClassVar[int]
    AZURE_CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    AZURE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BACKBLAZE_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    BACKBLAZE_APPLICATION_KEY_FIELD_NUMBER: _ClassVar[int]
    BACKBLAZE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BACKBLAZE_REGION_FIELD_NUMBER: _ClassVar[int]
    ALIYUN_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    ALIYUN_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    ALIYUN_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ALIYUN_REGION_FIELD_NUMBER: _ClassVar[int]
    TENCENT_SECRET_ID_FIELD_NUMBER: _ClassVar[int]
    TENCENT_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    TENCENT_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BAIDU_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    BAIDU_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    BAIDU_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BAIDU_REGION_FIELD_NUMBER: _ClassVar[int]
    WASABI_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    WASABI_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    WASABI_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    WASABI_REGION_FIELD_NUMBER: _ClassVar[int]
    FILEBASE_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    FILEBASE_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    FILEBASE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STORJ_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    STORJ_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    STORJ_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CONTABO_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTABO_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTABO_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CONTABO_REGION_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    s3_endpoint: str
    s3_storage_class: str
    s3_force_path_style: bool
    s3_support_tagging: bool
    s3_v4_signature: bool
    gcs_google_application_credentials: str
    gcs_project_id: str
    azure_account_name: str
    azure_account_key: str
    azure_client_id: str
    azure_endpoint: str
    backblaze_key_id: str
    backblaze_application_key: str
    backblaze_endpoint: str
    backblaze_region: str
    aliyun_access_key: str
    aliyun_secret_key: str
    aliyun_endpoint: str
    aliyun_region: str
    tencent_secret_id: str
    tencent_secret_key: str
    tencent_endpoint: str
    baidu_access_key: str
    baidu_secret_key: str
    baidu_endpoint: str
    baidu_region: str
    wasabi_access_key: str
    wasabi_secret_key: str
    wasabi_endpoint: str
    wasabi_region: str
    filebase_access_key: str
    filebase_secret_key: str
    filebase_endpoint: str
    storj_access_key: str
    storj_secret_key: str
    storj_endpoint: str
    contabo_access_key: str
    contabo_secret_key: str
    contabo_endpoint: str
    contabo_region: str
    upload_concurrency: int
    download_concurrency: int
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., s3_access_key: _Optional[str] = ..., s3_secret_key: _Optional[str] = ..., s3_region: _Optional[str] = ..., s3_endpoint: _Optional[str] = ..., s3_storage_class: _Optional[str] = ..., s3_force_path_style: _Optional[bool] = ..., s3_support_tagging: _Optional[bool] = ..., s3_v4_signature: _Optional[bool] = ..., gcs_google_application_credentials: _Optional[str] = ..., gcs_project_id: _Optional[str] = ..., azure_account_name: _Optional[str] = ..., azure_account_key: _Optional[str] = ..., azure_client_id: _Optional[str] = ..., azure_endpoint: _Optional[str] = ..., backblaze_key_id: _Optional[str] = ..., backblaze_application_key: _Optional[str] = ..., backblaze_endpoint: _Optional[str] = ..., backblaze_region: _Optional[str] = ..., aliyun_access_key: _Optional[str] = ..., aliyun_secret_key: _Optional[str] = ..., aliyun_endpoint: _Optional[str] = ..., aliyun_region: _Optional[str] = ..., tencent_secret_id: _Optional[str] = ..., tencent_secret_key: _Optional[str] = ..., tencent_endpoint: _Optional[str] = ..., baidu_access_key: _Optional[str] = ..., baidu_secret_key: _Optional[str] = ..., baidu_endpoint: _Optional[str] = ..., baidu_region: _Optional[str] = ..., wasabi_access_key: _Optional[str] = ..., wasabi_secret_key: _Optional[str] = ..., wasabi_endpoint: _Optional[str] = ..., wasabi_region: _Optional[str] = ..., filebase_access_key: _Optional[str] = ..., filebase_secret_key: _Optional[str] = ..., filebase_endpoint: _Optional[str] = ..., storj_access_key: _Optional[str] = ..., storj_secret_key: _Optional[str] = ..., storj_endpoint: _Optional[str] = ..., contabo_access_key: _Optional[str] = ..., contabo_secret_key: _Optional[str] = ..., contabo_endpoint: _Optional[str] = ..., contabo_region: _Optional[str] = ..., upload_concurrency: _Optional[int] = ..., download_concurrency: _Optional[int] = ...) -> None: ...

class RemoteStorageMapping(_message.Message):
    __slots__ = ("mappings", "primary_bucket_storage_name")
    class MappingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RemoteStorageLocation
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RemoteStorageLocation, _Mapping]] = ...) -> None: ...
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_BUCKET_STORAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    mappings: _containers.MessageMap[str, RemoteStorageLocation]
    primary_bucket_storage_name: str
    def __init__(self, mappings: _Optional[_Mapping[str, RemoteStorageLocation]] = ..., primary_bucket_storage_name: _Optional[str] = ...) -> None: ...

class RemoteStorageLocation(_message.Message):
    __slots__ = ("name", "bucket", "path", "listing_cache_ttl_seconds", "cache_wait_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    LISTING_CACHE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    bucket: str
    path: str
    listing_cache_ttl_seconds: int
    cache_wait_ms: int
    def __init__(self, name: _Optional[str] = ..., bucket: _Optional[str] = ..., path: _Optional[str] = ..., listing_cache_ttl_seconds: _Optional[int] = ..., cache_wait_ms: _Optional[int] = ...) -> None: ...
