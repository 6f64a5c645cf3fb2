"""`weedpy cutover settle -dir=...`: by hand, with the server stopped, every volume mixed mode left
with native goes back to -dir (what every mode but mixed does at start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from native.storage import Needle, Volume
from native.storage.ownership import GO, NATIVE, Layout, owned_by_native, rename_volume
from weedpy.cutover import main as cutover_main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    v = Volume.create(d, 3)
    v.write_needle(Needle.create(1, 7, b"x" * 100))
    v.close()
    return d


def test_cutover_settle_by_hand(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rename_volume(Layout.of([str(data)]), 3, GO, NATIVE)
    assert cutover_main(["settle", f"-dir={data}"]) == 0
    assert "moved back to -dir: 3" in capsys.readouterr().out
    assert owned_by_native(Layout.of([str(data)])) == [] and (data / "3.dat").exists()
    assert cutover_main(["settle"]) == 2
