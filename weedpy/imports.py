"""Start-up's imports without the cyclic garbage collector.

Importing the serving stack creates objects that live as long as the process (modules,
classes, functions). While they are being made the collector runs about a hundred times (every
700 new container objects; every tenth pass also over the previous survivors) and finds nothing
to free: about 5% of the imports' CPU. The collector is back on once the imports are done, and
any garbage cycle they left is collected then.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["imports_without_gc"]


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """Pause the cyclic collector for a block of imports (left off if it was off already)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
