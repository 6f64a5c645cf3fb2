"""Volume ownership in mixed mode is the folder the files are in (native/storage/ownership.py):
moves rename whole volumes in an order Go can never half-load, a crash's journal is resolved to
one owner, settling puts everything back in -dir, and no byte of a volume changes on the way."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from native.storage import Needle, Volume
from native.storage.ownership import (
    GO,
    NATIVE,
    NATIVE_FOLDER,
    Layout,
    OwnershipError,
    owned_by_native,
    read_journal,
    recover,
    rename_volume,
    settle,
    volume_files,
    write_journal,
)
from native.storage.verify import main as verify_main


def _volume(d: Path, vid: int, collection: str = "", idx: Path | None = None) -> None:
    v = Volume.create(d, vid, collection=collection, idx_directory=idx)
    for i in range(1, 6):
        v.write_needle(Needle.create(i, 7, bytes([i]) * (i * 100)))
    v.delete_needle(2, 7)
    v.close()


def _digests(*folders: Path) -> dict[str, str]:
    """name -> sha256 of every volume file in the folders (where it is does not count)."""
    out = {}
    for folder in folders:
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.suffix in (".dat", ".idx", ".vif"):
                    out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    _volume(d, 3)
    _volume(d, 4, "pics")
    return d


def test_a_move_renames_every_file_and_changes_no_byte(data: Path) -> None:
    layout = Layout.of([str(data)])
    before = _digests(data)
    pairs = rename_volume(layout, 4, GO, NATIVE)
    native = data / NATIVE_FOLDER
    names = {os.path.basename(dst) for _, dst in pairs}
    assert {"pics_4.dat", "pics_4.idx", "pics_4.vif"} <= names and all(n.startswith("pics_4.") for n in names)
    assert not any(p.name.startswith("pics_4.") for p in data.iterdir())
    assert owned_by_native(layout) == [4]
    assert _digests(data, native) == before
    rename_volume(layout, 4, NATIVE, GO)
    assert owned_by_native(layout) == [] and _digests(data) == before


def test_the_dat_leaves_go_first_and_comes_back_last(data: Path) -> None:
    """Go loads a volume only when its .dat is in -dir, so a Go started in the middle of a
    move's renames sees all of it or none of it."""
    layout = Layout.of([str(data)])
    out = [os.path.basename(p) for p in volume_files(layout, 3, GO)]
    assert out[:2] == ["3.dat", "3.vif"] and "3.idx" in out
    rename_volume(layout, 3, GO, NATIVE)
    back = [os.path.basename(p) for p in volume_files(layout, 3, NATIVE)]
    assert back[-2:] == ["3.vif", "3.dat"]


def test_index_files_in_dir_idx_move_to_its_own_native_folder(tmp_path: Path) -> None:
    d, idx = tmp_path / "d", tmp_path / "idx"
    d.mkdir()
    idx.mkdir()
    _volume(d, 5, idx=idx)
    layout = Layout.of([str(d)], str(idx))
    rename_volume(layout, 5, GO, NATIVE)
    assert (d / NATIVE_FOLDER / "5.dat").exists() and (idx / NATIVE_FOLDER / "5.idx").exists()
    assert not (idx / "5.idx").exists()
    assert layout.native_dirs() == [str(d / NATIVE_FOLDER)] and layout.native_idx_dir() == str(idx / NATIVE_FOLDER)


def test_refusals_leave_every_file_where_it_was(data: Path) -> None:
    layout = Layout.of([str(data)])
    (data / "3.ecx").write_bytes(b"")
    with pytest.raises(OwnershipError, match="EC volumes stay with Go"):
        rename_volume(layout, 3, GO, NATIVE)
    assert not (data / NATIVE_FOLDER).exists()
    (data / "3.ecx").unlink()
    (data / NATIVE_FOLDER).mkdir()
    (data / NATIVE_FOLDER / "3.idx").write_bytes(b"stale")
    with pytest.raises(OwnershipError, match="exist"):
        rename_volume(layout, 3, GO, NATIVE)
    assert (data / "3.dat").exists() and (data / "3.idx").exists()
    with pytest.raises(OwnershipError, match="already owned"):
        rename_volume(layout, 3, GO, GO)


