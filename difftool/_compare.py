"""The comparison engine: two recorded outcomes in, a verdict and the differing field paths out.

Sans-IO and side-effect free. Order of work, cheapest first (what Diffy and Scientist taught):

1. bytes: status, header list and body as received; equal bodies are never parsed;
2. the shared mask (`_mask.py`) on headers and, only if the bytes differed, on the body;
3. only on a remaining mismatch, parse into field paths: gzip decoded, JSON canonicalised,
   gRPC messages decoded through the descriptors in proto/; a payload whose bytes differ but whose
   parsed content is equal yields a `#format` field (e.g. `body#format`), so nothing is hidden;
4. ignore rules are consulted only for the differences found; a comparison whose differences are
   all ignored is IGNORED, not MATCH.

Field names: `status`, `header:<lower-name>`, `header-order`, `body`, `body.<json path>`,
`body~<line shape>` (text bodies, one per differing line, numbers generalised),
`body#format`, `body#encoding`, `body#truncated`, `error`; gRPC: `header:<name>`, `trailers-only`,
`grpc-status`, `grpc-message`, `trailer:<name>`, `reset`, `message-count`, `msg[i]`,
`msg[i].<field path>`, `msg[i]#format`.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
from collections.abc import Iterable, Sequence

from difftool._fields import FieldPattern, field_key, gunzip, json_fields, proto_fields, short
from difftool._mask import (
    GRPC_VARIABLE_FIELDS,
    HTTP_VARIABLE_FIELDS,
    HTTP_VARIABLE_LINES,
    ByteMask,
    grpc_variable_fields,
    mask_grpc_messages,
    mask_headers,
    mask_http,
    mask_text,
)
from difftool._records import GrpcRequest, GrpcResponse, HttpResponse, Outcome
from proto.services import rpc_for_path
from weedpy.grpc import percent_decode

__all__ = ["Verdict", "FieldDiff", "Comparison", "Rules", "compare_outcomes", "compare_http", "compare_grpc"]


Aliases = Sequence[tuple[bytes, bytes]]  # (per-server value, placeholder), see _mask.py


class Verdict(enum.Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    IGNORED = "ignored"  # every difference is covered by an ignore rule


@dataclasses.dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str  # concrete, e.g. "msg[2].size"
    left: str  # bounded renderings for people; the full values stay in the sample
    right: str

    @property
    def key(self) -> str:
        """The path with indices generalised (what counts, noise and ignore rules work on)."""
        return field_key(self.path)


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    verdict: Verdict
    diffs: tuple[FieldDiff, ...] = ()  # not covered by an ignore rule
    ignored: tuple[FieldDiff, ...] = ()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(d.key for d in self.diffs)


MATCH = Comparison(Verdict.MATCH)


@dataclasses.dataclass(frozen=True, slots=True)
class Rules:
    """Per-endpoint comparison settings.

    `ignore_headers` / `ignore_fields` are ignore rules (a difference there counts as ignored);
    `header_allow` (compare only these) and `header_deny` (never compare these) set which
    headers are compared at all.
    """

    ignore_headers: frozenset[bytes] = frozenset()
    ignore_fields: tuple[FieldPattern, ...] = ()
    header_allow: frozenset[bytes] | None = None
    header_deny: frozenset[bytes] = frozenset()

    @classmethod
    def of(
        cls, ignore_headers: Iterable[str] = (), ignore_fields: Iterable[str] = (),
        header_allow: Iterable[str] | None = None, header_deny: Iterable[str] = (),
    ) -> Rules:
        return cls(
            ignore_headers=frozenset(h.lower().encode("latin-1") for h in ignore_headers),
            ignore_fields=tuple(FieldPattern(f) for f in ignore_fields),
            header_allow=None if header_allow is None else frozenset(h.lower().encode("latin-1") for h in header_allow),
            header_deny=frozenset(h.lower().encode("latin-1") for h in header_deny),
        )

    def merged(self, other: Rules) -> Rules:
        allow = self.header_allow if other.header_allow is None else (
            other.header_allow if self.header_allow is None else self.header_allow & other.header_allow)
        return Rules(
            ignore_headers=self.ignore_headers | other.ignore_headers,
            ignore_fields=self.ignore_fields + other.ignore_fields,
            header_allow=allow,
            header_deny=self.header_deny | other.header_deny,
        )

    def in_scope(self, lower_name: bytes) -> bool:
        if lower_name in self.header_deny:
            return False
        return self.header_allow is None or lower_name in self.header_allow or lower_name.startswith(b":")

    def ignores(self, d: FieldDiff) -> bool:
        path = d.path
        if path.startswith(("header:", "trailer:")):
            name = path.split(":", 1)[1].encode("latin-1", "replace")
            if name in self.ignore_headers:
                return True
        return any(p.matches(path) or p.matches(d.key) for p in self.ignore_fields)


NO_RULES = Rules()
__all__ += ["NO_RULES", "MATCH"]


def _verdict(diffs: Sequence[FieldDiff], rules: Rules) -> Comparison:
    if not diffs:
        return MATCH
    real = tuple(d for d in diffs if not rules.ignores(d))
    ignored = tuple(d for d in diffs if rules.ignores(d))
    return Comparison(Verdict.MISMATCH if real else Verdict.IGNORED, real, ignored)


# -- headers ---------------------------------------------------------------------------------------


def _grouped(headers: Iterable[tuple[bytes, bytes]]) -> tuple[dict[bytes, list[bytes]], list[bytes]]:
    by_name: dict[bytes, list[bytes]] = {}
    order: list[bytes] = []
    for k, v in headers:
        lk = k.lower()
        by_name.setdefault(lk, []).append(v)
        order.append(lk)
    return by_name, order


def _header_diffs(
    a: Sequence[tuple[bytes, bytes]], b: Sequence[tuple[bytes, bytes]], rules: Rules, prefix: str = "header",
) -> list[FieldDiff]:
    a = [(k, v) for k, v in a if rules.in_scope(k.lower())]
    b = [(k, v) for k, v in b if rules.in_scope(k.lower())]
    if a == b:
        return []
    ga, oa = _grouped(a)
    gb, ob = _grouped(b)
    out: list[FieldDiff] = []
    for name in sorted(ga.keys() | gb.keys()):
        va, vb = ga.get(name), gb.get(name)
        if va != vb:
            out.append(FieldDiff(
                f"{prefix}:{name.decode('latin-1')}",
                short(b", ".join(va)) if va is not None else "<absent>",
                short(b", ".join(vb)) if vb is not None else "<absent>",
            ))
    if not out:
        if oa != ob:
            out.append(FieldDiff(f"{prefix}-order", short(b" ".join(oa)), short(b" ".join(ob))))
        else:  # same names, values and order: only the spelling of a name differs
            out.append(FieldDiff(f"{prefix}-case", short(b" ".join(k for k, _ in a)), short(b" ".join(k for k, _ in b))))
    return out


# -- bodies ----------------------------------------------------------------------------------------


def _bytes_diff(path: str, a: bytes, b: bytes) -> FieldDiff:
    """Lengths and a window around the first differing byte."""
    n = min(len(a), len(b))
    i = next((j for j in range(n) if a[j] != b[j]), n)
    lo = max(0, i - 24)
    return FieldDiff(path, f"{len(a)} bytes, at {i}: {short(a[lo:i + 48], 100)}", f"{len(b)} bytes, at {i}: {short(b[lo:i + 48], 100)}")


_NO_MASK: tuple[Sequence[bytes], Aliases] = ((), ())


def _field_diffs(fa: dict[str, str], fb: dict[str, str], mask_a: tuple[Sequence[bytes], Aliases] = _NO_MASK,
                 mask_b: tuple[Sequence[bytes], Aliases] = _NO_MASK) -> list[FieldDiff]:
    """Differences of two flattened payloads; `mask_*` = (own addresses, aliases) for string values."""
    out = []
    masking = mask_a != _NO_MASK or mask_b != _NO_MASK
    for path in sorted(fa.keys() | fb.keys(), key=_path_order):
        va, vb = fa.get(path), fb.get(path)
        if va is not None and vb is not None and va != vb and masking:
            va = mask_text(va.encode(), *mask_a).decode()
            vb = mask_text(vb.encode(), *mask_b).decode()
        if va != vb:
            out.append(FieldDiff(path, short(va) if va is not None else "<absent>", short(vb) if vb is not None else "<absent>"))
    return out


def _path_order(path: str) -> tuple:
    # numeric order for indices so msg[10] follows msg[9]
    return tuple(int(p) if p.isdigit() else p for p in path.replace("]", "[").split("["))


_DIGITS = re.compile(r"[0-9]+")
_MAX_LINE_DIFFS = 20


def _line_key(line: str) -> str:
    """What identifies a line across answers: its text with numbers generalised, bounded."""
    return _DIGITS.sub("#", " ".join(line.split()))[:80]


_MASKED_LINES: dict[str, tuple[re.Pattern[str], ...]] = {
    endpoint: tuple(re.compile(p) for p in patterns) for endpoint, patterns in HTTP_VARIABLE_LINES.items()
}


def _text_diffs(a: bytes, b: bytes, masks: tuple[re.Pattern[str], ...] = ()) -> list[FieldDiff] | None:
    """Text bodies line by line: a field per differing line, keyed by the line's shape, so a page
    whose clock ticks (noise) and whose master address differs (real) yields two fields, not one."""
    try:
        ta, tb = a.decode("utf-8"), b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    la, lb = ta.splitlines(), tb.splitlines()
    if len(la) < 2 and len(lb) < 2:
        return None
    out: list[FieldDiff] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=la, b=lb, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        left, right = la[i1:i2], lb[j1:j2]
        for k in range(max(len(left), len(right))):
            l = left[k] if k < len(left) else None
            r = right[k] if k < len(right) else None
            if l is not None and r is not None and any(m.match(l) and m.match(r) for m in masks):
                continue
            shape = _line_key(l if l is not None else r or "")
            out.append(FieldDiff(f"body~{shape}", short(f"line {i1 + k + 1}: {l}") if l is not None else "<absent>",
                                 short(f"line {j1 + k + 1}: {r}") if r is not None else "<absent>"))
            if len(out) > _MAX_LINE_DIFFS:
                return None
    return out


_MASKED_JSON: dict[str, tuple[FieldPattern, ...]] = {
    endpoint: tuple(FieldPattern(f"body.{p}") for p in paths) for endpoint, paths in HTTP_VARIABLE_FIELDS.items()
}


def _body_diffs(a: HttpResponse, b: HttpResponse, ma: bytes, mb: bytes,
                masks: tuple[FieldPattern, ...] = (), line_masks: tuple[re.Pattern[str], ...] = ()) -> list[FieldDiff] | None:
    """The body's differences; None when every one of them is a masked value."""
    if a.truncated or b.truncated:
        return [FieldDiff("body#truncated", f"{len(a.body)} bytes{' (cut)' if a.truncated else ''}",
                          f"{len(b.body)} bytes{' (cut)' if b.truncated else ''}")]
    ea, eb = (a.header(b"content-encoding") or b"").lower(), (b.header(b"content-encoding") or b"").lower()
    da, db = ma, mb
    if b"gzip" in (ea, eb):
        ga = gunzip(ma) if ea == b"gzip" else ma
        gb = gunzip(mb) if eb == b"gzip" else mb
        if ga is not None and gb is not None:
            if ga == gb:
                return [FieldDiff("body#encoding", f"{len(ma)} compressed bytes", f"{len(mb)} compressed bytes")]
            da, db = ga, gb
    ja, jb = json_fields(da, "body"), json_fields(db, "body")
    if ja is not None and jb is not None:
        diffs = _field_diffs(ja, jb)
        if not diffs:
            return [FieldDiff("body#format", short(da), short(db))]
        if masks:
            diffs = [d for d in diffs if not _masked(d, masks, ja, jb)]
            return diffs or None
        return diffs
    text = _text_diffs(da, db, line_masks)
    if text is None:
        return [_bytes_diff("body", da, db)]
    return text or None


