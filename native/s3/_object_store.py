"""`S3Client` as the object store the storage tier backends call (`native.storage.tier`'s
`ObjectStoreClient`): the volume server injects `s3_object_store` so storage itself holds no
network code. The one translation is the error: `S3Error` becomes `ObjectStoreError` with the
same text (Go's tier messages embed aws-sdk-go's wording)."""

from __future__ import annotations

from collections.abc import Iterator

from native.s3._client import S3Client, S3Error, S3Options
from native.storage.tier import ObjectStoreError, ObjectStoreSettings

__all__ = ["S3ObjectStore", "s3_object_store"]


def s3_object_store(settings: ObjectStoreSettings) -> "S3ObjectStore":
    """The `ObjectStoreFactory` for S3 backends."""
    return S3ObjectStore(S3Client(S3Options(
        endpoint=settings.endpoint, region=settings.region, access_key=settings.access_key,
        secret_key=settings.secret_key, force_path_style=settings.force_path_style,
        anonymous=settings.anonymous, user_agent=settings.user_agent,
    )))


class _S3Errors:
    """`with _S3_ERRORS:` re-raises an `S3Error` as an `ObjectStoreError` of the same text."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, S3Error):
            raise ObjectStoreError(str(exc)) from exc
        return False


_S3_ERRORS = _S3Errors()


class S3ObjectStore:
    """An `ObjectStoreClient` over one `S3Client`."""

    def __init__(self, client: S3Client) -> None:
        self.s3 = client

    def head_object(self, bucket: str, key: str) -> int:
        with _S3_ERRORS:
            return self.s3.head_object(bucket, key)

    def get_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        with _S3_ERRORS:
            return self.s3.get_range(bucket, key, offset, length)

    def iter_range(self, bucket: str, key: str, offset: int, length: int) -> Iterator[bytes]:
        with _S3_ERRORS:
            yield from self.s3.iter_range(bucket, key, offset, length)

    def put_stream(self, bucket: str, key: str, chunks: Iterator[bytes], length: int, *,
                   storage_class: str = "") -> str:
        with _S3_ERRORS:
            return self.s3.put_stream(bucket, key, chunks, length, storage_class=storage_class)

    def create_multipart(self, bucket: str, key: str, *, storage_class: str = "") -> str:
        with _S3_ERRORS:
            return self.s3.create_multipart(bucket, key, storage_class=storage_class)

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, chunks: Iterator[bytes],
                    length: int) -> str:
        with _S3_ERRORS:
            return self.s3.upload_part(bucket, key, upload_id, number, chunks, length)

    def complete_multipart(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        with _S3_ERRORS:
            self.s3.complete_multipart(bucket, key, upload_id, etags)

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        with _S3_ERRORS:
            self.s3.abort_multipart(bucket, key, upload_id)

    def delete_object(self, bucket: str, key: str) -> None:
        with _S3_ERRORS:
            self.s3.delete_object(bucket, key)

    def close(self) -> None:
        self.s3.close()
