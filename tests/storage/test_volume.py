"""One volume: writes, reads, deletes, TTLs, read-only state, limits, streaming, concurrency."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import pytest

from native.storage import (
    ChecksumMismatch,
    CookieMismatch,
    Deleted,
    IdxCodec,
    Needle,
    NotFound,
    OffsetWidthMismatch,
    ReadOnly,
    ReplicaPlacement,
    SuperBlock,
    Volume,
    VolumeFull,
    crc32c,
    decode_needle,
    encode_needle,
)


class Clock:
    def __init__(self, ns: int = 1_800_000_000 * 10**9) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


def mk(nid: int, data: bytes = b"", cookie: int = 0x1234, **kw: object) -> Needle:
    kw.setdefault("name", f"n{nid}")
    kw.setdefault("mime", "application/x-test")
    kw.setdefault("last_modified", 1_700_000_000)
    return Needle.create(nid, cookie, data or f"data-{nid}".encode() * 3, **kw)  # type: ignore[arg-type]


@pytest.fixture
def vol(tmp_path: Path):
    v = Volume.create(tmp_path, 1)
    yield v
    v.close()


def test_create_writes_super_block_and_vif(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 3, collection="pics", replica_placement="010", ttl="3d")
    v.close()
    assert (tmp_path / "pics_3.dat").read_bytes() == SuperBlock(3, ReplicaPlacement.parse("010"), v.ttl).encode()
    assert (tmp_path / "pics_3.idx").read_bytes() == b""
    vif = json.loads((tmp_path / "pics_3.vif").read_text())
    assert (vif["version"], vif["bytesOffset"], vif["readOnly"]) == (3, 5, False)
    assert int(vif["expireAtSec"]) > 0  # TTL volumes record when they expire
    again = Volume.load(tmp_path, 3, collection="pics")
    assert str(again.ttl) == "3d" and str(again.replica_placement) == "010"
    again.close()


def test_write_read_and_stats(vol: Volume) -> None:
    n = mk(5, b"hello")
    r = vol.write_needle(n)
    assert (r.offset, r.size, r.unchanged) == (8, 5, False)
    got = vol.read_needle(5, 0x1234)
    assert got.data == b"hello" and got.name == b"n5" and got.append_at_ns > 0
    with pytest.raises(CookieMismatch):
        vol.read_needle(5, 0x1235)
    with pytest.raises(NotFound):
        vol.read_needle(6)
    st = vol.stats()
    assert (st.file_count, st.delete_count, st.content_size, st.max_file_key) == (1, 0, got_size(got), 5)
    assert st.dat_size == vol.dat_size == 8 + len(encode_needle(got, 3))
    assert st.idx_size == 17


def got_size(n: Needle) -> int:
    from native.storage import record_size

    return record_size(n, 3)


def test_identical_rewrite_appends_nothing(vol: Volume) -> None:
    vol.write_needle(mk(1))
    size = vol.dat_size
    r = vol.write_needle(mk(1))
    assert r.unchanged and r.offset == 8 and vol.dat_size == size
    r = vol.write_needle(mk(1, b"other"))
    assert not r.unchanged and vol.dat_size > size
    assert vol.read_needle(1).data == b"other"
    st = vol.stats()
    assert (st.file_count, st.delete_count) == (2, 1)


def test_ttl_volume_always_appends_and_needles_inherit_its_ttl(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 2, ttl="1h")
    v.write_needle(mk(1))
    size = v.dat_size
    assert not v.write_needle(mk(1)).unchanged and v.dat_size > size
    n = v.read_needle(1)
    assert n.has_ttl and str(n.ttl) == "1h"
    v.close()


def test_cookie_rules_on_write(vol: Volume) -> None:
    vol.write_needle(mk(1, cookie=7))
    with pytest.raises(CookieMismatch):
        vol.write_needle(mk(1, b"x", cookie=8))
    vol.write_needle(mk(1, b"y", cookie=0), check_cookie=False)  # adopts the stored cookie
    assert vol.read_needle(1, 7).data == b"y"
    vol.delete_needle(1, 7)
    with pytest.raises(CookieMismatch):  # even a deleted id keeps its cookie
        vol.write_needle(mk(1, b"z", cookie=9))


def test_delete_appends_a_go_tombstone(vol: Volume) -> None:
    vol.write_needle(mk(1, b"payload"))
    size = vol.needle_value(1).size
    assert vol.delete_needle(1, 0x1234) == size == got_size(mk(1, b"payload"))
    raw = (Path(vol.dat_path)).read_bytes()[-32:]
    tomb = decode_needle(raw, 3)
    assert (tomb.id, tomb.cookie, tomb.data, tomb.checksum) == (1, 0x1234, b"", crc32c(b"payload"))
    row = IdxCodec.for_width(5).decode(Path(vol.idx_path).read_bytes()[-17:])
    assert (row.key, row.actual_offset, row.size) == (1, vol.dat_size - 32, -1)
    with pytest.raises(Deleted):
        vol.read_needle(1, 0x1234)
    assert vol.read_needle(1, 0x1234, read_deleted=True).data == b"payload"
    assert vol.delete_needle(1, 0x1234) == 0
    assert vol.delete_needle(99, 1) == 0
    st = vol.stats()
    assert (st.file_count, st.delete_count, st.deleted_bytes) == (1, 1, st.content_size)


def test_delete_checks_and_skip_cookie_mode(vol: Volume) -> None:
    vol.write_needle(mk(1))
    vol.write_needle(mk(2))
    with pytest.raises(CookieMismatch):
        vol.delete_needle(1, 0x9999)
    assert vol.delete_needle(2, None) > 0  # skip-cookie: cookie 0, CRC 0
    tomb = decode_needle(Path(vol.dat_path).read_bytes()[-32:], 3)
    assert (tomb.cookie, tomb.checksum) == (0, 0)
    n = vol.read_needle(1)
    assert vol.delete_needle(1, 0x1234, checksum=n.checksum) > 0  # the handler already read it


def test_empty_needles(vol: Volume) -> None:
    vol.write_needle(Needle.create(4, 0xAA, b"", name="e", last_modified=1))
    n = vol.read_needle(4, 0xBB)  # size 0: no read, no cookie check (as Go)
    assert n.data == b"" and n.checksum == 0 and n.etag == "00000000"
    assert vol.delete_needle(4, 0xAA) == 0
    with pytest.raises(Deleted):
        vol.read_needle(4, read_deleted=True)


def test_ttl_expiry_follows_append_time(tmp_path: Path) -> None:
    clock = Clock()
    v = Volume.create(tmp_path, 1, clock_ns=clock)
    v.write_needle(mk(1, ttl="3m"))
    v.write_needle(mk(2, ttl="3m", last_modified=None))  # no last-modified flag: never expires
    clock.ns += 179 * 10**9
    assert v.read_needle(1).data
    clock.ns += 2 * 10**9
    with pytest.raises(NotFound):
        v.read_needle(1)
    with pytest.raises(NotFound):
        v.delete_needle(1, 0x1234)
    assert v.read_needle(2).data
    v.close()


def test_read_only_and_its_persistence(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(mk(1))
    v.write_needle(mk(2))
    v.mark_readonly()
    with pytest.raises(ReadOnly):
        v.write_needle(mk(3))
    with pytest.raises(ReadOnly):
        v.delete_needle(1, 0x1234)
    v.mark_readonly(can_delete=True, persist=True)
    assert v.delete_needle(1, 0x1234) > 0
    v.close()
    assert json.loads((tmp_path / "1.vif").read_text())["readOnlyCanDelete"] is True
    v = Volume.load(tmp_path, 1)
    assert v.read_only and v.no_write_can_delete and v.nm.sorted_semantics
    with pytest.raises(ReadOnly):
        v.write_needle(mk(3))
    with pytest.raises(NotFound):
        v.read_needle(1, read_deleted=True)  # Go's sorted (.sdx) map forgets deleted ids
    v.mark_writable()
    assert not v.read_only and not v.nm.sorted_semantics
    assert v.read_needle(1, read_deleted=True).data  # the writable map keeps them again
    v.write_needle(mk(3))
    v.close()
    v = Volume.load(tmp_path, 1)
    assert not v.read_only and v.read_needle(3).data
    v.close()


def test_disk_space_low_blocks_writes_not_deletes(vol: Volume) -> None:
    vol.write_needle(mk(1))
    vol.disk_space_low = lambda: True
    assert vol.read_only and vol.read_only_reasons().disk_space_low
    with pytest.raises(ReadOnly):
        vol.write_needle(mk(2))
    assert vol.delete_needle(1, 0x1234) > 0


def test_size_limits(vol: Volume) -> None:
    vol.size_limit = 200
    vol.write_needle(mk(1, b"a" * 50))
    with pytest.raises(VolumeFull):
        vol.write_needle(mk(2, b"b" * 200))
    vol.size_limit = None
    vol._dat_size = vol.codec.offsets.max_volume_size  # Go's hard limit for the offset width
    with pytest.raises(VolumeFull):
        vol.write_needle(mk(3))


def test_fsync_writes(vol: Volume) -> None:
    for i in range(1, 20):
        vol.write_needle(mk(i), fsync=True)
    assert vol.read_needle(19).data


def test_reopen_recovers_state(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    for i in range(1, 50):
        v.write_needle(mk(i))
    v.delete_needle(10, 0x1234)
    last = v.last_append_at_ns
    stats = v.stats()
    v.close()
    v = Volume.load(tmp_path, 1)
    assert v.last_append_at_ns == last and v.integrity_error is None
    s2 = v.stats()
    assert (s2.file_count, s2.delete_count, s2.content_size, s2.deleted_bytes, s2.dat_size) == (
        stats.file_count, stats.delete_count, stats.content_size, stats.deleted_bytes, stats.dat_size,
    )
    v.write_needle(mk(60))
    assert v.read_needle(60).append_at_ns > last
    v.close()


def test_streaming_and_meta(vol: Volume, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(3 << 20)
    vol.write_needle(mk(1, data, name="big.bin"))
    meta, size = vol.read_needle_meta(1, 0x1234)
    assert size == len(data) and meta.name == b"big.bin" and meta.data == b""
    with vol.open_needle_stream(1, 0x1234) as s:
        assert s.needle.checksum == crc32c(data)
        assert b"".join(s.iter_chunks(chunk_size=1 << 20)) == data
        assert b"".join(s.iter_chunks(100, 1000, chunk_size=256)) == data[100:1100]
        assert os.pread(s.fd, 10, s.data_offset) == data[:10]
    with pytest.raises(CookieMismatch):
        vol.open_needle_stream(1, 1)
    # corrupt one data byte on disk: the whole-data stream fails its CRC after the last chunk
    with open(vol.dat_path, "r+b") as f:
        f.seek(8 + 20 + 1000)
        b = f.read(1)
        f.seek(8 + 20 + 1000)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(ChecksumMismatch):
        vol.read_needle(1)
    s = vol.open_needle_stream(1)
    chunks = s.iter_chunks()
    with pytest.raises(ChecksumMismatch):
        for _ in chunks:
            pass
    s.close()


def test_stream_survives_unmount(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(mk(1, b"x" * 5000))
    s = v.open_needle_stream(1)
    v.close()
    assert s.read() == b"x" * 5000
    s.close()


def test_needle_blob_copy_and_record_walk(tmp_path: Path) -> None:
    src = Volume.create(tmp_path / "a", 1)
    dst = Volume.create(tmp_path / "b", 1)
    for i in range(1, 6):
        src.write_needle(mk(i))
    src.delete_needle(2, 0x1234)
    recs = list(src.iter_records())
    assert [r.header.id for r in recs] == [1, 2, 3, 4, 5, 2]
    nv = src.needle_value(3)
    blob = src.read_record(nv.actual_offset, nv.size)
    assert dst.write_needle_blob(3, blob, nv.size) is True
    assert dst.write_needle_blob(3, blob, nv.size) is False  # already there
    got = dst.read_needle(3, 0x1234)
    assert got.data == src.read_needle(3).data and got.append_at_ns != src.read_needle(3).append_at_ns
    src.close()
    dst.close()


def test_version_2_volume(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1, version=2)
    v.write_needle(mk(1))
    v.write_needle(mk(2, b"", name="e"))
    v.delete_needle(1, 0x1234)
    v.close()
    v = Volume.load(tmp_path, 1)
    assert v.version == 2 and v.integrity_error is None
    assert v.read_needle(1, read_deleted=True).append_at_ns == 0
    v.close()


def test_separate_index_directory_and_vif_replication(tmp_path: Path) -> None:
    v = Volume.create(tmp_path / "d", 1, idx_directory=tmp_path / "i", collection="c")
    v.write_needle(mk(1))
    v.set_replication("001")
    v.close()
    assert (tmp_path / "i" / "c_1.idx").stat().st_size == 17 and not (tmp_path / "d" / "c_1.idx").exists()
    v = Volume.load(tmp_path / "d", 1, idx_directory=tmp_path / "i", collection="c")
    assert str(v.replica_placement) == "001"  # .vif replication overrides the super block
    assert v.read_needle(1).data
    v.close()


def test_width_without_vif_is_detected_not_guessed(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1, offset_bytes=4)
    for i in range(1, 4):  # 3 rows of 16 bytes: 48, not a multiple of 17
        v.write_needle(mk(i))
    v.close()
    (tmp_path / "1.vif").unlink()
    with pytest.raises(OffsetWidthMismatch, match="4-byte offsets"):
        Volume.load(tmp_path, 1)
    v = Volume.load(tmp_path, 1, offset_bytes=4)
    assert v.read_needle(3).data and v.integrity_error is None
    v.close()


def test_many_readers_alongside_one_writer(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    bodies = {i: random.Random(i).randbytes(100 + i) for i in range(1, 400)}
    v.write_needle(mk(1, bodies[1]))
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(2, 400):
                v.write_needle(mk(i, bodies[i]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while not done.is_set():
                top = v.counters().max_file_key
                i = rnd.randint(1, max(top, 1))
                assert v.read_needle(i, 0x1234).data == bodies[i]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert v.stats().file_count == 399
    v.close()
