"""Volume.read_plain: the read fast path agrees with read_needle whenever it answers, and
declines (None) every case it does not handle, so the full path can report it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from native.storage import Needle, Volume, crc32c
from native.storage._volume_read import VIEW_OVER

LIMIT = 4 << 20


def _agrees(v: Volume, nid: int) -> None:
    got = v.read_plain(nid, LIMIT)
    assert got is not None
    cookie, data, flags, name, mime, last_modified, crc, size = got
    n = v.read_needle(nid)
    assert (cookie, data, flags, name, mime, last_modified, crc) == (
        n.cookie, n.data, n.flags, n.name, n.mime, n.last_modified, n.checksum)
    assert size == v.needle_value(nid).size
    assert type(name) is bytes and type(mime) is bytes
    if len(data) > VIEW_OVER:  # read in place: a view nobody can write through
        assert isinstance(data, memoryview) and data.readonly


@pytest.mark.parametrize("version", [2, 3])
def test_plain_needles_agree_with_read_needle(tmp_path: Path, version: int) -> None:
    v = Volume.create(tmp_path, 1, version=version)
    v.write_needle(Needle.create(1, 7, b"abc"))
    v.write_needle(Needle.create(2, 8, b"x" * 5000, name="a b.txt", mime="text/plain", last_modified=1_700_000_000))
    v.write_needle(Needle.create(3, 9, b"\0" * 10, name="", mime=""))
    v.write_needle(Needle.create(4, 9, b"z", gzipped=True, pairs={"k": "v"}, chunk_manifest=True))
    v.write_needle(Needle.create(5, 9, os.urandom(VIEW_OVER + 1), name="big.bin", mime="x/y", last_modified=1_700_000_000))
    v.write_needle(Needle.create(6, 9, os.urandom(3 << 20)))
    for nid in (1, 2, 3, 4, 5, 6):
        _agrees(v, nid)
    v.close()


@given(data=st.binary(min_size=1, max_size=300), name=st.one_of(st.none(), st.binary(max_size=40)),
       mime=st.one_of(st.none(), st.binary(max_size=40)), lm=st.one_of(st.none(), st.integers(0, (1 << 40) - 1)),
       gz=st.booleans(), pairs=st.one_of(st.none(), st.dictionaries(st.text("ab", min_size=1), st.text(), max_size=2)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_plain_needle_agrees(tmp_path: Path, data, name, mime, lm, gz, pairs) -> None:
    d = tmp_path / str(abs(hash((data, name, mime, lm, gz))))
    v = Volume.create(d, 1)
    try:
        v.write_needle(Needle.create(5, 3, data, name=name, mime=mime, last_modified=lm, gzipped=gz,
                                     pairs=pairs or None))
        _agrees(v, 5)
    finally:
        v.close()


def test_declines_what_the_full_path_reports(tmp_path: Path) -> None:
    clock = [1_800_000_000 * 10**9]
    v = Volume.create(tmp_path, 1, clock_ns=lambda: clock[0])
    v.write_needle(Needle.create(1, 7, b"live"))
    v.write_needle(Needle.create(2, 7, b"gone"))
    v.delete_needle(2, 7)
    v.write_needle(Needle.create(3, 7, b"", name="empty"))
    v.write_needle(Needle.create(4, 7, b"t", ttl="5m", last_modified=1_800_000_000))
    v.write_needle(Needle.create(5, 7, b"y" * 2000))
    assert v.read_plain(1, LIMIT) is not None
    assert v.read_plain(99, LIMIT) is None  # absent
    assert v.read_plain(2, LIMIT) is None  # deleted
    assert v.read_plain(3, LIMIT) is None  # no data
    assert v.read_plain(4, LIMIT) is None  # a TTL: expiry is the full path's business
    assert v.read_plain(5, 100) is None  # over the caller's limit
    # a flipped data byte: the CRC no longer matches
    nv = v.needle_value(5)
    with open(v.dat_path, "r+b") as f:
        f.seek(nv.actual_offset + 20 + 10)
        b = f.read(1)
        f.seek(nv.actual_offset + 20 + 10)
        f.write(bytes([b[0] ^ 1]))
    assert v.read_plain(5, LIMIT) is None
    v.close()


def test_legacy_masked_crc_is_accepted(tmp_path: Path) -> None:
    from native.storage._crc import legacy_crc_value

    v = Volume.create(tmp_path, 1)
    data = b"older servers stored a masked CRC"
    v.write_needle(Needle.create(1, 7, data, checksum=legacy_crc_value(crc32c(data))))
    got = v.read_plain(1, LIMIT)
    assert got is not None and got[6] == crc32c(data) == v.read_needle(1).checksum
    # over Go's PagedReadLimit a GET reads the metadata only, its ETag the stored masked CRC:
    # the full path's, not this one's
    big = os.urandom(1 << 20)
    v.write_needle(Needle.create(2, 7, big, checksum=legacy_crc_value(crc32c(big))))
    v.write_needle(Needle.create(3, 7, big))
    assert v.read_plain(2, LIMIT) is None and v.read_plain(3, LIMIT) is not None
    v.close()


def test_version_1_is_declined(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1, version=1)
    v.write_needle(Needle.create(1, 7, b"v1"))
    assert v.read_plain(1, LIMIT) is None and v.read_needle(1).data == b"v1"
    v.close()


def test_declines_a_record_of_another_needle(tmp_path: Path) -> None:
    """The map is looked up before the read gate is entered: a compaction commit can swap the
    files in between, and the old map's offset then points into the new `.dat`. A record there
    of another needle, even of the same size (and cookie), is not this needle's: the full path
    looks it up again under the gate."""
    v = Volume.create(tmp_path, 1)
    v.write_needle(Needle.create(1, 7, b"first"))
    v.write_needle(Needle.create(2, 7, b"other"))
    one = v.needle_value(1)
    v.nm.put(2, one.offset, one.size)  # needle 2's entry at needle 1's record
    assert v.read_plain(1, LIMIT) is not None
    assert v.read_plain(2, LIMIT) is None
    v.close()
