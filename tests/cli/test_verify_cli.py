"""`weedpy verify` on a directory it cannot check says why on stderr and exits non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from weedpy.cli import main


def test_directory_without_volumes_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a volume")
    assert main(["verify", str(tmp_path)]) != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"weedpy verify: no volumes (.dat files) in {tmp_path}\n"


def test_missing_directory_is_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["verify", str(missing)]) != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"weedpy verify: {missing}: no such directory\n"


def test_a_file_is_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert main(["verify", str(tmp_path / "f")]) != 0
    assert capsys.readouterr().err == f"weedpy verify: {tmp_path / 'f'}: not a directory\n"
