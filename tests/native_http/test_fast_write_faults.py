"""Fast-path uploads (uvloop and trio) whose append fails on an I/O error, with and without `?fsync=true`."""

from __future__ import annotations

import errno
import os

import pytest

from tests.native_http.support import start_native
from tests.native_http.test_diff_fast_write import BIN, file_part, go_post, multipart, raw_exchange


class _FailOnce:
    """The volume's file operations; the first pwrite to `fd` fails with EIO."""

    def __init__(self, real: object, fd: int) -> None:
        self._real, self._fd, self.left, self.pwrites = real, fd, 1, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        if fd == self._fd:
            self.pwrites += 1
            if self.left:
                self.left -= 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._real.pwrite(fd, data, offset)  # type: ignore[attr-defined]


@pytest.mark.parametrize("loop", ["uvloop", "trio"])
@pytest.mark.parametrize("query", [b"", b"?fsync=true"])
def test_a_failed_append_answers_500_with_or_without_fsync(tmp_path, loop: str, query: bytes) -> None:
    """Go answers 500 for an append that failed (the full path and the non-fsync fast path too);
    a single attempt: the failed append is not tried again in a thread."""
    with start_native(tmp_path / "native", volumes=(1,), loop=loop) as py:
        assert raw_exchange(py.port, go_post(b"1,0f00000001", multipart([file_part(b"a.bin", BIN)]))).status == 201
        vol = py.store.find_volume(1)
        spy = vol.files = _FailOnce(vol.files, vol._dat_fd)
        answer = raw_exchange(py.port, go_post(b"1,1100000002" + query, multipart([file_part(b"b.bin", BIN)])))
        assert (answer.status, spy.pwrites) == (500, 1), answer.body


def test_a_volume_closed_between_the_append_and_its_sync_answers_500(tmp_path) -> None:
    """An unmount or delete after the event loop's append of an `?fsync=true` upload and before
    the worker thread's sync: a plain StorageError (a 500), the volume not marked as failed
    (before: fdatasync(-1) raised ValueError, the upload went unanswered and was logged as a crash)."""
    from native.storage import Needle, StorageError, Volume

    v = Volume.create(tmp_path, 1)
    v.write_needle(Needle.create(1, 0xC0FFEE, b"x" * 100))
    v.close()
    with pytest.raises(StorageError, match="closed"):
        v.sync_appended()
    assert v._sync_error is None and not v.no_write_or_delete
