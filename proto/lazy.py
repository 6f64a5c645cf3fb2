"""The generated message modules, each imported at its first use.

Building a module's descriptors costs start-up time (about 10 ms each for `master_pb2` and
`volume_server_pb2`), and a server answers its first HTTP requests before it sends a heartbeat
or serves a gRPC call: modules that only build messages there take them from here. Importing
the generated module itself (`from proto import master_pb2`) is the same module once loaded.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["LazyModule", "master_pb2", "volume_server_pb2"]


class LazyModule:
    """Stands for the module `name`, imported by the first attribute read (from any thread:
    the import system serialises a module's first import)."""

    __slots__ = ("_name", "_module", "_lock")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def load(self) -> ModuleType:
        module = self._module
        if module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
                module = self._module
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.load(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (loaded)' if self._module is not None else ''}>"


if TYPE_CHECKING:
    from proto import master_pb2, volume_server_pb2
else:
    master_pb2 = LazyModule("proto.master_pb2")
    volume_server_pb2 = LazyModule("proto.volume_server_pb2")
