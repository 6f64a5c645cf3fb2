"""Handing freed heap memory back to the operating system after bulk work.

Building a needle map allocates and frees large numpy temporaries (the parsed `.idx` columns,
the sort order). glibc serves them from its heaps once its adaptive mmap threshold has grown,
and keeps freed heap pages mapped, where they count as resident memory for the life of the
process. `malloc_trim(0)` returns every free page; elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes

__all__ = ["release_free_memory"]


def release_free_memory() -> None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
