"""The part of tidwall/gjson that Go's volume-server Query uses, over the raw JSON text.

Results keep the value's exact source text (`raw`): Go's Query output concatenates raw values,
so re-serialising parsed JSON would change numbers, spacing and escapes.

- `for_each_line(text)`: the JSON values found one after another (gjson.ForEachLine: whitespace
  and any byte that cannot start a value are skipped);
- `get(raw, path)`: a path of dot-separated components (`\\.` escapes a dot); a component is an
  object key (with `*` and `?` wildcards), an array index, `#` (the array's length), or `#`
  followed by more components (that path applied to every element, collected into an array).
  Queries (`#(...)`), modifiers (`@...`) and multipaths find nothing here.

Scanning is lenient like gjson's: malformed input yields "not found", never an exception.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re

__all__ = ["Kind", "Result", "get", "for_each_line", "wildcard_match", "MISSING"]


class Kind(enum.Enum):
    NULL = 0
    FALSE = 1
    NUMBER = 2
    STRING = 3
    TRUE = 4
    JSON = 5  # an object or an array


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    kind: Kind
    raw: str  # the value's source text ("" when missing)

    @property
    def exists(self) -> bool:
        return self.raw != ""

    @property
    def str(self) -> str:
        """gjson's Str: the unescaped content of a string (empty otherwise)."""
        if self.kind is not Kind.STRING:
            return ""
        try:
            return json.loads(self.raw)
        except ValueError:
            return self.raw[1:-1]

    @property
    def num(self) -> float:
        if self.kind is not Kind.NUMBER:
            return 0.0
        return _parse_float(self.raw)


MISSING = Result(Kind.NULL, "")
_NUMBER_START = frozenset("+-iIN0123456789")
_NUMBER_CHARS = frozenset("+-.eE0123456789")


def _parse_float(text: str) -> float:
    """Go's strconv.ParseFloat, leniently: 0 when it does not parse."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def _skip_space(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] <= " ":
        i += 1
    return i


def _end_of_string(s: str, i: int) -> int:
    """`s[i]` is the opening quote; the index after the closing one (len(s) if unterminated)."""
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    return n


def _end_of_squash(s: str, i: int) -> int:
    """`s[i]` opens an object or array; the index after its matching close (gjson's squash)."""
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            i = _end_of_string(s, i)
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _value_at(s: str, i: int) -> tuple[Result, int]:
    """The value starting at `s[i]` (no leading space) and the index after it."""
    c = s[i]
    if c in "{[":
        end = _end_of_squash(s, i)
        return Result(Kind.JSON, s[i:end]), end
    if c == '"':
        end = _end_of_string(s, i)
        return Result(Kind.STRING, s[i:end]), end
    end = i + 1
    n = len(s)
    if c in "tfn" and not (c == "n" and i + 1 < n and s[i + 1] != "u"):
        while end < n and s[end].isalpha():
            end += 1
        kind = {"t": Kind.TRUE, "f": Kind.FALSE, "n": Kind.NULL}[c]
        return Result(kind, s[i:end]), end
    while end < n and (s[end] in _NUMBER_CHARS or s[end].isalpha()):
        end += 1
    return Result(Kind.NUMBER, s[i:end]), end


def for_each_line(text: str):
    """Every top-level JSON value, in order (gjson.ForEachLine)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c <= " " or not (c in "{[\"tfn" or c in _NUMBER_START):
            i += 1
            continue
        value, i = _value_at(text, i)
        yield value


def _members(raw: str):
    """(key text, unescaped key, value) of an object's members, in order."""
    i = _skip_space(raw, 1)
    n = len(raw)
    while i < n and raw[i] != "}":
        if raw[i] != '"':
            return
        kend = _end_of_string(raw, i)
        key_raw = raw[i:kend]
        i = _skip_space(raw, kend)
        if i >= n or raw[i] != ":":
            return
        i = _skip_space(raw, i + 1)
        if i >= n:
            return
        value, i = _value_at(raw, i)
        try:
            key = json.loads(key_raw)
        except ValueError:
            key = key_raw[1:-1]
        yield key, value
        i = _skip_space(raw, i)
        if i < n and raw[i] == ",":
            i = _skip_space(raw, i + 1)


def _elements(raw: str):
    i = _skip_space(raw, 1)
    n = len(raw)
    while i < n and raw[i] != "]":
        value, i = _value_at(raw, i)
        yield value
        i = _skip_space(raw, i)
        if i < n and raw[i] == ",":
            i = _skip_space(raw, i + 1)
        elif i < n and raw[i] != "]":
            return


def _split_path(path: str) -> list[tuple[str, bool]]:
    """Components with whether they contain an unescaped wildcard."""
    parts: list[tuple[str, bool]] = []
    cur: list[str] = []
    wild = False
    i = 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            cur.append("\\" + path[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append(("".join(cur), wild))
            cur, wild = [], False
        else:
            wild = wild or c in "*?"
            cur.append(c)
        i += 1
    parts.append(("".join(cur), wild))
    return parts


def _unescape(component: str) -> str:
    return re.sub(r"\\(.)", r"\1", component)


def wildcard_match(text: str, pattern: str) -> bool:
    """tidwall/match: `*` any run, `?` any one character, `\\` escapes the next one."""
    if pattern == "*":
        return True
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text, re.DOTALL) is not None


def _step(value: Result, component: str, wild: bool, rest: list[tuple[str, bool]]) -> Result:
    if not value.raw or value.kind is not Kind.JSON:
        return MISSING
    if value.raw[0] == "{":
        if component.startswith(("@", "#(")):
            return MISSING
        for key, member in _members(value.raw):
            if (wildcard_match(key, component) if wild else key == _unescape(component)):
                return _walk(member, rest)
        return MISSING
    # an array
    if component == "#":
        items = list(_elements(value.raw))
        if not rest:
            return Result(Kind.NUMBER, str(len(items)))
        found = [_walk(item, rest) for item in items]
        return Result(Kind.JSON, "[" + ",".join(r.raw for r in found if r.exists) + "]")
    if component.isdigit():
        for index, item in enumerate(_elements(value.raw)):
            if index == int(component):
                return _walk(item, rest)
    return MISSING


def _walk(value: Result, parts: list[tuple[str, bool]]) -> Result:
    if not parts:
        return value
    (component, wild), rest = parts[0], parts[1:]
    return _step(value, component, wild, rest)


def get(raw: str, path: str) -> Result:
    """gjson.Get over one JSON document; MISSING when the path finds nothing."""
    if not path:
        return MISSING
    i = _skip_space(raw, 0)
    if i >= len(raw):
        return MISSING
    doc, _ = _value_at(raw, i)
    return _walk(doc, _split_path(path))
