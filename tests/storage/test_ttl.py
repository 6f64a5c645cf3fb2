"""TTL parsing and normalisation as Go's needle.ReadTTL."""

from __future__ import annotations

import pytest

from native.storage import EMPTY_TTL, TTL


@pytest.mark.parametrize(
    "text, want",
    [
        ("", ""),
        ("3m", "3m"),
        ("5", "5m"),
        ("60m", "1h"),
        ("90m", "90m"),
        ("300m", "5h"),
        ("24h", "1d"),
        ("7d", "1w"),
        ("14d", "2w"),
        ("30d", "1M"),
        ("365d", "1y"),
        ("2y", "2y"),
        ("12M", "12M"),
        ("400m", "6h"),  # no exact unit below 256: coarser, truncated, as Go
        ("0m", ""),
        ("3x", ""),  # unknown unit: zero seconds
    ],
)
def test_parse_normalises_like_go(text: str, want: str) -> None:
    assert str(TTL.parse(text)) == want


def test_bad_counts() -> None:
    with pytest.raises(ValueError):
        TTL.parse("m")
    with pytest.raises(ValueError):
        TTL.parse("1.5h")
    assert TTL.parse_lenient("junk") == EMPTY_TTL


def test_encodings() -> None:
    t = TTL.parse("7d")
    assert (t.count, t.unit) == (1, 4)
    assert t.to_bytes() == b"\x01\x04"
    assert TTL.from_bytes(b"\x01\x04") == t
    assert t.to_uint32() == 0x0104 and TTL.from_uint32(0x0104) == t
    assert t.minutes == 7 * 24 * 60 and t.seconds == 7 * 86400
    assert EMPTY_TTL.to_uint32() == 0 and not EMPTY_TTL
    assert TTL(0, 3).to_uint32() == 0 and str(TTL(5, 9)) == ""
