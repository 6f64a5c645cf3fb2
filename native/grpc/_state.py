"""The server's persistent state flags (`state.pb`, Go's storage.State): maintenance mode and a
version that every SetState must name, so two admins cannot overwrite each other's change.

The file lives in the first location's index directory, as in Go, and is the same protobuf, so
a directory keeps its maintenance flag across Go and weedpy. With `follow=True` (mixed mode,
where Go owns the file: the read-only view and the writer store of the volumes native owns) every
read re-reads it and updates are refused, so native refuses what Go refuses in maintenance mode.
"""

from __future__ import annotations

import os
import threading

from google.protobuf.message import DecodeError

from proto.lazy import volume_server_pb2 as vs

__all__ = ["StateFile", "StateVersionMismatch", "STATE_FILE_NAME"]

STATE_FILE_NAME = "state.pb"


class StateVersionMismatch(ValueError):
    pass


class StateFile:
    def __init__(self, directory: str, *, follow: bool = False) -> None:
        self.path = os.path.join(directory, STATE_FILE_NAME)
        self.follow = follow
        self._lock = threading.Lock()
        self._pb = self._read()  # None: no file, the empty state

    def _read(self) -> vs.VolumeServerState | None:
        """The stored state, None when there is no file (an empty state: the generated messages
        load only when a state is asked for, not at start-up); raises ValueError if unreadable."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"failed to read store state from {self.path} : {exc}") from exc
        try:
            return vs.VolumeServerState.FromString(raw)
        except DecodeError as exc:
            raise ValueError(f"failed to parse store state from {self.path} : {exc}") from exc

    def proto(self) -> vs.VolumeServerState:
        """A copy of the current state. No lock: the heartbeat and every guarded rpc read it on
        the event loop, and an update holds the lock while it writes the file; `_pb` is replaced
        whole, never changed in place."""
        if self.follow:
            try:
                read = self._read()
            except ValueError:
                pass  # unreadable: keep the last good state
            else:
                # Go saves by truncating then writing: an empty file after a saved state (version >= 1)
                # is one being written, not a state (Go's own, in memory, is the last one saved)
                if (read is not None and read.ByteSize()) or self._pb is None or not self._pb.version:
                    self._pb = read
        return self._copy()

    @property
    def maintenance(self) -> bool:
        if self._pb is None and not self.follow:
            return False  # no file: answered without the messages
        return self.proto().maintenance

    def update(self, state: vs.VolumeServerState | None) -> vs.VolumeServerState:
        """Go's State.Update: the versions must match; merge, bump the version, save."""
        if self.follow:
            raise PermissionError("the state file is owned by the Go backend")
        with self._lock:
            if state is None:
                return self._copy()
            got, want = (0 if self._pb is None else self._pb.version), state.version
            if got != want:
                raise StateVersionMismatch(f"version mismatch for VolumeServerState (got {got}, want {want})")
            new = vs.VolumeServerState()
            new.MergeFrom(state)
            new.version = got + 1
            self._save(new)
            self._pb = new
            return self._copy()

    def _copy(self) -> vs.VolumeServerState:
        out = vs.VolumeServerState()
        if self._pb is not None:
            out.CopyFrom(self._pb)
        return out

    def _save(self, state: vs.VolumeServerState) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(state.SerializeToString())
        os.replace(tmp, self.path)
