"""Disk faults, CORDS-style: one 4 KiB block of `.dat` or `.idx` zeroed, filled with junk or
with one bit flipped; EIO and ENOSPC from writes and fsyncs, EIO from reads (a `FileOps` that
fails them).

The rule: an error is returned, a wrong byte never is; the other needles keep being served and
the volume loads; a write that failed is never acknowledged nor served later; an fsync that
failed makes the volume read-only and is never retried; a read that failed leaves no mark.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import httpx
import pytest

from native.storage import Needle, Volume
from native.storage._disk import DiskLocation
from native.storage._errors import ReadOnly, StorageError
from native.storage._fileio import OS_FILES
from native.storage._types import PADDING_SIZE, actual_size
from proto import volume_server_pb2 as vs
from tests.native_core.support import call
from tests.support.procs import (
    VolumeProc,
    clean_env,
    free_port_pair,
    on_fresh_ports,
    start_master,
    start_proc,
    wait_http,
    wait_tcp,
)
from tests.support.weedpy_proc import weedpy_volume_argv

BLOCK = 4096
COOKIE = 0xC0FFEE
# sizes chosen so every record spans blocks of its own and one needle is streamed (> 1 MiB)
SIZES = [5000, 9000, 300, 12000, 2 * 1024 * 1024 + 123, 7000, 0, 20000]
DAMAGES = ("zero", "junk", "flip")
OCTETS = {"Content-Type": "application/octet-stream"}


def _body(key: int, size: int) -> bytes:
    return random.Random(key * 7919 + size).randbytes(size)


def _fill(d: Path) -> tuple[Volume, dict[int, bytes]]:
    v = Volume.create(d, 1)
    want = {}
    for key, size in enumerate(SIZES, start=1):
        data = _body(key, size)
        v.write_needle(Needle.create(key, COOKIE, data, name=f"k{key}", mime="text/plain"))
        want[key] = data
    return v, want


def _damage(path: Path, block_at: int, how: str, seed: int) -> None:
    """The CORDS fault: the aligned 4 KiB block holding `block_at`."""
    start = block_at - block_at % BLOCK
    with open(path, "r+b") as f:
        f.seek(start)
        old = f.read(BLOCK)
        if how == "zero":
            new = bytes(len(old))
        elif how == "junk":
            new = random.Random(seed).randbytes(len(old))
        else:
            bit = random.Random(seed).randrange(len(old) * 8)
            b = bytearray(old)
            b[bit // 8] ^= 1 << (bit % 8)
            new = bytes(b)
        f.seek(start)
        f.write(new)


def _span(v: Volume, key: int) -> tuple[int, int]:
    nv = v.needle_value(key)
    assert nv is not None
    return nv.offset * PADDING_SIZE, actual_size(nv.size, v.version)


def _read_every_way(v: Volume, key: int) -> list[object]:
    """Each read path's outcome: the bytes, or the error class. None: read_plain declined."""
    out: list[object] = []
    try:
        out.append(v.read_needle(key, COOKIE).data)
    except (StorageError, OSError) as exc:
        out.append(type(exc))
    plain = v.read_plain(key, 1024 * 1024)
    out.append(None if plain is None else plain[1])
    try:
        with v.open_needle_stream(key, COOKIE) as s:
            whole = b"".join(s.iter_chunks(0, None, 64 * 1024))
            s.verify(64 * 1024)  # what the HTTP layer runs before a streamed or ranged body
            out.append(whole)
    except (StorageError, OSError) as exc:
        out.append(type(exc))
    return out


def _check_all(v: Volume, want: dict[int, bytes], hit: set[int]) -> dict[str, int]:
    """Every key: the right bytes or an error; keys outside the damaged block: the right bytes."""
    figures = {"errors": 0, "served": 0}
    for key, data in want.items():
        for got in _read_every_way(v, key):
            if isinstance(got, bytes):
                assert got == data, f"key {key}: wrong bytes served"
                figures["served"] += 1
            elif got is not None:
                assert key in hit, f"key {key} outside the damaged block failed: {got}"
                figures["errors"] += 1
    return figures


