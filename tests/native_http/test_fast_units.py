"""Pieces of the read fast path that must equal what the full path computes."""

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
