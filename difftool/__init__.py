"""The dual-run differ: the same request to Go and to native, compared with noise filtered out.

Layers (docs/differ.md):

* records (`HttpRequest`, `GrpcResponse`, `Outcome`, `Sample`, ...): what each side was asked and
  answered, as bytes; `_codec` turns them into JSON and back;
* the sans-IO core: `compare_outcomes` (bytes first, then field paths), `Rules` (ignore rules,
  header allow/deny), the shared mask (`mask_http`, `VARIABLE_HEADERS`), the noise model
  (`classify_field`), and `Aggregator` (bounded per-endpoint accounting -> report dict);
* writers: JSON, HTML, JUnit; fixtures (`Fixture`) and their replay;
* trio shells: capture clients for HTTP and gRPC, the scenario runner (`weedpy diff run`), and the
  gateway's dual-run targets (`shadow`, `native+verify`).
"""

from difftool._aggregate import REPORT_FORMAT, Aggregator, Judgement, LatencyHistogram, Limits, judge
from difftool._compare import MATCH, NO_RULES, Comparison, FieldDiff, Rules, Verdict, compare_grpc, compare_http, compare_outcomes
from difftool._fields import FieldPattern, field_key
from difftool._mask import VARIABLE_HEADERS, mask_http, mask_text
from difftool._noise import DIFFY_DEFAULTS, NoiseThresholds, classify_field
from difftool._records import GrpcRequest, GrpcResponse, Headers, HttpRequest, HttpResponse, Outcome, Request, Response, Sample, Side

__all__ = [
    "Aggregator",
    "Comparison",
    "DIFFY_DEFAULTS",
    "FieldDiff",
    "FieldPattern",
    "GrpcRequest",
    "GrpcResponse",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "Judgement",
    "LatencyHistogram",
    "Limits",
    "MATCH",
    "NO_RULES",
    "NoiseThresholds",
    "Outcome",
    "REPORT_FORMAT",
    "Request",
    "Response",
    "Rules",
    "Sample",
    "Side",
    "VARIABLE_HEADERS",
    "Verdict",
    "classify_field",
    "compare_grpc",
    "compare_http",
    "compare_outcomes",
    "field_key",
    "judge",
    "mask_http",
    "mask_text",
]