def _hit_keys(v: Volume, want: dict[int, bytes], block_at: int) -> set[int]:
    start = block_at - block_at % BLOCK
    hit = set()
    for key in want:
        off, length = _span(v, key)
        if off < start + BLOCK and start < off + length:
            hit.add(key)
    return hit


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("where", ["data", "header", "streamed_data"])
def test_a_damaged_dat_block_is_an_error_never_wrong_bytes(tmp_path: Path, how: str, where: str, report: dict) -> None:
    v, want = _fill(tmp_path)
    key = {"data": 4, "header": 2, "streamed_data": 5}[where]
    off, length = _span(v, key)
    at = off + 40 + (length - 60) // 2 if where != "header" else off + 4  # the id field
    hit = _hit_keys(v, want, at)
    _damage(tmp_path / "1.dat", at, how, seed=key)
    figures = _check_all(v, want, hit)
    if where != "header":  # a header's id or cookie bits change no served byte; the data's always fail
        outcome = _read_every_way(v, key)
        assert all(not isinstance(o, bytes) for o in outcome), f"damaged key {key} served: {outcome!r}"
    v.close()
    v = Volume.load(tmp_path, 1)  # the volume loads; reading goes on the same
    figures2 = _check_all(v, want, hit)
    v.close()
    report.update(hit_keys=len(hit), errors=figures["errors"], served=figures["served"] + figures2["served"])


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("block", ["first", "last"])
def test_a_damaged_idx_block_is_an_error_never_wrong_bytes(tmp_path: Path, how: str, block: str, report: dict) -> None:
    """An `.idx` of three 4 KiB blocks; one is damaged. Keys whose rows lie outside it are served;
    keys inside it are an error or their right bytes; the volume loads; `.dat` keeps every byte."""
    v = Volume.create(tmp_path, 1)
    want = {}
    rng = random.Random(5)
    for key in range(1, 601):  # 600 rows of 17 bytes: 10,200 bytes
        want[key] = _body(key, rng.randrange(1, 300))
        v.write_needle(Needle.create(key, COOKIE, want[key]))
    row = v.codec.entry_size
    v.close()
    dat_size = (tmp_path / "1.dat").stat().st_size
    at = 0 if block == "first" else 600 * row - 1
    lo = at - at % BLOCK
    inside = {k for k in want if lo <= (k - 1) * row < lo + BLOCK}
    _damage(tmp_path / "1.idx", at, how, seed=3)
    v = Volume.load(tmp_path, 1)  # loads (maybe read-only): never a crash
    served = errors = 0
    for key, data in want.items():
        for got in _read_every_way(v, key):
            if isinstance(got, bytes):
                assert got == data, f"key {key}: wrong bytes served"
                served += 1
            elif got is not None:
                assert key in inside, f"key {key}, its row outside the damaged block, failed: {got}"
                errors += 1
    read_only = v.read_only_reasons().read_only
    v.close()
    assert (tmp_path / "1.dat").stat().st_size == dat_size, "a damaged index cost .dat bytes"
    report.update(keys_in_block=len(inside), served=served, errors=errors, read_only=read_only)


