"""File ids, needle ids, cookies, offsets and record sizes, checked against Go's rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from native.storage import (
    FileId,
    InvalidFileId,
    OffsetCodec,
    actual_size,
    format_needle_id_cookie,
    normalize_disk_type,
    padding_length,
    parse_fid_path,
    parse_needle_id_cookie,
    parse_volume_id,
    readable_disk_type,
)


def test_file_id_format_drops_leading_zero_bytes_of_the_key() -> None:
    assert str(FileId(7, 123456, 0xA1B2C3D4)) == "7,01e240a1b2c3d4"
    assert str(FileId(3, 1, 0xAD22F695)) == "3,01ad22f695"
    assert str(FileId(1, 0x0100, 0)) == "1,010000000000"
    assert str(FileId(1, 2**64 - 1, 0xFFFFFFFF)) == "1," + "f" * 24


def test_key_zero_formats_to_a_cookie_only_string_that_does_not_parse_back() -> None:
    s = str(FileId(7, 0, 0xA1B2C3D4))
    assert s == "7,a1b2c3d4"
    with pytest.raises(InvalidFileId, match="Invalid fid"):
        FileId.parse(s)


@given(st.integers(0, 2**32 - 1), st.integers(1, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_file_id_round_trip(vid: int, key: int, cookie: int) -> None:
    fid = FileId(vid, key, cookie)
    assert FileId.parse(str(fid)) == fid
    assert parse_needle_id_cookie(format_needle_id_cookie(key, cookie)) == (key, cookie)


def test_delta_suffix_adds_to_the_key() -> None:
    base = FileId(3, 0x1637, 0x037D6A00)
    assert base.with_delta(0) == str(base)
    assert base.with_delta(5) == f"{base}_5"
    assert FileId.parse(base.with_delta(5)) == FileId(3, 0x1637 + 5, 0x037D6A00)
    assert str(base) == "3,1637037d6a00"
    assert parse_fid_path("1637037d6a00_12") == (0x1637 + 12, 0x037D6A00)
    with pytest.raises(InvalidFileId, match="overflows"):
        parse_fid_path("ffffffffffffffff00000000_1")
    with pytest.raises(InvalidFileId):
        parse_fid_path("01637037d6a0_x1")


@pytest.mark.parametrize(
    "text, why",
    [
        ("7", "wrong fid format"),
        (",0101020304", "wrong fid format"),
        ("7,01020304", "Invalid fid"),
        ("7," + "1" * 25, "too long"),
        ("7,0x1234567890", "invalid syntax"),
        ("7,+1234567890", "invalid syntax"),
        ("7,1_234567890", "too short"),  # the delta is split off first
        ("x,0101020304", "invalid syntax"),
        ("-1,0101020304", "invalid syntax"),
        ("7,01 0102030", "invalid syntax"),
    ],
)
def test_file_id_rejects_what_go_rejects(text: str, why: str) -> None:
    with pytest.raises(InvalidFileId, match=why):
        FileId.parse(text)


def test_go_parsing_details() -> None:
    assert FileId.parse("007,01ABCDEF12") == FileId(7, 1, 0xABCDEF12)  # upper case hex, leading zeros
    assert parse_volume_id("4294967297") == 1  # ParseUint into 64 bits, then uint32
    with pytest.raises(InvalidFileId):
        parse_volume_id("18446744073709551616")
    assert parse_needle_id_cookie("1" + "0" * 8) == (1, 0)


@given(st.integers(0, 2**40 - 1))
def test_five_byte_offsets_keep_the_low_word_first(units: int) -> None:
    c = OffsetCodec(5)
    raw = c.encode(units)
    assert raw == (units & 0xFFFFFFFF).to_bytes(4, "big") + bytes([units >> 32])
    assert c.decode(raw) == units


def test_offset_widths() -> None:
    four, five = OffsetCodec(4), OffsetCodec(5)
    assert (four.entry_size, five.entry_size) == (16, 17)
    assert (four.max_volume_size, five.max_volume_size) == (32 << 30, 8 << 40)
    assert five.encode(0x12_3456789A) == bytes.fromhex("3456789a12")
    assert four.decode(four.encode(0xFFFFFFFF)) == 0xFFFFFFFF
    with pytest.raises(ValueError):
        four.encode(1 << 32)
    with pytest.raises(ValueError):
        OffsetCodec(6)


@given(st.integers(0, 10**6), st.sampled_from([1, 2, 3]))
def test_records_align_to_8_with_1_to_8_bytes_of_padding(size: int, version: int) -> None:
    pad = padding_length(size, version)
    assert 1 <= pad <= 8
    assert actual_size(size, version) % 8 == 0
    assert actual_size(size, version) == 16 + size + 4 + (8 if version == 3 else 0) + pad


def test_known_record_lengths() -> None:
    assert actual_size(0, 3) == 32  # an empty needle or a tombstone
    assert actual_size(0, 2) == 24
    assert actual_size(33, 3) == 64  # "vm\n" uploaded as "hostname", text/x-foo


def test_disk_types() -> None:
    assert normalize_disk_type("") == normalize_disk_type("HDD") == ""
    assert normalize_disk_type("SSD") == "ssd"
    assert normalize_disk_type("Archive") == "archive"
    assert readable_disk_type("") == "hdd"
