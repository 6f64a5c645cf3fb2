"""The Go standard-library behaviour native/http reproduces, against golden data from Go itself.

tests/native_http/golden/gen.go produced golden.json with Go's own DetectContentType,
mime.TypeByExtension, Parse/FormatMediaType, strconv errors and Quote, json.Marshal of strings,
url.ParseRequestURI / ParseQuery / Values.Encode and mime/multipart reading.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from native.http._gojson import encode_string, marshal, Struct
from native.gostrconv import NumError, atoi, parse_uint, quote
from native.http._gourl import BadRequestURI, encode_values, parse_query, parse_request_target
from native.http._mediatype import MediaTypeError, format_media_type, parse_media_type
from native.http._mime import MimeTable
from native.http._multipart import GoIOError, MultipartReader
from native.http._sniff import detect_content_type

GOLDEN = json.loads((Path(__file__).parent / "golden" / "golden.json").read_text())


def _b(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


def _s(text: str) -> str:
    """A Go string from the golden JSON (UTF-8) as our latin-1 byte string."""
    return text.encode("utf-8").decode("latin-1")


@pytest.mark.parametrize("case", GOLDEN["sniff"], ids=lambda c: c["in"][:24])
def test_sniff(case: dict) -> None:
    assert detect_content_type(_b(case["in"])) == case["out"]


def test_mime_table_matches_go_on_this_host() -> None:
    table = MimeTable.load(overrides=())  # plain Go; weed's own registrations are tested against weed
    got = {c["in"]: table.type_by_extension(c["in"]) for c in GOLDEN["mime"]}
    want = {c["in"]: _s(c["out"]) for c in GOLDEN["mime"]}
    assert got == want


@pytest.mark.parametrize("case", GOLDEN["media"], ids=lambda c: c["in"][:30])
def test_parse_media_type(case: dict) -> None:
    if case.get("err"):
        with pytest.raises(MediaTypeError) as ei:
            parse_media_type(_s(case["in"]))
        assert str(ei.value) == case["err"]
    else:
        t, params = parse_media_type(_s(case["in"]))
        assert (t, params) == (case["type"], {k: _s(v) for k, v in (case["params"] or {}).items()})


@pytest.mark.parametrize("case", GOLDEN["format"], ids=lambda c: c["type"] + ":" + c["filename"])
def test_format_media_type(case: dict) -> None:
    assert format_media_type(case["type"], {"filename": _s(case["filename"])}) == _s(case["out"])


@pytest.mark.parametrize("case", GOLDEN["strconv"], ids=lambda c: c["in"])
def test_strconv_errors(case: dict) -> None:
    s = _b(case["in"]).decode("latin-1")
    for fn, want in ((lambda: parse_uint(s, 10, 64), case.get("err", "")), (lambda: atoi(s), case["out"])):
        if want:
            with pytest.raises(NumError) as ei:
                fn()
            assert str(ei.value) == _s(want)
        else:
            fn()


@pytest.mark.parametrize("case", GOLDEN["quote"], ids=lambda c: c["in"])
def test_quote(case: dict) -> None:
    assert quote(_b(case["in"]).decode("latin-1")).encode("latin-1") == _b(case["out"])


@pytest.mark.parametrize("case", GOLDEN["json"], ids=lambda c: c["in"])
def test_json_strings(case: dict) -> None:
    assert marshal(_b(case["in"]).decode("latin-1")) == case["out"].encode("utf-8")


def test_json_structs_and_maps() -> None:
    assert marshal({"b": 1, "a": "x<y", "size": 0}) == b'{"a":"x\\u003cy","b":1,"size":0}'
    s = Struct(("name", "n"), ("size", 0, True), ("eTag", "e"), ("mime", "", True))
    assert marshal(s) == b'{"name":"n","eTag":"e"}'
    assert marshal({"a": [1, 2], "b": {}}, pretty=True) == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}'
    assert marshal(None) == b"null" and marshal([]) == b"[]"
    assert encode_string("\u2028") == '"\\u2028"'


@pytest.mark.parametrize("case", GOLDEN["url"], ids=lambda c: c["in"])
def test_parse_request_target(case: dict) -> None:
    raw = _s(case["in"]).encode("latin-1")
    if case.get("err"):
        with pytest.raises(BadRequestURI):
            parse_request_target(raw)
        return
    u = parse_request_target(raw)
    assert (u.path, u.escaped_path, u.raw_query) == (_s(case["path"]), _s(case["escaped"]), case["raw_query"])


@pytest.mark.parametrize("case", GOLDEN["query"], ids=lambda c: c["in"])
def test_parse_query(case: dict) -> None:
    q = parse_query(case["in"])
    assert q.values == (case["values"] or {})
    assert (q.error or "") == case.get("err", "")
    assert encode_values(q.values) == case["encoded"]


def _source(body: bytes, step: int):
    chunks = [body[i:i + step] for i in range(0, len(body), step)]

    async def src() -> bytes:
        return chunks.pop(0) if chunks else b""

    return src


@pytest.mark.parametrize("step", [1, 7, 1 << 20])
@pytest.mark.parametrize("case", GOLDEN["multipart"], ids=lambda c: c["body"][:20])
async def test_multipart(case: dict, step: int) -> None:
    mr = MultipartReader(_source(_b(case["body"]), step), case["boundary"])
    parts = []
    err = ""
    for _ in range(4):
        try:
            p = await mr.next_part()
        except GoIOError as exc:
            err = str(exc)
            break
        data, rerr = await p.read(1 << 20)
        parts.append({"header": p.header, "filename": p.file_name(), "data": data.hex(),
                      **({"err": str(rerr)} if rerr else {})})
    want = [{"header": {k: [_s(v) for v in vs] for k, vs in p["header"].items()}, "filename": _s(p["filename"]),
             "data": p["data"], **({"err": p["err"]} if p.get("err") else {})} for p in case["parts"] or []]
    assert parts == want
    assert _s(err) == _s(case.get("err", ""))


@pytest.mark.parametrize("case", GOLDEN["gzip"], ids=lambda c: str(len(c["in"]) // 2))
def test_gzip_best_speed_is_byte_identical(case: dict) -> None:
    from native.http._gzip import gunzip_data, gzip_data

    data = _b(case["in"])
    out = gzip_data(data)
    assert out.hex() == case["out"]
    assert gunzip_data(out) == data