@pytest.mark.parametrize("damage", ["size_zeroed", "one_bit_flipped"])
def test_an_idx_row_damaged_to_size_0_is_an_error_not_an_empty_needle(tmp_path: Path, damage: str) -> None:
    """A row's size field zeroed, or its one set bit flipped (a record of Size 64): the map says
    "empty needle", which reads nothing from `.dat`; the record's header says otherwise."""
    v = Volume.create(tmp_path, 1)
    v.write_needle(Needle.create(1, COOKIE, b"x" * 100))
    v.write_needle(Needle.create(2, COOKIE, b"y" * 59))  # Size 64: 4 + 59 + 1 (flags)
    v.write_needle(Needle.create(3, COOKIE, b""))  # a real empty needle
    v.write_needle(Needle.create(4, COOKIE, b"z" * 100))
    assert v.needle_value(2).size == 64
    es = v.codec.entry_size
    v.close()
    with open(tmp_path / "1.idx", "r+b") as f:  # row 2 of 4: its size is the last 4 bytes
        f.seek(es * 2 - 4)
        size = int.from_bytes(f.read(4), "big")
        f.seek(es * 2 - 4)
        f.write((0 if damage == "size_zeroed" else size ^ 64).to_bytes(4, "big"))
    v = Volume.load(tmp_path, 1)
    try:
        assert v.needle_value(2).size == 0
        with pytest.raises(StorageError):
            v.read_needle(2, COOKIE)
        assert v.read_needle(3, COOKIE).data == b""
        assert v.read_needle(1, COOKIE).data == b"x" * 100
        assert v.read_needle(4, COOKIE).data == b"z" * 100
    finally:
        v.close()


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_super_block_is_a_load_error_and_the_other_volumes_load(tmp_path: Path, how: str) -> None:
    """The first block of `.dat` holds the super block: zeroed or junk, the version is not one
    (the volume is not loaded, as in Go, and the error is kept); a flipped bit elsewhere in the
    block fails the CRC of the record it hits. The disk's other volumes load either way."""
    v, want = _fill(tmp_path)
    v.close()
    other = Volume.create(tmp_path, 2)
    other.write_needle(_needle(1))
    other.close()
    _damage(tmp_path / "1.dat", 0, how, seed=1)
    loc = DiskLocation(tmp_path)
    loc.load_existing_volumes()
    try:
        assert loc.find_volume(2).read_needle(1, COOKIE).data == _body(1, 3000)
        v = loc.find_volume(1)
        if v is None:
            assert "1" in loc.load_errors, loc.load_errors
            return
        hit = _hit_keys(v, want, 0)
        _check_all(v, want, hit)
    finally:
        for vol in loc.volumes():
            vol.close()


class FaultyFiles:
    """`OS_FILES`, except that `op` on `fd` raises OSError(`code`) from its `after`-th call on,
    `times` times (None: for ever)."""

    def __init__(self, op: str, fd: int, code: int, *, times: int | None = None) -> None:
        self.op, self.fd, self.code, self.left = op, fd, code, times
        self.failures = 0
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str):
        real = getattr(OS_FILES, name)

        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == self.op and args and args[0] == self.fd and self.left != 0:
                if self.left is not None:
                    self.left -= 1
                self.failures += 1
                raise OSError(self.code, os.strerror(self.code))
            return real(*args)

        return call


def _needle(key: int, size: int = 3000) -> Needle:
    return Needle.create(key, COOKIE, _body(key, size))


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
@pytest.mark.parametrize("target", ["dat", "idx"])
def test_a_failed_write_is_never_acknowledged_nor_served(tmp_path: Path, code: int, target: str, report: dict) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(_needle(1))
    v.write_needle(_needle(2))
    fd = v._dat_fd if target == "dat" else v._idx_fd
    v.files = FaultyFiles("pwrite", fd, code, times=1)
    with pytest.raises(StorageError):
        v.write_needle(_needle(3))  # new key
    v.files.left = 1
    with pytest.raises(StorageError):
        v.write_needle(Needle.create(1, COOKIE, b"overwrite"))  # overwrite
    v.files.left = 1
    with pytest.raises(StorageError):
        v.delete_needle(2, COOKIE)
    # nothing of the failed writes is served, before or after a restart
    for vol in (v, None):
        if vol is None:
            v.close()
            vol = Volume.load(tmp_path, 1)
        with pytest.raises(StorageError):
            vol.read_needle(3, COOKIE)
        assert vol.read_needle(1, COOKIE).data == _body(1, 3000)
        assert vol.read_needle(2, COOKIE).data == _body(2, 3000)
        assert not vol.read_only_reasons().read_only
    # the volume goes on: the next write lands and survives a reload
    vol.write_needle(_needle(4))
    vol.close()
    vol = Volume.load(tmp_path, 1)
    assert vol.read_needle(4, COOKIE).data == _body(4, 3000)
    vol.close()
    report.update(failures_injected=3)


