"""The process's heap: keep large freed buffers for reuse while training, give them back after.

Two glibc ``malloc`` behaviours cost PyTorch on the CPU:

* **Page faults in training.** glibc serves every allocation above its ``mmap``
  threshold (at most 32 MiB, adjusted dynamically) with a fresh ``mmap`` and
  returns it with ``munmap`` when freed. A training step of ``hall2020_cnn``
  (batch 16, 100 px) frees and reallocates a 35 MB activation gradient and
  several smaller buffers every step, so every step page-faults them in again
  and zero-fills them: measured here, a plain eager step took 166 ms with
  glibc's defaults and 78 ms with :func:`retain_freed_memory` (cxrkit's own
  step 62 -> 35 ms; ResNet-101 inference at batch 16: 571 -> 646 images/min).
  :func:`retain_freed_memory` raises the ``mmap`` threshold to 1 GiB and the
  trim threshold to 2 GiB for its duration, so freed buffers stay in the heap
  and are reused, and afterwards sets them to 32 MiB and 64 MiB (the values
  glibc's own dynamic adjustment reaches once it has seen buffers of 32 MiB or
  more; setting them switches that adjustment off) and calls ``malloc_trim(0)``,
  which returns what the heap kept to the operating system.
* **Resident size creeping up in long predictions.** Streaming prediction
  allocates and frees the same large activation buffers for every batch; freed
  memory kept in the heap makes the resident size creep up batch after batch
  although nothing is kept. Calling :func:`release_free_memory` (``malloc_trim(0)``)
  every :data:`TRIM_EVERY` batches returns it (measured on 6,000 images with a
  224 px network: without it peak RSS rose from ~870 MB to 1.1-1.4 GB; with it,
  every 8 batches, it stayed within ~950 MB).

Both are no-ops on other C libraries (macOS, Windows, musl).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

__all__ = [
    "release_free_memory",
    "retain_freed_memory",
    "freed_memory_retained",
    "glibc_malloc_available",
    "TRIM_EVERY",
]

#: Batches between two calls of :func:`release_free_memory` in prediction loops.
TRIM_EVERY = 8

# mallopt(3) parameters and the values used.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_RETAIN_MMAP_THRESHOLD = 1 << 30  # 1 GiB: every activation buffer comes from the heap
_RETAIN_TRIM_THRESHOLD = 2**31 - 1  # never trim the heap's top while retaining
_AFTER_MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
_AFTER_TRIM_THRESHOLD = 64 << 20  # glibc sets the trim threshold to twice the mmap one

_lock = threading.Lock()
_depth = 0


@lru_cache(maxsize=1)
def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl has no malloc_trim)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def glibc_malloc_available() -> bool:
    """Return ``True`` where the C library is glibc, whose ``malloc`` these helpers tune."""
    return _glibc() is not None


def release_free_memory() -> bool:
    """Return free heap pages to the OS (glibc ``malloc_trim``); ``True`` if done."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def freed_memory_retained() -> bool:
    """Whether a :func:`retain_freed_memory` block that tuned the allocator is active."""
    return _depth > 0


@contextlib.contextmanager
def retain_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Keep freed large buffers in the heap for reuse inside the block (glibc).

    Yields ``True`` when the allocator was tuned, ``False`` when ``enabled`` is
    false or the C library is not glibc. Nested and concurrent blocks (threads)
    share one setting: the thresholds are set when the first block is entered
    and reset, with a ``malloc_trim(0)``, when the last one is left.
    """
    global _depth
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _RETAIN_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _RETAIN_TRIM_THRESHOLD)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM_THRESHOLD)
                libc.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP_THRESHOLD)
                libc.malloc_trim(0)
