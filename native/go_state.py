"""What the Go backend holds in memory for each volume, followed from the calls it answered.

Mixed mode's read-only view (native/follower.py) reads Go's files, but some of what Go answers
lives only in Go's memory and changes only with certain calls:

- read-only marks: set by VolumeMarkReadonly (persisted in `.vif` only with `persist`), cleared
  by VolumeMarkWritable, read from `.vif` when Go loads the volume, kept across a compaction
  commit;
- the needle map: loaded from the `.idx` when Go loads the volume (start-up, VolumeMount,
  VolumeConfigure, a compaction commit, a copy or EC decode that mounts it), as its read-only
  kind when the volume is marked read-only then (VolumeMarkWritable, and a VolumeMarkReadonly
  that lets deletes in, load the writable kind again); rows appended later are applied as
  runtime writes and deletes; a commit adopts the map built while compacting, which counts
  every index row as a file;
- the volume info: the `.vif` as read at that load, changed afterwards only by read-only marks
  (an EC encode writes a new `.vif` Go does not read back).

`GoStateBook.observe(method, request, response)` takes each successful call the gateway relayed
to Go (weedpy/mixed.py) and records, per volume, what Go loaded when (`GoVolumeState`); the
follower builds its views from that. Volumes Go loaded at start-up and has not reloaded since
start from what their files said when the book was made. Sans-IO but for the small reads of
`.idx` lengths and `.vif` files the caller's `files` callback does.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from native.storage import VolumeInfo
from proto import volume_server_pb2 as vs

__all__ = ["GoVolumeState", "GoStateBook", "VolumeFiles", "WATCHED"]

P = "/volume_server_pb.VolumeServer/"


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeFiles:
    """What a volume's files say right now (read by the follower)."""

    idx_bytes: int
    info: VolumeInfo | None  # the .vif, None when absent or unreadable
    delete_rows: int  # index rows Go's loader applies as deletes


@dataclasses.dataclass(frozen=True, slots=True)
class GoVolumeState:
    loaded_idx_bytes: int  # the .idx length at Go's last load of the volume
    sorted_map: bool  # Go's read-only needle map (a .sdx) since that load
    no_write_or_delete: bool
    no_write_can_delete: bool
    info: VolumeInfo | None  # Go's in-memory volume info (None: as the files say)
    extra_files: int = 0  # files Go's map counts beyond a fresh load (a commit's adopted map)

    @classmethod
    def loaded(cls, files: VolumeFiles, marks: tuple[bool, bool] = (False, False), *, committed: bool = False) -> "GoVolumeState":
        """Go's state right after it loads the volume from `files` (with runtime `marks`)."""
        info = files.info
        vif = (bool(info and info.read_only and not info.read_only_can_delete),
               bool(info and info.read_only and info.read_only_can_delete))
        no_write, can_delete = marks[0] or vif[0], marks[1] or vif[1]
        sorted_map = no_write or can_delete
        extra = files.delete_rows if committed and not sorted_map else 0
        return cls(files.idx_bytes, sorted_map, no_write, can_delete, info, extra)


# The calls that change what Go holds in memory for a volume (all others only append rows).
WATCHED = frozenset(P + m for m in (
    "AllocateVolume", "VolumeMount", "VolumeUnmount", "VolumeDelete", "VolumeConfigure", "VolumeMarkReadonly",
    "VolumeMarkWritable", "VacuumVolumeCommit", "VolumeCopy", "VolumeEcShardsToVolume", "DeleteCollection",
))


