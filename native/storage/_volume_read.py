"""A volume's reads: needles whole, plain (the fast path), metadata only or streamed, raw
records, and walks of `.dat`.

Lock-free with respect to writers: the map lookup takes the map's own short lock and the
`pread` happens under the read gate only, which a compaction commit or a close drains.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from ._crc import crc32c, crc_matches
from ._errors import ChecksumMismatch, CookieMismatch, Corrupted, Deleted, NotFound
from ._needle import (
    FLAG_HAS_LAST_MODIFIED,
    FLAG_HAS_MIME,
    FLAG_HAS_NAME,
    FLAG_HAS_TTL,
    LAST_MODIFIED_BYTES,
    Needle,
    data_start,
    decode_meta,
    decode_needle,
    meta_span,
    parse_header,
)
from ._needle_map import NeedleValue
from ._scrub import read_bytes_error
from ._stream import NeedleStream
from ._types import (
    CHECKSUM_SIZE, DATA_SIZE_SIZE, NEEDLE_HEADER_SIZE, PADDING_SIZE, PAGED_READ_LIMIT, TIMESTAMP_SIZE, VERSION1, VERSION3,
    actual_size,
)
from ._volume_base import RecordInfo, VolumeBase
from ._errors import WouldBlock
from ._fileio import NOT_SUPPORTED, pread_cached

__all__ = ["VolumeReads", "PlainRead"]

_HEAD_AND_DATA_SIZE = struct.Struct(">IQiI")  # cookie, id, Size, DataSize (versions 2 and 3)

# What `Volume.read_plain` returns: (cookie, data, flags, name, mime, last_modified, crc, Size).
PlainRead = tuple[int, bytes | memoryview, int, bytes, bytes, int, int, int]
VIEW_OVER = 64 * 1024
"""read_plain reads a record over this many bytes in place and gives its data as a view."""


class VolumeReads(VolumeBase):
    """The read half of `Volume`."""

    # raw bytes ---------------------------------------------------------------------------------

    def pinned_dat(self, *, blocking: bool = True) -> tuple[int, int]:
        """(a private duplicate of the `.dat` fd, its size now): for long scans that must not
        see a compaction commit swap the files underneath. The caller closes the fd. Not
        `blocking` (the event loop): WouldBlock instead of waiting for a swap or a reopen."""
        self._follow(blocking)
        return self._pin_dat(blocking)

    def _pin_dat(self, blocking: bool = True) -> tuple[int, int]:
        """`pinned_dat` of this view as it is: for a caller that caught up before it took the
        write lock (a catch-up that must reopen waits for that lock)."""
        gate = self._enter_gate(blocking)
        try:
            return os.dup(self._dat_fd), self._dat_size
        finally:
            gate.__exit__()

    def _enter_gate(self, blocking: bool):
        """The read gate entered (`_reading()`), or WouldBlock when not `blocking` and a
        compaction commit is swapping the files (a swap waits for every reader in flight)."""
        gate = self._gate
        if blocking:
            gate.__enter__()
        elif not gate.enter_nowait():
            raise WouldBlock(f"volume {self.id} is swapping its files")
        return gate

    def read_at(self, length: int, offset: int) -> bytes:
        """Raw `.dat` bytes (short at the end of the file), for the gRPC readers that take
        offsets from the caller (ReadNeedleBlob, ReadNeedleMeta)."""
        return self._pread(length, offset)

    def read_record(self, offset: int, size: int) -> bytes:
        """The raw record at a byte offset whose header Size is `size` (ReadNeedleBlob)."""
        length = actual_size(max(size, 0), self.version)
        raw = self._pread(length, offset)
        if len(raw) < length:
            raise Corrupted(f"volume {self.id}: record at {offset} is cut short by the end of .dat")
        return raw

    # reads -------------------------------------------------------------------------------------

    def needle_value(self, needle_id: int, *, blocking: bool = True) -> NeedleValue | None:
        self._follow(blocking)
        return self.nm.get(needle_id)

    def _locate(self, needle_id: int, read_deleted: bool) -> tuple[int, int] | None:
        """(byte offset, size) of the live (or, if asked, deleted) record; None for size 0."""
        nv = self.nm.get(needle_id)
        if nv is None or nv.offset == 0:
            raise NotFound(f"needle {needle_id:x} not found in volume {self.id}")
        size = nv.size
        if size < 0:
            if read_deleted and size != -1:
                size = -size
            else:
                raise Deleted(f"needle {needle_id:x} in volume {self.id} is deleted")
        if size == 0:
            return None
        return nv.offset * PADDING_SIZE, size

    def read_needle(
        self,
        needle_id: int,
        cookie: int | None = None,
        *,
        read_deleted: bool = False,
        verify_crc: bool = True,
        blocking: bool = True,
    ) -> Needle:
        """The whole needle, CRC-checked. `cookie` None skips the cookie check.

        Like Go: an entry of size 0 returns an empty needle without reading (or checking the
        cookie); a TTL-expired needle is NotFound; a wrong cookie is CookieMismatch. Not
        `blocking` (the event loop): WouldBlock instead of waiting for a lock or a swap.
        """
        self._follow(blocking)
        gate = self._enter_gate(blocking)
        try:
            loc = self._locate(needle_id, read_deleted)
            if loc is None:
                self._check_empty_record(needle_id, blocking)
                return Needle(id=needle_id, cookie=cookie or 0, checksum=0)
            offset, size = loc
            raw = self._read_dat(actual_size(size, self.version), offset, blocking)  # the gate keeps the fd
            n = self._decode_at(raw, offset, size, verify_crc, blocking)
        finally:
            gate.__exit__()
        self._check_ttl_and_cookie(n, cookie)
        return n

    def _pread_cached(self, length: int, offset: int) -> bytes:
        """`.dat` bytes from the page cache, for the event loop (the read gate entered): WouldBlock
        where any of them would be read from the disk (the caller reads in a worker thread
        instead); short only at the end of the file, as `pread`. The file tells where it ends,
        not `_dat_size`: a shared volume's view applies another process's rows before it moves
        its size on, and a record partly cached must not be taken for one cut short then."""
        if self._cached_only:
            try:
                return pread_cached(self._dat_fd, length, offset, self.files)
            except BlockingIOError:
                raise WouldBlock(f"volume {self.id}: the record at {offset} is not (all) in the page cache") from None
            except OSError as exc:
                if exc.errno not in NOT_SUPPORTED:
                    raise
                self._cached_only = 0  # a file system without the flag: the loop reads as any reader
        return self.files.pread(self._dat_fd, length, offset)

    def _read_dat(self, length: int, offset: int, blocking: bool) -> bytes:
        """`.dat` bytes under the read gate; not `blocking`, from the page cache only."""
        if blocking:
            return self.files.pread(self._dat_fd, length, offset)
        return self._pread_cached(length, offset)

    def _check_empty_record(self, needle_id: int, blocking: bool = True) -> None:
        """An index entry of size 0 is an empty needle only if its record says so: a damaged
        `.idx` row (a size field zeroed or a single bit of it flipped) must not make a needle's
        data read as empty. Go returns the empty needle unread; this costs one header read."""
        nv = self.nm.get(needle_id)
        if nv is None or nv.offset == 0:
            return
        at = nv.offset * PADDING_SIZE
        for offset in (at, at + self.codec.offsets.max_volume_size):
            head = self._read_dat(NEEDLE_HEADER_SIZE, offset, blocking)
            if len(head) == NEEDLE_HEADER_SIZE:
                h = parse_header(head)
                if h.id == needle_id and h.size == 0:
                    return
            if self.codec.offsets.width != 4 or self._dat_size <= at + self.codec.offsets.max_volume_size:
                break
        raise Corrupted(f"volume {self.id}: the index says needle {needle_id:x} at {at} is empty, its record does not")

    def read_plain(self, needle_id: int, limit: int) -> PlainRead | None:
        """The common read, for a caller with a full path to fall back on.

        A live needle of 1..`limit` record bytes with data, no TTL and a record that decodes
        cleanly comes back as (cookie, data, flags, name, mime, last_modified, crc, Size), read
        and CRC-checked as `read_needle` does (Size: the record's, as the index has it). The
        data of a record over VIEW_OVER bytes is a read-only view of the buffer it was read
        into: each copy of a large needle would cost about as much as its CRC.
        Anything else (absent, deleted, empty, too large, a TTL, version 1, a `.dat` that is not
        a local file, a read error, a short or inconsistent record, a CRC mismatch, a record over
        PAGED_READ_LIMIT whose stored CRC is the masked legacy form) is None:
        `read_needle` then reports it with Go's error. No cookie check: the caller compares.
        """
        version = self.super_block.version
        if version == VERSION1:
            return None
        if self.shared is not None:  # another process may have committed (not for a volume of its own)
            try:
                self._follow(False)
            except WouldBlock:
                return None
        loc = self.nm.locate(needle_id)
        if loc is None:
            return None
        units, size = loc
        if units == 0 or size <= DATA_SIZE_SIZE or size > limit:
            return None
        # actual_size(size, version), inline: header, body, checksum (and timestamp), padding to 8
        length = NEEDLE_HEADER_SIZE + size + (CHECKSUM_SIZE + TIMESTAMP_SIZE if version == VERSION3 else CHECKSUM_SIZE)
        length += PADDING_SIZE - length % PADDING_SIZE
        # The files held steady for the pread by the read gate's lock itself, held over it (the
        # gate's enter and exit, without counting a reader): a compaction commit's swap or a
        # close waits for it; a thread's read waits at most this one pread. Busy or swapping:
        # the full path waits. The record comes from the page cache only: a miss would wait for
        # the disk with every connection of the loop (the full path reads it in a thread).
        io = self._io
        if not io.acquire(False):
            return None
        try:
            fd = self._dat_fd  # -1 when the .dat is not a local file (tiered): not this path's job
            if self._swapping or self._closed or fd < 0:
                return None
            buf = bytearray(length)
            got = self.files.preadv(fd, (buf,), units * PADDING_SIZE, self._cached_only)
        except OSError as exc:  # not cached (BlockingIOError), or an unreadable sector (EIO): the full path
            if exc.errno in NOT_SUPPORTED:
                self._cached_only = 0  # a file system without the flag: the loop reads as any reader
            return None
        finally:
            io.release()
        if got < length:
            return None
        raw = bytes(buf) if length <= VIEW_OVER else buf
        cookie, head_id, head_size, data_size = _HEAD_AND_DATA_SIZE.unpack_from(raw)
        if head_id != needle_id or head_size != size or data_size == 0 or data_size + DATA_SIZE_SIZE > size:
            # another needle's record: the map was looked up before the gate, and a compaction
            # commit may have swapped the files since (the full path looks it up again)
            return None
        i = NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE + data_size
        n = NEEDLE_HEADER_SIZE + size
        data = raw[NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE:i] if raw is not buf else (
            memoryview(buf).toreadonly()[NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE:i])
        crc = crc32c(data)
        stored = int.from_bytes(raw[n:n + 4], "big")
        if stored != crc and (not crc_matches(stored, crc) or size > PAGED_READ_LIMIT):
            # the legacy form only when it differs; over PAGED_READ_LIMIT Go reads the metadata
            # only and sends that stored (masked) CRC as the ETag: the full path's answer
            return None
        # The optional fields, each read only while bytes remain (as decode_needle does).
        flags, name, mime, last_modified = 0, b"", b"", 0
        if i < n:
            flags = raw[i]
            i += 1
            if flags & FLAG_HAS_TTL:
                return None
            if i < n and flags & FLAG_HAS_NAME:
                end = i + 1 + raw[i]
                if end > n:
                    return None
                name = raw[i + 1:end]
                i = end
            if i < n and flags & FLAG_HAS_MIME:
                end = i + 1 + raw[i]
                if end > n:
                    return None
                mime = raw[i + 1:end]
                i = end
            if i < n and flags & FLAG_HAS_LAST_MODIFIED:
                if i + LAST_MODIFIED_BYTES > n:
                    return None
                last_modified = int.from_bytes(raw[i:i + LAST_MODIFIED_BYTES], "big")
        if raw is buf:  # slices of the buffer
            name, mime = bytes(name), bytes(mime)
        return cookie, data, flags, name, mime, last_modified, crc, size

    def _decode_at(self, raw: bytes, offset: int, size: int, verify_crc: bool, blocking: bool = True) -> Needle:
        """The record at `offset`; a record that does not read fails with Go's ReadBytes text
        (handlers pass it on as Go does). Not `blocking`: the second location too is read from
        the page cache only (the read gate entered)."""
        try:
            return decode_needle(raw, self.version, expected_size=size, verify_crc=verify_crc)
        except ChecksumMismatch as exc:
            raise ChecksumMismatch(self._go_read_error(raw, offset, size) or str(exc)) from None
        except Corrupted as exc:
            alt = offset + self.codec.offsets.max_volume_size
            if self.codec.offsets.width == 4 and self._dat_size > alt:
                length = actual_size(size, self.version)
                raw = self._pread(length, alt) if blocking else self._pread_cached(length, alt)
                return decode_needle(raw, self.version, expected_size=size, verify_crc=verify_crc)
            raise Corrupted(self._go_read_error(raw, offset, size) or f"volume {self.id} offset {offset}: {exc}") from None

    def _go_read_error(self, raw: bytes, offset: int, size: int) -> str | None:
        if len(raw) < actual_size(size, self.version):
            return "EOF"
        return read_bytes_error(raw, offset, size, self.version, self.codec.offsets.width)

    def _check_ttl_and_cookie(self, n: Needle, cookie: int | None) -> None:
        if n.is_expired(self._clock_ns()):
            raise NotFound(f"needle {n.id:x} in volume {self.id} has expired")
        if cookie is not None and n.cookie != cookie:
            raise CookieMismatch(f"needle {n.id:x} in volume {self.id}: cookie {cookie:08x} does not match")

    def read_needle_meta(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False) -> tuple[Needle, int]:
        """(needle without data, data size), reading only the header and the metadata tail."""
        self._follow()
        with self._reading():
            loc = self._locate(needle_id, read_deleted)
            if loc is None:
                return Needle(id=needle_id, cookie=cookie or 0, checksum=0), 0
            offset, size = loc
            n, data_size = self._read_meta_at(offset, size)
        self._check_ttl_and_cookie(n, cookie)
        return n, data_size

    def _read_meta_at(self, offset: int, size: int, blocking: bool = True) -> tuple[Needle, int]:
        """Not `blocking` (the event loop, the read gate entered): from the page cache only."""
        read = self._pread if blocking else self._pread_cached
        head = read(NEEDLE_HEADER_SIZE + DATA_SIZE_SIZE, offset)
        if len(head) < NEEDLE_HEADER_SIZE + (DATA_SIZE_SIZE if size > 0 else 0):
            raise Corrupted(f"volume {self.id}: record at {offset} is cut short by the end of .dat")
        h = parse_header(head)
        if h.size != size:
            raise Corrupted(f"volume {self.id} offset {offset}: header size {h.size}, index says {size}")
        data_size = int.from_bytes(head[16:20], "big") if self.version != 1 and size > 0 else size
        start, length = meta_span(size, data_size, self.version)
        if length < 0 or length > 128 * 1024:
            raise Corrupted(f"volume {self.id} offset {offset}: invalid needle meta size {length}")
        rest = read(length, offset + start)
        if len(rest) < length:
            raise Corrupted(f"volume {self.id}: record at {offset} is cut short by the end of .dat")
        return decode_meta(head, rest, self.version)

    def open_needle_stream(self, needle_id: int, cookie: int | None = None, *, read_deleted: bool = False,
                           blocking: bool = True) -> NeedleStream:
        """Metadata now, data on demand: for needles too large to read whole (Go streams > 1 MiB).
        Not `blocking`: WouldBlock instead of waiting for a swap or a reopen."""
        self._follow(blocking)
        gate = self._enter_gate(blocking)
        try:
            loc = self._locate(needle_id, read_deleted)
            if loc is None:
                return NeedleStream(Needle(id=needle_id, cookie=cookie or 0, checksum=0), self._dat_fd, 0, 0,
                                    pread=self.files.pread)
            offset, size = loc
            n, data_size = self._read_meta_at(offset, size, blocking)
            self._check_ttl_and_cookie(n, cookie)
            return NeedleStream(n, self._dat_fd, offset + data_start(size, self.version), data_size,
                                pread=self.files.pread)
        finally:
            gate.__exit__()

    def iter_records(self, start: int | None = None) -> Iterator[RecordInfo]:
        """Walk `.dat` record by record from `start` (default: after the super block) by
        hopping headers. Stops at the end, or raises Corrupted at a torn or impossible record."""
        self._follow()
        pos = self.super_block.block_size if start is None else start
        end = self._dat_size
        while pos < end:
            head = self._pread(NEEDLE_HEADER_SIZE, pos)
            if len(head) < NEEDLE_HEADER_SIZE:
                raise Corrupted(f"volume {self.id}: torn record header at {pos}")
            h = parse_header(head)
            if h.size < 0:
                raise Corrupted(f"volume {self.id}: negative record size at {pos}")
            length = actual_size(h.size, self.version)
            if pos + length > end:
                raise Corrupted(f"volume {self.id}: record at {pos} needs {length} bytes, .dat ends at {end}")
            yield RecordInfo(pos, h, length)
            pos += length