@pytest.mark.parametrize("target", ["dat", "idx"])
def test_an_fsync_error_makes_the_volume_read_only_and_is_never_retried(tmp_path: Path, target: str, report: dict) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(_needle(1), fsync=True)
    fd = v._dat_fd if target == "dat" else v._idx_fd
    faulty = FaultyFiles("fdatasync", fd, errno.EIO, times=1)  # one failure: a retry would succeed
    v.files = faulty
    with pytest.raises(StorageError):
        v.write_needle(_needle(2), fsync=True)
    assert v.read_only_reasons().read_only
    syncs = faulty.calls.get("fdatasync", 0)
    with pytest.raises(ReadOnly):
        v.write_needle(_needle(3), fsync=True)
    with pytest.raises(ReadOnly):
        v.delete_needle(1, COOKIE)
    with pytest.raises(StorageError):  # a waiter for the failed sync is not answered by a retry
        v._sync_dat(v._dat_size)
    assert faulty.calls.get("fdatasync", 0) == syncs, "fsync was retried"
    assert v.read_needle(1, COOKIE).data == _body(1, 3000)  # reads go on
    report.update(fsync_calls_after_failure=faulty.calls.get("fdatasync", 0) - syncs)
    # an operator's mark_writable is the only way back
    v.mark_writable()
    v.write_needle(_needle(5), fsync=True)
    v.close()
    v = Volume.load(tmp_path, 1)
    assert v.read_needle(5, COOKIE).data == _body(5, 3000)
    v.close()


def test_an_error_from_volume_sync_makes_the_volume_read_only(tmp_path: Path) -> None:
    v = Volume.create(tmp_path, 1)
    v.write_needle(_needle(1))
    faulty = FaultyFiles("fsync", v._idx_fd, errno.EIO, times=1)
    v.files = faulty
    with pytest.raises(OSError):
        v.sync()
    assert v.read_only_reasons().read_only
    with pytest.raises(ReadOnly):
        v.write_needle(_needle(2))
    syncs = faulty.calls.get("fdatasync", 0)
    with pytest.raises(StorageError):  # a later fsync write's sync is not tried either
        v._sync_dat(v._dat_size)
    assert faulty.calls.get("fdatasync", 0) == syncs
    assert v.read_needle(1, COOKIE).data == _body(1, 3000)
    v.close()


