"""A `FileOps` (native/storage/_fileio.py) that crashes: SQLite's test6 idea for a volume.

Every write, truncate, sync, rename and removal goes to the real file (so reads, plain `pread`s
of it, see them as they would see the page cache) and is also remembered per file until the
file's next fsync. The `crash_at`-th operation does not return: it raises `SimulatedCrash` after
landing the first `tear` bytes of its data (None: none of it), and every operation after that
raises too (the machine is down). Then `apply_crash`:

- `process` (kill -9): the files stay as they are: what was written is in the page cache;
- `power` (power loss): each file goes back to what its last fsync made durable, plus a random
  choice of the writes since, in order, each one whole, dropped, torn (a random subset of its
  512-byte sectors) or dropped with the file still grown to cover it (zeros);
- `nothing` / `everything`: none / all of the writes since the last fsync.

Creations, renames and removals are durable when made (a journalling file system orders them;
the storage code fsyncs the directories anyway). `ops` lists every operation seen, crash or
not, so a first run without `crash_at` enumerates the crash points of a workload.
"""

from __future__ import annotations

import dataclasses
import os
import random

__all__ = ["SimulatedCrash", "CrashFS", "Op", "SECTOR"]

SECTOR = 512


class SimulatedCrash(BaseException):
    """The machine stopped here (a BaseException: storage code that handles OSError or Exception
    must not carry on after it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Op:
    n: int
    kind: str  # pwrite ftruncate fsync fdatasync replace remove fsync_dir
    path: str
    length: int = 0  # bytes of a pwrite
    offset: int = 0


class CrashFS:
    def __init__(self, *, crash_at: int | None = None, tear: int | None = None) -> None:
        self.crash_at = crash_at
        self.tear = tear
        self.ops: list[Op] = []
        self.crashed = False
        self._paths: dict[int, str] = {}  # open descriptors
        self._durable: dict[str, bytes] = {}
        self._pending: dict[str, list[tuple]] = {}

    # bookkeeping ---------------------------------------------------------------------------------

    def _track(self, path: str) -> None:
        if path not in self._durable:
            try:
                with open(path, "rb") as f:
                    self._durable[path] = f.read()
            except FileNotFoundError:
                self._durable[path] = b""
            self._pending[path] = []

    def _step(self, kind: str, path: str, length: int = 0, offset: int = 0) -> bool:
        """Count an operation; True when it is the one the crash lands on (raise after it)."""
        if self.crashed:
            raise SimulatedCrash("after the crash")
        self.ops.append(Op(len(self.ops) + 1, kind, path, length, offset))
        if self.crash_at is not None and len(self.ops) == self.crash_at:
            self.crashed = True
            return True
        return False

    # FileOps -------------------------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        if self.crashed:
            raise SimulatedCrash("after the crash")
        path = os.path.abspath(path)
        self._track(path)
        fd = os.open(path, flags, mode)
        self._paths[fd] = path
        if flags & os.O_TRUNC:
            self._pending[path].append(("t", 0))
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        os.close(fd)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        """Reads are not crash points: they see the page cache, which is the real file."""
        return os.pread(fd, length, offset)

    preadv = staticmethod(os.preadv)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        path = self._paths[fd]
        data = bytes(data)
        if self._step("pwrite", path, len(data), offset):
            if self.tear:
                os.pwrite(fd, data[:self.tear], offset)
                self._pending[path].append(("w", offset, data[:self.tear]))
            raise SimulatedCrash(f"pwrite of {len(data)} bytes at {offset} of {path}, {self.tear or 0} landed")
        n = os.pwrite(fd, data, offset)
        self._pending[path].append(("w", offset, data[:n]))
        return n

    def ftruncate(self, fd: int, size: int) -> None:
        path = self._paths[fd]
        if self._step("ftruncate", path, size):
            raise SimulatedCrash(f"ftruncate {path} to {size}")
        os.ftruncate(fd, size)
        self._pending[path].append(("t", size))

    def _sync(self, kind: str, fd: int) -> None:
        path = self._paths[fd]
        if self._step(kind, path):
            raise SimulatedCrash(f"{kind} {path}")
        os.fsync(fd)
        with open(path, "rb") as f:
            self._durable[path] = f.read()
        self._pending[path] = []

    def fsync(self, fd: int) -> None:
        self._sync("fsync", fd)

    def fdatasync(self, fd: int) -> None:
        self._sync("fdatasync", fd)

    def replace(self, src: str, dst: str) -> None:
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        self._track(src)
        if self._step("replace", src):
            raise SimulatedCrash(f"rename {src} -> {dst}")
        os.replace(src, dst)
        self._durable[dst] = self._durable.pop(src)
        self._pending[dst] = self._pending.pop(src)
        for fd, p in self._paths.items():
            if p == src:
                self._paths[fd] = dst

    def remove(self, path: str) -> None:
        path = os.path.abspath(path)
        if self._step("remove", path):
            raise SimulatedCrash(f"remove {path}")
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        self._durable.pop(path, None)
        self._pending.pop(path, None)

    def fsync_dir(self, directory: str) -> None:
        if self._step("fsync_dir", os.path.abspath(directory)):
            raise SimulatedCrash(f"fsync dir {directory}")

    # the crash -----------------------------------------------------------------------------------

    def close_all(self) -> None:
        """The dead process's descriptors."""
        for fd in list(self._paths):
            try:
                os.close(fd)
            except OSError:
                pass
        self._paths.clear()

    def apply_crash(self, loss: str, rng: random.Random | None = None) -> dict[str, int]:
        """Make the files what the disk holds after the crash (see the module docstring);
        returns how many pending writes were kept whole, dropped, torn and zeroed."""
        self.close_all()
        counts = {"kept": 0, "dropped": 0, "torn": 0, "zeroed": 0}
        if loss in ("process", "everything"):
            return counts
        rng = rng or random.Random(0)
        for path, pending in self._pending.items():
            if not os.path.exists(path):
                continue
            img = bytearray(self._durable.get(path, b""))
            for op in pending:
                choice = "dropped" if loss == "nothing" else rng.choice(("kept", "dropped", "torn", "zeroed"))
                if op[0] == "t":
                    if choice != "dropped":
                        del img[op[1]:]
                        img.extend(b"\0" * (op[1] - len(img)))
                    counts["kept" if choice != "dropped" else "dropped"] += 1
                    continue
                _, offset, data = op
                end = offset + len(data)
                if choice == "dropped":
                    counts["dropped"] += 1
                    continue
                if len(img) < end:
                    img.extend(b"\0" * (end - len(img)))
                if choice == "kept":
                    img[offset:end] = data
                elif choice == "torn":
                    for s in range(offset - offset % SECTOR, end, SECTOR):
                        lo, hi = max(s, offset), min(s + SECTOR, end)
                        if rng.random() < 0.5:
                            img[lo:hi] = data[lo - offset:hi - offset]
                counts[choice] += 1
            with open(path, "wb") as f:
                f.write(img)
        return counts
