"""The vacuum engine on temp volumes: compaction output, makeupDiff, commit, cleanup, crash
recovery, concurrency. Byte-level agreement with Go's compaction is in test_vacuum_go.py."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from native.storage import (
    FAKE_TOMBSTONE_COOKIE,
    CompactResult,
    Deleted,
    DiskLocation,
    IdxCodec,
    Needle,
    NotFound,
    Store,
    SuperBlock,
    VacuumError,
    Volume,
    actual_size,
    cleanup_compact,
    commit_compact,
    compact,
    compact_steps,
    decode_needle,
    parse_header,
)


class Clock:
    def __init__(self, ns: int = 1_800_000_000 * 10**9) -> None:
        self.ns = ns

    def __call__(self) -> int:
        self.ns += 1000
        return self.ns


def mk(nid: int, data: bytes | None = None, cookie: int = 0x1234, **kw: object) -> Needle:
    kw.setdefault("name", f"n{nid}")
    kw.setdefault("mime", "application/x-test")
    kw.setdefault("last_modified", 1_700_000_000)
    return Needle.create(nid, cookie, f"data-{nid}".encode() * 3 if data is None else data, **kw)  # type: ignore[arg-type]


def records(path: Path, version: int = 3) -> list[tuple[int, int, int]]:
    """(offset, id, size) of every record in a .dat."""
    raw = path.read_bytes()
    pos, out = 8, []
    while pos < len(raw):
        h = parse_header(raw[pos:pos + 16])
        out.append((pos, h.id, h.size))
        pos += actual_size(h.size, version)
    return out


def rows(path: Path) -> list[tuple[int, int, int]]:
    codec = IdxCodec.for_width(5)
    return [(e.key, e.offset, e.size) for e in codec.iter_entries(path.read_bytes())]


@pytest.fixture
def vol(tmp_path: Path):
    v = Volume.create(tmp_path, 1, clock_ns=Clock())
    yield v
    v.close()


def fill(v: Volume, n: int = 30, seed: int = 1) -> dict[int, bytes]:
    rnd = random.Random(seed)
    live: dict[int, bytes] = {}
    for k in rnd.sample(range(1, 10 * n), n):  # keys out of order
        data = rnd.randbytes(rnd.randint(1, 2000))
        v.write_needle(mk(k, data))
        live[k] = data
    for k in list(live)[::4]:
        v.delete_needle(k, 0x1234)
        del live[k]
    for k in list(live)[1::5]:
        data = rnd.randbytes(50)
        v.write_needle(mk(k, data))
        live[k] = data
    return live


def test_compact_writes_live_needles_in_key_order_and_commit_swaps(vol: Volume, tmp_path: Path) -> None:
    live = fill(vol)
    before = {k: vol.read_needle(k) for k in live}
    assert vol.garbage_level() > 0
    result = compact(vol)
    assert result == CompactResult(ran=True, copied=len(live), dat_size=(tmp_path / "1.cpd").stat().st_size)
    cpd = records(tmp_path / "1.cpd")
    assert [r[1] for r in cpd] == sorted(live)
    assert SuperBlock.decode((tmp_path / "1.cpd").read_bytes()[:8]).compaction_revision == 1
    cpx = rows(tmp_path / "1.cpx")
    assert [(k, off * 8, size) for k, off, size in cpx] == [(i, o, s) for o, i, s in cpd]
    assert commit_compact(vol) is True
    assert not any(tmp_path.glob("1.cp*"))
    assert vol.super_block.compaction_revision == 1
    assert vol.garbage_level() == 0
    for k, n in before.items():
        again = vol.read_needle(k)
        assert (again.data, again.name, again.append_at_ns, again.checksum) == (n.data, n.name, n.append_at_ns, n.checksum)
    assert vol.stats().file_count == len(live) and vol.stats().delete_count == 0
    reopened = Volume.load(tmp_path, 1)
    try:
        assert {k: reopened.read_needle(k).data for k in live} == live
        assert reopened.integrity_error is None
        assert reopened.last_append_at_ns == vol.last_append_at_ns
    finally:
        reopened.close()


def test_reencoding_is_exact_so_compacting_a_clean_volume_changes_only_the_revision(vol: Volume, tmp_path: Path) -> None:
    for k in range(1, 20):
        vol.write_needle(mk(k, pairs={"a": "b"} if k % 2 else None, name="x" * (k * 13 % 40)))
    before = (tmp_path / "1.dat").read_bytes()
    compact(vol)
    commit_compact(vol)
    after = (tmp_path / "1.dat").read_bytes()
    assert after[4:6] == b"\x00\x01" and before[4:6] == b"\x00\x00"
    assert after[:4] + after[6:] == before[:4] + before[6:]


def test_writes_and_deletes_during_compaction_are_replayed_by_commit(vol: Volume, tmp_path: Path) -> None:
    live = fill(vol)
    compact(vol)
    gone = sorted(live)[0]
    vol.delete_needle(gone, 0x1234)
    del live[gone]
    vol.write_needle(mk(5000, b"late arrival"))
    live[5000] = b"late arrival"
    empty_key = 6000
    vol.write_needle(mk(empty_key, b""))
    commit_compact(vol)
    assert {k: vol.read_needle(k).data for k in live} == live
    with pytest.raises(Deleted):
        vol.read_needle(gone)
    assert vol.read_needle(empty_key).data == b""
    tail = records(tmp_path / "1.dat")[-3:]
    assert [r[1] for r in tail] == [gone, 5000, empty_key]  # makeupDiff applies keys in ascending order
    raw = (tmp_path / "1.dat").read_bytes()
    tomb = parse_header(raw[tail[0][0]:tail[0][0] + 16])
    assert (tomb.cookie, tomb.size) == (FAKE_TOMBSTONE_COOKIE, 0)
    assert rows(tmp_path / "1.idx")[-3][2] == -1
    reopened = Volume.load(tmp_path, 1)
    try:
        assert reopened.integrity_error is None
        with pytest.raises(Deleted):
            reopened.read_needle(gone)
    finally:
        reopened.close()


def test_ttl_expired_needles_are_dropped(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 2, ttl="1h", clock_ns=Clock())
    try:
        v.write_needle(mk(1, last_modified=1_000))  # long expired
        v.write_needle(mk(2, last_modified=4_000_000_000))  # far future
        result = compact(v)
        assert (result.copied, result.expired) == (1, 1)
        commit_compact(v)
        with pytest.raises(NotFound):
            v.read_needle(1)
        assert v.read_needle(2).data == mk(2).data
    finally:
        v.close()


def test_a_ttl_needle_in_a_volume_without_ttl_is_dropped_as_go_does(vol: Volume) -> None:
    # Go compares LastModified + the *volume's* TTL: 0 here, so any needle with a TTL of its own
    # counts as expired (test_vacuum_go.py checks the binary agrees)
    vol.write_needle(mk(1, ttl="3d", last_modified=int(time.time()) - 60))  # alive by its own TTL
    for k in range(2, 6):
        vol.write_needle(mk(k))
    result = compact(vol)
    assert (result.copied, result.expired) == (4, 1)


def test_dropped_ttl_needles_do_not_trip_the_size_check(vol: Volume) -> None:
    # a volume without a TTL drops its TTL needles; 4.48's check allows for them (4.44's did not)
    vol.write_needle(mk(1, ttl="3d", last_modified=int(time.time()) - 60))
    vol.write_needle(mk(2))
    result = compact(vol)
    assert (result.copied, result.expired) == (1, 1)
    commit_compact(vol)
    assert vol.needle_value(1) is None and vol.read_needle(2).data == mk(2).data


def test_unreadable_records_are_dropped_not_fatal(vol: Volume, tmp_path: Path) -> None:
    for k in (1, 2, 3):
        vol.write_needle(mk(k))
    off = vol.needle_value(2).offset * 8
    with open(tmp_path / "1.dat", "r+b") as f:
        f.seek(off + 20)  # inside the data: the CRC no longer matches
        f.write(b"XX")
    result = compact(vol)
    assert (result.copied, result.skipped) == (2, 1)
    commit_compact(vol)
    assert [r[1] for r in records(tmp_path / "1.dat")] == [1, 3]


def test_commit_without_compaction_fails_like_go_and_keeps_serving(vol: Volume, tmp_path: Path) -> None:
    vol.write_needle(mk(1))
    with pytest.raises(VacuumError, match=r"readIndexEntry .*1\.idx at offset -17 failed: offset -17 for index file is invalid"):
        commit_compact(vol)
    assert vol.read_needle(1).data == mk(1).data
    vol.write_needle(mk(2))
    assert not any(tmp_path.glob("1.cp*"))


def test_commit_after_another_commit_reports_the_revision_change(vol: Volume) -> None:
    for k in range(1, 6):
        vol.write_needle(mk(k))
    compact(vol)
    commit_compact(vol)
    vol.write_needle(mk(777))  # the index is now longer than when the compaction began
    with pytest.raises(VacuumError, match="current old dat file's compact revision 1 is not the expected one 0"):
        commit_compact(vol)
    assert vol.read_needle(777).data == mk(777).data


def test_a_quiet_commit_needs_no_replay_and_a_repeat_is_harmless(vol: Volume) -> None:
    live = fill(vol, 10)
    compact(vol)
    commit_compact(vol)
    with pytest.raises(VacuumError, match="missing .cpd/.cpx"):
        commit_compact(vol)  # nothing new since: no replay, then no files to swap
    assert {k: vol.read_needle(k).data for k in live} == live


def test_cleanup_removes_files_and_refuses_with_a_commit_marker(vol: Volume, tmp_path: Path) -> None:
    fill(vol, 5)
    compact(vol)
    (tmp_path / "1.cpc").touch()
    with pytest.raises(VacuumError, match="volume 1: refusing cleanup while commit marker present"):
        cleanup_compact(vol)
    (tmp_path / "1.cpc").unlink()
    cleanup_compact(vol)
    assert not any(tmp_path.glob("1.cp*"))
    cleanup_compact(vol)  # nothing left: still fine


def test_a_second_compaction_while_one_runs_does_nothing(vol: Volume) -> None:
    fill(vol, 5)
    steps = compact_steps(vol)
    next(steps)
    assert compact(vol) == CompactResult(ran=False)
    assert commit_compact(vol) is False  # Go: a commit during compaction reports success, does nothing
    steps.close()
    assert compact(vol).ran


def test_progress_reports_source_offsets_and_can_interrupt(vol: Volume) -> None:
    live = fill(vol, 12)
    seen: list[int] = []
    compact(vol, progress=lambda off: seen.append(off) or True)
    assert len(seen) == len(live)
    assert all(off % 8 == 0 and off >= 8 for off in seen)
    with pytest.raises(VacuumError, match="interrupted"):
        compact(vol, progress=lambda off: False)


def test_not_enough_space_is_refused_before_anything_is_written(vol: Volume, tmp_path: Path) -> None:
    fill(vol, 3)
    with pytest.raises(VacuumError, match=r"insufficient free space for compaction: need \d+ bytes"):
        compact(vol, free_bytes=lambda d: 10)
    assert not (tmp_path / "1.cpd").exists()


def test_interrupted_commit_rolls_forward_at_startup(tmp_path: Path) -> None:
    store = Store.open([tmp_path])
    try:
        store.allocate_volume(4)
        v = store.volume(4)
        for k in range(1, 6):
            v.write_needle(mk(k))
        v.delete_needle(3, 0x1234)
        compact(v)
    finally:
        store.close()
    (tmp_path / "4.cpc").touch()  # the marker was written, the renames never happened
    store = Store.open([tmp_path])
    try:
        v = store.volume(4)
        assert v.super_block.compaction_revision == 1
        assert [r[1] for r in records(tmp_path / "4.dat")] == [1, 2, 4, 5]
        assert not any(tmp_path.glob("4.cp*"))
    finally:
        store.close()


def test_readers_and_writers_keep_working_through_compaction_and_commit(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 9)
    try:
        rnd = random.Random(3)
        expected: dict[int, bytes] = {}
        for k in range(1, 400):
            data = rnd.randbytes(rnd.randint(10, 3000))
            v.write_needle(mk(k, data))
            expected[k] = data
        for k in range(1, 400, 3):
            v.delete_needle(k, 0x1234)
            del expected[k]
        lock = threading.Lock()
        errors: list[BaseException] = []
        stop = threading.Event()

        def reader() -> None:
            r = random.Random(threading.get_ident())
            while not stop.is_set():
                with lock:
                    k, want = r.choice(list(expected.items()))
                try:
                    got = v.read_needle(k).data
                except Exception as exc:  # noqa: BLE001 - any failure is the finding
                    errors.append(exc)
                    return
                if got != want:
                    errors.append(AssertionError(f"needle {k}: wrong data"))
                    return

        def writer() -> None:
            k = 10_000
            while not stop.is_set():
                data = f"w{k}".encode() * 10
                try:
                    v.write_needle(mk(k, data))
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)
                    return
                with lock:
                    expected[k] = data
                k += 1

        threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                compact(v)
                commit_compact(v)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:3]
        assert {k: v.read_needle(k).data for k in expected} == expected
        assert v.super_block.compaction_revision == 3
    finally:
        v.close()


def test_store_entry_points_name_missing_volumes_as_go(tmp_path: Path) -> None:
    store = Store([DiskLocation(tmp_path)])
    try:
        for call, text in (
            (lambda: store.check_compact_volume(5), "volume id 5 is not found during check compact"),
            (lambda: store.compact_volume(5), "volume id 5 is not found during compact"),
            (lambda: store.commit_compact_volume(5), "volume id 5 is not found during commit compact"),
            (lambda: store.cleanup_compact_volume(5), "volume id 5 is not found during cleaning up"),
        ):
            with pytest.raises(Exception) as info:
                call()
            assert str(info.value) == text
    finally:
        store.close()


def test_version_2_volume_compacts_with_go_padding(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 6, version=2)
    try:
        for k in range(1, 8):
            v.write_needle(mk(k, last_modified=1_700_000_000 + k))
        v.delete_needle(2, 0x1234)
        compact(v)
        commit_compact(v)
        raw = (tmp_path / "6.dat").read_bytes()
        for off, nid, size in records(tmp_path / "6.dat", version=2):
            rec = raw[off:off + actual_size(size, 2)]
            from native.storage import encode_needle

            assert encode_needle(decode_needle(rec, 2), 2) == rec
        assert [r[1] for r in records(tmp_path / "6.dat", 2)] == [1, 3, 4, 5, 6, 7]
    finally:
        v.close()


def test_garbage_level_falls_back_to_dat_size_for_sdx_style_counts(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 8)
    for k in range(1, 9):
        v.write_needle(mk(k))
    for k in (2, 5):
        v.delete_needle(k, 0x1234)
    v.mark_readonly(persist=True)
    v.close()
    v = Volume.load(tmp_path, 8)
    try:
        c = v.counters()
        if c.deletion_count and not c.deletion_bytes:
            want = (v.dat_size - c.file_bytes - 8) / v.dat_size
        else:
            want = c.deletion_bytes / c.file_bytes
        assert v.garbage_level() == pytest.approx(want)
        assert v.garbage_level() > 0
    finally:
        v.close()


def test_separate_index_directory_keeps_cpx_and_idx_there(tmp_path: Path) -> None:
    data, idx = tmp_path / "data", tmp_path / "idx"
    v = Volume.create(data, 3, idx_directory=idx)
    try:
        for k in range(1, 9):
            v.write_needle(mk(k))
        v.delete_needle(4, 0x1234)
        compact(v)
        assert (data / "3.cpd").exists() and (idx / "3.cpx").exists() and not (data / "3.cpx").exists()
        commit_compact(v)
        assert not (data / "3.idx").exists() and [r[0] for r in rows(idx / "3.idx")] == [1, 2, 3, 5, 6, 7, 8]
        assert not any(data.glob("3.cp*")) and not any(idx.glob("3.cp*"))
        assert v.read_needle(8).data == mk(8).data
    finally:
        v.close()


def test_a_compacting_volume_cannot_be_deleted(tmp_path: Path) -> None:
    store = Store.open([tmp_path])
    try:
        v = store.allocate_volume(3)
        v.write_needle(mk(1))
        steps = store.compact_volume(3)
        next(steps)
        with pytest.raises(Exception, match="volume 3 is compacting"):
            store.delete_volume(3)
        assert store.volume(3) is v
        steps.close()
        store.delete_volume(3)
        assert not list(tmp_path.glob("3.*"))
    finally:
        store.close()


def test_locate_since_finds_the_first_record_appended_after_a_time(tmp_path: Path) -> None:
    from native.storage._since import append_at_ns_at, locate_since

    v = Volume.create(tmp_path, 4, clock_ns=Clock())
    try:
        rnd = random.Random(11)
        for k in range(1, 120):
            v.write_needle(mk(rnd.randint(1, 60), b"x" * rnd.randint(1, 90)))
            if rnd.random() < 0.2:
                v.delete_needle(rnd.randint(1, 60), 0x1234)  # a miss appends nothing
        codec = IdxCodec.for_width(5)
        offsets = [e.offset * 8 for e in codec.iter_entries(Path(v.idx_path).read_bytes())]
        stamps = [append_at_ns_at(v.read_at, 3, off) for off in offsets]
        assert stamps == sorted(stamps)
        for since in [0, stamps[0] - 1, stamps[0], *rnd.sample(stamps, 25), stamps[-1], stamps[-1] + 1, 2**64 - 1]:
            later = [off for off, ts in zip(offsets, stamps) if ts > since]
            assert locate_since(v, since) == (later[0] if later else None), since
    finally:
        v.close()
