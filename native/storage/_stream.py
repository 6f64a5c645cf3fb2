"""Reading a needle's data range from `.dat` without holding it all in memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from ._crc import crc32c_update, crc_matches
from ._errors import ChecksumMismatch, Corrupted
from ._needle import Needle

__all__ = ["NeedleStream", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 4 << 20  # Go's -readBufferSizeMB default


class NeedleStream:
    """A needle's metadata plus where its data lies, on a private duplicate of the `.dat` fd.

    `needle` has every field but `data` (empty); its `checksum` is the stored CRC. The fd is
    duplicated so that unmounting the volume mid-download cannot make this stream read from a
    reused descriptor. Use as a context manager, or call `close()`.

    For zero-copy serving: `os.sendfile(sock, stream.fd, stream.data_offset + start, n)`.
    """

    __slots__ = ("needle", "data_offset", "data_size", "verified", "_fd", "_pread")

    def __init__(self, needle: Needle, fd: int, data_offset: int, data_size: int,
                 pread: Callable[[int, int, int], bytes] = os.pread) -> None:
        self.needle = needle
        self.data_offset = data_offset
        self.data_size = data_size
        self.verified = False  # `verify()` passed: the data's pages were just read
        self._pread = pread  # the volume's `files.pread`
        self._fd = os.dup(fd)

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError("needle stream is closed")
        return self._fd

    def read(self, start: int = 0, length: int | None = None) -> bytes:
        """One pread of `length` bytes of data from `start` (clamped to the data)."""
        start, length = self._clamp(start, length)
        out = self._pread(self.fd, length, self.data_offset + start)
        if len(out) != length:
            raise Corrupted(f"needle {self.needle.id:x}: data cut short by the end of .dat")
        return out

    def iter_chunks(self, start: int = 0, length: int | None = None, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Yield the range in chunks; a whole-data read verifies the CRC after the last chunk
        (as Go does: a mismatch surfaces as an error once the bytes have gone out)."""
        start, length = self._clamp(start, length)
        whole = start == 0 and length == self.data_size
        crc = 0
        pos, end = start, start + length
        while pos < end:
            want = min(chunk_size, end - pos)
            chunk = self._pread(self.fd, want, self.data_offset + pos)
            if len(chunk) != want:
                raise Corrupted(f"needle {self.needle.id:x}: data cut short by the end of .dat")
            if whole:
                crc = crc32c_update(crc, chunk)
            pos += want
            yield chunk
        if whole and self.data_size and not crc_matches(self.needle.checksum or 0, crc):
            raise ChecksumMismatch(
                f"needle {self.needle.id:x}: CRC {crc:08x} of the data differs from stored {self.needle.checksum:08x}"
            )

    def verify(self, chunk_size: int = DEFAULT_CHUNK) -> None:
        """Read the whole data and check its CRC (ChecksumMismatch, Corrupted when cut short):
        for a server that must not send a wrong byte, before the first one goes out (a ranged
        read or sendfile never sees the data)."""
        for _ in self.iter_chunks(0, None, chunk_size):
            pass
        self.verified = True

    def _clamp(self, start: int, length: int | None) -> tuple[int, int]:
        if start < 0 or start > self.data_size:
            raise ValueError(f"start {start} outside data of {self.data_size} bytes")
        if length is None or start + length > self.data_size:
            length = self.data_size - start
        if length < 0:
            raise ValueError("negative length")
        return start, length

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "NeedleStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass
