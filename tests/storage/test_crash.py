"""Crashes at every byte of the last append: the volume loads at its last complete needle.

Go appends the record to `.dat`, then the row to `.idx`. A crash can therefore leave
(1) a partial or complete record in `.dat` without its row, (2) a torn row in `.idx`, or, if the
disk loses the data but not the index, (3) a row pointing past the end of `.dat`. In every case
the volume must load, serve every earlier needle intact and never return the torn one's bytes.
Loaded as a writable volume it cuts the torn tail off both files (`_recover`) and stays
writable, so Go's load-time check accepts the files too; without repair (a process that does
not own the files) it turns read-only, as Go does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from native.storage import Corrupted, Needle, NotFound, ReadOnly, Volume

COOKIE = 0xC0FFEE
BODIES = {1: b"first" * 9, 2: b"", 3: b"third" * 31, 4: b"fourth-needle" * 3}


def _needle(nid: int) -> Needle:
    return Needle.create(nid, COOKIE, BODIES[nid], name=f"f{nid}", mime="x/y", last_modified=1_700_000_000 + nid)


@pytest.fixture(scope="module", params=[5, 4], ids=["5-byte", "4-byte"])
def golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A volume whose last operation appended needle 4, and a copy whose last was a delete."""
    width = request.param
    base = tmp_path_factory.mktemp(f"crash{width}")
    v = Volume.create(base / "put", 1, offset_bytes=width)
    for nid in (1, 2, 3):
        v.write_needle(_needle(nid))
    dat_before, idx_before = v.dat_size, v.idx_size
    v.write_needle(_needle(4))
    v.close()
    shutil.copytree(base / "put", base / "del")
    d = Volume.load(base / "del", 1)
    d.delete_needle(4, COOKIE)
    d.close()
    return {
        "width": width,
        "put": base / "put",
        "del": base / "del",
        "dat_before": dat_before,
        "idx_before": idx_before,
        "dat_put": (base / "put" / "1.dat").read_bytes(),
        "idx_put": (base / "put" / "1.idx").read_bytes(),
        "dat_del": (base / "del" / "1.dat").read_bytes(),
        "idx_del": (base / "del" / "1.idx").read_bytes(),
    }


def _state(tmp: Path, src: Path, dat: bytes, idx: bytes, *, repair: bool = True) -> Volume:
    d = tmp / "state"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    shutil.copy(src / "1.vif", d / "1.vif")
    (d / "1.dat").write_bytes(dat)
    (d / "1.idx").write_bytes(idx)
    return Volume.load(d, 1, repair=repair)


def _repaired(v: Volume, dat: bytes, idx: bytes) -> None:
    """Writable again, both files cut back to the last whole append, and a write then lands."""
    assert v.integrity_error is None and not v.read_only
    d = Path(v.directory)
    assert (d / "1.dat").read_bytes() == dat and (d / "1.idx").read_bytes() == idx
    v.write_needle(Needle.create(9, COOKIE, b"after the crash"))
    assert v.read_needle(9, COOKIE).data == b"after the crash"


def _earlier_needles_intact(v: Volume) -> None:
    for nid in (1, 2, 3):
        n = v.read_needle(nid, COOKIE)
        assert n.data == BODIES[nid]
        if BODIES[nid]:
            assert n.name == f"f{nid}".encode()


def test_torn_record_without_index_row(golden: dict, tmp_path: Path) -> None:
    start, end = golden["dat_before"], len(golden["dat_put"])
    idx = golden["idx_put"][: golden["idx_before"]]
    for cut in range(start, end + 1):
        for repair in (True, False):
            v = _state(tmp_path, golden["put"], golden["dat_put"][:cut], idx, repair=repair)
            try:
                _earlier_needles_intact(v)
                if repair and cut == end:  # the record is whole: its row is rebuilt, the append kept
                    assert v.read_needle(4, COOKIE).data == BODIES[4]
                    _repaired(v, golden["dat_put"], golden["idx_put"])
                    continue
                with pytest.raises(NotFound):
                    v.read_needle(4)
                assert v.stats().file_count == 3
                if repair or cut == start:
                    _repaired(v, golden["dat_put"][:start], idx)
                else:
                    assert v.integrity_error and v.read_only, cut
                    with pytest.raises(ReadOnly):
                        v.write_needle(_needle(4))
            finally:
                v.close()


