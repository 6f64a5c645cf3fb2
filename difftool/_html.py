"""A self-contained HTML page from a report: per-endpoint table, fields, side-by-side samples.

No scripts, no external assets: `<details>` elements fold the samples, so the file opens from a CI
artifact store or a mail attachment as it is. gRPC messages are shown decoded (protobuf text
format through proto/ descriptors) next to their sizes; binary bodies as a hex excerpt.
"""

from __future__ import annotations

import base64
import difflib
import html
from typing import Any

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from proto.services import rpc_for_path

__all__ = ["html_report"]

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 7px;vertical-align:top;text-align:left}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.clean td.v{background:#dfd}tr.mismatch td.v{background:#fcc}tr.no-data td.v{background:#eee}
.real{color:#b00;font-weight:600}.noise{color:#a60}.ignored{color:#777}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.35 ui-monospace,monospace;max-height:32em;overflow:auto}
.diff{background:#fdd}.side{width:50%}details{margin:.4em 0}summary{cursor:pointer}
.meta td{border:none;padding:1px 8px 1px 0}code{font:12px ui-monospace,monospace}
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _bytes(v: Any) -> bytes:
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode()
    if "b64" in v:
        return base64.b64decode(v["b64"])
    return str(v.get("text", "")).encode()


def _text(v: Any) -> str:
    """Readable rendering of a packed bytes value (hex excerpt for binary)."""
    if v is None:
        return ""
    cut = f"\n… ({v['cut']} bytes in all)" if isinstance(v, dict) and "cut" in v else ""
    if isinstance(v, str):
        return v
    if "b64" in v:
        raw = base64.b64decode(v["b64"])
        hexed = " ".join(f"{b:02x}" for b in raw[:512])
        return f"<{len(raw)} binary bytes> {hexed}{' …' if len(raw) > 512 else ''}{cut}"
    return str(v.get("text", "")) + cut


def _message_text(method: str, payload: bytes, response: bool) -> str:
    rpc = rpc_for_path(method)
    if rpc is None:
        return _text({"b64": base64.b64encode(payload).decode()})
    msg = (rpc.response if response else rpc.request)()
    try:
        msg.ParseFromString(payload)
    except DecodeError:
        return "<does not decode> " + _text({"b64": base64.b64encode(payload).decode()})
    text = text_format.MessageToString(msg, as_utf8=True)
    if len(text) > 8000:
        text = text[:8000] + "…"
    return f"({len(payload)} bytes)\n{text}" if text else f"({len(payload)} bytes, all defaults)"


def _outcome_lines(sample: dict[str, Any], side: str) -> list[str]:
    o = sample.get(side)
    if o is None:
        return []
    r = o.get("response")
    lines = [f"# {o.get('version') or side}  {o.get('ms', 0)} ms"]
    if r is None:
        return lines + [f"ERROR: {o.get('error', '')}"]
    if r["kind"] == "http":
        lines.append(f"HTTP {r['status']} {_text(r['reason'])}")
        lines += [f"{_text(k)}: {_text(v)}" for k, v in r["headers"]]
        lines.append("")
        lines += _text(r["body"]).splitlines()
        if r.get("truncated"):
            lines.append("<capture truncated>")
        return lines
    method = sample["request"].get("method", "")
    label = "trailers-only" if r["trailers_only"] else "headers"
    lines.append(f"[{label}]")
    lines += [f"{_text(k)}: {_text(v)}" for k, v in r["headers"]]
    for i, m in enumerate(r["messages"]):
        lines.append(f"[message {i}]")
        lines += _message_text(method, _bytes(m), True).splitlines()
    if not r["trailers_only"]:
        lines.append("[trailers]")
        lines += [f"{_text(k)}: {_text(v)}" for k, v in r["trailers"]]
    if r.get("reset_code") is not None:
        lines.append(f"[RST_STREAM {r['reset_code']}]")
    return lines


def _side_by_side(left: list[str], right: list[str]) -> str:
    """Two <pre> columns with the lines that differ highlighted."""
    sm = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    la: list[str] = []
    ra: list[str] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        cls = "" if op == "equal" else ' class="diff"'
        la += [f"<span{cls}>{_e(x)}</span>" for x in left[i1:i2]]
        ra += [f"<span{cls}>{_e(x)}</span>" for x in right[j1:j2]]
        pad = (i2 - i1) - (j2 - j1)
        if pad > 0:
            ra += [""] * pad
        elif pad < 0:
            la += [""] * -pad
    return f'<td class="side"><pre>{chr(10).join(la)}</pre></td><td class="side"><pre>{chr(10).join(ra)}</pre></td>'


def _request_text(req: dict[str, Any]) -> str:
    if req["kind"] == "http":
        lines = [f"{_text(req['method'])} {_text(req['target'])}   ({req.get('port', 'admin')} port)"]
        lines += [f"{_text(k)}: {_text(v)}" for k, v in req["headers"]]
        body = _text(req["body"])
        if body:
            lines += ["", body[:4000]]
        return "\n".join(lines)
    lines = [f"gRPC {req['method']}"] + [f"{_text(k)}: {_text(v)}" for k, v in req["metadata"]]
    for i, m in enumerate(req["messages"]):
        lines.append(f"[request {i}]")
        lines += _message_text(req["method"], _bytes(m), False).splitlines()
    return "\n".join(lines)


def _sample_html(sid: str, s: dict[str, Any]) -> str:
    req = s["request"]
    what = f"{_text(req['method'])} {_text(req['target'])}" if req["kind"] == "http" else req["method"]
    fields = ", ".join(d["path"] for d in s.get("diffs", []) + s.get("ignored_diffs", [])) or "-"
    label = f" [{_e(s['label'])}]" if s.get("label") else ""
    out = [f'<details id="s{_e(sid)}"><summary>sample {_e(sid)}{label}: <code>{_e(what)}</code> — '
           f'<span class="{_e(s["class"] if s["class"] != "mismatch" else "real")}">{_e(s["class"])}</span>: {_e(fields)}</summary>',
           f"<pre>{_e(_request_text(req))}</pre>"]
    if s.get("diffs") or s.get("ignored_diffs"):
        out.append("<table><tr><th>field</th><th>go</th><th>native</th><th></th></tr>")
        for d in s.get("diffs", []):
            out.append(f'<tr><td class="real">{_e(d["path"])}</td><td>{_e(d["left"])}</td><td>{_e(d["right"])}</td><td></td></tr>')
        for d in s.get("ignored_diffs", []):
            out.append(f'<tr><td class="ignored">{_e(d["path"])}</td><td>{_e(d["left"])}</td><td>{_e(d["right"])}</td><td>ignored</td></tr>')
        out.append("</table>")
    out.append("<table><tr><th>go</th><th>native</th></tr><tr>")
    out.append(_side_by_side(_outcome_lines(s, "primary"), _outcome_lines(s, "candidate")))
    out.append("</tr></table>")
    if s.get("secondary") is not None:
        ctrl = ", ".join(d["path"] for d in s.get("control_diffs") or []) or "none"
        out.append(f"<p>control (go vs go) differences: {_e(ctrl)}</p>")
    out.append("</details>")
    return "\n".join(out)


def _lat(ep: dict[str, Any], side: str) -> str:
    lat = ep.get("latency_ms", {}).get(side) or {}
    return f"{lat['p50']} / {lat['p99']}" if lat.get("count") else "-"


def html_report(report: dict[str, Any], title: str = "weedpy differ report") -> str:
    meta = report.get("meta", {})
    totals = report.get("totals", {})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1><table class='meta'>"]
    for k, v in [("generated", report.get("generated_at", ""))] + sorted(meta.items()):
        if isinstance(v, (dict, list)):
            v = ", ".join(f"{a}: {b}" for a, b in v.items()) if isinstance(v, dict) else ", ".join(map(str, v))
        parts.append(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>")
    th = report.get("thresholds", {})
    parts.append(f"<tr><td>noise thresholds</td><td>relative {_e(th.get('relative'))}, absolute {_e(th.get('absolute'))}</td></tr>")
    parts.append("</table>")
    parts.append("<p>" + ", ".join(f"{_e(k)} <b>{_e(v)}</b>" for k, v in totals.items()) + "</p>")
    parts.append("<table><tr><th>endpoint</th><th>verdict</th><th>compared</th><th>matched</th><th>mismatched</th>"
                 "<th>noise</th><th>ignored</th><th>dropped</th><th>go ms p50/p99</th><th>native ms p50/p99</th></tr>")
    for ep in report.get("endpoints", []):
        parts.append(
            f"<tr class='{_e(ep['verdict'])}'><td><a href='#ep-{_e(ep['endpoint'])}'>{_e(ep['endpoint'])}</a></td>"
            f"<td class='v'>{_e(ep['verdict'])}</td>"
            + "".join(f"<td class='n'>{_e(ep[k])}</td>" for k in ("compared", "matched", "mismatched", "noise", "ignored", "dropped"))
            + f"<td class='n'>{_e(_lat(ep, 'go'))}</td><td class='n'>{_e(_lat(ep, 'native'))}</td></tr>")
    parts.append("</table>")
    samples = report.get("samples", {})
    for ep in report.get("endpoints", []):
        parts.append(f"<h2 id='ep-{_e(ep['endpoint'])}'>{_e(ep['endpoint'])} — {_e(ep['verdict'])}</h2>")
        if ep.get("dropped_by_reason"):
            parts.append("<p>dropped: " + ", ".join(f"{_e(k)} {_e(v)}" for k, v in ep["dropped_by_reason"].items()) + "</p>")
        if ep.get("fields"):
            parts.append("<table><tr><th>field</th><th>class</th><th>diffs</th><th>rate</th><th>go-vs-go rate</th>"
                         "<th>ignored</th><th>example (go | native)</th></tr>")
            for f in ep["fields"]:
                ex = next((x for x in f["examples"] if x["side"] == "native"), f["examples"][0] if f["examples"] else None)
                ex_html = ""
                if ex is not None:
                    link = f" <a href='#s{_e(ex['sample'])}'>#{_e(ex['sample'])}</a>" if ex.get("sample") is not None and str(ex["sample"]) in samples else ""
                    ex_html = f"<code>{_e(ex['path'])}</code>: {_e(ex['left'])} | {_e(ex['right'])}{link}"
                nr = "-" if f["noise_rate"] is None else f"{f['noise_rate']:.2%}"
                parts.append(f"<tr><td><code>{_e(f['field'])}</code></td><td class='{_e(f['class'])}'>{_e(f['class'])}</td>"
                             f"<td class='n'>{_e(f['diffs'])}</td><td class='n'>{f['rate']:.2%}</td><td class='n'>{_e(nr)}</td>"
                             f"<td class='n'>{_e(f['ignored'])}</td><td>{ex_html}</td></tr>")
            parts.append("</table>")
        for sid in ep.get("samples", []):
            s = samples.get(str(sid))
            if s is not None:
                parts.append(_sample_html(str(sid), s))
    stores = meta.get("stores") if isinstance(meta.get("stores"), dict) else report.get("stores")
    if stores:
        parts.append(f"<h2>stores</h2><pre>{_e(stores)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
