"""EC storage engine without Go: encode a native volume, mount its shards, find and read every
needle through `.ecx` + shard intervals (locally and rebuilt from parity), journal deletes,
decode back to `.dat`/`.idx`. Small block sizes make multi-row layouts cheap to exercise."""

from __future__ import annotations

import fcntl
import os
import random
from pathlib import Path

import numpy as np
import pytest

from native.storage import IdxCodec, Needle, Store, WouldBlock, decode_needle
from native.storage.ec import EcLayout, ReedSolomon, encode_files, find_dat_size, rebuild_files, shard_ext, write_dat_file
from native.storage.ec._index import fold_journal, has_live_needles, iter_ecx, write_ecx_from_idx, write_idx_from_ecx
from native.storage.ec._sidecar import load_sidecar, save_sidecar, shard_block_crcs


def make_volume(tmp: Path, vid: int = 7, n: int = 60, seed: int = 1) -> tuple[Store, dict[int, bytes]]:
    store = Store.open([tmp], max_counts=10)
    v = store.allocate_volume(vid)
    rnd = random.Random(seed)
    bodies = {}
    for key in range(1, n + 1):
        body = rnd.randbytes(rnd.choice([0, 1, 100, 5000, 40000]))
        store.write_needle(vid, Needle.create(key, 0x1000 + key, body))
        bodies[key] = body
    for key in (3, 10):
        store.delete_needle(vid, key)
        bodies.pop(key)
    store.write_needle(vid, Needle.create(4, 0x1004, b"again"))
    bodies[4] = b"again"
    return store, bodies


@pytest.mark.parametrize("layout", [EcLayout(), EcLayout(4, 2, large_block=64 << 10, small_block=4 << 10)])
def test_encode_locate_read_rebuild_decode(tmp_path: Path, layout: EcLayout) -> None:
    store, bodies = make_volume(tmp_path)
    v = store.volume(7)
    base = v.dat_path[:-4]
    codec = IdxCodec.for_width(store.offset_bytes)
    assert write_ecx_from_idx(v.idx_path, base + ".ecx", store.offset_bytes) == len(bodies)
    assert [k for k, _, _ in iter_ecx(base + ".ecx", codec)] == sorted(bodies)
    prot = encode_files(v.dat_path, base, layout)
    dat = Path(v.dat_path).read_bytes()
    shards = [Path(base + shard_ext(i)).read_bytes() for i in range(layout.total_shards)]
    assert {len(s) for s in shards} == {layout.shard_size(len(dat))}
    # sidecar round trip and per-shard block CRCs
    save_sidecar(base + ".ecsum", prot)
    loaded = load_sidecar(base + ".ecsum")
    assert [s.block_crc32c for s in loaded.shards] == [shard_block_crcs(base + shard_ext(i))[1] for i in range(layout.total_shards)]
    # every live needle, read back from the shard intervals
    large_rows = layout.large_rows_for_dat(len(dat))
    for _, offset, size in iter_ecx(base + ".ecx", codec):
        from native.storage import actual_size

        ivs = layout.locate(large_rows, offset * 8, actual_size(size, v.version))
        raw = b"".join(shards[iv.shard_id][iv.offset:iv.offset + iv.size] for iv in ivs)
        n = decode_needle(raw, v.version, expected_size=size)
        assert n.data == bodies[n.id]
    # lose as many shards as there is parity, rebuild them identically
    lost = list(range(0, layout.total_shards, max(1, layout.total_shards // layout.parity_shards)))[: layout.parity_shards]
    for i in lost:
        os.remove(base + shard_ext(i))
    rebuild_files({i: base + shard_ext(i) for i in range(layout.total_shards) if i not in lost},
                  {i: base + shard_ext(i) for i in lost}, layout)
    assert [Path(base + shard_ext(i)).read_bytes() for i in range(layout.total_shards)] == shards
    # decode: journal a delete, fold it, write .dat back
    Path(base + ".ecj").write_bytes((5).to_bytes(8, "big"))
    fold_journal(base, codec)
    assert not os.path.exists(base + ".ecj")
    assert has_live_needles(base + ".ecx", codec)
    size = find_dat_size(base + ".ec00", base + ".ecx", codec)
    store.close()
    os.rename(base + ".dat", base + ".orig")
    write_dat_file(base + ".dat", size, len(dat), [base + shard_ext(i) for i in range(layout.data_shards)], layout)
    assert Path(base + ".dat").read_bytes() == dat[:size]
    write_idx_from_ecx(base, base + ".idx", codec)
    rows = {k: s for k, _, s in iter_ecx(base + ".idx", codec)}
    assert rows[5] < 0 and all(rows[k] >= 0 for k in bodies if k != 5)


def test_store_mounts_and_reads_ec_shards(tmp_path: Path) -> None:
    store, bodies = make_volume(tmp_path, vid=9)
    v = store.volume(9)
    base = v.dat_path[:-4]
    write_ecx_from_idx(v.idx_path, base + ".ecx", store.offset_bytes)
    encode_files(v.dat_path, base, EcLayout())
    store.delete_volume(9)
    store.close()
    store = Store.open([tmp_path], max_counts=10)  # startup loads the shards
    ev = store.ec.find_volume(9)
    assert ev is not None and ev.shard_ids() == list(range(14))
    assert store.find_volume(9) is None
    # read without access-time updates (a read updating one would wait for a sync's journal commit)
    for fd in [ev.shard(i).fd for i in ev.shard_ids()] + [ev.ecx_fd, ev.ecj_fd]:
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NOATIME
    # the event loop's lookups read `.ecx` from the page cache only (a miss: a worker thread's job)
    key = next(iter(bodies))
    os.posix_fadvise(ev.ecx_fd, 0, 0, os.POSIX_FADV_DONTNEED)
    with pytest.raises(WouldBlock, match="page cache"):
        ev.find_needle(key, blocking=False)
    assert ev.find_needle(key) == ev.find_needle(key, blocking=False)  # read once: cached now
    for key, body in bodies.items():
        loc = ev.locate(key)
        raw = b"".join(ev.shard(iv.shard_id).read_at(iv.size, iv.offset) for iv in loc.intervals)
        assert decode_needle(raw, ev.version, expected_size=loc.size).data == body
    ev.delete_needle(11)
    ev.delete_needle(11)  # idempotent
    assert ev.find_needle(11)[1] == -1 and ev.file_and_delete_count() == (len(bodies), 1)
    assert Path(base + ".ecj").read_bytes() == (11).to_bytes(8, "big")
    assert store.ec.unmount_shard(9, 3) == [0] and ev.shard(3) is None
    reports = store.ec.reports()
    assert reports[0][4] == (1 << 14) - 1 - (1 << 3)
    store.close()
    store = Store.open([tmp_path], max_counts=10)
    assert store.ec.find_volume(9).find_needle(11)[1] == -1  # the journal survives restarts
    store.close()


def test_reconstruct_interval_from_any_data_shards() -> None:
    rng = np.random.default_rng(3)
    rs = ReedSolomon(10, 4)
    data = [rng.integers(0, 256, 4096, dtype=np.uint8) for _ in range(10)]
    shards: list = data + rs.encode(data)
    for wanted in (0, 9, 12):
        partial = [None if i in (wanted, 1, 2) else s for i, s in enumerate(shards)]
        assert rs.reconstruct(partial, [wanted])[wanted].tobytes() == shards[wanted].tobytes()
