"""Write a report dict as the three files CI and people read: JSON, HTML and JUnit XML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from difftool._html import html_report
from difftool._junit import junit_xml

__all__ = ["write_reports", "REPORT_FILES"]

REPORT_FILES = {"json": "report.json", "html": "report.html", "junit": "junit.xml"}


def write_reports(report: dict[str, Any], out_dir: Path, *, title: str = "weedpy differ report",
                  suite: str | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / v for k, v in REPORT_FILES.items()}
    paths["json"].write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    paths["html"].write_text(html_report(report, title), encoding="utf-8")
    name = suite or f"weedpy-diff.{report.get('meta', {}).get('scenario', 'live')}"
    paths["junit"].write_bytes(junit_xml(report, name))
    return paths
