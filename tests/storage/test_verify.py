"""`weedpy verify DIR`: clean volumes pass, every kind of damage is reported, nothing is written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from native.storage import Needle, Volume
from native.storage.verify import main
from tests.storage.go_written import GoVolume


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(list(args), out=out)
    return rc, out.getvalue()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    v = Volume.create(d, 1)
    for i in range(1, 8):
        v.write_needle(Needle.create(i, 9, bytes([i]) * (i * 300), name=f"f{i}", last_modified=1))
    v.delete_needle(3, 9)
    v.close()
    w = Volume.create(d, 2, collection="c")
    w.write_needle(Needle.create(1, 1, b"big" * 500_000))  # > 1 MiB: the streamed CRC path
    w.close()
    return d


def test_clean_volumes_pass(data: Path) -> None:
    before = sorted(p.name for p in data.iterdir())
    rc, out = run(str(data))
    assert rc == 0, out
    assert "/1: ok" in out and "/c_2: ok" in out and "2 volumes checked, 0 corrupt" in out
    assert "files=7 deleted=1" in out and "tombstones=1 live=6" in out
    assert sorted(p.name for p in data.iterdir()) == before


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x20
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda d: _flip(d / "1.dat", 8 + 16 + 4 + 10), "CRC"),
        (lambda d: _flip(d / "c_2.dat", 8 + 16 + 4 + 1_000_000), "CRC"),
        (lambda d: (d / "1.dat").write_bytes((d / "1.dat").read_bytes()[:-5]), "past the end"),
        (lambda d: (d / "1.dat").write_bytes((d / "1.dat").read_bytes() + b"\x00" * 40), "tail"),
        (lambda d: (d / "1.idx").write_bytes((d / "1.idx").read_bytes()[:-3]), "torn row"),
        (lambda d: _flip(d / "1.idx", 17 * 2 + 7), "holds needle"),
        (lambda d: _flip(d / "1.idx", 17 * 4 + 11), "overlaps"),
        (lambda d: _flip(d / "1.idx", 17 * 4 + 12), "runs past the end"),
        (lambda d: _flip(d / "1.idx", 17 * 4 + 16), "index size"),
    ],
    ids=["data-bit", "large-data-bit", "truncated-dat", "unindexed-tail", "torn-idx", "wrong-key", "bad-offset",
         "offset-high-byte", "bad-size"],
)
def test_damage_is_reported(data: Path, damage, expect: str) -> None:
    damage(data)
    rc, out = run(str(data))
    assert rc == 1, out
    assert "CORRUPT" in out and expect in out, out


def _idx_with_4_byte_offsets(idx: bytes) -> bytes:
    """A 17-byte .idx rewritten with 16-byte rows: the same row without the offset's high byte
    (byte 12, zero in any volume under 32 GiB). The .dat does not depend on the offset width."""
    assert len(idx) % 17 == 0
    assert all(idx[i + 12] == 0 for i in range(0, len(idx), 17))
    return b"".join(idx[i:i + 12] + idx[i + 13:i + 17] for i in range(0, len(idx), 17))


def test_go_written_volume_with_5_and_4_byte_offsets(go_volume: GoVolume, tmp_path: Path) -> None:
    """A volume the bundled Go weed wrote (tests/storage/conftest.py) verifies clean as written
    and with its index in 4-byte rows; its bit-rotted copy shows exactly the two bad CRCs."""
    counts = f"rows={go_volume.records} puts={go_volume.records - go_volume.tombstones} " \
             f"tombstones={go_volume.tombstones} live={go_volume.live}"
    for name, width, dat, idx in (
        ("five", "5", go_volume.dat, go_volume.idx),
        ("four", "4", go_volume.dat, _idx_with_4_byte_offsets(go_volume.idx)),
        ("rot", "4", go_volume.bitrot(), _idx_with_4_byte_offsets(go_volume.idx)),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "5.dat").write_bytes(dat)
        (tmp_path / name / "5.idx").write_bytes(idx)
        rc, out = run(f"-offsetBytes={width}", str(tmp_path / name))
        if name == "rot":
            assert rc == 1 and out.count("CRC") == 2, out
        else:
            assert rc == 0 and f"offsets={width}B" in out and counts in out, out
    rc, out = run("-offsetBytes=5", str(tmp_path / "four"))  # 16-byte rows read as 17-byte ones
    assert rc == 1, out


def test_usage_errors(tmp_path: Path) -> None:
    assert run()[0] == 2
    assert run(str(tmp_path / "missing"))[0] == 2
    assert run(str(tmp_path)) == (2, "")  # no volumes: said on stderr
