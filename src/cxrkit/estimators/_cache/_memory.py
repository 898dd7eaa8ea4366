"""The in-memory store of the feature cache: a thread-safe LRU bounded in bytes."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from cachetools import LRUCache

__all__ = ["MemoryStore"]

Key = tuple[str, str]


def _nbytes(arr: np.ndarray) -> int:
    return int(arr.nbytes)


class _CountingLRU(LRUCache):
    """``cachetools.LRUCache`` sized by the arrays' bytes, counting what it evicts."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=_nbytes)
        self.evictions = 0

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evictions += 1
        return item


class MemoryStore:
    """Feature vectors by ``(namespace, key)``, least-recently-used evicted first.

    Parameters
    ----------
    max_bytes : int
        Limit of the stored arrays' bytes. An array larger than the limit is
        not stored.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._lru = _CountingLRU(self.max_bytes)
        self._lock = threading.Lock()

    def get(self, key: Key) -> np.ndarray | None:
        """Return the array stored under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            return self._lru.get(key)

    def put(self, key: Key, arr: np.ndarray) -> None:
        """Store ``arr``, evicting least-recently-used arrays to stay within the limit."""
        if arr.nbytes > self.max_bytes:
            return
        with self._lock:
            self._lru[key] = arr

    @property
    def evictions(self) -> int:
        """Arrays evicted since creation or the last :meth:`clear`."""
        return self._lru.evictions

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        return int(self._lru.currsize)

    def clear(self) -> None:
        """Drop every array and reset the eviction count."""
        with self._lock:
            self._lru = _CountingLRU(self.max_bytes)