def compare_http(a: HttpResponse, b: HttpResponse, rules: Rules = NO_RULES,
                 owns_a: Sequence[bytes] = (), owns_b: Sequence[bytes] = (),
                 aliases_a: Aliases = (), aliases_b: Aliases = (), endpoint: str = "") -> Comparison:
    diffs: list[FieldDiff] = []
    if a.status != b.status:
        diffs.append(FieldDiff("status", str(a.status), str(b.status)))
    if a.headers != b.headers or owns_a or owns_b:
        _, ha, _ = mask_http(a.status, a.headers, b"", owns_a, aliases_a)
        _, hb, _ = mask_http(b.status, b.headers, b"", owns_b, aliases_b)
        diffs.extend(_header_diffs(ha, hb, rules))
    if a.body != b.body or a.truncated != b.truncated:
        _, _, ma = mask_http(a.status, a.headers, a.body, owns_a, aliases_a)
        _, _, mb = mask_http(b.status, b.headers, b.body, owns_b, aliases_b)
        if ma != mb or a.truncated != b.truncated:
            body = _body_diffs(a, b, ma, mb, _MASKED_JSON.get(endpoint, ()), _MASKED_LINES.get(endpoint, ()))
            if body is None:  # only masked values differ, and with them possibly the length
                diffs = [d for d in diffs if d.path != "header:content-length"]
            else:
                diffs.extend(body)
    return _verdict(diffs, rules)


