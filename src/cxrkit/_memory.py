"""Give freed heap memory back to the operating system during long predictions.

Streaming prediction allocates and frees the same large activation buffers for
every batch. glibc's allocator keeps such freed memory in the heap (and, after
the first large frees, stops using ``mmap`` for them), so a process's resident
size creeps up batch after batch although nothing is kept. Calling
``malloc_trim(0)`` every few batches returns it (measured on 6,000 images with
a 224 px network: without it peak RSS rose from ~870 MB to 1.1-1.4 GB; with it,
every 8 batches, it stayed within ~950 MB). A no-op on other C libraries.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache
from typing import Any

__all__ = ["release_free_memory", "TRIM_EVERY"]

#: Batches between two calls of :func:`release_free_memory` in prediction loops.
TRIM_EVERY = 8


@lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None


def release_free_memory() -> bool:
    """Return free heap pages to the OS (glibc ``malloc_trim``); ``True`` if done."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
