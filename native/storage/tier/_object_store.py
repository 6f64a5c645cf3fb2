"""What a remote tier backend needs from an object store, as an interface.

Storage does no network I/O: the backends in `_backends` call an `ObjectStoreClient` that the
caller supplies through an `ObjectStoreFactory` (the volume server passes the S3 one from
`native.s3`), so this package imports no client code and tests can hand in any store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

__all__ = ["ObjectStoreClient", "ObjectStoreError", "ObjectStoreFactory", "ObjectStoreSettings"]


class ObjectStoreError(Exception):
    """A failed object store call. Its text is the store's own (Go embeds it in its messages),
    which the backends wrap in a `TierError`."""


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectStoreSettings:
    """How to reach the store, from the backend's configuration (Go's s3_backend fields)."""

    endpoint: str
    region: str
    access_key: str
    secret_key: str
    force_path_style: bool
    anonymous: bool  # no credentials: unsigned requests
    user_agent: str


class ObjectStoreClient(Protocol):
    """The calls the backends make. Blocking; every failure is an `ObjectStoreError`, except
    that an exception from the caller's `chunks` iterator propagates as it is."""

    def head_object(self, bucket: str, key: str) -> int:
        """The object's size."""
        ...

    def get_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of the object (fewer at its end)."""
        ...

    def iter_range(self, bucket: str, key: str, offset: int, length: int) -> Iterator[bytes]:
        """The same bytes, streamed."""
        ...

    def put_stream(self, bucket: str, key: str, chunks: Iterator[bytes], length: int, *,
                   storage_class: str = "") -> str:
        """Store `length` bytes read once from `chunks`; returns the ETag."""
        ...

    def create_multipart(self, bucket: str, key: str, *, storage_class: str = "") -> str:
        """Start a multipart upload; returns its id."""
        ...

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, chunks: Iterator[bytes],
                    length: int) -> str:
        """Send part `number` (from 1); returns its ETag."""
        ...

    def complete_multipart(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None: ...

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...

    def delete_object(self, bucket: str, key: str) -> None: ...

    def close(self) -> None: ...


class ObjectStoreFactory(Protocol):
    """Builds a client for one backend (called once, on the backend's first remote call)."""

    def __call__(self, settings: ObjectStoreSettings, /) -> ObjectStoreClient: ...
