"""The reliability suite's figures: each test fills `report`, which is logged with the test and,
when WEEDPY_RELIABILITY_REPORT names a file (scripts/reliability), appended to it as one JSON line."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict]:
    figures: dict = {}
    started = time.monotonic()
    yield figures
    figures["seconds"] = round(time.monotonic() - started, 1)
    request.node.user_properties.append(("figures", figures))
    path = os.environ.get("WEEDPY_RELIABILITY_REPORT")
    if path:
        rep = getattr(request.node, "rep_call", None)
        outcome = rep.outcome if rep is not None else "error"
        with open(path, "a") as f:
            f.write(json.dumps({"test": request.node.nodeid, "outcome": outcome, "figures": figures}) + "\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
