"""The feature cache: memory first, then an optional on-disk store shared by processes.

:meth:`FeatureCache.features` is what an estimator calls: the pooled backbone
features of prepared images, computed only for images (and views) that no
earlier fit, fold, candidate or process has computed with the same backbone
weights and preprocessing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...architectures import CXRNet, Preprocessing
from ...errors import ConfigurationError
from ._claims import ClaimPolicy, compute_shared
from ._disk import DiskStore
from ._extract import compute_features
from ._keys import VIEWS, image_key, namespace_key
from ._memory import MemoryStore
from ._session import resolve_cache_dir, start_session

__all__ = [
    "FeatureCache",
    "get_feature_cache",
    "feature_cache_stats",
    "clear_feature_cache",
    "cached_features",
    "DEFAULT_CACHE_BYTES",
    "CACHE_BYTES_ENV",
    "CLAIM_TIMEOUT_ENV",
]

logger = logging.getLogger("cxrkit.feature_cache")

CACHE_BYTES_ENV = "CXRKIT_FEATURE_CACHE_BYTES"
CLAIM_TIMEOUT_ENV = "CXRKIT_FEATURE_CLAIM_TIMEOUT"
#: Default in-memory limit: 1 GiB (about 130,000 ResNet50 feature vectors).
DEFAULT_CACHE_BYTES = 1 << 30


class FeatureCache:
    """A bounded, thread-safe LRU store of feature vectors, optionally backed by disk.

    Parameters
    ----------
    max_bytes : int, default=1 GiB
        Limit of the in-memory store; least-recently-used entries are evicted.
    claim_timeout : float, default=120
        Seconds after which a row another process claimed but did not write is
        computed here instead (a claimer on another machine that stopped; a dead
        claimer on this machine is noticed at once).

    Attributes
    ----------
    hits, misses, disk_hits, evictions, invalid : int
        Counters since creation or the last :meth:`clear`; ``invalid`` counts
        stored entries rejected on reading (wrong shape or dtype, NaN or
        infinity, unreadable) and recomputed.
    claim_chunk : int
        Rows claimed (and computed) at a time by a process sharing a disk store.
    claim_poll : float
        Seconds between two looks for rows another process is computing.
    claim_report_after : float
        Seconds of waiting for another process's rows after which a warning
        names it (host, pid, age of its claim).
    """

    claim_chunk = 32
    claim_poll = 0.05
    claim_report_after = 5.0

    def __init__(
        self, max_bytes: int = DEFAULT_CACHE_BYTES, *, claim_timeout: float = 120.0
    ) -> None:
        self.max_bytes = int(max_bytes)
        self.claim_timeout = float(claim_timeout)
        self._memory = MemoryStore(self.max_bytes)
        self._lock = threading.Lock()
        self.hits = self.misses = self.disk_hits = self.invalid = 0
        self.compute_seconds = 0.0

    @property
    def evictions(self) -> int:
        return self._memory.evictions

    # -- the seam estimators use -------------------------------------------------------
    def features(
        self,
        module: CXRNet,
        images: np.ndarray,
        preprocessing: Preprocessing,
        *,
        views: Sequence[str] = ("orig",),
        device: str = "cpu",
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 32,
        channels_last: bool = False,
    ) -> dict[str, np.ndarray]:
        """Pooled backbone features of prepared images, from the cache where possible.

        Parameters
        ----------
        module : CXRNet
            Network whose ``features`` are wanted (evaluated in eval mode).
        images : ndarray of shape (n, S, S)
            Prepared (transformed and resized) grayscale images.
        preprocessing : Preprocessing
            Normalisation and channel count applied to each image.
        views : sequence of {"orig", "hflip"}, default=("orig",)
            Which views to return.
        device : str, default="cpu"
            Where missing features are computed.
        cache_dir : path, optional
            On-disk store shared between processes; ``None``: the environment
            variable ``CXRKIT_CACHE_DIR``, else the session folder in a worker
            process, else memory only.
        batch_size : int, default=32
            Images per backbone pass for missing features.
        channels_last : bool, default=False
            Compute missing features with channels-last input (faster on CPU
            for most torchvision backbones; equal within float rounding).

        Returns
        -------
        dict
            ``view -> float32 array of shape (n, num_features)``.
        """
        for view in views:
            if view not in VIEWS:
                raise ValueError(f"view must be one of {VIEWS}; got {view!r}.")
        start_session()
        store = resolve_cache_dir(cache_dir)
        namespace = namespace_key(module, preprocessing)
        img_keys = [image_key(img) for img in images]
        out: dict[str, np.ndarray] = {}
        for view in views:
            flip = view == "hflip"

            def compute(positions: list[int], flip: bool = flip) -> np.ndarray:
                return compute_features(
                    module,
                    images,
                    positions,
                    preprocessing,
                    flip,
                    device,
                    batch_size,
                    channels_last,
                )

            out[view] = self.get_many(
                namespace,
                [f"{k}-{view}" for k in img_keys],
                compute,
                store,
                width=int(module.num_features),
            )
        return out

    # -- lookup ------------------------------------------------------------------------
    def get_many(
        self,
        namespace: str,
        keys: Sequence[str],
        compute: Callable[[list[int]], np.ndarray],
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        width: int | None = None,
    ) -> np.ndarray:
        """Look ``keys`` up; ``compute(missing_positions)`` returns the missing rows.

        With ``cache_dir``, processes that miss the same rows at the same time
        split them (see :mod:`._claims`) instead of each computing all. Rows read
        from disk must be 1-D float32 arrays of ``width`` finite values; others
        count as ``invalid`` and are recomputed.

        Returns
        -------
        ndarray of shape (len(keys), width)
            Rows in the order of ``keys``.
        """
        disk = DiskStore(cache_dir) if cache_dir else None
        rows: list[np.ndarray | None] = [None] * len(keys)
        missing: list[int] = []
        n_hits = n_disk = 0
        bad: list[tuple[Path, str]] = []

        def read(i: int) -> np.ndarray | None:
            assert disk is not None
            path = disk.path(namespace, keys[i])
            arr, problem = disk.read(path, width)
            if problem is not None:
                bad.append((path, problem))
            return arr

        for i, k in enumerate(keys):
            arr = self._memory.get((namespace, k))
            if arr is None and disk is not None:
                arr = read(i)
                if arr is not None:
                    n_disk += 1
                    self._memory.put((namespace, k), arr)
            if arr is None:
                missing.append(i)
            else:
                n_hits += 1
                rows[i] = arr
        n_missed = 0
        if missing and disk is not None:
            n_missed, n_read = self._compute_shared(
                disk, namespace, keys, missing, compute, rows, read
            )
            n_hits += n_read
            n_disk += n_read
        elif missing:
            for i, arr in zip(missing, self._computed_rows(compute, missing)):
                rows[i] = arr
                self._memory.put((namespace, keys[i]), arr)
            n_missed = len(missing)
        if bad:
            _report_invalid(bad)
        with self._lock:
            self.hits += n_hits
            self.disk_hits += n_disk
            self.misses += n_missed
            self.invalid += len({p for p, _ in bad})
        return np.stack(rows)  # type: ignore[arg-type]

    def _computed_rows(
        self, compute: Callable[[list[int]], np.ndarray], positions: list[int]
    ) -> list[np.ndarray]:
        """``compute(positions)`` as read-only float32 rows, its time added to the statistics."""
        t0 = time.perf_counter()
        new = np.asarray(compute(positions), dtype=np.float32)
        with self._lock:
            self.compute_seconds += time.perf_counter() - t0
        out = []
        for row in new:
            arr = np.ascontiguousarray(row)
            arr.setflags(write=False)
            out.append(arr)
        return out

    def _compute_shared(
        self,
        disk: DiskStore,
        namespace: str,
        keys: Sequence[str],
        missing: list[int],
        compute: Callable[[list[int]], np.ndarray],
        rows: list[np.ndarray | None],
        read: Callable[[int], np.ndarray | None],
    ) -> tuple[int, int]:
        """Fill ``rows[missing]``, splitting the work with processes sharing ``disk``."""
        disk.make_folder(namespace)
        paths = {i: disk.path(namespace, keys[i]) for i in missing}

        def take(i: int, arr: np.ndarray) -> None:
            rows[i] = arr
            self._memory.put((namespace, keys[i]), arr)

        def write(i: int, arr: np.ndarray) -> None:
            if np.isfinite(arr).all():  # a non-finite row would be rejected by every reader
                disk.write(paths[i], arr)

        policy = ClaimPolicy(
            chunk=self.claim_chunk,
            timeout=self.claim_timeout,
            poll=self.claim_poll,
            report_after=self.claim_report_after,
        )
        return compute_shared(
            missing,
            paths,
            read=read,
            take=take,
            write=write,
            compute=lambda pos: self._computed_rows(compute, pos),
            policy=policy,
        )

    # -- statistics ----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters and sizes of the cache.

        Returns
        -------
        dict
            ``hits``, ``misses``, ``disk_hits`` (part of ``hits``), ``evictions``,
            ``invalid``, ``entries``, ``bytes``, ``max_bytes`` and
            ``compute_seconds`` (time spent computing missing features).
        """
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "disk_hits": self.disk_hits,
                "evictions": self.evictions,
                "invalid": self.invalid,
                "entries": len(self._memory),
                "bytes": self._memory.nbytes,
                "max_bytes": self.max_bytes,
                "compute_seconds": round(self.compute_seconds, 3),
            }

    def clear(self) -> None:
        """Drop all in-memory entries and reset the counters (files on disk stay)."""
        with self._lock:
            self._memory.clear()
            self.hits = self.misses = self.disk_hits = self.invalid = 0
            self.compute_seconds = 0.0


