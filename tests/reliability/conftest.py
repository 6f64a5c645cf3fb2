"""The crash tests' figures: each test fills `report`; every figure becomes a property of the test
(pytest's user properties), which scripts/reliability prints on the test's summary line."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict]:
    figures: dict = {}
    started = time.monotonic()
    yield figures
    figures["seconds"] = round(time.monotonic() - started, 1)
    for name, value in figures.items():
        request.node.user_properties.append((name, value))
