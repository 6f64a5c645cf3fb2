"""Volumes of millions of needles written in bulk, in the layout Go writes (numpy over one record
template): for start-up tests and benchmarks that need large `.idx`/`.dat` pairs in a second,
not an hour of uploads.

Every file is 16 bytes, ids ascending as master-assigned keys are (volume v holds keys
v << 32 + 1, ...); `churn` then overwrites 5% of the ids and deletes 10%.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from native.storage import IdxCodec, Needle, SuperBlock, VolumeInfo, encode_needle, save_volume_info

__all__ = ["COOKIE", "DATA", "KEY_SPACING", "needle_fid", "write_volume"]

DATA = b"0123456789abcdef"  # every file: 16 bytes
KEY_SPACING = 1 << 32  # volume v holds keys v << 32 + 1, ...
COOKIE = 0x5EED


def needle_fid(vid: int, i: int) -> str:
    """The file id of the `i`-th needle (from 1) of volume `vid`."""
    return f"{vid},{vid * KEY_SPACING + i:x}{COOKIE:08x}"


def write_volume(d: Path, vid: int, n: int, churn: bool, seed: int) -> dict:
    """One volume: `n` puts, then (churn) 5% overwrites and 10% deletes; returns Go's counts
    (`FileCount`, `DeleteCount`) and `Live`, the index of a needle that was not deleted."""
    rng = np.random.default_rng(seed)
    put = np.frombuffer(encode_needle(Needle.create(1, COOKIE, DATA, name=b"", mime=b"", last_modified=1_700_000_000), 3), np.uint8)
    size = int.from_bytes(put[12:16].tobytes(), "big")
    crc = int.from_bytes(put[16 + size:20 + size].tobytes(), "big")
    tomb = np.frombuffer(encode_needle(Needle(1, COOKIE, checksum=crc), 3), np.uint8)
    ts_put, ts_tomb = 16 + size + 4, 16 + 4
    keys = (np.arange(1, n + 1, dtype=np.uint64) + np.uint64(vid * KEY_SPACING))
    over = rng.choice(keys, n // 20, replace=False) if churn else keys[:0]
    gone = rng.choice(keys, n // 10, replace=False) if churn else keys[:0]
    rows_keys = np.concatenate([keys, over, gone])
    kinds = [(put, len(keys) + len(over), ts_put), (tomb, len(gone), ts_tomb)]
    sb = SuperBlock().encode()
    offsets = []
    pos = len(sb)
    ts0 = time.time_ns()
    with open(d / f"{vid}.dat", "wb") as f:
        f.write(sb)
        start = 0
        for template, count, ts_at in kinds:
            step = 1 << 20
            for lo in range(0, count, step):
                hi = min(count, lo + step)
                recs = np.empty((hi - lo, len(template)), np.uint8)
                recs[:] = template
                recs[:, 4:12] = rows_keys[start + lo:start + hi].astype(">u8").view(np.uint8).reshape(-1, 8)
                ts = np.arange(start + lo, start + hi, dtype=np.uint64) + np.uint64(ts0)
                recs[:, ts_at:ts_at + 8] = ts.astype(">u8").view(np.uint8).reshape(-1, 8)
                f.write(recs.tobytes())
            offsets.append(pos + np.arange(count, dtype=np.int64) * len(template))
            pos += count * len(template)
            start += count
    offs = np.concatenate(offsets) // 8
    sizes = np.concatenate([np.full(len(keys) + len(over), size, np.int32), np.full(len(gone), -1, np.int32)])
    rows = np.empty(len(rows_keys), np.dtype([("k", ">u8"), ("lo", ">u4"), ("hi", "u1"), ("s", ">i4")]))
    rows["k"], rows["lo"], rows["hi"], rows["s"] = rows_keys, offs & 0xFFFFFFFF, offs >> 32, sizes
    (d / f"{vid}.idx").write_bytes(rows.tobytes())
    save_volume_info(str(d / f"{vid}.vif"), VolumeInfo(version=3, bytes_offset=5))
    assert IdxCodec.for_width(5).entry_size == rows.dtype.itemsize
    live = int(np.setdiff1d(keys, gone)[-1]) - vid * KEY_SPACING
    return {"FileCount": n + len(over), "DeleteCount": len(over) + len(gone), "Live": live}