def _report_invalid(bad: list[tuple[Path, str]]) -> None:
    path, problem = bad[0]
    logger.warning(
        "%d cached feature file(s) were not valid and were recomputed (e.g. '%s': "
        "%s). Their folder may be shared with an incompatible writer; delete it if "
        "this repeats.",
        len({p for p, _ in bad}),
        path,
        problem,
    )


_CACHE: FeatureCache | None = None
_CACHE_LOCK = threading.Lock()


def _env_number(name: str, default: float, kind: type) -> Any:
    raw = os.environ.get(name)
    try:
        return kind(raw) if raw else default
    except ValueError:
        raise ConfigurationError(
            f"{name} must be {'an integer number of bytes' if kind is int else 'a number of seconds'}"
            f"; got {raw!r}. Unset it or give a number."
        ) from None


def get_feature_cache() -> FeatureCache:
    """Return the process-wide cache.

    Its limit comes from ``CXRKIT_FEATURE_CACHE_BYTES`` (default 1 GiB), its
    claim timeout from ``CXRKIT_FEATURE_CLAIM_TIMEOUT`` (seconds, default 120).
    In the main process, the first call also starts the session whose folder
    worker processes share (:func:`start_session`).
    """
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            _CACHE = FeatureCache(
                _env_number(CACHE_BYTES_ENV, DEFAULT_CACHE_BYTES, int),
                claim_timeout=_env_number(CLAIM_TIMEOUT_ENV, 120.0, float),
            )
    start_session()
    return _CACHE


def feature_cache_stats() -> dict[str, Any]:
    """Statistics of the process-wide feature cache.

    Returns
    -------
    dict
        ``hits``, ``misses``, ``disk_hits``, ``evictions``, ``invalid``
        (stored entries rejected and recomputed), ``entries``, ``bytes`` (in
        memory), ``max_bytes`` and ``compute_seconds``.
    """
    return get_feature_cache().stats()


def clear_feature_cache() -> None:
    """Empty the process-wide in-memory feature cache and reset its statistics."""
    get_feature_cache().clear()


def cached_features(
    module: CXRNet,
    images: np.ndarray,
    prep: Preprocessing,
    *,
    views: Sequence[str] = ("orig",),
    device: str = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    cache: FeatureCache | None = None,
    channels_last: bool = False,
) -> dict[str, np.ndarray]:
    """:meth:`FeatureCache.features` of ``cache`` (default: the process-wide one)."""
    return (cache or get_feature_cache()).features(
        module,
        images,
        prep,
        views=views,
        device=device,
        cache_dir=cache_dir,
        batch_size=batch_size,
        channels_last=channels_last,
    )