# -- gRPC ------------------------------------------------------------------------------------------

_STATUS_TRAILERS = frozenset({b"grpc-status", b"grpc-message"})
# The shared mask's gRPC fields, compiled once: values masked, presence still compared.
_MASKED_FIELDS: dict[str, tuple[FieldPattern, ...]] = {
    name: tuple(FieldPattern(p) for p in grpc_variable_fields(name)) for name in GRPC_VARIABLE_FIELDS
}


def _present(fields: dict[str, str], root: str) -> bool:
    return any(k == root or k.startswith((root + ".", root + "[")) for k in fields)


def _masked(d: FieldDiff, patterns: tuple[FieldPattern, ...], fa: dict[str, str], fb: dict[str, str]) -> bool:
    """A masked field's whole subtree is one value: masked if that subtree is present on both sides."""
    for p in patterns:
        root = p.prefix_of(d.path)
        if root is not None and _present(fa, root) and _present(fb, root):
            return True
    return False


def _message_diffs(i: int, a: bytes, b: bytes, method: str, mask_a: tuple[Sequence[bytes], Aliases],
                   mask_b: tuple[Sequence[bytes], Aliases]) -> list[FieldDiff]:
    rpc = rpc_for_path(method)
    prefix = f"msg[{i}]"
    if rpc is not None:
        fa, fb = proto_fields(a, rpc.response, prefix), proto_fields(b, rpc.response, prefix)
        if fa is not None and fb is not None:
            diffs = _field_diffs(fa, fb, mask_a, mask_b)
            if not diffs:  # the same content in other bytes, or only masked values (own address) differ
                return [FieldDiff(f"{prefix}#format", f"{len(a)} bytes", f"{len(b)} bytes")] if fa == fb else []
            masks = _MASKED_FIELDS.get(method.rsplit("/", 1)[-1], ())
            return [d for d in diffs if not _masked(d, masks, fa, fb)] if masks else diffs
    return [_bytes_diff(prefix, a, b)]


