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
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
import types
from collections.abc import Iterator

__all__ = ["imports_without_gc", "freeze_long_lived", "stand_in"]


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
