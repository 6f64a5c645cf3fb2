"""Storage test fixtures."""

from __future__ import annotations

import pytest

from tests.storage.go_written import GoVolume, write_go_volume


@pytest.fixture(scope="session")
def go_volume(tmp_path_factory: pytest.TempPathFactory) -> GoVolume:
    """A volume the bundled Go weed wrote, once per session (see go_written.py)."""
    return write_go_volume(tmp_path_factory.mktemp("go-written"))