def test_torn_index_row(golden: dict, tmp_path: Path) -> None:
    es = 8 + golden["width"] + 4
    start = golden["idx_before"]
    for cut in range(start, start + es + 1):
        for repair in (True, False):
            v = _state(tmp_path, golden["put"], golden["dat_put"], golden["idx_put"][:cut], repair=repair)
            try:
                _earlier_needles_intact(v)
                if cut == start + es:
                    assert v.integrity_error is None and not v.read_only
                    assert v.read_needle(4, COOKIE).data == BODIES[4]
                    continue
                if repair:  # the record is whole: the torn row is cut and rebuilt from it
                    assert v.read_needle(4, COOKIE).data == BODIES[4]
                    _repaired(v, golden["dat_put"], golden["idx_put"])
                    continue
                with pytest.raises(NotFound):
                    v.read_needle(4)
                assert v.stats().file_count == 3
                assert v.read_only and v.integrity_error, cut
            finally:
                v.close()


def test_index_row_pointing_past_a_truncated_dat(golden: dict, tmp_path: Path) -> None:
    start, end = golden["dat_before"], len(golden["dat_put"])
    for cut in range(start, end):
        for repair in (True, False):
            v = _state(tmp_path, golden["put"], golden["dat_put"][:cut], golden["idx_put"], repair=repair)
            try:
                _earlier_needles_intact(v)
                if repair:
                    with pytest.raises(NotFound):
                        v.read_needle(4, COOKIE)
                    _repaired(v, golden["dat_put"][:start], golden["idx_put"][:golden["idx_before"]])
                    continue
                assert v.read_only and v.integrity_error, cut
                with pytest.raises(Corrupted):  # never the torn bytes
                    v.read_needle(4, COOKIE)
                with pytest.raises(Corrupted):
                    with v.open_needle_stream(4) as s:
                        b"".join(s.iter_chunks())
            finally:
                v.close()


def test_torn_tombstone(golden: dict, tmp_path: Path) -> None:
    put_end = len(golden["dat_put"])
    for cut in range(put_end, len(golden["dat_del"]) + 1):
        for repair in (True, False):
            # the tombstone's row never made it: needle 4 is still live
            v = _state(tmp_path, golden["del"], golden["dat_del"][:cut], golden["idx_put"], repair=repair)
            try:
                assert v.read_needle(4, COOKIE).data == BODIES[4]
                if repair:
                    _repaired(v, golden["dat_put"], golden["idx_put"])
                else:
                    assert v.read_only == (cut > put_end), cut
            finally:
                v.close()
            # the row made it but the tombstone record is cut short
            if cut < len(golden["dat_del"]):
                v = _state(tmp_path, golden["del"], golden["dat_del"][:cut], golden["idx_del"], repair=repair)
                try:
                    _earlier_needles_intact(v)
                    if repair:  # the delete was not whole: needle 4 is as before it
                        assert v.read_needle(4, COOKIE).data == BODIES[4]
                        _repaired(v, golden["dat_put"], golden["idx_put"])
                    else:
                        assert v.read_only and v.integrity_error
                        with pytest.raises(NotFound):  # deleted (a read-only map drops deleted ids)
                            v.read_needle(4)
                finally:
                    v.close()


def test_a_damaged_record_before_a_whole_one_is_kept(golden: dict, tmp_path: Path) -> None:
    """Only a torn tail is cut: a bad record followed by whole ones is not a torn append; it
    stays (its reads fail the CRC check) and nothing after it is dropped."""
    dat = bytearray(golden["dat_put"])
    v = _state(tmp_path, golden["put"], bytes(dat), golden["idx_put"])
    off = v.needle_value(3).offset * 8
    v.close()
    dat[off + 20] ^= 0xFF  # inside needle 3's data
    v = _state(tmp_path, golden["put"], bytes(dat), golden["idx_put"])
    try:
        assert not v.read_only and v.warnings == []
        with pytest.raises(Corrupted):
            v.read_needle(3, COOKIE)
        assert v.read_needle(4, COOKIE).data == BODIES[4]
        assert (Path(v.directory) / "1.dat").read_bytes() == bytes(dat)
    finally:
        v.close()


