"""Go's weed/query/json: filter a JSON line on one field, project the selected fields, and
serialise them the way Go's ToJson does (`{name:raw,name:raw}`, names unquoted, no separator
between records)."""

from __future__ import annotations

import dataclasses

from native.query._gjson import Kind, Result, for_each_line, get, wildcard_match

__all__ = ["Filter", "query_json", "select_records"]


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    field: str = ""
    op: str = ""
    value: str = ""


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _passes(line: str, f: Filter) -> bool:
    """Go's filterJson: the field must exist; no operator means existence is enough."""
    value = get(line, f.field)
    if not value.exists:
        return False
    if f.op == "":
        return True
    rpv = f.value
    if value.kind is Kind.STRING:
        s = value.str.encode()  # Go compares strings bytewise
        r = rpv.encode()
        ops = {"=": s == r, "!=": s != r, "<": s < r, "<=": s <= r, ">": s > r, ">=": s >= r}
        if f.op in ops:
            return ops[f.op]
        if f.op == "%":
            return wildcard_match(value.str, rpv)
        if f.op == "!%":
            return not wildcard_match(value.str, rpv)
        return False
    if value.kind is Kind.NUMBER:
        n, r = value.num, _float(rpv)
        return {"=": n == r, "!=": n != r, "<": n < r, "<=": n <= r, ">": n > r, ">=": n >= r}.get(f.op, False)
    if value.kind is Kind.TRUE:
        return {"=": rpv == "true", "!=": rpv != "true", ">": rpv == "false", ">=": True}.get(f.op, False)
    if value.kind is Kind.FALSE:
        return {"=": rpv == "false", "!=": rpv != "false", "<": rpv == "true", "<=": True}.get(f.op, False)
    return False


def query_json(line: str, selections: list[str], f: Filter) -> list[Result] | None:
    """The selected values of a line that passes the filter, else None (Go's QueryJson)."""
    if not _passes(line, f):
        return None
    return [get(line, path) for path in selections]


def select_records(data: bytes, selections: list[str], f: Filter) -> bytes:
    """Every JSON value of `data` that passes, as Go's ToJson records, concatenated."""
    text = data.decode("utf-8", errors="surrogateescape")
    out = []
    for line in for_each_line(text):
        values = query_json(line.raw, selections, f)
        if values is None:
            continue
        fields = ",".join(f"{name}:{v.raw}" for name, v in zip(selections, values))
        out.append("{" + fields + "}")
    return "".join(out).encode("utf-8", errors="surrogateescape")
