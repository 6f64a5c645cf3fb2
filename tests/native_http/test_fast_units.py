"""Pieces of the read and write fast paths that must equal what the full path computes."""

from __future__ import annotations

from hypothesis import given, strategies as st

from native.http._fast import _inline_disposition, _last_modified
from native.http._mediatype import format_media_type
from native.http._read import _http_date


@given(st.text(alphabet=st.characters(max_codepoint=0xFF), min_size=1, max_size=30))
def test_inline_disposition_is_format_media_type(name: str) -> None:
    assert _inline_disposition(name) == format_media_type("inline", {"filename": name})


@given(st.integers(min_value=1, max_value=253_402_300_799))  # email.utils stops at year 9999
def test_last_modified_is_http_date(ts: int) -> None:
    assert _last_modified(ts) == _http_date(ts)


@given(st.text(alphabet=st.characters(max_codepoint=0x2030), max_size=20))
def test_verbatim_json_strings_encode_as_the_general_encoder(s: str) -> None:
    from native.http._gojson import _encode_general, encode_string

    assert encode_string(s) == _encode_general(s)


@given(st.integers(min_value=0, max_value=253_402_300_799))  # email.utils stops at year 9999
def test_http_dates_are_email_utils_formatdate(ts: int) -> None:
    """weedpy.http1 formats Date and Last-Modified itself (the email package stays out of
    start-up); the text is the stdlib's, which is Go's http.TimeFormat."""
    import email.utils

    from weedpy.http1 import format_http_date

    assert format_http_date(ts) == _http_date(ts) == email.utils.formatdate(ts, usegmt=True)


_NAME = st.text(alphabet="0123456789AZaz_.-", min_size=1, max_size=255)
_TYPE = st.text(alphabet="0123456789AZaz!#$&^_.+-", min_size=1, max_size=20)


@given(_NAME, st.integers(min_value=0, max_value=(1 << 33)), st.integers(min_value=0, max_value=0xFFFFFFFF),
       st.one_of(st.just(""), st.builds(lambda a, b: a + "/" + b, _TYPE, _TYPE)),
       st.text(alphabet="SeaweedFS 0123456789.:", min_size=1, max_size=30).map(str.strip).filter(bool))
def test_fast_write_created_reply_is_the_general_reply(name: str, size: int, crc: int, mime: str, server: str) -> None:
    """The fast write path's 201 is what the full path's writeJson and Go framing write (for a
    Server value without surrounding blanks, as the server's own always is)."""
    from native.http._common import json_response, set_etag
    from native.http._fast_write import _created
    from native.http._gojson import Struct
    from native.http._sniff import detect_content_type
    from weedpy.http1 import GoHeader, http_date, serialize_head

    etag, rid = f"{crc:08x}", "187E0A2B3C4D5E6F0123ABCD"
    h = GoHeader()
    h.set("X-Amz-Request-Id", rid)
    h.set("Server", server)
    set_etag(h, etag)
    h.set("Content-MD5", "")
    resp = json_response(h, None, 201, pretty=False, obj=Struct(
        ("name", name, True), ("size", size & 0xFFFFFFFF, True), ("eTag", etag, True), ("mime", mime, True),
        ("contentMd5", "", True),
    ))
    date = http_date()
    wire = serialize_head(resp, method=b"POST", keep_alive=True, sniff=detect_content_type, date=date)
    fast = _created(server, rid, name, size, etag, mime)
    if date != http_date():  # the second turned between the two
        return
    assert fast == wire.head + resp.body


_SNIFF_PREFIXES = [b"", b"<!DOCTYPE HTML ", b"<html>", b"<HeAd ", b"<?xml", b"%PDF-", b"%!PS-Adobe-", b"\xfe\xff", b"\xff\xfe",
                   b"\xef\xbb\xbf", b"\x00\x00\x01\x00", b"BM", b"GIF89a", b"RIFF\x01\x02\x03\x04WEBPVP", b"\x89PNG\r\n\x1a\n",
                   b"\xff\xd8\xff", b"ID3", b"OggS\x00", b"MThd\x00\x00\x00\x06", b"RIFF\x00\x00\x00\x00AVI ",
                   b"\x00\x00\x00\x18ftypmp42", b"\x1a\x45\xdf\xa3", b"\x00" * 34 + b"LP", b"\x00\x01\x00\x00", b"OTTO",
                   b"wOF2", b"\x1f\x8b\x08", b"PK\x03\x04", b"Rar!\x1a\x07\x01\x00", b"\x00asm", b"<!--", b"<b>", b"<p "]


@given(st.sampled_from(["", " ", "\t\n ", "\r\x0c"]), st.sampled_from(_SNIFF_PREFIXES),
       st.binary(max_size=40), st.text(max_size=20).map(lambda t: t.encode()))
def test_sniffing_by_first_byte_is_sniffing_in_go_order(blank: str, prefix: bytes, tail: bytes, text: bytes) -> None:
    """`detect_content_type` tries only the matchers the first bytes allow; the answer is the one
    trying every matcher in Go's order gives (whose table tests/native_http/golden checks)."""
    from native.http._sniff import _OCTET, _SIGNATURES, _WS, SNIFF_LEN, detect_content_type

    def in_order(data: bytes) -> str:
        data = bytes(data[:SNIFF_LEN])
        first = 0
        while first < len(data) and data[first] in _WS:
            first += 1
        for sig in _SIGNATURES:
            ct = sig(data, first)
            if ct is not None:
                return ct
        return _OCTET

    for data in (blank.encode() + prefix + tail, prefix + text, tail, text, blank.encode() + text):
        assert detect_content_type(data) == in_order(data), data


@given(st.one_of(
    st.binary(max_size=120),
    st.builds(lambda b: b"multipart/form-data; boundary=" + b, st.binary(max_size=80)),
    st.builds(lambda b, tail: b"multipart/form-data; boundary=" + b + tail,
              st.text("0123456789AZaz_.-", max_size=75).map(str.encode), st.sampled_from([b"", b"\n", b" ", b'"', b"\xff"])),
))
def test_fast_write_boundary_check_is_the_content_type_regex(value: bytes) -> None:
    """The upload fast path's Content-Type test takes exactly what _CONTENT_TYPE matches."""
    from native.http._fast_write import _CONTENT_TYPE, _boundary

    m = _CONTENT_TYPE.match(value)
    assert _boundary(value) == (m.group(1) if m else None)
