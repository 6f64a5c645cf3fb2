"""Remote storage backends for tiered volumes (Go's weed/storage/backend and its s3_backend).

The master's configuration (`[storage.backend.s3.<id>]` in master.toml) reaches volume servers
in GetMasterConfiguration's `storage_backends`; `BackendRegistry.load` turns those into
backends named `<type>.<id>` (`s3.default` is also plain `s3`), first configuration wins, as
Go's LoadFromPbStorageBackends keeps. Only `s3` exists in weed 4.48's default build.

An S3 backend stores a volume's `.dat` as one object under a random UUID key (multipart in
64 MiB parts, grown so there are at most 1000; storage class STANDARD_IA unless configured),
reads byte ranges of it, downloads it back, and deletes it. Transfers are generators that
yield the bytes processed so far (handlers turn them into progress messages) and return their
result. Blocking: run them in worker threads. The object store client comes from the
`ObjectStoreFactory` given to `BackendRegistry.load` (see `_object_store`): no network code here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator, Mapping

from .._errors import StorageError
from ._object_store import ObjectStoreClient, ObjectStoreError, ObjectStoreFactory, ObjectStoreSettings

__all__ = ["BackendRegistry", "S3Backend", "backend_name_to_type_id", "TierError", "parse_go_bool"]

_PART = 64 << 20
_CHUNK = 1 << 20
_VERSION = "4.48"


class TierError(StorageError):
    """A remote tier operation failed; the message is what Go would report."""


def parse_go_bool(text: str, default: bool) -> bool:
    """Go's util.ParseBool: strconv.ParseBool, or the default when it does not parse."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return default


def backend_name_to_type_id(name: str) -> tuple[str, str]:
    """`s3` -> (s3, default); `s3.x` -> (s3, x); anything else -> ("", "")."""
    parts = name.split(".")
    if len(parts) == 1:
        return name, "default"
    if len(parts) != 2:
        return "", ""
    return parts[0], parts[1]


