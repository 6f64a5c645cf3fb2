"""Keeping freed heap memory from staying resident after bulk work (glibc only).

Building a needle map allocates and frees large numpy temporaries (the parsed `.idx` columns,
the sort order), in worker threads. glibc's adaptive thresholds then work against us: once a
large block is freed, blocks up to that size (up to 32 MiB) come from the heap instead of their
own mapping, and a worker thread's heap keeps up to twice that free at its top, which
`malloc_trim` does not return for non-main heaps. Measured on 1M needles with 4 loader threads:
13 MB left resident per load, more than the map itself.

`bound_heap_retention` fixes the thresholds (2 MiB: a bigger block gets its own mapping, given
back when freed; a heap top over 4 MiB is trimmed), which also turns the adaptation off; the
request path's buffers (1 MiB bodies) stay on the heap. `release_free_memory` returns whatever
is free in the main heap. Elsewhere (musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes

__all__ = ["bound_heap_retention", "release_free_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 2 << 20
TRIM_THRESHOLD = 4 << 20
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both
    except (OSError, AttributeError):
        return None
    return libc


def bound_heap_retention() -> None:
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def release_free_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
