"""The tier backends reach their object store only through the injected `ObjectStoreFactory`:
an in-memory store drives an S3 backend end to end, and `native.s3.s3_object_store` keeps
S3's error texts while turning them into `ObjectStoreError`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from native.s3 import S3Client, S3Error, S3Options, s3_object_store
from native.storage.tier import BackendRegistry, ObjectStoreError, ObjectStoreSettings, TierError
from proto import master_pb2
from tests.native_remote.fake_s3 import fake_s3


class MemoryStore:
    """An `ObjectStoreClient` over a dict, failing as S3 words it."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.closed = False

    def _get(self, bucket: str, key: str) -> bytes:
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise ObjectStoreError("NoSuchKey: The specified key does not exist.") from None

    def head_object(self, bucket: str, key: str) -> int:
        return len(self._get(bucket, key))

    def get_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        return self._get(bucket, key)[offset:offset + length]

    def iter_range(self, bucket: str, key: str, offset: int, length: int) -> Iterator[bytes]:
        data = self._get(bucket, key)[offset:offset + length]
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]

    def put_stream(self, bucket: str, key: str, chunks: Iterator[bytes], length: int, *, storage_class: str = "") -> str:
        body = b"".join(chunks)
        assert len(body) == length and storage_class == "STANDARD_IA"
        self.objects[(bucket, key)] = body
        return '"etag"'

    def create_multipart(self, bucket: str, key: str, *, storage_class: str = "") -> str:
        raise AssertionError("small objects go up whole")

    upload_part = complete_multipart = abort_multipart = create_multipart

    def delete_object(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def close(self) -> None:
        self.closed = True


def _config(**props: str) -> master_pb2.StorageBackend:
    return master_pb2.StorageBackend(type="s3", id="default", properties={"bucket": "b", "region": "r", **props})


def run(gen) -> tuple[list[int], object]:
    """(what a transfer generator yielded, what it returned)."""
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return progress, stop.value


def test_a_backend_moves_and_reads_a_dat_through_the_injected_store(tmp_path: Path) -> None:
    store, made = MemoryStore(), []

    def factory(settings: ObjectStoreSettings) -> MemoryStore:
        made.append(settings)
        return store

    reg = BackendRegistry()
    assert reg.load([_config(endpoint="http://e:1")], factory) == ["s3.default"]
    assert made == []  # no client until the first remote call
    b = reg.get("s3")
    dat = tmp_path / "1.dat"
    dat.write_bytes(body := os.urandom(5000))
    progress, (key, size) = run(b.copy_file(str(dat)))
    assert progress == [5000] and size == 5000 and store.objects == {("b", key): body}
    assert b.read_at("/" + key, 10, 100) == body[100:110]
    back = tmp_path / "back.dat"
    progress, size = run(b.download_file(str(back), key))
    assert progress == [1000, 2000, 3000, 4000, 5000] and size == 5000 and back.read_bytes() == body
    with pytest.raises(TierError, match=r"^bucket b GetObject nope: NoSuchKey: The specified key does not exist\.$"):
        b.read_at("nope", 1, 0)
    with pytest.raises(TierError, match=r"^NoSuchKey: "):
        run(b.download_file(str(back), "nope"))
    b.delete_file(key)
    assert store.objects == {}
    assert made == [ObjectStoreSettings(endpoint="http://e:1", region="r", access_key="", secret_key="",
                                        force_path_style=True, anonymous=True, user_agent="SeaweedFS/4.48")]
    reg.close()
    assert store.closed


def test_settings_carry_the_credentials_and_path_style() -> None:
    made = []
    reg = BackendRegistry()
    reg.load([_config(aws_access_key_id="ak", aws_secret_access_key="sk", force_path_style="false")],
             lambda s: made.append(s) or MemoryStore())
    assert reg.get("s3.default").client is reg.get("s3").client  # built once
    (s,) = made
    assert (s.access_key, s.secret_key, s.anonymous, s.force_path_style) == ("ak", "sk", False, False)


def test_s3_object_store_keeps_s3_texts_as_object_store_errors() -> None:
    with fake_s3("tier") as s3:
        settings = ObjectStoreSettings(endpoint=s3.endpoint, region="us-east-1", access_key="ak", secret_key="sk",
                                       force_path_style=True, anonymous=False, user_agent="SeaweedFS/4.48")
        client = s3_object_store(settings)
        plain = S3Client(S3Options(endpoint=s3.endpoint, region="us-east-1", access_key="ak", secret_key="sk"))
        try:
            with pytest.raises(S3Error) as direct:
                plain.get_range("tier", "missing", 0, 10)
            for call in (lambda: client.get_range("tier", "missing", 0, 10),
                         lambda: list(client.iter_range("tier", "missing", 0, 10)),
                         lambda: client.head_object("tier", "missing")):
                with pytest.raises(ObjectStoreError) as wrapped:
                    call()
                assert isinstance(wrapped.value.__cause__, S3Error)
                assert str(wrapped.value) == str(wrapped.value.__cause__)
            with pytest.raises(ObjectStoreError) as wrapped:
                client.get_range("tier", "missing", 0, 10)
            assert str(wrapped.value) == str(direct.value)
            client.put_stream("tier", "k", iter([b"ab", b"cd"]), 4)
            assert client.get_range("tier", "k", 1, 2) == b"bc" and client.head_object("tier", "k") == 4
            assert s3.requests[-1][2]["user-agent"] == "SeaweedFS/4.48"
        finally:
            client.close()
            plain.close()
