"""EC encode and rebuild throughput: native (numpy) vs Go 4.48, same `.dat`, same machine.

    python bench/ec_bench.py [--mb 256]

Go side: a real `weed volume` (gRPC VolumeEcShardsGenerate / VolumeEcShardsRebuild on a volume
it holds); native side: the same calls on a native server over the same bytes (the volume is
copied there with VolumeCopy). Throughput = `.dat` bytes / wall time for encode, rebuilt shard
bytes / wall time for rebuild (4 shards lost: 2 data, 2 parity). Also the in-process codec
alone (no file I/O). Prints one line per measurement and the native/Go ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from native.storage.ec import ReedSolomon  # noqa: E402
from proto import volume_server_pb2 as vs  # noqa: E402
from tests.native_core.support import start_go, start_native  # noqa: E402
from tests.native_grpc.test_copy_go import address, stream, unary, upload  # noqa: E402
from tests.support.procs import start_master  # noqa: E402

LOST = [0, 5, 10, 13]


def codec_only(mb: int) -> None:
    rs = ReedSolomon(10, 4)
    n = 1 << 20
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 256, n, dtype=np.uint8) for _ in range(10)]
    parity = [np.empty(n, np.uint8) for _ in range(4)]
    rounds = max(1, mb // 10)
    t = time.perf_counter()
    for _ in range(rounds):
        rs.encode(data, parity)
    enc = rounds * 10 * n / (time.perf_counter() - t) / 1e6
    shards: list = data + parity
    for i in LOST:
        shards[i] = None
    t = time.perf_counter()
    for _ in range(rounds):
        rs.reconstruct(shards)
    rec = rounds * 4 * n / (time.perf_counter() - t) / 1e6
    print(f"codec only (10+4, 1 MiB rows): encode {enc:.0f} MB/s of data, reconstruct 4 lost {rec:.0f} MB/s of output")


def fill(v, vid: int, mb: int) -> int:
    assert unary(v.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=vid, version=3), vs.AllocateVolumeResponse).ok
    rnd = np.random.default_rng(vid)
    body = rnd.integers(0, 256, 4 << 20, dtype=np.uint8).tobytes()
    for key in range(1, mb // 4 + 1):
        upload(v, f"{vid},{key:x}{0x1000 + key:08x}", body[key:] + body[:key])
    return os.path.getsize(v.data_dir / f"{vid}.dat")


def timed(fn) -> float:
    t = time.perf_counter()
    out = fn()
    assert out.ok, out
    return time.perf_counter() - t


def run(server, vid: int, dat_size: int, label: str) -> tuple[float, float]:
    enc_s = timed(lambda: unary(server.grpc_port, "VolumeEcShardsGenerate",
                                vs.VolumeEcShardsGenerateRequest(volume_id=vid), vs.VolumeEcShardsGenerateResponse, timeout=3600))
    shard = os.path.getsize(server.data_dir / f"{vid}.ec00")
    for sid in LOST:
        os.remove(server.data_dir / f"{vid}.ec{sid:02d}")
    reb_s = timed(lambda: unary(server.grpc_port, "VolumeEcShardsRebuild",
                                vs.VolumeEcShardsRebuildRequest(volume_id=vid), vs.VolumeEcShardsRebuildResponse, timeout=3600))
    enc, reb = dat_size / enc_s / 1e6, len(LOST) * shard / reb_s / 1e6
    print(f"{label}: encode {dat_size / 1e6:.0f} MB in {enc_s:.2f} s = {enc:.0f} MB/s; "
          f"rebuild {len(LOST)} x {shard / 1e6:.1f} MB in {reb_s:.2f} s = {reb:.0f} MB/s")
    return enc, reb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    args = ap.parse_args()
    codec_only(args.mb)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        master = start_master(work, volume_size_limit_mb=max(64, args.mb * 2))
        go = start_go(work, master, extra=["-volume.allowUntrustedRemoteEndpoints"])
        native = start_native(work, master)
        try:
            size = fill(go, 41, args.mb)
            assert stream(native.grpc_port, "VolumeCopy", vs.VolumeCopyRequest(volume_id=41, source_data_node=address(go)),
                          vs.VolumeCopyResponse).ok
            g = run(go, 41, size, "go 4.48")
            n = run(native, 41, size, "native")
            print(f"native/go: encode {n[0] / g[0]:.2f}x, rebuild {n[1] / g[1]:.2f}x")
        finally:
            native.stop()
            go.stop()
            master.stop()


if __name__ == "__main__":
    main()