class S3Backend:
    kind = "s3"

    def __init__(self, backend_id: str, props: Mapping[str, str], clients: ObjectStoreFactory) -> None:
        self.id = backend_id
        self.access_key = props.get("aws_access_key_id", "")
        self.secret_key = props.get("aws_secret_access_key", "")
        self.region = props.get("region", "")
        self.bucket = props.get("bucket", "")
        self.endpoint = props.get("endpoint", "")
        self.storage_class = props.get("storage_class", "") or "STANDARD_IA"
        self.force_path_style = parse_go_bool(props.get("force_path_style", ""), True)
        self._clients = clients
        self._client: ObjectStoreClient | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"s3.{self.id}"

    def properties(self) -> dict[str, str]:
        """Go's ToProperties."""
        return {
            "aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key,
            "region": self.region, "bucket": self.bucket, "endpoint": self.endpoint,
            "storage_class": self.storage_class, "force_path_style": "true" if self.force_path_style else "false",
        }

    @property
    def client(self) -> ObjectStoreClient:
        with self._lock:
            if self._client is None:
                self._client = self._clients(ObjectStoreSettings(
                    endpoint=self.endpoint, region=self.region, access_key=self.access_key,
                    secret_key=self.secret_key, force_path_style=self.force_path_style,
                    anonymous=not (self.access_key and self.secret_key), user_agent=f"SeaweedFS/{_VERSION}",
                ))
            return self._client

    # object access -----------------------------------------------------------------------------

    def read_at(self, key: str, length: int, offset: int) -> bytes:
        """Bytes of the object (Go's S3BackendStorageFile.ReadAt)."""
        key = key.removeprefix("/")
        try:
            return self.client.get_range(self.bucket, key, offset, length)
        except ObjectStoreError as exc:
            raise TierError(f"bucket {self.bucket} GetObject {key}: {exc}") from None

    def copy_file(self, path: str) -> Generator[int, None, tuple[str, int]]:
        """Upload a local `.dat` under a fresh key; yields bytes sent, returns (key, size)."""
        import uuid  # uuid loads platform: not at start-up, only with the first upload

        key = str(uuid.uuid4())
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise TierError(f"failed to stat file {path!r}, {exc}") from None
        part = _PART
        while part * 1000 < size:
            part *= 4
        try:
            if size <= part:
                yield from self._put_whole(path, key, size)
            else:
                yield from self._put_multipart(path, key, size, part)
        except ObjectStoreError as exc:
            raise TierError(f"failed to upload file {path}: {exc}") from None
        return key, size

    def _put_whole(self, path: str, key: str, size: int) -> Generator[int, None, None]:
        sent = [0]
        with open(path, "rb") as f:
            self.client.put_stream(self.bucket, key, _file_chunks(f, 0, size, sent), size, storage_class=self.storage_class)
        yield sent[0]

    def _put_multipart(self, path: str, key: str, size: int, part: int) -> Generator[int, None, None]:
        c = self.client
        upload_id = c.create_multipart(self.bucket, key, storage_class=self.storage_class)
        etags: list[str] = []
        sent = [0]
        try:
            with open(path, "rb") as f:
                for number, start in enumerate(range(0, size, part), 1):
                    length = min(part, size - start)
                    etags.append(c.upload_part(self.bucket, key, upload_id, number, _file_chunks(f, start, length, sent), length))
                    yield sent[0]
            c.complete_multipart(self.bucket, key, upload_id, etags)
        except BaseException:
            try:
                c.abort_multipart(self.bucket, key, upload_id)
            except ObjectStoreError:
                pass
            raise

    def download_file(self, path: str, key: str) -> Generator[int, None, int]:
        """Fetch the object into `path` (truncated first, fsynced at the end); yields bytes
        written, returns the size."""
        key = key.removeprefix("/")
        try:
            size = self.client.head_object(self.bucket, key)
        except ObjectStoreError as exc:
            raise TierError(str(exc)) from None
        written = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise TierError(f"failed to open file {path!r}, {exc}") from None
        try:
            for start in range(0, size, _PART):
                length = min(_PART, size - start)
                for chunk in self.client.iter_range(self.bucket, key, start, length):
                    os.pwrite(fd, chunk, written)
                    written += len(chunk)
                    yield written
            if written != size:
                raise ObjectStoreError(f"ShortRead: got {written} of {size} bytes")
            os.fsync(fd)
        except ObjectStoreError as exc:
            raise TierError(f"failed to download /buckets/{self.bucket}/{key} to {path}: {exc}") from None
        finally:
            os.close(fd)
        return size

    def delete_file(self, key: str) -> None:
        try:
            self.client.delete_object(self.bucket, key.removeprefix("/"))
        except ObjectStoreError as exc:
            raise TierError(str(exc)) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _file_chunks(f, start: int, length: int, counter: list[int]) -> Iterator[bytes]:
    pos, end = start, start + length
    while pos < end:
        chunk = os.pread(f.fileno(), min(_CHUNK, end - pos), pos)
        if not chunk:
            raise OSError(f"{f.name} ended at {pos}, {end - pos} bytes short")
        pos += len(chunk)
        counter[0] += len(chunk)
        yield chunk


_FACTORIES = {"s3": S3Backend}


class BackendRegistry:
    """The backends this server knows, by name (Go's backend.BackendStorages, per server)."""

    def __init__(self) -> None:
        self._backends: dict[str, S3Backend] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped when backends are added

    def load(self, storage_backends, clients: ObjectStoreFactory) -> list[str]:
        """Add the master's `StorageBackend`s, talking to their stores through clients from
        `clients`; returns the names added. Unknown types are skipped; a name already known
        keeps its first configuration."""
        added = []
        with self._lock:
            for sb in storage_backends:
                factory = _FACTORIES.get(sb.type)
                if factory is None or f"{sb.type}.{sb.id}" in self._backends:
                    continue
                backend = factory(sb.id, dict(sb.properties), clients)
                self._backends[backend.name] = backend
                added.append(backend.name)
                if sb.id == "default":
                    self._backends[sb.type] = backend
            if added:
                self.generation += 1
        return added

    def get(self, name: str) -> S3Backend | None:
        with self._lock:
            return self._backends.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._backends)

    def close(self) -> None:
        with self._lock:
            backends = set(self._backends.values())
            self._backends.clear()
        for b in backends:
            b.close()
