"""Report writers: JUnit (one case per endpoint, failing only on unexplained mismatches), a
self-contained HTML page, JSON; all rendered from the same report dict."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from difftool import Aggregator, Rules, judge
from difftool._html import html_report
from difftool._junit import junit_xml
from difftool._reports import write_reports
from proto import volume_server_pb2 as vs
from tests.difftool.records import grpc_outcome, http_outcome, sample
from difftool import GrpcRequest

STATUS = "/volume_server_pb.VolumeServer/VolumeStatus"


def _report() -> dict:
    agg = Aggregator()
    # a clean endpoint
    agg.add(s := sample(http_outcome({"a": 1}), http_outcome({"a": 1}), endpoint="admin.healthz"), judge(s))
    # a real mismatch, with markup that must be escaped
    agg.add(s := sample(http_outcome({"a": "<i>evil</i>"}), http_outcome({"a": "<i>good</i>"}), endpoint="admin.read"), judge(s))
    # noise only
    agg.add(s := sample(http_outcome({"t": 1}), http_outcome({"t": 2}), http_outcome({"t": 3}), endpoint="admin.stats"), judge(s))
    # ignored only
    agg.add(s := sample(http_outcome({"x": 1}), http_outcome({"x": 2}), endpoint="admin.ui"), judge(s, Rules.of(ignore_fields=["body.x"])))
    # gRPC mismatch with decoded messages
    req = GrpcRequest(STATUS, (), (vs.VolumeStatusRequest(volume_id=7).SerializeToString(),))
    a = vs.VolumeStatusResponse(file_count=1).SerializeToString()
    b = vs.VolumeStatusResponse(file_count=2).SerializeToString()
    agg.add(s := sample(grpc_outcome(a), grpc_outcome(b), endpoint=STATUS, request=req), judge(s))
    agg.drop("public.read", "queue_full", 2)
    return agg.report({"scenario": "unit", "versions": {"go": "weed 4.48", "native": "weedpy"}})


def test_junit_one_case_per_endpoint() -> None:
    root = ET.fromstring(junit_xml(_report(), "suite"))
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    assert set(cases) == {"admin.healthz", "admin.read", "admin.stats", "admin.ui", STATUS, "public.read"}
    failing = {n for n, tc in cases.items() if tc.find("failure") is not None}
    assert failing == {"admin.read", STATUS}
    assert cases["public.read"].find("skipped") is not None
    assert "msg[*].file_count" in cases[STATUS].find("failure").get("message")
    assert "msg[0].file_count" in cases[STATUS].find("failure").text
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "2", "1")


def test_html_is_self_contained_and_escaped() -> None:
    page = html_report(_report())
    assert "<script" not in page and not re.search(r'(src|href)=["\']?https?:', page)
    assert "&lt;i&gt;evil&lt;/i&gt;" in page and "<i>" not in page
    for ep in ("admin.healthz", "admin.read", "admin.stats", STATUS):
        assert f"id='ep-{ep}'" in page
    assert "file_count: 1" in page and "file_count: 2" in page  # decoded gRPC messages side by side
    assert 'class="diff"' in page


def test_write_reports(tmp_path: Path) -> None:
    paths = write_reports(_report(), tmp_path)
    assert {p.name for p in paths.values()} == {"report.json", "report.html", "junit.xml"}
    doc = json.loads(paths["json"].read_text())
    assert doc["format"] == "weedpy-diff-report/1"
    assert doc["totals"] == {"compared": 5, "matched": 1, "mismatched": 2, "noise": 1, "ignored": 1, "dropped": 2}
