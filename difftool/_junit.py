"""JUnit XML from a report: one test case per endpoint, failing on any unexplained mismatch.

Noise and ignored differences pass (they are listed in the case's output); an endpoint with
nothing compared is skipped, so CI shows what was not exercised instead of a false pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

__all__ = ["junit_xml"]


def _case_text(ep: dict[str, Any]) -> str:
    lines = [
        f"compared {ep['compared']}, matched {ep['matched']}, mismatched {ep['mismatched']}, noise {ep['noise']}, "
        f"ignored {ep['ignored']}, dropped {ep['dropped']}"
    ]
    for side, lat in ep.get("latency_ms", {}).items():
        if lat.get("count"):
            lines.append(f"latency {side}: p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms")
    for f in ep.get("fields", []):
        lines.append(f"field {f['field']}: {f['class']} (diffs {f['diffs']}, ignored {f['ignored']}, "
                     f"noise {f['noise_diffs']})")
    return "\n".join(lines)


def _failure_text(ep: dict[str, Any], report: dict[str, Any]) -> str:
    lines = []
    for sig in ep.get("signatures", []):
        if sig["class"] == "mismatch":
            lines.append(f"{sig['count']} x {', '.join(sig['fields'])}")
    for f in ep.get("fields", []):
        if f["class"] != "real":
            continue
        for ex in f["examples"][:2]:
            if ex["side"] == "native":
                where = f" (sample {ex['sample']})" if ex.get("sample") is not None else ""
                lines.append(f"  {ex['path']}: go={ex['left']!s} native={ex['right']!s}{where}")
    return "\n".join(lines)


def junit_xml(report: dict[str, Any], suite: str = "weedpy-diff") -> bytes:
    cases = report.get("endpoints", [])
    failures = sum(1 for ep in cases if ep["verdict"] == "mismatch")
    skipped = sum(1 for ep in cases if ep["verdict"] == "no-data")
    root = ET.Element("testsuites", name="weedpy-diff", tests=str(len(cases)), failures=str(failures))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                       errors="0", skipped=str(skipped), timestamp=report.get("generated_at", ""))
    props = ET.SubElement(ts, "properties")
    for k, v in sorted(report.get("meta", {}).items()):
        if isinstance(v, (str, int, float, bool)):
            ET.SubElement(props, "property", name=str(k), value=str(v))
    for ep in cases:
        lat = ep.get("latency_ms", {}).get("native") or {}
        seconds = (lat.get("mean", 0.0) * lat.get("count", 0)) / 1000.0
        tc = ET.SubElement(ts, "testcase", classname=suite, name=ep["endpoint"], time=f"{seconds:.3f}")
        if ep["verdict"] == "mismatch":
            real = [f["field"] for f in ep.get("fields", []) if f["class"] == "real"]
            msg = f"{ep['mismatched']} of {ep['compared']} unexplained mismatches: {', '.join(real) or 'see output'}"
            fail = ET.SubElement(tc, "failure", message=msg, type="mismatch")
            fail.text = _failure_text(ep, report)
        elif ep["verdict"] == "no-data":
            ET.SubElement(tc, "skipped", message=f"nothing compared (dropped {ep['dropped']})")
        out = ET.SubElement(tc, "system-out")
        out.text = _case_text(ep)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
