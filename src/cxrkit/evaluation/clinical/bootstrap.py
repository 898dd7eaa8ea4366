"""Patient (cluster) bootstrap of any statistic of per-image arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["patient_bootstrap", "interval"]


def patient_bootstrap(
    statistic: Callable[[np.ndarray], Any],
    groups: np.ndarray | None,
    n: int,
    *,
    n_bootstraps: int = 1000,
    random_state: int = 0,
) -> list[Any]:
    """Evaluate ``statistic(index)`` on resamples of whole patients.

    Parameters
    ----------
    statistic : callable
        Takes an index array into the ``n`` images and returns a value (a
        float, or an array of floats); a resample where it raises
        ``ValueError`` (e.g. one class only) is left out.
    groups : ndarray of shape (n,) or None
        Patient ids (``None``: each image is its own patient).
    n : int
        Number of images.
    n_bootstraps : int, default=1000
    random_state : int, default=0

    Returns
    -------
    list
        The statistic of each resample in which it was defined.
    """
    if groups is None:
        members = [np.array([i]) for i in range(n)]
    else:
        _, inv = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        order = np.argsort(inv, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(inv))[:-1])
    rng = np.random.default_rng(random_state)
    out = []
    for _ in range(n_bootstraps):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[k] for k in pick])
        try:
            out.append(statistic(idx))
        except ValueError:
            continue
    return out


def interval(
    value: float, samples: list[Any], confidence: float = 0.95, **extra: Any
) -> dict[str, Any]:
    """Return ``{"value", "ci_low", "ci_high", "n_valid"}`` from bootstrap ``samples`` (percentile)."""
    s = np.asarray([v for v in samples if np.isfinite(v)], float)
    lo, hi = (np.nan, np.nan)
    if len(s):
        lo, hi = np.quantile(s, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {
        "value": float(value),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "n_valid": int(len(s)),
        **extra,
    }
