"""DeLong's variance of the empirical AUC (fast algorithm of Sun & Xu, 2014)."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from ._metric_inputs import as_binary, as_scores

__all__ = ["delong_auc_variance", "delong_auc_ci"]


def _midrank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = len(x)
    ranks_sorted = np.empty(n, dtype=np.float64)
    # boundaries of tie blocks
    starts = np.r_[0, np.flatnonzero(np.diff(xs)) + 1]
    ends = np.r_[starts[1:], n]
    mid = (starts + ends + 1) / 2.0  # average of 1-based ranks start+1..end
    ranks_sorted[:] = np.repeat(mid, ends - starts)
    out = np.empty(n, dtype=np.float64)
    out[order] = ranks_sorted
    return out


def delong_auc_variance(
    y_true: Any, y_score: Any, *, positive_label: Any = 1
) -> tuple[float, float]:
    """Empirical AUC and its DeLong variance (fast algorithm of Sun & Xu, 2014).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels; ``positive_label`` marks the positives.
    y_score : array-like of shape (n,)
        Scores, higher meaning more likely positive.
    positive_label : object, default=1

    Returns
    -------
    auc : float
    variance : float
        ``Var(V10) / m + Var(V01) / n`` from the structural components
        (DeLong, DeLong & Clarke-Pearson 1988), computed with mid-ranks in
        ``O(N log N)``. NaN when a class has fewer than two images.

    Examples
    --------
    >>> auc, var = delong_auc_variance([1, 1, 1, 0, 0], [0.9, 0.8, 0.4, 0.7, 0.3])
    >>> round(auc, 4), round(var, 4)
    (0.8333, 0.0556)
    """
    t = as_binary(y_true, positive_label)
    s = as_scores(y_score, len(t))
    x, y = s[t], s[~t]
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    tx, ty, tz = _midrank(x), _midrank(y), _midrank(np.r_[x, y])
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    if m < 2 or n < 2:
        return float(auc), float("nan")
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return float(auc), float(var)


def delong_auc_ci(
    y_true: Any, y_score: Any, *, positive_label: Any = 1, confidence: float = 0.95
) -> tuple[float, float, float]:
    """AUC with a DeLong confidence interval ``AUC +- z sd``, clipped to ``[0, 1]``.

    Returns
    -------
    auc, ci_low, ci_high : float
    """
    auc, var = delong_auc_variance(y_true, y_score, positive_label=positive_label)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    if not np.isfinite(var):
        return auc, float("nan"), float("nan")
    sd = math.sqrt(max(var, 0.0))
    return auc, max(0.0, auc - z * sd), min(1.0, auc + z * sd)