def compare_grpc(method: str, a: GrpcResponse, b: GrpcResponse, rules: Rules = NO_RULES,
                 owns_a: Sequence[bytes] = (), owns_b: Sequence[bytes] = (),
                 aliases_a: Aliases = (), aliases_b: Aliases = (), request: Sequence[bytes] = (),
                 masks: Sequence[ByteMask] = ()) -> Comparison:
    """`request`: the request's messages (some masks depend on them, e.g. CopyFile's ext);
    `masks`: byte ranges the caller knows to hold clocks (see `_mask.ByteMask`)."""
    diffs: list[FieldDiff] = []
    a = dataclasses.replace(a, headers=tuple(mask_headers(a.headers, owns_a, aliases_a)),
                            trailers=tuple(mask_headers(a.trailers, owns_a, aliases_a)))
    b = dataclasses.replace(b, headers=tuple(mask_headers(b.headers, owns_b, aliases_b)),
                            trailers=tuple(mask_headers(b.trailers, owns_b, aliases_b)))
    if a.trailers_only != b.trailers_only:
        diffs.append(FieldDiff("trailers-only", str(a.trailers_only).lower(), str(b.trailers_only).lower()))
    if a.reset_code != b.reset_code:
        diffs.append(FieldDiff("reset", str(a.reset_code), str(b.reset_code)))
    # Initial headers: in a trailers-only response they are the trailers, compared below.
    if not a.trailers_only and not b.trailers_only:
        diffs.extend(_header_diffs(a.headers, b.headers, rules))
    sa, sb = a.trailer(b"grpc-status"), b.trailer(b"grpc-status")
    if sa != sb:
        diffs.append(FieldDiff("grpc-status", short(sa or b"<absent>"), short(sb or b"<absent>")))
    ga = a.trailer(b"grpc-message") or b""
    gb = b.trailer(b"grpc-message") or b""
    if ga != gb:
        diffs.append(FieldDiff("grpc-message", short(percent_decode(ga)), short(percent_decode(gb))))
    ta = [(k, v) for k, v in a.trailers if k not in _STATUS_TRAILERS and not (a.trailers_only and k.startswith(b":"))]
    tb = [(k, v) for k, v in b.trailers if k not in _STATUS_TRAILERS and not (b.trailers_only and k.startswith(b":"))]
    diffs.extend(_header_diffs(ta, tb, rules, prefix="trailer"))
    if len(a.messages) != len(b.messages):
        diffs.append(FieldDiff("message-count", str(len(a.messages)), str(len(b.messages))))
    msgs_a, msgs_b = a.messages, b.messages
    if msgs_a != msgs_b:  # append times inside records, a .vif's spacing: masked before comparing
        msgs_a = mask_grpc_messages(method, request, msgs_a, masks)
        msgs_b = mask_grpc_messages(method, request, msgs_b, masks)
    for i, (ma, mb) in enumerate(zip(msgs_a, msgs_b)):
        if ma != mb:
            diffs.extend(_message_diffs(i, ma, mb, method, (owns_a, aliases_a), (owns_b, aliases_b)))
    if a.truncated or b.truncated:
        diffs.append(FieldDiff("messages#truncated", str(a.truncated).lower(), str(b.truncated).lower()))
    return _verdict(diffs, rules)


