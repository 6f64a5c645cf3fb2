"""A minimal S3 client (SigV4 over httpx) for tiering volumes to S3-compatible storage and for
FetchAndWriteNeedle's remote reads. Blocking; call it from worker threads.

`s3_object_store` is the object store factory a volume server hands to the storage tier
(`native.storage.tier.apply_storage_backends`), which imports no client code of its own."""

from native.s3._client import S3Client, S3Error, S3Options
from native.s3._object_store import S3ObjectStore, s3_object_store
from native.s3._sigv4 import Credentials, sign_headers

__all__ = ["S3Client", "S3Error", "S3Options", "S3ObjectStore", "s3_object_store", "Credentials", "sign_headers"]
