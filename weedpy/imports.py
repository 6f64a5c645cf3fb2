"""Start-up's imports without the cyclic garbage collector, and what they made kept out of its
full passes.

Importing the serving stack creates objects that live as long as the process (modules,
classes, functions). While they are being made the collector runs about a hundred times (every
700 new container objects; every tenth pass also over the previous survivors) and finds nothing
to free: about 5% of the imports' CPU. The collector is back on once the imports are done.

Those objects also made every later full pass slow: a full collection walks every tracked
object, about 45,000 of them once the serving stack, the generated messages and numpy are
loaded, 15-20 ms with the GIL held, during which no connection of the process is served (the
event-loop stall benchmark's reads saw it as 20-200 ms outliers). `gc.freeze()` moves them to
the permanent generation, which the collector never walks: a full pass then costs what the
requests' own objects cost. Frozen objects are still freed by reference counting; only a
garbage cycle among them would stay, and start-up leaves none that matters.

`stand_in` serves a library that imports a module at its top but uses it only inside functions
the server never calls (structlog imports asyncio, about 10 ms of CPU, for its `ainfo`-style
methods): while the library is imported, `import name` gives it a small module whose first
attribute asked imports the real one; every other importer gets the real module.

`libraries_mapped_here` serves trio's import, which looks up the C thread library
(`ctypes.util.find_library("pthread")`, to name its threads) and on Linux that runs
`ldconfig -p` in a child process: a fork, an exec and the parse of every library the system
has, 3-8 ms of wall time at each start. The library is already mapped into this process, so its
name is read from /proc/self/maps instead.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import types
from collections.abc import Iterator

__all__ = ["imports_without_gc", "freeze_long_lived", "stand_in", "libraries_mapped_here"]


@contextlib.contextmanager
def stand_in(name: str) -> Iterator[None]:
    """While the block runs, `import name` (not loaded yet) gives a stand-in that loads the real
    module at the first attribute asked of it (see above)."""
    if name in sys.modules:
        yield
        return
    stub = types.ModuleType(name, f"stands in for {name} until it is used (weedpy.imports.stand_in)")

    def real(attr: str) -> object:
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    stub.__getattr__ = real  # type: ignore[method-assign]
    sys.modules[name] = stub
    try:
        yield
    finally:
        if sys.modules.get(name) is stub:
            del sys.modules[name]


def freeze_long_lived() -> None:
    """Keep every object alive now out of the collector's passes (cheap: one list splice).
    Called after each block of start-up imports and once the lazily loaded parts (the master
    client's messages, the first needle map's numpy) are in."""
    gc.freeze()


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """Pause the cyclic collector for a block of imports (left off if it was off already),
    then freeze what they made."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        freeze_long_lived()
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def libraries_mapped_here() -> Iterator[None]:
    """While the block runs, `ctypes.util.find_library` answers with a library this process has
    mapped when there is one (see above); any other name is looked up as before."""
    import ctypes.util  # trio imports it anyway; the commands that import no trio never come here

    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        found = mapped_library(name)
        return found if found is not None else original(name)

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = original


def mapped_library(name: str, maps_path: str = "/proc/self/maps") -> str | None:
    """The file name of the mapped shared library `lib<name>.so...`, or None. The C library
    stands for `pthread` when no libpthread is mapped: since glibc 2.34 it holds the thread
    functions, and the libpthread left for old binaries is an empty shell over it."""
    try:
        with open(maps_path) as f:
            files = {os.path.basename(line.split(maxsplit=5)[-1].strip()) for line in f if ".so" in line}
    except OSError:
        return None
    for prefix in (f"lib{name}.so",) + (("libc.so.",) if name == "pthread" else ()):
        found = sorted(f for f in files if f.startswith(prefix))
        if found:
            return found[0]
    return None
