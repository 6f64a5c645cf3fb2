"""Loading the store's volumes while the native server already answers.

Go opens its ports only once every volume is loaded, so a volume server restarting with tens
of millions of needles is unreachable meanwhile. Native mode discovers the volumes (cheap:
directory listings and `.vif` files; an offset width Go would exit on still stops start-up),
starts serving, and loads the volumes in worker threads (`Store.load_pending`):

- `/status` and heartbeats list a volume once it is loaded, as Go lists only loaded volumes;
  each loaded volume reaches the master at once by a delta heartbeat;
- `/healthz` (`/readyz`) answers 503 until every volume is loaded (`Store.loading`), so a
  readiness probe sees what it would see of Go: ready means every volume is served;
- a read or write of a volume still loading is answered as for a volume this server does not
  hold (the master does not list this server for it yet); a change to it (mount, allocate,
  delete, read-only marks) loads it first.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from native.context import ServerState
from native.storage import OffsetWidthMismatch, Store
from weedpy.imports import freeze_long_lived
from weedpy.logs import get_logger

if TYPE_CHECKING:
    from native.storage import Volume

__all__ = ["load_volumes"]

log = get_logger("native.loading")


async def load_volumes(
    store: Store, notify_changed: Callable[[], None], state: ServerState | None = None,
    settled: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Load every discovered volume, calling `notify_changed` (in trio) after each. On
    cancellation the loads in progress finish in their threads and the rest are skipped.
    `state.volumes_loading` says so meanwhile (worker processes answer /healthz from it), until
    `settled()` (the worker processes serve every volume loaded) has returned."""
    if state is not None:
        state.volumes_loading = True
    stop = threading.Event()
    started = time.monotonic()

    def loaded(_v: Volume) -> None:
        if stop.is_set():
            return
        try:
            trio.from_thread.run_sync(notify_changed)
        except trio.RunFinishedError:
            stop.set()

    work = functools.partial(store.load_pending, on_loaded=loaded, should_stop=stop.is_set)
    try:
        try:
            await trio.to_thread.run_sync(work, abandon_on_cancel=True)
        except OffsetWidthMismatch as exc:  # a volume without a .vif whose .idx only fits the other width
            log.error("volume not loaded", error=str(exc))
        if settled is not None:  # ready means served by every process
            await settled()
    finally:
        stop.set()
        if state is not None:
            state.volumes_loading = False
    freeze_long_lived()  # the maps' numpy and the volumes: out of the collector's full passes (weedpy/imports.py)
    log.info("volumes loaded", volumes=len(store.volumes()), seconds=round(time.monotonic() - started, 3))
