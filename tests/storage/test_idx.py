"""`.idx` rows at both offset widths: row codec, bulk column parsing, torn tails."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from native.storage import IdxCodec, IdxEntry

rows = st.lists(
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(-(2**31), 2**31 - 1)),
    max_size=60,
)


@given(rows, st.sampled_from([4, 5]), st.integers(0, 16))
def test_columns_match_row_by_row_decoding(entries: list[tuple[int, int, int]], width: int, torn: int) -> None:
    codec = IdxCodec.for_width(width)
    if width == 5:
        entries = [(k, o | ((k & 0xFF) << 32), s) for k, o, s in entries]
    buf = b"".join(codec.encode(k, o, s) for k, o, s in entries)
    tail = bytes(range(torn % codec.entry_size))
    cols = codec.columns(buf + tail)
    assert cols.trailing == len(tail)
    assert list(codec.iter_entries(buf + tail)) == [IdxEntry(k, o, s) for k, o, s in entries]
    assert list(codec.iter_rows(buf + tail)) == entries  # the tuples a shared volume applies
    assert [(cols.keys[i], cols.offsets[i], cols.sizes[i]) for i in range(len(cols))] == entries
    assert cols.puts() == bytes(1 if (o != 0 and s >= 0) else 0 for _, o, s in entries)


def test_row_layout() -> None:
    five = IdxCodec.for_width(5)
    row = five.encode(0x0102030405060708, 0x12_3456789A, 0x21)
    assert row == bytes.fromhex("0102030405060708" "3456789a12" "00000021")
    assert five.tombstone(7, 13) == bytes.fromhex("0000000000000007" "0000000d00" "ffffffff")
    four = IdxCodec.for_width(4)
    assert four.encode(3, 1, 0x12784) == bytes.fromhex("0000000000000003" "00000001" "00012784")
    assert four.decode(four.tombstone(9, 2)) == IdxEntry(9, 2, -1)
    assert not IdxEntry(9, 2, -1).is_put and not IdxEntry(9, 0, 5).is_put and IdxEntry(9, 1, 0).is_put


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**40 - 1), st.integers(-(2**31), 2**31 - 1), st.sampled_from([4, 5]))
def test_rows_are_the_fields_big_endian(key: int, offset: int, size: int, width: int) -> None:
    """encode's one-call form writes the bytes of the field-by-field form (and refuses the same)."""
    codec = IdxCodec.for_width(width)
    try:
        general = key.to_bytes(8, "big") + codec.offsets.encode(offset) + (size & 0xFFFFFFFF).to_bytes(4, "big")
    except ValueError:
        with pytest.raises(ValueError):
            codec.encode(key, offset, size)
        return
    assert codec.encode(key, offset, size) == general