class GoStateBook:
    """Per volume id: Go's state since its last load (absent: as at start-up)."""

    def __init__(self, files: Callable[[int], VolumeFiles | None]) -> None:
        self._files = files  # vid -> its files now (None: not on disk)
        self._lock = threading.Lock()
        self._states: dict[int, GoVolumeState] = {}
        self._unmounted: set[int] = set()
        self.version = 0  # bumped by every change: views built before are stale
        # volumes a call Go answered changes, while the change is being followed (in a thread:
        # it reads the .idx); lookups of them wait until it is done (`settle`)
        self._settling: dict[int, int] = {}
        self._settled = threading.Condition(self._lock)

    # calls being followed ----------------------------------------------------------------------

    def begin(self, method: str, request: bytes) -> list[int]:
        """Cheap (the event loop, as soon as Go answered): the volumes `observe` will change are
        marked settling until `end`, so that no lookup serves them as they were meanwhile."""
        name = method.rsplit("/", 1)[-1]
        if name == "DeleteCollection":
            return []
        req = getattr(vs, f"{name}Request")()
        try:
            req.ParseFromString(request)
        except Exception:  # noqa: BLE001 - observe reports a request that does not parse
            return []
        with self._lock:
            self._settling[req.volume_id] = self._settling.get(req.volume_id, 0) + 1
        return [req.volume_id]

    def end(self, vids: list[int]) -> None:
        with self._lock:
            for vid in vids:
                left = self._settling.get(vid, 0) - 1
                if left > 0:
                    self._settling[vid] = left
                else:
                    self._settling.pop(vid, None)
            self._settled.notify_all()

    def settling(self, vid: int | None = None) -> bool:
        """`vid` (any volume when None) is being changed by a call Go answered."""
        with self._lock:
            return bool(self._settling) if vid is None else vid in self._settling

    def settle(self, vid: int | None = None) -> None:
        """Wait until `settling(vid)` is false (a worker thread's wait, never the event loop's)."""
        with self._settled:
            while (self._settling if vid is None else vid in self._settling):
                self._settled.wait()

    def remember_startup(self, vids: list[int]) -> None:
        """The state of the volumes Go loads at start-up (call before Go starts writing)."""
        for vid in vids:
            files = self._files(vid)
            if files is not None:
                with self._lock:
                    self._states.setdefault(vid, GoVolumeState.loaded(files))

    def state(self, vid: int) -> GoVolumeState | None:
        with self._lock:
            return self._states.get(vid)

    def unmounted(self, vid: int) -> bool:
        with self._lock:
            return vid in self._unmounted

    def observe(self, method: str, request: bytes, response: bytes | None) -> list[int]:
        """A call Go answered successfully: the volumes whose state changed."""
        name = method.rsplit("/", 1)[-1]
        if name == "DeleteCollection":
            return []  # the files go: the follower sees them gone
        cls = getattr(vs, f"{name}Request")
        req = cls()
        req.ParseFromString(request)
        vid = req.volume_id
        if name == "VolumeConfigure" and response is not None:
            answer = vs.VolumeConfigureResponse()
            answer.ParseFromString(response)
            if answer.error:  # refused, or not remounted: nothing Go holds changed... unless
                if "volume configure mount" not in answer.error:  # it failed after unmounting
                    return []
                with self._lock:
                    self._states.pop(vid, None)
                    self._unmounted.add(vid)
                    self.version += 1
                return [vid]
        with self._lock:
            cur = self._states.get(vid)
        files = self._files(vid)
        new: GoVolumeState | None
        if name in ("VolumeUnmount", "VolumeDelete"):
            new = None
        elif name in ("AllocateVolume", "VolumeMount", "VolumeConfigure", "VolumeCopy", "VolumeEcShardsToVolume"):
            new = GoVolumeState.loaded(files) if files is not None else None
        elif name == "VacuumVolumeCommit":
            marks = (cur.no_write_or_delete, cur.no_write_can_delete) if cur else (False, False)
            new = GoVolumeState.loaded(files, marks, committed=True) if files is not None else cur
        elif cur is None and files is not None:
            new = GoVolumeState.loaded(files)
            new = self._marked(name, req, new, files)
        else:
            new = self._marked(name, req, cur, files) if cur is not None else None
        with self._lock:
            if new is None:
                self._states.pop(vid, None)
            else:
                self._states[vid] = new
            if name in ("VolumeUnmount", "VolumeDelete"):
                self._unmounted.add(vid)
            else:
                self._unmounted.discard(vid)
            self.version += 1
        return [vid]

    @staticmethod
    def _marked(name: str, req, cur: GoVolumeState, files: VolumeFiles | None) -> GoVolumeState:
        info = cur.info
        if name == "VolumeMarkReadonly":
            if req.persist and info is not None:
                info = info.replace(read_only=True, read_only_can_delete=req.can_delete)
            out = dataclasses.replace(cur, no_write_or_delete=not req.can_delete, no_write_can_delete=req.can_delete,
                                      info=info)
            if req.can_delete and cur.sorted_map and files is not None:  # Go's reopenIdxForWrite
                out = dataclasses.replace(out, loaded_idx_bytes=files.idx_bytes, sorted_map=False, extra_files=0)
            return out
        # VolumeMarkWritable: persisted cleared; a read-only map is loaded again as the writable kind
        if info is not None:
            info = info.replace(read_only=False, read_only_can_delete=False)
        out = dataclasses.replace(cur, no_write_or_delete=False, no_write_can_delete=False, info=info)
        if cur.sorted_map and files is not None:
            out = dataclasses.replace(out, loaded_idx_bytes=files.idx_bytes, sorted_map=False, extra_files=0)
        return out
