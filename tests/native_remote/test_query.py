"""Query: the gjson subset and Go's filter/serialisation (sans-IO), then the rpc over an
in-process native server. Expected records and texts are the weed 4.48 binary's answers to the
same needles and requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from native.query import Filter, Kind, for_each_line, get, select_records, wildcard_match
from proto import volume_server_pb2 as vs
from tests.native_grpc.support import needle, serve_native

Q = vs.QueryRequest
LINES = b'{"score":3}\n{"score":12}\n{"score":18, "name":"x\\"y", "a":{"b":[1,2,{"c":true}]}}\n'
JSON = Q.InputSerialization(json_input=Q.InputSerialization.JSONInput(type="LINES"))
CSV = Q.InputSerialization(csv_input=Q.InputSerialization.CSVInput())


def test_records_as_go_writes_them() -> None:
    out = select_records(LINES, ["score", "name", "a.b.2.c", "a.b.#", "nope"], Filter("score", ">", "10"))
    assert out == b'{score:12,name:,a.b.2.c:,a.b.#:,nope:}{score:18,name:"x\\"y",a.b.2.c:true,a.b.#:3,nope:}'
    assert select_records(LINES, ["score"], Filter()) == b""  # no field: nothing passes
    assert select_records(LINES, ["score"], Filter("score")) == b"{score:3}{score:12}{score:18}"


@pytest.mark.parametrize(("flt", "hits"), [
    (Filter("n", "=", "2"), [2]), (Filter("n", "!=", "2"), [1, 3]), (Filter("n", "<=", "2"), [1, 2]),
    (Filter("n", ">=", "x"), [1, 2, 3]),  # an unparsable operand compares as 0
    (Filter("s", "<", "b"), [1]), (Filter("s", "%", "b*"), [2]), (Filter("s", "!%", "?"), [2, 3]),
    (Filter("t", "=", "true"), [1]), (Filter("t", ">", "false"), [1]), (Filter("t", "<=", "x"), [2, 3]),
    (Filter("z", "=", "null"), []), (Filter("n", "~", "1"), []),
])
def test_filter_operators(flt: Filter, hits: list[int]) -> None:
    data = b'{"n":1,"s":"a","t":true}{"n":2,"s":"bc","t":false} {"n":3,"s":"cd","t":false,"z":null}'
    out = select_records(data, ["n"], flt)
    assert out == b"".join(b"{n:%d}" % h for h in hits)


def test_gjson_paths_and_lines() -> None:
    doc = '{"a": {"b.c": [10, {"d": "e"}], "x1": 1, "x2": 2}, "list": [{"k": 1}, {"k": 2}, {"j": 3}]}'
    assert get(doc, "a.b\\.c.1.d").raw == '"e"'
    assert get(doc, "a.b\\.c.#").raw == "2"
    assert get(doc, "list.#.k").raw == "[1,2]" and get(doc, "list.#.k").kind is Kind.JSON
    assert get(doc, "a.x?").raw == "1" and get(doc, "a.x*").raw == "1"
    assert not get(doc, "a.b\\.c.5").exists and not get(doc, "list.#(k=1)").exists and not get(doc, "").exists
    assert get('{"s":"\\u0041\\n"}', "s").str == "A\n"
    assert [r.raw for r in for_each_line(' 1 garbage {"a":[1,2]}\n"s" true null -2.5e3')] == [
        "1", '{"a":[1,2]}', '"s"', "true", "null", "-2.5e3"]
    assert wildcard_match("hello", "h*l?o") and not wildcard_match("hello", "h?o") and wildcard_match("a*", "a\\*")


async def test_query_rpc(tmp_path: Path) -> None:
    async with serve_native(tmp_path, volumes=[64]) as s:
        v = s.store.volume(64)
        v.write_needle(needle(0x777001, LINES, cookie=0xAABBCCDD))
        v.write_needle(needle(0x777002, b"a,b\n1,2\n", cookie=0xAABBCCDD))
        v.delete_needle(0x777002, 0xAABBCCDD)

        async def q(fids, flt=Q.Filter(field="score", operand=">", value="10"), inp=JSON, selections=("score",)):
            return await s.stream("Query", Q(from_file_ids=fids, selections=list(selections), filter=flt,
                                             input_serialization=inp), vs.QueriedStripe)

        out = await q(["64,777001aabbccdd"])
        assert out.ok and [m.records for m in out.messages] == [b"{score:12}{score:18}"]
        out = await q(["64,777001aabbccdd", "64,777001aabbccdd"], flt=Q.Filter())
        assert [m.records for m in out.messages] == [b"", b""]  # one stripe per needle, even empty
        out = await q(["64,777001aabbccde", "64,777001aabbccdd"])  # a wrong cookie ends the stream
        assert out.ok and out.messages == ()
        assert (await q(["64,777001aabbccdd"], inp=CSV)).messages == ()
        for fid, message in [("bad-fid", "Wrong fid format."), ("64,zz", "Invalid fid: zz"),
                             ("x,777001aabbccdd", "volume 0 not found"), ("98766,100000001", "volume 98766 not found"),
                             ("64,99aabbccdd", "not found"), ("64,777002aabbccdd", "already deleted"),
                             ("64,777001aabbccdd_1", "already deleted")]:
            out = await q([fid])
            assert (out.status, out.message) == ("UNKNOWN", message), fid
        out = await s.stream("Query", Q(from_file_ids=["64,777001aabbccdd"]), vs.QueriedStripe)
        assert out.ok and out.messages == ()  # Go crashes on a missing filter/input; weedpy sends nothing


_JSONISH = st.text(alphabet='{}[]":,.\\ \n\ttfnu0123456789-+eE.abc*?#@', max_size=80)


@settings(max_examples=300, deadline=None)
@given(data=_JSONISH, path=st.text(alphabet="abc.#*?\\0123", max_size=12), op=st.sampled_from(["", "=", "<", "%", "!%", "x"]))
def test_any_input_yields_records_or_nothing(data: str, path: str, op: str) -> None:
    """gjson is lenient: malformed JSON finds nothing, it never raises."""
    out = select_records(data.encode(), [path, "a"], Filter(path, op, "1"))
    assert isinstance(out, bytes)
    for value in for_each_line(data):
        assert value.raw and data.find(value.raw) >= 0
        get(value.raw, path)