@pytest.mark.parametrize("step", ["hold", "drain", "unmount", "rename", "mount"])
@pytest.mark.parametrize("to", [NATIVE, GO])
@pytest.mark.parametrize("renamed", [0, 1, 3])
def test_a_crash_before_done_undoes_the_move(data: Path, step: str, to: str, renamed: int) -> None:
    """Whatever step the journal names and however many files were renamed, the next start
    gives the volume back to its old owner, whole, and removes the journal."""
    layout = Layout.of([str(data)])
    frm = GO if to == NATIVE else NATIVE
    if frm == NATIVE:
        rename_volume(layout, 3, GO, NATIVE)
    before = _digests(data, data / NATIVE_FOLDER)
    count = len(volume_files(layout, 3, frm))
    write_journal(layout, {"vid": 3, "from": frm, "to": to, "step": step, "files": []})
    layout.ensure_native_folders()
    for src in volume_files(layout, 3, frm)[:renamed]:  # a crash in the middle of the renames
        os.rename(src, layout.counterpart(src, to))
    out = recover(layout)
    assert out is not None and out["outcome"] == "undone" and out["vid"] == 3
    assert read_journal(layout) is None and not Path(layout.journal).exists()
    assert owned_by_native(layout) == ([3] if frm == NATIVE else [])
    assert len(volume_files(layout, 3, frm)) == count >= 3 and volume_files(layout, 3, to) == []
    assert _digests(data, data / NATIVE_FOLDER) == before


def test_a_crash_after_done_keeps_the_move(data: Path) -> None:
    layout = Layout.of([str(data)])
    rename_volume(layout, 3, GO, NATIVE)
    write_journal(layout, {"vid": 3, "from": GO, "to": NATIVE, "step": "done", "files": []})
    out = recover(layout)
    assert out is not None and out["outcome"] == "completed"
    assert owned_by_native(layout) == [3] and not Path(layout.journal).exists()
    assert recover(layout) is None


def test_a_journal_that_does_not_parse_stops_recovery(data: Path) -> None:
    layout = Layout.of([str(data)])
    Path(layout.journal).write_text('{"vid": 3, "fro')
    with pytest.raises(OwnershipError, match="does not parse"):
        recover(layout)
    assert Path(layout.journal).exists()


def test_the_journal_is_replaced_whole(data: Path) -> None:
    layout = Layout.of([str(data)])
    write_journal(layout, {"vid": 3, "from": GO, "to": NATIVE, "step": "hold", "files": []})
    write_journal(layout, {"vid": 3, "from": GO, "to": NATIVE, "step": "rename", "files": [["a", "b"]]})
    doc = json.loads(Path(layout.journal).read_text())
    assert doc["step"] == "rename" and doc["files"] == [["a", "b"]] and not Path(layout.journal + ".tmp").exists()


def test_settle_resolves_the_journal_and_moves_everything_back(tmp_path: Path) -> None:
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    _volume(d1, 1)
    _volume(d2, 2)
    _volume(d2, 6, "c")
    layout = Layout.of([str(d1), str(d2)])
    before = _digests(d1, d2)
    rename_volume(layout, 1, GO, NATIVE)
    rename_volume(layout, 2, GO, NATIVE)
    write_journal(layout, {"vid": 6, "from": GO, "to": NATIVE, "step": "rename", "files": []})
    os.rename(d2 / "c_6.dat", d2 / NATIVE_FOLDER / "c_6.dat")
    resolved, moved = settle(layout)
    assert resolved is not None and resolved["outcome"] == "undone" and moved == [1, 2]
    assert _digests(d1, d2) == before
    assert not (d1 / NATIVE_FOLDER).exists() and not (d2 / NATIVE_FOLDER).exists()
    assert settle(layout) == (None, [])


def test_verify_checks_the_native_folder_too(data: Path) -> None:
    rename_volume(Layout.of([str(data)]), 4, GO, NATIVE)
    out = io.StringIO()
    assert verify_main([str(data)], out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert f"{data}/3: ok" in text and f"{data / NATIVE_FOLDER}/pics_4: ok" in text
    assert "2 volumes checked, 0 corrupt" in text

