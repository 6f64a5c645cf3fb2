"""Metadata, grpc-timeout and grpc-message encodings (bytes in, values out; no I/O)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weedpy.grpc import (
    GrpcError,
    ProtocolError,
    decode_metadata,
    encode_metadata,
    format_timeout,
    parse_timeout,
    percent_decode,
    percent_encode,
)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(b"1H", 3600.0), (b"2M", 120.0), (b"5S", 5.0), (b"100m", 0.1), (b"250u", 250e-6), (b"7n", 7e-9), (b"99999999S", 99999999.0)],
)
def test_parse_timeout(raw: bytes, seconds: float) -> None:
    assert parse_timeout(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", [b"", b"5", b"S", b"123456789S", b"1.5S", b"-1S", b"5s", b"5 S"])
def test_parse_timeout_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_timeout(raw)


@given(st.floats(min_value=1e-9, max_value=3.0e8, allow_nan=False))
def test_format_timeout_round_trips_never_shorter(seconds: float) -> None:
    raw = format_timeout(seconds)
    assert len(raw) <= 9
    back = parse_timeout(raw)
    # Rounded up in the finest unit that fits: at least 10^5 units, so within one part in 10^5.
    assert back >= seconds * (1 - 1e-9) - 1e-12
    assert back <= seconds * (1 + 1e-5) + 1e-9


def test_format_timeout_edges() -> None:
    assert format_timeout(0) == b"0n"
    assert format_timeout(-1) == b"0n"
    assert format_timeout(1.0) == b"1000000u"
    assert format_timeout(math.inf) == b"99999999H"


def test_binary_metadata_is_base64_unpadded_and_decodes_padded_or_not() -> None:
    headers = encode_metadata([("Trace-Bin", b"\x00\xff\x10"), ("x-user", "alice")])
    assert headers == [(b"trace-bin", b"AP8Q"), (b"x-user", b"alice")]
    assert decode_metadata([(b"k-bin", b"AP8"), (b"j-bin", b"AP8=")]) == (("k-bin", b"\x00\xff"), ("j-bin", b"\x00\xff"))


def test_decode_metadata_skips_pseudo_and_reserved_headers() -> None:
    headers = [
        (b":path", b"/a/b"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"grpc-timeout", b"1S"),
        (b"grpc-encoding", b"identity"),
        (b"grpc-status", b"0"),
        (b"user-agent", b"x"),
        (b"k", b"v"),
    ]
    assert decode_metadata(headers) == (("user-agent", "x"), ("k", "v"))


def test_malformed_binary_metadata_is_a_protocol_error() -> None:
    with pytest.raises(GrpcError):
        decode_metadata([(b"k-bin", b"!!!")])


@pytest.mark.parametrize("key", ["grpc-status", "content-type", "bad key", "Ünï", ":path"])
def test_encode_metadata_refuses_reserved_or_invalid_keys(key: str) -> None:
    with pytest.raises((ValueError, UnicodeEncodeError)):
        encode_metadata([(key, "v")])


def test_encode_metadata_refuses_control_characters() -> None:
    with pytest.raises(ValueError):
        encode_metadata([("k", "a\r\nb")])


def test_percent_encoding_matches_the_spec_examples() -> None:
    assert percent_encode("plain text") == b"plain text"
    assert percent_encode("100% ok") == b"100%25 ok"
    assert percent_encode("caf\u00e9\n") == b"caf%C3%A9%0A"
    assert percent_decode(b"caf%C3%A9%0A") == "caf\u00e9\n"
    assert percent_decode(b"bad %zz and %4") == "bad %zz and %4"  # malformed escapes pass through


@given(st.text())
def test_percent_encoding_round_trips(text: str) -> None:
    encoded = percent_encode(text)
    assert all(0x20 <= c <= 0x7E for c in encoded)
    assert percent_decode(encoded) == text
