"""The file-level comparison of two data directories (difftool/_files.py): records that differ only
in their append times are the same file, EC shards encoded from such records too (parity
included), a .vif is compared as JSON; any other byte, a missing file, or a shard that no longer
rebuilds is reported."""

from __future__ import annotations

from pathlib import Path

from difftool._files import compare_volume_files
from native.storage import VERSION3, Needle, SuperBlock, encode_needle
from native.storage.ec import EcLayout, encode_files


def dat(ts: int, data: bytes = b"hello") -> bytes:
    records = [encode_needle(Needle.create(i, 5, data * i), VERSION3, append_at_ns=ts + i) for i in range(1, 6)]
    return SuperBlock().encode() + b"".join(records)


def side(d: Path, ts: int, *, vif: bytes = b'{"version": 3}', data: bytes = b"hello", ec: bool = False) -> Path:
    d.mkdir(parents=True)
    (d / "1.dat").write_bytes(dat(ts, data))
    (d / "1.idx").write_bytes(b"\x00" * 17)
    (d / "1.vif").write_bytes(vif)
    (d / "vol_dir.uuid").write_bytes(str(ts).encode())
    if ec:
        encode_files(str(d / "1.dat"), str(d / "1"), EcLayout())
    return d


def test_clocks_and_spacing_aside_the_files_are_equal(tmp_path: Path) -> None:
    a = side(tmp_path / "a", 1000, vif=b'{\n  "version":  3\n}', ec=True)
    b = side(tmp_path / "b", 2000, ec=True)
    (b / "1.nmx").write_bytes(b"weedpy's own map cache")
    c = compare_volume_files(a, b)
    assert c.equal, c
    assert c.files == 3 + 14  # .dat .idx .vif and the shards; uuid and cache not counted
    assert (a / "1.ec00").read_bytes() != (b / "1.ec00").read_bytes()  # the times are in the shards
    assert (a / "1.ec12").read_bytes() != (b / "1.ec12").read_bytes()  # ... and in the parity


def test_other_bytes_missing_files_and_json_keys_differ(tmp_path: Path) -> None:
    a = side(tmp_path / "a", 1000, ec=True)
    b = side(tmp_path / "b", 2000, data=b"hellO", vif=b'{"version": 2}', ec=True)
    (a / "1.ecj").write_bytes(b"\x00" * 8)
    c = compare_volume_files(a, b)
    assert not c.equal
    assert any(d.startswith("1.dat: ") for d in c.differences)
    assert any(d.startswith("1.ec00: ") for d in c.differences)  # the data shard holds the changed byte
    assert any(d.startswith("1.ec10: ") for d in c.differences)  # and the parity mixes it in
    assert not any(d.startswith("1.ec05") for d in c.differences)  # a small .dat leaves shard 5 zero
    assert "1.ecj only in go" in c.differences
    assert any(d.startswith("1.vif: ") for d in c.differences)


def test_parity_byte_outside_the_times_is_found_and_lost_shards_are_rebuilt(tmp_path: Path) -> None:
    a = side(tmp_path / "a", 1000, ec=True)
    b = side(tmp_path / "b", 2000, ec=True)
    for d in (a, b):
        for sid in (0, 1, 2):  # three data shards gone: rebuilt from parity to find the records
            (d / f"1.ec{sid:02d}").unlink()
    assert compare_volume_files(a, b).equal
    raw = bytearray((b / "1.ec13").read_bytes())
    raw[3] ^= 1  # inside the super block's parity, not a time
    (b / "1.ec13").write_bytes(bytes(raw))
    assert compare_volume_files(a, b).differences == ("1.ec13: 1048576 bytes in go, 1048576 in native, first difference at 3",)


def test_too_few_shards_are_compared_by_length(tmp_path: Path) -> None:
    a = side(tmp_path / "a", 1000, ec=True)
    b = side(tmp_path / "b", 2000, ec=True)
    for d in (a, b):
        for sid in range(5):
            (d / f"1.ec{sid:02d}").unlink()
    c = compare_volume_files(a, b)
    assert c.equal and c.notes and "fewer than 10 shards" in c.notes[0]
