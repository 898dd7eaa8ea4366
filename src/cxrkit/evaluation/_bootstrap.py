"""The patient (cluster) bootstrap shared by the metric intervals and the ROC band.

Whole patients are drawn with replacement; each resample is returned as image
weights (how often the image's patient was drawn), so a statistic computed with
those weights is the statistic of the resample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["cluster_index", "bootstrap_weights", "percentile_interval"]

#: Largest weight matrix (resamples x images) built at once.
_MAX_CELLS = 4_000_000


def cluster_index(groups: Any, n: int) -> np.ndarray:
    """Return the cluster number (0..k-1) of each of ``n`` images.

    Parameters
    ----------
    groups : array-like of shape (n,) or None
        Patient ids; ``None`` makes every image its own cluster.
    n : int
        Number of images.

    Returns
    -------
    ndarray of shape (n,)
        Integer cluster index per image (clusters in sorted order of the ids).
    """
    if groups is None:
        return np.arange(n)
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise DataError(f"groups must hold one patient id per image ({n}); got shape {g.shape}.")
    if g.dtype == object and any(v is None for v in g):
        raise DataError("groups contains missing patient ids (None); give every image one.")
    _, index = np.unique(g.astype(str) if g.dtype == object else g, return_inverse=True)
    return np.asarray(index).ravel()


def bootstrap_weights(
    index: np.ndarray, n_bootstraps: int, random_state: int | None
) -> Iterator[np.ndarray]:
    """Yield image weights of cluster-bootstrap resamples, in chunks.

    Parameters
    ----------
    index : ndarray of shape (n,)
        Cluster index per image, from :func:`cluster_index`.
    n_bootstraps : int
        Total number of resamples.
    random_state : int or None
        Seed of the draws (``numpy.random.default_rng``).

    Yields
    ------
    ndarray of shape (b, n)
        For ``b`` resamples, how many times each image's cluster was drawn.
    """
    n = len(index)
    n_groups = int(index.max()) + 1 if n else 0
    rng = np.random.default_rng(random_state)
    chunk = max(1, min(n_bootstraps, int(_MAX_CELLS // max(n, 1))))
    done = 0
    while done < n_bootstraps:
        b = min(chunk, n_bootstraps - done)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        draws += np.arange(b)[:, None] * n_groups
        counts = np.bincount(draws.ravel(), minlength=b * n_groups).reshape(b, n_groups)
        yield counts[:, index].astype(np.float64)
        done += b


def percentile_interval(
    values: np.ndarray | None, confidence: float, axis: int | None = None
) -> tuple[Any, Any, int]:
    """Return the percentile interval of the finite ``values`` and how many there were.

    With ``axis=0`` ``values`` is (resamples, points) and the bounds are arrays
    (no NaN is dropped then: the caller keeps only finite rows).
    """
    alpha = (1.0 - confidence) / 2.0
    if values is None:
        return float("nan"), float("nan"), 0
    if axis is not None:
        lo, hi = np.percentile(values, [100 * alpha, 100 * (1 - alpha)], axis=axis)
        return lo, hi, int(values.shape[axis])
    ok = values[np.isfinite(values)]
    if len(ok) == 0:
        return float("nan"), float("nan"), 0
    lo, hi = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi), int(len(ok))
