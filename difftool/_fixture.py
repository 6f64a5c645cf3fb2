"""Mismatch fixtures: one real mismatch as a self-contained, replayable JSON file.

A fixture holds the request, both recorded answers byte for byte (gRPC messages, trailers and
trailers-only included), the differences found, the route-table version and what answered on
each side. `setup` lists the requests that led up to it (the earlier steps of an offline
scenario; empty for live traffic, whose state lives in the stores), replayed first, unjudged.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from pathlib import Path
from typing import Any

from difftool._codec import request_from_json, request_to_json, sample_from_json, sample_to_json
from difftool._compare import FieldDiff
from difftool._records import Request, Sample

__all__ = ["FIXTURE_FORMAT", "Fixture", "fixture_to_json", "fixture_from_json", "write_fixture", "read_fixture"]

FIXTURE_FORMAT = "weedpy-diff-fixture/1"


@dataclasses.dataclass(frozen=True, slots=True)
class Fixture:
    sample: Sample
    diffs: tuple[FieldDiff, ...] = ()
    setup: tuple[Request, ...] = ()
    scenario: str = ""
    created_at: str = ""

    @property
    def versions(self) -> dict[str, str]:
        s = self.sample
        out = {"go": s.primary.version, "native": s.candidate.version}
        if s.secondary is not None:
            out["go-control"] = s.secondary.version
        return out


def fixture_to_json(f: Fixture) -> dict[str, Any]:
    return {
        "format": FIXTURE_FORMAT,
        "endpoint": f.sample.endpoint,
        "scenario": f.scenario,
        "routes_v": f.sample.routes_v,
        "versions": f.versions,
        "created_at": f.created_at or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "diffs": [dataclasses.asdict(d) for d in f.diffs],
        "setup": [request_to_json(r) for r in f.setup],
        "sample": sample_to_json(f.sample),
    }


def fixture_from_json(d: dict[str, Any]) -> Fixture:
    if d.get("format") != FIXTURE_FORMAT:
        raise ValueError(f"not a differ fixture (format {d.get('format')!r}, expected {FIXTURE_FORMAT})")
    return Fixture(
        sample=sample_from_json(d["sample"]),
        diffs=tuple(FieldDiff(x["path"], x["left"], x["right"]) for x in d.get("diffs", ())),
        setup=tuple(request_from_json(r) for r in d.get("setup", ())),
        scenario=d.get("scenario", ""),
        created_at=d.get("created_at", ""),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:60] or "fixture"


def write_fixture(directory: Path, f: Fixture, n: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{n:04d}-{_slug(f.sample.endpoint)}.json"
    path.write_text(json.dumps(fixture_to_json(f), indent=1, ensure_ascii=False) + "\n")
    return path


def read_fixture(path: str | Path) -> Fixture:
    return fixture_from_json(json.loads(Path(path).read_text()))