def test_repair_directory_cuts_torn_tails_of_files_no_process_has_open(golden: dict, tmp_path: Path) -> None:
    """What proxy mode runs before its Go backend starts: torn tails cut, whole volumes, volumes
    marked read-only and volumes in the middle of a compaction left alone."""
    from native.storage import repair_directory

    d = tmp_path / "dir"
    d.mkdir()
    dat, idx = golden["dat_put"], golden["idx_put"]
    cases = {
        "1": (dat + b"\x01" * 100, idx),  # a record no row names
        "2": (dat, idx + b"\x00" * 5),  # a cut row
        "3": (dat[:-9], idx),  # the last record cut short
        "4": (dat, idx),  # whole
        "5": (dat + b"\x01" * 100, idx),  # marked read-only: left alone
        "6": (dat + b"\x01" * 100, idx),  # compacting: left alone
    }
    vif = (golden["put"] / "1.vif").read_text()
    for base, (dat_bytes, idx_bytes) in cases.items():
        (d / f"{base}.dat").write_bytes(dat_bytes)
        (d / f"{base}.idx").write_bytes(idx_bytes)
        (d / f"{base}.vif").write_text(vif.replace('"readOnly": false', '"readOnly": true') if base == "5" else vif)
    (d / "6.cpd").write_bytes(b"")
    assert '"readOnly": true' in (d / "5.vif").read_text()
    done = repair_directory(str(d))
    assert sorted(done) == ["1", "2", "3"]
    whole_before_4 = (golden["dat_put"][:golden["dat_before"]], golden["idx_put"][:golden["idx_before"]])
    expect = {"1": (dat, idx), "2": (dat, idx), "3": whole_before_4, "4": (dat, idx),
              "5": cases["5"], "6": cases["6"]}
    for base, (dat_bytes, idx_bytes) in expect.items():
        assert (d / f"{base}.dat").read_bytes() == dat_bytes, base
        assert (d / f"{base}.idx").read_bytes() == idx_bytes, base
    assert repair_directory(str(d)) == {}


def test_a_tail_larger_than_a_crash_leaves_is_not_cut(golden: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An emptied `.idx` beside a full `.dat` (or any tail past the limits) is not a torn append:
    the files stay as they are and the volume loads read-only, as before repair existed."""
    from native.storage import _recover

    monkeypatch.setattr(_recover, "MAX_CUT_BYTES", 100)
    dat = golden["dat_put"]
    v = _state(tmp_path, golden["put"], dat + b"\x01" * 200, golden["idx_put"])
    try:
        assert v.read_only and any("not repaired" in w for w in v.warnings)
        assert (Path(v.directory) / "1.dat").read_bytes() == dat + b"\x01" * 200
    finally:
        v.close()
    v = _state(tmp_path, golden["put"], dat, b"")
    try:
        assert any("not repaired" in w for w in v.warnings)
        assert (Path(v.directory) / "1.dat").read_bytes() == dat
    finally:
        v.close()
    d = tmp_path / "dir"
    d.mkdir()
    (d / "1.dat").write_bytes(dat)
    (d / "1.idx").write_bytes(b"")
    (d / "1.vif").write_text((golden["put"] / "1.vif").read_text())
    assert _recover.repair_directory(str(d)) == {}
    assert (d / "1.dat").read_bytes() == dat


def _last_record(golden: dict) -> tuple[int, int]:
    """Needle 4's record: where it starts in .dat and its length (it ends the file)."""
    start = golden["dat_before"]
    return start, len(golden["dat_put"]) - start


@pytest.mark.parametrize("damage", ["crc", "other-id"])
def test_a_wrong_last_record_with_no_lost_sector_is_kept(golden: dict, tmp_path: Path, damage: str) -> None:
    """A last record that is wrong but whole (WriteNeedleBlob stores what it is given; disk rot)
    is no crash's leftover: Go 4.48's load keeps it (it checks the header's size and where the
    file ends), and so does weedpy, as it is: its reads fail, nothing acknowledged is cut."""
    dat = bytearray(golden["dat_put"])
    start, length = _last_record(golden)
    if damage == "crc":
        dat[start + 21] ^= 0xFF  # a byte of needle 4's data
    else:
        dat[start + 11] ^= 0x01  # the low byte of the id in its header
    v = _state(tmp_path, golden["put"], bytes(dat), golden["idx_put"])
    try:
        d = Path(v.directory)
        assert (d / "1.dat").read_bytes() == bytes(dat) and (d / "1.idx").read_bytes() == golden["idx_put"]
        assert not v.read_only and v.integrity_error is None
        if damage == "crc":
            with pytest.raises(Corrupted):
                v.read_needle(4, COOKIE)
        _earlier_needles_intact(v)
    finally:
        v.close()


def test_a_last_record_with_a_lost_sector_is_cut(golden: dict, tmp_path: Path) -> None:
    """The same record with a sector-aligned piece of it zero (what a power loss leaves where the
    file grew) is a torn append: cut with its row, the volume writable."""
    dat = bytearray(golden["dat_put"])
    start, length = _last_record(golden)
    sector = (start + 20) // 512 * 512  # the sector holding the start of needle 4's data
    lo, hi = max(start, sector), min(start + length, sector + 512)
    dat[lo:hi] = bytes(hi - lo)
    v = _state(tmp_path, golden["put"], bytes(dat), golden["idx_put"])
    try:
        _repaired(v, golden["dat_put"][:start], golden["idx_put"][:golden["idx_before"]])
        _earlier_needles_intact(v)
    finally:
        v.close()
