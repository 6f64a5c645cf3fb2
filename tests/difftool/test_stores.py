"""Store comparison through the storage engine: same needles or not, whatever the offsets."""

from __future__ import annotations

from pathlib import Path

from difftool._stores import compare_stores, inventory
from native.storage import Needle, Store


def _store(d: Path, needles: list[tuple[int, int, bytes]], deletes: tuple[int, ...] = (), vids: tuple[int, ...] = (1,)) -> None:
    s = Store.open([str(d)], max_counts=8)
    try:
        for vid in vids:
            s.allocate_volume(vid)
        for nid, cookie, data in needles:
            s.write_needle(1, Needle(nid, cookie, data, name=b"n"))
        for nid in deletes:
            s.delete_needle(1, nid)
    finally:
        s.close()


def test_equal_needles_in_other_order(tmp_path: Path) -> None:
    _store(tmp_path / "a", [(1, 7, b"one"), (2, 7, b"two")])
    _store(tmp_path / "b", [(2, 7, b"two"), (1, 7, b"one")])
    c = compare_stores(tmp_path / "a", tmp_path / "b")
    assert c.equal and c.volumes == 1 and c.needles == 2 and c.differences == ()


def test_differences_are_named(tmp_path: Path) -> None:
    _store(tmp_path / "a", [(1, 7, b"one"), (2, 7, b"two"), (3, 7, b"three")], vids=(1, 2))
    _store(tmp_path / "b", [(1, 8, b"one"), (2, 7, b"tw0"), (3, 7, b"three")], deletes=(3,))
    c = compare_stores(tmp_path / "a", tmp_path / "b")
    assert not c.equal
    assert c.differences == (
        "volume 2 only in go",
        "volume 1 needle 1 differs in cookie",
        "volume 1 needle 2 differs in checksum",
        "volume 1 needle 3 live only in go",
    ) or sorted(c.differences) == sorted([
        "volume 2 only in go", "volume 1 needle 3 live only in go",
        "volume 1 needle 1 differs in cookie", "volume 1 needle 2 differs in checksum"])


def test_inventory_skips_deleted(tmp_path: Path) -> None:
    _store(tmp_path / "a", [(1, 7, b"one"), (2, 7, b"two")], deletes=(1,))
    inv = inventory(tmp_path / "a")
    assert list(inv) == ["1"] and set(inv["1"].needles) == {2}
