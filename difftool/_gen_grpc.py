"""A seeded random gRPC scenario: seed in, steps out (sans-IO; `_generate.py` registers it).

The steps first allocate a few volumes and write needles into them with WriteNeedleBlob (records
built here, byte for byte, so every server stores the same bytes), then make random calls with
good and bad arguments to the data-plane and maintenance rpcs whose answers follow from the
files alone: needle status, meta and blob reads, blob writes, batch deletes, ReadAllNeedles,
volume and sync status, file status, CopyFile, incremental copy, read-only marks, configure,
vacuum, erasure coding (generate, mount, shard reads, blob deletes, shard deletes, unmount,
info) and Query. A model of the volumes (`_gen_model.py`) supplies real offsets and sizes and
says where each record's append time is, so erasure-coded shard reads get their clock bytes
masked (`Step.masks`); each step also carries the model's guess of Go's outcome (`Step.expect`).

Never generated, because the answer is not decided by the files: anything within seconds of the
clock (incremental copies since "now", TTLs short enough to expire during a run), and the empty
needle deleted with a wrong cookie (Go 4.48 deletes it, weedpy refuses; docs/parity.md).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from difftool._gen_model import SUPER_BLOCK, EcModel, Live, Record, VolumeModel
from difftool._mask import ByteMask
from difftool._step import Step, grpc_request
from native.storage import VERSION3, Corrupted, Needle, ReplicaPlacement, actual_size, decode_needle, encode_needle
from proto import volume_server_pb2 as vs

__all__ = ["grpc_random_steps", "MISSING_VOLUMES"]

MISSING_VOLUMES = (0, 77, 4294967295)
_APPEND_NS = 1_700_000_000_123_456_789  # the append time written into blobs (servers stamp their own)
_FAR_FUTURE_NS = 1 << 62
_NAMES = (b"a.txt", b"photo.jpg", b"", b"x" * 40, "caf\u00e9.txt".encode())
_MIMES = (b"text/plain", b"application/json", b"image/jpeg", b"")
_TTLS = ("7d", "2w", "1y")  # long enough never to expire during a run
_EXTS = (".dat", ".idx", ".vif", ".ecx", ".ecj", ".ec00", ".ec03", ".ec13", ".cpd", ".cpx", ".note", ".xyz", "")
_REPLICATIONS = ("000", "001", "010", "100", "200")
_BAD_REPLICATIONS = ("0001", "abc", "9", "00x", "")


class _Gen:
    def __init__(self, seed: int, operations: int) -> None:
        self.rng = random.Random(seed)
        self.operations = operations
        self.steps: list[Step] = []
        self.vols: dict[int, VolumeModel] = {}
        self.next_vid = 1

    # plumbing ------------------------------------------------------------------------------

    def emit(self, label: str, method: str, msg, expect: str = "", masks: tuple[ByteMask, ...] = (),
             timeout: float = 30.0) -> None:
        self.steps.append(Step(f"{len(self.steps) + 1}: {label}", grpc_request(method, msg), timeout=timeout,
                               masks=masks, expect=expect))

    def pick_vol(self, exact: bool = False) -> VolumeModel | None:
        vols = [v for v in self.vols.values() if v.exact or not exact]
        return self.rng.choice(vols) if vols else None

    def vid(self) -> tuple[int, VolumeModel | None]:
        """An existing volume id, or now and then one that is not there."""
        if self.vols and self.rng.random() < 0.88:
            v = self.rng.choice(list(self.vols.values()))
            return v.vid, v
        return self.rng.choice(MISSING_VOLUMES), None

    def needle_of(self, v: VolumeModel) -> tuple[int, Live | None, str]:
        """A needle id of `v`: live, deleted, or never written."""
        r = self.rng.random()
        if v.live and r < 0.65:
            n = self.rng.choice(sorted(v.live.values(), key=lambda x: x.needle_id))
            return n.needle_id, n, "live"
        if v.deleted and r < 0.85:
            nid = self.rng.choice(sorted(v.deleted))
            return nid, v.deleted[nid], "deleted"
        return self.rng.randrange(1, 1 << 32), None, "missing"

    # needles -------------------------------------------------------------------------------

    def needle(self, nid: int, cookie: int) -> tuple[Needle, str]:
        rng = self.rng
        kind = rng.choices(("bytes", "json", "csv", "empty", "manifest"), (50, 20, 8, 7, 5))[0]
        if kind == "bytes":
            data = rng.randbytes(rng.choice((1, 7, 64, 500, 1000, 3000, 9000)))
        elif kind == "json":
            rows = [{"name": rng.choice(("ann", "bob", "cid", "dan")), "age": rng.randrange(1, 90),
                     "city": rng.choice(("oslo", "rome", "lima"))} for _ in range(rng.randrange(1, 5))]
            data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()
        elif kind == "csv":
            data = b"name,age\nann,31\nbob,25\n"
        elif kind == "manifest":
            data = b'{"chunks":[{"fid":"1,0a1b2c3d4e","offset":0,"size":1}]}'
        else:
            data = b""
        extra: dict = {}
        if rng.random() < 0.4:
            extra["name"] = rng.choice(_NAMES)
        if rng.random() < 0.4:
            extra["mime"] = rng.choice(_MIMES)
        if rng.random() < 0.5:
            extra["last_modified"] = 1_700_000_000 + rng.randrange(0, 10_000)
        if rng.random() < 0.1:
            extra["ttl"] = rng.choice(_TTLS)
        if rng.random() < 0.15:
            extra["pairs"] = {"Seaweed-k": rng.choice(("v", "w x"))}
        if rng.random() < 0.1 and kind == "bytes":
            extra["gzipped"] = True
        n = Needle.create(nid, cookie, data, chunk_manifest=kind == "manifest", append_at_ns=_APPEND_NS, **extra)
        return n, kind

    # setup ---------------------------------------------------------------------------------

    def allocate(self, collection: str | None = None) -> None:
        vid = self.next_vid
        self.next_vid += 1
        if collection is None:
            collection = self.rng.choice(("", "", "rnd"))
        replication = self.rng.choice(("000", "000", "001"))
        self.emit(f"allocate volume {vid}", "AllocateVolume",
                  vs.AllocateVolumeRequest(volume_id=vid, collection=collection, replication=replication, version=3),
                  "ok")
        self.vols[vid] = VolumeModel(vid, collection, replication)

    def setup(self) -> None:
        for _ in range(self.rng.randrange(3, 5)):
            self.allocate()
        for v in list(self.vols.values()):
            for _ in range(self.rng.randrange(2, 7)):
                self.write_good(v)

    # writes --------------------------------------------------------------------------------

    def write_good(self, v: VolumeModel, nid: int | None = None) -> None:
        rng = self.rng
        if nid is None:
            if v.live and rng.random() < 0.2:
                nid = rng.choice(sorted(v.live))  # overwrite
            else:
                nid = rng.randrange(1, 1 << rng.choice((8, 16, 32, 64)))
        if not v.may_change(nid):
            nid = v.changed[0]
        old = v.live.get(nid)
        cookie = old.cookie if old is not None and rng.random() < 0.6 else rng.randrange(0, 1 << 32)
        if old is not None and rng.random() < 0.15:  # the very same blob again
            self._write(v, nid, old.size, old.blob, "the stored blob again")
            return
        n, kind = self.needle(nid, cookie)
        blob = encode_needle(n, VERSION3)
        size = int.from_bytes(blob[12:16], "big")
        self._write(v, nid, size, blob, f"{kind} needle {nid:x}", kind=kind)

    def _write(self, v: VolumeModel | None, nid: int, size: int, blob: bytes, what: str, *, kind: str = "bytes",
               vid: int | None = None) -> None:
        vid = v.vid if v is not None else vid
        ok = (v is not None and not v.read_only and size >= 0 and len(blob) == actual_size(size, VERSION3)
              and int.from_bytes(blob[12:16], "big", signed=True) == size)
        self.emit(f"write blob: {what} ({len(blob)} bytes, size {size}) to {vid}", "WriteNeedleBlob",
                  vs.WriteNeedleBlobRequest(volume_id=vid, needle_id=nid, size=size, needle_blob=blob),
                  "ok" if ok else "error")
        if not ok or v is None:
            return
        # what a reader makes of the record is read from the blob itself, as Go reads it
        try:
            n = decode_needle(blob, VERSION3, expected_size=size)
        except Corrupted:
            n = None
        if n is None:  # a record no reader can parse
            live = Live(nid, int.from_bytes(blob[0:4], "big"), size, 0, blob, b"", -1, False, False, "garbage")
        else:  # an empty record has no flags: no TTL, not a manifest
            other = n.id != nid
            live = Live(nid, n.cookie, size, 0, blob, n.data, n.checksum or 0, n.is_chunk_manifest and size > 0,
                        not other, "other-id" if other else kind, n.has_ttl and size > 0, n.id if other else 0)
        if live.kind != "garbage" and v.repeats(nid, size, live.cookie, live.checksum, live.data):
            return
        v.append(live)

    def op_write(self) -> None:
        vid, v = self.vid()
        rng = self.rng
        if v is None or rng.random() < 0.7:
            if v is None:
                n, _ = self.needle(rng.randrange(1, 1 << 16), rng.randrange(1 << 32))
                blob = encode_needle(n, VERSION3)
                self._write(None, n.id, int.from_bytes(blob[12:16], "big"), blob, "to a missing volume", vid=vid)
            else:
                self.write_good(v)
            return
        nid = rng.randrange(1, 1 << 20)
        n, _ = self.needle(nid, rng.randrange(1 << 32))
        blob = encode_needle(n, VERSION3)
        size = int.from_bytes(blob[12:16], "big")
        bad = rng.choice(("size+8", "size-1", "short", "long", "header", "garbage", "other-id", "empty", "negative",
                          "tiny"))
        if bad in ("size-1", "garbage", "other-id") and not (v.may_change(nid) and v.may_change(nid + 1)):
            bad = "negative"  # these can be taken: one changed needle at most while a compaction waits
        if bad == "size+8":
            self._write(v, nid, size + 8, blob, "size 8 more than the blob's")
        elif bad == "size-1":
            self._write(v, nid, size - 1, blob, "size 1 less than the blob's")
        elif bad == "short":
            cut = rng.choice((1, 4, 8, 16))
            self._write(v, nid, size, blob[:-cut], f"blob {cut} bytes short")
        elif bad == "long":
            self._write(v, nid, size, blob + bytes(rng.choice((1, 8, 24))), "blob with bytes after the record")
        elif bad == "header":  # consistent length for size+8, header saying size
            self._write(v, nid, size + 8, blob + bytes(8), "header size differs from the request's")
        elif bad == "garbage":
            body = blob[:16] + rng.randbytes(len(blob) - 16)
            self._write(v, nid, size, body, "well-framed garbage")
        elif bad == "other-id":
            self._write(v, nid + 1, size, blob, "blob of another needle id")
        elif bad == "empty":
            self._write(v, nid, 0, b"", "empty blob")
        elif bad == "negative":
            self._write(v, nid, -1, blob, "negative size")
        else:
            self._write(v, nid, size, blob[:10], "shorter than a header")

    # reads ---------------------------------------------------------------------------------

    def op_needle_status(self) -> None:
        vid, v = self.vid()
        nid, live, state = self.needle_of(v) if v is not None else (self.rng.randrange(1, 1 << 20), None, "missing")
        self.emit(f"needle status {vid}/{nid:x} ({state})", "VolumeNeedleStatus",
                  vs.VolumeNeedleStatusRequest(volume_id=vid, needle_id=nid))

    def _record_args(self, v: VolumeModel | None) -> tuple[int, int, str, Record | None]:
        """(offset, size) of a record of `v`, or a variant of it that is wrong."""
        rng = self.rng
        if v is None or not v.records:
            return rng.choice((0, 8, 1 << 40)), rng.choice((0, 16, 100)), "no record", None
        rec = rng.choice(v.records)
        off, size = rec.offset, rec.size
        variant = rng.choices(("good", "off+8", "off-8", "off+1", "size+1", "size-8", "past-end", "negative-off",
                               "negative-size", "huge-size"), (55, 6, 6, 4, 5, 5, 5, 4, 5, 5))[0]
        if variant == "off+8":
            off += 8
        elif variant == "off-8":
            off -= 8
        elif variant == "off+1":
            off += 1
        elif variant == "size+1":
            size += 1
        elif variant == "size-8":
            size -= 8
        elif variant == "past-end":
            off = v.dat_size + rng.choice((0, 8, 4096))
        elif variant == "negative-off":
            off = -rng.choice((1, 8))
        elif variant == "negative-size":
            size = -1
        elif variant == "huge-size":
            size = rng.choice((1 << 20, (1 << 31) - 1))
        return off, size, variant, rec

    def op_read_blob(self) -> None:
        vid, v = self.vid()
        off, size, variant, _ = self._record_args(v)
        masks: tuple[ByteMask, ...] = ()
        if v is not None and size >= 0:  # a read off the record boundaries returns other records' times
            masks = (ByteMask("needle_blob", v.clock_ranges(off, actual_size(size, VERSION3))),)
        self.emit(f"read blob {vid}@{off}+{size} ({variant})", "ReadNeedleBlob",
                  vs.ReadNeedleBlobRequest(volume_id=vid, offset=off, size=size), masks=masks)

    def op_read_meta(self) -> None:
        vid, v = self.vid()
        rng = self.rng
        if v is not None and v.tombstones and rng.random() < 0.2:
            nid = rng.choice(sorted(v.tombstones))
            off, size, variant = v.tombstones[nid], -1, "tombstone"
        else:
            off, size, variant, rec = self._record_args(v)
            if v is not None and rec is not None and variant != "good" and v.clock_overlap(off, size):
                off, size, variant = rec.offset, rec.size, "good"  # fields read from another record's clock
            nid = rec.needle_id if rec is not None else rng.randrange(1, 1 << 20)
            if rng.random() < 0.1:
                nid += 1
                variant += ", another id"
        self.emit(f"read meta {vid}/{nid:x}@{off}+{size} ({variant})", "ReadNeedleMeta",
                  vs.ReadNeedleMetaRequest(volume_id=vid, needle_id=nid, offset=off, size=size))

    def op_read_all(self) -> None:
        rng = self.rng
        vids = [self.vid()[0] for _ in range(rng.choice((0, 1, 1, 1, 2, 3)))]
        self.emit(f"read all needles of {vids}", "ReadAllNeedles", vs.ReadAllNeedlesRequest(volume_ids=vids))

    def op_status(self) -> None:
        vid, _ = self.vid()
        method, cls = self.rng.choice((("VolumeStatus", vs.VolumeStatusRequest),
                                       ("VolumeSyncStatus", vs.VolumeSyncStatusRequest),
                                       ("ReadVolumeFileStatus", vs.ReadVolumeFileStatusRequest),
                                       ("VacuumVolumeCheck", vs.VacuumVolumeCheckRequest)))
        self.emit(f"{method} {vid}", method, cls(volume_id=vid))

    # deletes -------------------------------------------------------------------------------

    def _fid(self, v: VolumeModel | None, vid: int, skip: bool) -> tuple[str, tuple[int, int] | None]:
        """A file id for BatchDelete and the (volume, needle) it deletes if it deletes one."""
        rng = self.rng
        if rng.random() < 0.12:
            return rng.choice(("", "abc", "3", ",", "3,", ",0a1b2c3d4e", "x,0a1b2c3d4e", "3,zz1b2c3d4e",
                               "3,1", "3,0a1b2c3d4e0a1b2c3d4e00112233", "3,0A1B2C3D4E", "3,0a1b2c3d4e_",
                               "3,0a1b2c3d4e_x", "3,0a1b2c3d4e.jpg", "-1,0a1b2c3d4e")), None
        if v is None:
            return f"{vid},{rng.randrange(1, 1 << 20):x}{rng.randrange(1 << 32):08x}", None
        nid, live, state = self.needle_of(v)
        cookie = live.cookie if live is not None else rng.randrange(1 << 32)
        wrong = rng.random() < 0.15
        if wrong:
            cookie ^= 1 << rng.randrange(32)
        if live is not None and live.size == 0 and wrong and not skip and state == "live":
            cookie = live.cookie  # the deliberate difference (module docstring): not generated
        key = f"{nid:x}"
        if rng.random() < 0.1:
            key = key.rjust(16, "0")
        fid = f"{vid},{key}{cookie:08x}"
        target = nid
        if not skip and rng.random() < 0.08:
            delta = rng.choice((1, 2))
            fid += f"_{delta}"
            target = nid + delta
        ec = v.ec is not None and bool(v.ec.mounted)
        if ec or state != "live" and target == nid:
            return fid, None
        cur = v.live.get(target)
        if cur is None:
            return fid, None
        if skip:
            return fid, (v.vid, target)
        if cur.kind == "garbage" or cur.cookie != cookie or cur.manifest:
            return fid, None
        if cur.kind == "other-id" and cur.size > 0:  # Go's read takes the header's id, the delete follows
            target = cur.header_id  # (an empty needle is not read: its request id stays)
            if target not in v.live:
                return fid, None
        return fid, (v.vid, target)

    def _fid_keeping_one_change(self, v: VolumeModel | None, vid: int, skip: bool,
                                pending: set[tuple[int, int]]) -> tuple[str, tuple[int, int] | None]:
        """`_fid`, but one needle changed at most while a compaction waits (`pending`: the
        needles this request deletes already)."""
        fid, target = self._fid(v, vid, skip)
        if v is not None and target is not None and v.compacted is not None:
            keys = set(v.changed) | {k for (pv, k) in pending if pv == vid} | {target[1]}
            if len(keys) > 1:
                return f"{vid},{self.rng.randrange(1, 1 << 20):x}{self.rng.randrange(1 << 32):08x}", None
        if target is not None:
            pending.add(target)
        return fid, target

    def op_batch_delete(self) -> None:
        rng = self.rng
        skip = rng.random() < 0.25
        fids, targets = [], []
        pending: set[tuple[int, int]] = set()
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
            vid, v = self.vid()
            fid, target = self._fid_keeping_one_change(v, vid, skip, pending)
            fids.append(fid)
            targets.append(target)
        self.emit(f"batch delete {fids}{' skipping cookies' if skip else ''}", "BatchDelete",
                  vs.BatchDeleteRequest(file_ids=fids, skip_cookie_check=skip))
        for t in targets:
            if t is None:
                continue
            v = self.vols.get(t[0])
            if v is None or t[1] not in v.live or v.read_only and not v.can_delete:
                continue
            v.delete(t[1])

    # copies --------------------------------------------------------------------------------

    def op_copy_file(self) -> None:
        rng = self.rng
        vid, v = self.vid()
        ext = rng.choice(_EXTS)
        ec = ext.startswith(".ec") and rng.random() < 0.8 or rng.random() < 0.05
        collection = v.collection if v is not None and rng.random() < 0.9 else rng.choice(("", "rnd", "other"))
        rev = v.compact_revision if v is not None and rng.random() < 0.8 else rng.choice((1, 2, 4294967295))
        size = {".dat": v.dat_size, ".idx": v.idx_size}.get(ext, 1 << 20) if v is not None else 1 << 20
        stop = rng.choice((size, size, 0, 1, 8, max(size // 2, 1), 1 << 40))
        ignore = rng.random() < 0.3
        masks: tuple[ByteMask, ...] = ()
        if ext.startswith(".ec") and ext[3:].isdigit() and v is not None and v.ec is not None:
            masks = (ByteMask("file_content", v.ec.shard_clock_ranges(int(ext[3:]), 0, v.ec.shard_size)),)
        self.emit(f"copy {vid}{ext} rev {rev} stop {stop}{' ec' if ec else ''}{' ignore-missing' if ignore else ''}",
                  "CopyFile", vs.CopyFileRequest(volume_id=vid, ext=ext, compaction_revision=rev, stop_offset=stop,
                                                 collection=collection, is_ec_volume=ec,
                                                 ignore_source_file_not_found=ignore), masks=masks)

    def op_incremental_copy(self) -> None:
        vid, _ = self.vid()
        since = self.rng.choice((0, 0, 1, _APPEND_NS, _FAR_FUTURE_NS, (1 << 64) - 1))
        self.emit(f"incremental copy {vid} since {since}", "VolumeIncrementalCopy",
                  vs.VolumeIncrementalCopyRequest(volume_id=vid, since_ns=since))

    # volume state --------------------------------------------------------------------------

    def op_readonly(self) -> None:
        vid, v = self.vid()
        rng = self.rng
        if rng.random() < 0.5:
            persist, can_delete = rng.random() < 0.4, rng.random() < 0.3
            self.emit(f"mark {vid} read-only{' persist' if persist else ''}{' can-delete' if can_delete else ''}",
                      "VolumeMarkReadonly", vs.VolumeMarkReadonlyRequest(volume_id=vid, persist=persist,
                                                                         can_delete=can_delete))
            if v is not None:
                v.read_only, v.can_delete = True, can_delete
                if persist:
                    v.read_only_persisted, v.can_delete_persisted = True, can_delete
                    v.save_info()
        else:
            self.emit(f"mark {vid} writable", "VolumeMarkWritable", vs.VolumeMarkWritableRequest(volume_id=vid))
            if v is not None:
                v.read_only = v.can_delete = v.read_only_persisted = v.can_delete_persisted = False
                v.save_info()
                # a volume loaded read-only gets its writable map read afresh, and with it Go 4.48
                # forgets the compaction it made (committing it then closes the volume; parity.md)
                v.compacted = None

    def op_configure(self) -> None:
        vid, v = self.vid()
        rep = self.rng.choice(_REPLICATIONS if self.rng.random() < 0.7 else _BAD_REPLICATIONS)
        try:  # Go's parse decides ("" and "9" pass)
            ReplicaPlacement.parse(rep)
            good = True
        except ValueError:
            good = False
        self.emit(f"configure {vid} replication {rep!r}", "VolumeConfigure",
                  vs.VolumeConfigureRequest(volume_id=vid, replication=rep))
        if v is not None and good and v.dat_size <= SUPER_BLOCK and v.vif_ec:
            del self.vols[vid]  # Go 4.48 takes an empty .dat beside an EC .vif for a leftover: removed
        elif v is not None and good:  # Go unmounts and mounts it again: only a persisted mark stays
            v.info_ec = v.vif_ec
            v.replication = rep
            v.read_only, v.can_delete = v.read_only_persisted, v.read_only_persisted and v.can_delete_persisted
            # and the compaction made before is no longer this mount's: Go 4.48 commits it by
            # closing the volume for good (the next write crashes the server; parity.md)
            v.compacted = None

    # vacuum --------------------------------------------------------------------------------

    def op_vacuum(self) -> None:
        vid, v = self.vid()
        step = self.rng.choices(("compact", "commit", "cleanup", "all"), (3, 2, 1, 3))[0]
        if v is not None and (step == "commit" and v.commit_closes() or step == "cleanup" and v.compacted is None):
            # Go 4.48 commits a volume that has no compaction (or one begun on an empty index
            # written since) by closing it for good: the next call that reads it answers "data
            # backend not found" or crashes the server (VolumeSyncStatus, WriteNeedleBlob);
            # weedpy refuses with Go's text and keeps the volume (parity.md)
            step = "compact"
        if step in ("compact", "all"):
            self.emit(f"compact {vid}", "VacuumVolumeCompact",
                      vs.VacuumVolumeCompactRequest(volume_id=vid, preallocate=self.rng.choice((0, 0, 4096))),
                      timeout=60)
            if v is not None:
                v.compact()
        if step in ("commit", "all"):
            self.emit(f"commit {vid}", "VacuumVolumeCommit", vs.VacuumVolumeCommitRequest(volume_id=vid), timeout=60)
            if v is not None:
                v.commit()
        if step == "cleanup":
            self.emit(f"cleanup {vid}", "VacuumVolumeCleanup", vs.VacuumVolumeCleanupRequest(volume_id=vid))
            if v is not None:
                v.compacted = None

    # erasure coding ------------------------------------------------------------------------

    def op_ec(self) -> None:
        rng = self.rng
        vid, v = self.vid()
        ec = v.ec if v is not None else None
        what = rng.choices(("generate", "mount", "read", "blob-delete", "delete", "unmount", "info"),
                           (3 if ec is None else 1, 3, 6, 2, 1, 1, 2))[0]
        shards = sorted(rng.sample(range(14), rng.choice((1, 2, 4, 14)))) if rng.random() < 0.9 else [14, 31]
        collection = v.collection if v is not None and rng.random() < 0.9 else "other"
        if what == "generate":
            self.emit(f"ec generate {vid} ({collection!r})", "VolumeEcShardsGenerate",
                      vs.VolumeEcShardsGenerateRequest(volume_id=vid, collection=collection), timeout=60)
            if v is not None and collection == v.collection:
                v.vif_ec = True
                # Go writes a new .vif: version, sizes and EC config only
                v.read_only_persisted = v.can_delete_persisted = False
                entries = {n.needle_id: (n.offset, n.size) for n in v.live.values()}
                entries.update({nid: (off, -1) for nid, off in v.tombstones.items()})
                v.ec = EcModel(v.collection, v.dat_size, v.clocks(), entries)
        elif what == "mount":
            self.emit(f"ec mount {vid} shards {shards}", "VolumeEcShardsMount",
                      vs.VolumeEcShardsMountRequest(volume_id=vid, collection=collection, shard_ids=shards))
            if ec is not None and collection == ec.collection:
                for sid in shards:  # Go mounts them in turn and stops at the first that fails
                    if sid not in ec.files:
                        break
                    ec.mounted.add(sid)
        elif what == "unmount":
            self.emit(f"ec unmount {vid} shards {shards}", "VolumeEcShardsUnmount",
                      vs.VolumeEcShardsUnmountRequest(volume_id=vid, shard_ids=shards))
            if ec is not None:
                ec.mounted -= set(shards)
        elif what == "delete":
            self.emit(f"ec delete {vid} shards {shards}", "VolumeEcShardsDelete",
                      vs.VolumeEcShardsDeleteRequest(volume_id=vid, collection=collection, shard_ids=shards))
            if ec is not None and collection == ec.collection:
                ec.files -= set(shards)  # mounted ones stay mounted (open files), as in Go
        elif what == "info":
            self.emit(f"ec info {vid}", "VolumeEcShardsInfo", vs.VolumeEcShardsInfoRequest(volume_id=vid))
        elif what == "blob-delete":
            nid = rng.choice(sorted(ec.entries)) if ec is not None and ec.entries and rng.random() < 0.8 else \
                rng.randrange(1, 1 << 20)
            self.emit(f"ec blob delete {vid}/{nid:x}", "VolumeEcBlobDelete",
                      vs.VolumeEcBlobDeleteRequest(volume_id=vid, collection=collection, file_key=nid,
                                                   version=rng.choice((3, 3, 0, 2))))
        else:
            self.ec_read(vid, ec)

    def ec_read(self, vid: int, ec: EcModel | None) -> None:
        rng = self.rng
        shard = rng.choice(sorted(ec.mounted)) if ec is not None and ec.mounted and rng.random() < 0.85 else \
            rng.randrange(0, 16)
        key = 0
        if ec is not None and ec.entries and rng.random() < 0.7:
            key = rng.choice(sorted(ec.entries))
            off, size = ec.entries[key]
            size = actual_size(max(size, 0), VERSION3)
            if rng.random() < 0.5:
                key = 0 if rng.random() < 0.5 else key
        else:
            off, size = rng.choice((0, 8, 1 << 20, 1 << 30)), rng.choice((0, 16, 100, 5000))
        if rng.random() < 0.1:
            off = -8
        if rng.random() < 0.1:  # past the shard's end (never a negative size: Go 4.48 panics, parity.md)
            size = max(ec.shard_size - off, 0) + 100 if ec is not None else 3 << 20
        masks: tuple[ByteMask, ...] = ()
        if ec is not None and off >= 0 and size > 0:
            masks = (ByteMask("data", ec.shard_clock_ranges(shard, off, size)),)
        ts = 0 if rng.random() < 0.9 else 12345
        self.emit(f"ec read {vid}.{shard}@{off}+{size} key {key:x}", "VolumeEcShardRead",
                  vs.VolumeEcShardReadRequest(volume_id=vid, shard_id=shard, offset=off, size=size, file_key=key,
                                              encode_ts_ns=ts), masks=masks)

    # query ---------------------------------------------------------------------------------

    def op_query(self) -> None:
        """Query over JSON-lines and CSV needles; a needle of binary data only with a filter field
        (gjson scanning arbitrary bytes for the empty path finds objects weedpy's gjson port does
        not: not generated, see docs/differ.md)."""
        rng = self.rng
        fids = []
        field = rng.choice(("age", "name", "city", ""))
        for _ in range(rng.choice((1, 1, 2, 3))):
            vid, v = self.vid()
            readable = [n for n in sorted(v.live.values(), key=lambda x: x.needle_id)
                        if field or n.kind in ("json", "csv", "empty")] if v is not None else []
            if readable and rng.random() < 0.8:
                n = rng.choice(readable)
                cookie = n.cookie if rng.random() < 0.9 else n.cookie ^ 1
                fids.append(f"{vid},{n.needle_id:x}{cookie:08x}")
            else:
                fids.append(rng.choice((f"{vid},{rng.randrange(1, 1 << 20):x}0a0b0c0d", "bad", f"{vid},zz")))
        req = vs.QueryRequest(selections=rng.sample(("name", "age", "city", "missing"), rng.randrange(1, 4)),
                              from_file_ids=fids)
        req.filter.field = field
        req.filter.operand = rng.choice(("", ">", "<", "=", "!=", ">=", "<=", "%"))
        req.filter.value = rng.choice(("30", "ann", "*o*", "x"))
        if rng.random() < 0.85:
            req.input_serialization.json_input.type = rng.choice(("LINES", "LINES", "DOCUMENT", ""))
        else:
            req.input_serialization.csv_input.file_header_info = "USE"
        self.emit(f"query {fids}", "Query", req)

    # the run -------------------------------------------------------------------------------

    def run(self) -> tuple[Step, ...]:
        self.setup()
        ops: list[tuple[Callable[[], None], int]] = [
            (self.op_write, 16), (self.op_needle_status, 6), (self.op_read_meta, 7), (self.op_read_blob, 7),
            (self.op_batch_delete, 8), (self.op_read_all, 3), (self.op_status, 8), (self.op_copy_file, 7),
            (self.op_incremental_copy, 4), (self.op_readonly, 3), (self.op_configure, 2), (self.op_vacuum, 4),
            (self.op_ec, 10), (self.op_query, 3),
        ]
        fns, weights = zip(*ops)
        while len(self.steps) < self.operations:
            self.rng.choices(fns, weights)[0]()
        return tuple(self.steps[:self.operations])


def grpc_random_steps(seed: int, operations: int) -> tuple[Step, ...]:
    """`operations` steps of the seeded random gRPC scenario (the same steps for the same seed)."""
    return _Gen(seed, operations).run()

