"""The crash tests' figures: each test fills `report`; every figure becomes a property of the test
(pytest's user properties), which scripts/reliability prints on the test's summary line. And
`crashable`: the servers a test crashes, every process of them killed at teardown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.servers import Crashable
from tests.support.procs import MasterProc


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict]:
    figures: dict = {}
    started = time.monotonic()
    yield figures
    figures["seconds"] = round(time.monotonic() - started, 1)
    for name, value in figures.items():
        request.node.user_properties.append((name, value))


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[Callable[..., Crashable]]:
    """`crashable(master, mode, workers, workdir=tmp_path)`: a `Crashable`, closed at teardown
    whatever the test did (failed, timed out, left it mid-restart)."""
    made: list[Crashable] = []

    def make(master: MasterProc, mode: str, workers: int | None = None, workdir: Path | None = None) -> Crashable:
        server = Crashable(workdir or tmp_path, master, mode, workers)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