class FaultyReads:
    """`OS_FILES`, except that a `pread` touching bytes [`lo`, `hi`) of one file (through any
    descriptor of it: streams read from duplicates) raises OSError(EIO), as an unreadable sector
    does, while `on` is set."""

    def __init__(self, path: Path, lo: int, hi: int) -> None:
        st = os.stat(path)
        self.ident = (st.st_dev, st.st_ino)
        self.lo, self.hi = lo, hi
        self.on = True
        self.failures = 0

    def __getattr__(self, name: str):
        return getattr(OS_FILES, name)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        if self.on and offset < self.hi and self.lo < offset + length:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == self.ident:
                self.failures += 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pread(fd, length, offset)

    def preadv(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        """The event loop's page-cache reads fail alike."""
        return _into(buffers, self.pread(fd, len(buffers[0]), offset))


def _into(buffers: list[bytearray], data: bytes) -> int:
    buffers[0][:len(data)] = data
    return len(data)


def _bad_sector(v: Volume, key: int, where: str) -> tuple[int, int]:
    """The 512 B sector an EIO comes from: in the middle of the key's data, or its header."""
    off, length = _span(v, key)
    at = off + 4 if where == "header" else off + 40 + (length - 60) // 2
    lo = at - at % 512
    return lo, lo + 512


@pytest.mark.parametrize("where", ["data", "header", "streamed_data"])
def test_eio_on_read_is_an_error_never_wrong_bytes(tmp_path: Path, where: str, report: dict) -> None:
    """EIO from the reads of one sector of `.dat`: the needles whose records hold it fail on
    every read path (whole, the plain fast path declines, streamed and its CRC check), the
    others are served; the volume stays writable; once the sector reads again, so does the
    needle, and nothing of the failure is left (after a reload neither)."""
    v, want = _fill(tmp_path)
    key = {"data": 4, "header": 2, "streamed_data": 5}[where]
    lo, hi = _bad_sector(v, key, where)
    hit = {k for k in want if _span(v, k)[0] < hi and lo < sum(_span(v, k))}
    assert key in hit
    faulty = FaultyReads(tmp_path / "1.dat", lo, hi)
    v.files = faulty
    figures = _check_all(v, want, hit)
    outcome = _read_every_way(v, key)
    assert all(not isinstance(o, bytes) for o in outcome), f"key {key} served through an unreadable sector: {outcome!r}"
    assert OSError in outcome
    assert not v.read_only_reasons().read_only
    v.write_needle(_needle(100))  # the volume takes writes meanwhile
    assert v.read_needle(100, COOKIE).data == _body(100, 3000)
    failures = faulty.failures
    faulty.on = False  # the sector reads again (a transient error, or the block remapped)
    after = _check_all(v, want, set())
    v.close()
    v = Volume.load(tmp_path, 1)
    try:
        reloaded = _check_all(v, want, set())
        assert v.read_needle(100, COOKIE).data == _body(100, 3000)
    finally:
        v.close()
    report.update(hit_keys=len(hit), eio_raised=failures, errors=figures["errors"],
                  served=figures["served"] + after["served"] + reloaded["served"])


def test_a_server_answers_500_on_eio_and_keeps_serving(tmp_path: Path, report: dict) -> None:
    """Over HTTP (the native handlers serving a real socket): a needle whose sector gives EIO
    answers 500 on the fast read path, the full path, a Range read and a streamed read (> 1 MiB),
    whole or ranged, never a 200 with other bytes; the other needles are served; writes land;
    once the sector reads again the needles are served whole."""
    from tests.native_http.support import start_native

    bodies = {1: _body(1, 5000), 2: _body(2, 3 * 1024 * 1024 + 5), 3: _body(3, 7000), 4: _body(4, 2 * 1024 * 1024)}
    with start_native(tmp_path / "data", volumes=(1,)) as server:
        url = lambda key: f"{server.url}/1,{key:x}{COOKIE:08x}"
        with httpx.Client(timeout=30) as client:
            for key, data in bodies.items():
                r = client.post(url(key), content=data, headers=OCTETS)
                assert r.status_code == 201, r.text
            v = server.store.find_volume(1)
            spans = [_bad_sector(v, key, "data") for key in (1, 2)]
            faults = [FaultyReads(server.data_dir / "1.dat", lo, hi) for lo, hi in spans]

            class Both:
                def __getattr__(self, name: str):
                    return getattr(OS_FILES, name)

                def pread(self, fd: int, length: int, offset: int) -> bytes:
                    for f in faults:
                        if f.on and offset < f.hi and f.lo < offset + length:
                            return f.pread(fd, length, offset)
                    return os.pread(fd, length, offset)

                def preadv(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
                    return _into(buffers, self.pread(fd, len(buffers[0]), offset))

            v.files = Both()
            statuses = {}
            for key in (1, 2):
                for rng in (None, "bytes=0-99", "bytes=1000-", "bytes=0-9,20-29"):
                    r = client.get(url(key), headers={"Range": rng} if rng else {})
                    statuses[(key, rng)] = r.status_code
                    assert r.status_code == 500, (key, rng, r.status_code, r.content[:200])
                r = client.get(url(key) + "?x=1")  # a query: never the fast path
                assert r.status_code == 500, (key, r.status_code)
            for key in (3, 4):  # the others, small and streamed, whole and ranged
                r = client.get(url(key))
                assert r.status_code == 200 and r.content == bodies[key]
                r = client.get(url(key), headers={"Range": "bytes=10-4009"})
                assert r.status_code == 206 and r.content == bodies[key][10:4010]
            r = client.post(url(5), content=b"after", headers=OCTETS)
            assert r.status_code == 201
            assert client.get(url(5)).content == b"after"
            for f in faults:
                f.on = False
            for key in (1, 2):
                r = client.get(url(key))
                assert r.status_code == 200 and r.content == bodies[key]
    report.update(eio_reads_500=len(statuses) + 2, eio_raised=sum(f.failures for f in faults))


# ---- through a real server ----------------------------------------------------------------------


@pytest.fixture
def master(tmp_path: Path):
    m = start_master(tmp_path / "master", volume_size_limit_mb=1024)
    yield m
    m.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_answers_500_for_a_damaged_needle_whole_ranged_or_streamed(tmp_path: Path, master, crashable,
                                                                           workers: int, report: dict) -> None:
    """A `-mode=native` server: a needle with a damaged block answers 500 on a whole read, a
    Range read and a streamed (> 1 MiB, sendfile) read, whole or ranged; the others are served;
    the process keeps running and takes writes."""
    server = crashable(master, "native", workers, workdir=tmp_path / "srv")
    server.start()
    try:
        server.allocate([1])
        bodies = {1: _body(1, 5000), 2: _body(2, 3 * 1024 * 1024 + 5), 3: _body(3, 7000), 4: _body(4, 2 * 1024 * 1024)}
        url = lambda key: f"{server.url}/1,{key:x}{COOKIE:08x}"
        for key, data in bodies.items():
            r = httpx.post(url(key), content=data, headers=OCTETS, timeout=30)
            assert r.status_code == 201, r.text
        dat = server.data_dir / "1.dat"
        raw = dat.read_bytes()
        for key in (1, 2):  # a bit flipped in the middle of the data, and a block zeroed
            at = raw.find(bodies[key]) + len(bodies[key]) // 2
            _damage(dat, at, "flip" if key == 1 else "zero", seed=key)
        statuses = {}
        for key in (1, 2):
            for rng in (None, "bytes=0-99", "bytes=1000-", "bytes=0-9,20-29"):
                headers = {"Range": rng} if rng else {}
                r = httpx.get(url(key), headers=headers, timeout=30)
                statuses[(key, rng)] = r.status_code
                assert r.status_code == 500, (key, rng, r.status_code)
        for key in (3, 4):  # the undamaged ones, small and streamed, whole and ranged
            r = httpx.get(url(key), timeout=30)
            assert r.status_code == 200 and r.content == bodies[key]
            r = httpx.get(url(key), headers={"Range": "bytes=10-4009"}, timeout=30)
            assert r.status_code == 206 and r.content == bodies[key][10:4010]
        r = httpx.post(url(5), content=b"after", headers=OCTETS, timeout=30)
        assert r.status_code == 201
        assert httpx.get(url(5), timeout=30).content == b"after"
        report.update(damaged_reads_500=len(statuses))
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_out_of_space_answers_500_and_serves_only_what_it_acknowledged(tmp_path: Path, master, workers: int,
                                                                                  report: dict) -> None:
    """A `-mode=native` server whose files cannot grow past 6 MiB (RLIMIT_FSIZE: a write across
    the limit is cut short, one at it fails with EFBIG, as a full disk cuts or fails it): the
    write that does not fit answers 500 and is not served; every acknowledged one is, before
    and after a restart; a write that fits lands; the process keeps running."""

    data_dir = tmp_path / "data"
    data_dir.mkdir()

    def start(name: str) -> VolumeProc:
        def attempt() -> VolumeProc:
            port, grpc_port = free_port_pair()
            argv = weedpy_volume_argv(port=port, grpc_port=grpc_port, public_port=port, data_dir=data_dir,
                                      master=master.address, extra=["-mode=native", f"-workers={workers}"])
            proc = start_proc(["prlimit", f"--fsize={6 << 20}", "--", *argv], tmp_path / "logs" / f"{name}-{port}.log",
                              cwd=tmp_path, env=clean_env())
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=60)
                wait_tcp("127.0.0.1", grpc_port, proc=proc)
            except BaseException:
                proc.stop()
                raise
            return VolumeProc(proc, port, grpc_port, port, data_dir)

        return on_fresh_ports(attempt)

    srv = start("full-1")
    try:
        out = call(srv.grpc_port, "AllocateVolume", vs.AllocateVolumeRequest(volume_id=1, version=3),
                   vs.AllocateVolumeResponse)
        assert out.ok, out
        url = lambda key: f"{srv.url}/1,{key:x}{COOKIE:08x}"
        acked: dict[int, bytes] = {}
        refused = []
        for key in range(1, 10):
            data = _body(key, 1 << 20)
            r = httpx.post(url(key), content=data, headers=OCTETS, timeout=30)
            if r.status_code == 201:
                acked[key] = data
            else:
                assert r.status_code == 500, (r.status_code, r.text)
                refused.append(key)
        assert refused and acked, (refused, list(acked))
        small = _body(99, 1000)
        r = httpx.post(url(99), content=small, headers=OCTETS, timeout=30)
        assert r.status_code == 201, r.text
        acked[99] = small
        for round_ in ("before", "after"):
            if round_ == "after":
                assert srv.proc.stop() in (0, -2, 130, 1)
                srv = start("full-2")
            for key in refused:
                assert httpx.get(url(key), timeout=30).status_code == 404
            for key, data in acked.items():
                r = httpx.get(url(key), timeout=30)
                assert r.status_code == 200 and r.content == data, key
        report.update(acknowledged=len(acked), refused_500=len(refused))
    finally:
        srv.proc.stop()