# -- outcomes --------------------------------------------------------------------------------------


def compare_outcomes(method: str, a: Outcome, b: Outcome, rules: Rules = NO_RULES, endpoint: str = "",
                     request: GrpcRequest | None = None, masks: Sequence[ByteMask] = ()) -> Comparison:
    """Compare two sides' outcomes of the same request (`method`: the gRPC path, or "" for HTTP;
    `endpoint`: the route name, which picks the mask's JSON fields; `request` and `masks`: see
    `compare_grpc`)."""
    ra, rb = a.response, b.response
    if ra is None or rb is None:
        if ra is None and rb is None and a.error == b.error:
            return MATCH
        return _verdict([FieldDiff("error", short(a.error or "answered"), short(b.error or "answered"))], rules)
    if isinstance(ra, HttpResponse) and isinstance(rb, HttpResponse):
        return compare_http(ra, rb, rules, a.own_addrs, b.own_addrs, a.aliases, b.aliases, endpoint)
    if isinstance(ra, GrpcResponse) and isinstance(rb, GrpcResponse):
        return compare_grpc(method, ra, rb, rules, a.own_addrs, b.own_addrs, a.aliases, b.aliases,
                            request.messages if request is not None else (), masks)
    return _verdict([FieldDiff("error", type(ra).__name__, type(rb).__name__)], rules)
