"""Lung masks computed once per image and segmenter, keyed by content."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from ._estimator import LungSegmenter
from ._masks import LungMaskResult

__all__ = ["MaskCache", "get_mask_cache", "lung_mask_stats", "clear_mask_cache"]


def _key(seg: LungSegmenter, img: np.ndarray) -> str:
    a = np.ascontiguousarray(img, dtype=np.float32)
    h = hashlib.blake2b(digest_size=20)
    h.update(seg.fingerprint_.encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


class MaskCache:
    """A bounded, thread-safe store of cleaned lung masks.

    The key is the segmenter's ``fingerprint_`` and the image's pixels, so the
    same picture is segmented once however often (and in whichever fold,
    epoch or transform) it is seen. Masks are kept bit-packed.

    Parameters
    ----------
    max_items : int, default=8192
        Least recently used masks are dropped beyond this many.
    """

    def __init__(self, max_items: int = 8192) -> None:
        self.max_items = max_items
        self._store: OrderedDict[str, tuple[np.ndarray, tuple[int, int], bool, str, float]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._implausible: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()

    def lookup(self, seg: LungSegmenter, img: np.ndarray) -> tuple[LungMaskResult, bool]:
        """Return the mask of ``img`` and whether it was computed now (a miss)."""
        key = _key(seg, img)
        with self._lock:
            hit = self._store.get(key)
            if hit is not None:
                self._store.move_to_end(key)
                self._hits += 1
        if hit is not None:
            bits, shape, ok, reason, frac = hit
            mask = np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)
            return LungMaskResult(mask, ok, reason, frac), False
        result = seg.segment([img])[0]
        entry = (
            np.packbits(result.mask.ravel()),
            result.mask.shape,
            result.plausible,
            result.reason,
            result.lung_fraction,
        )
        with self._lock:
            self._misses += 1
            if not result.plausible:
                self._implausible[result.reason.split(" (")[0].split(" lies")[0]] += 1
            self._store[key] = entry
            while len(self._store) > self.max_items:
                self._store.popitem(last=False)
        return result, True

    def count_fallback(self, transform: str) -> None:
        """Record that ``transform`` used its fallback for an implausible mask."""
        with self._lock:
            self._fallbacks[transform] += 1

    def stats(self) -> dict[str, Any]:
        """``hits``, ``misses`` (images segmented), ``implausible`` (distinct images, by reason), ``fallbacks`` (per transform, every time one was applied)."""
        with self._lock:
            return {
                "hits": self._hits,
                "misses": self._misses,
                "size": len(self._store),
                "implausible": dict(self._implausible),
                "n_implausible": int(sum(self._implausible.values())),
                "fallbacks": dict(self._fallbacks),
            }

    def clear(self) -> None:
        with self._lock:
            self._store.clear()
            self._hits = self._misses = 0
            self._implausible.clear()
            self._fallbacks.clear()


_GLOBAL: MaskCache | None = None
_GLOBAL_LOCK = threading.Lock()


def get_mask_cache() -> MaskCache:
    """Return the process-wide :class:`MaskCache` the lung transforms and guards share."""
    global _GLOBAL
    with _GLOBAL_LOCK:
        if _GLOBAL is None:
            _GLOBAL = MaskCache()
        return _GLOBAL


def lung_mask_stats() -> dict[str, Any]:
    """Statistics of the process-wide mask cache (see :meth:`MaskCache.stats`)."""
    return get_mask_cache().stats()


def clear_mask_cache() -> None:
    """Empty the process-wide mask cache and reset its counters."""
    get_mask_cache().clear()
