"""Split-conformal prediction sets (LAC and APS) for class-probability outputs."""

from __future__ import annotations

import numpy as np

__all__ = ["conformal_sets"]


def _scores(proba: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    if method == "lac":
        return 1 - proba[np.arange(len(y)), y]
    order = np.argsort(-proba, axis=1)
    cum = np.cumsum(np.take_along_axis(proba, order, 1), 1)
    rank = np.argmax(order == y[:, None], axis=1)
    return cum[np.arange(len(y)), rank]


def conformal_sets(
    proba_cal: np.ndarray,
    y_cal: np.ndarray,
    proba_test: np.ndarray,
    *,
    alpha: float = 0.1,
    method: str = "lac",
) -> np.ndarray:
    """Boolean ``(n_test, n_classes)`` prediction sets covering the truth with prob >= 1 - alpha."""
    s = _scores(np.asarray(proba_cal, float), np.asarray(y_cal, int), method)
    n = len(s)
    q = np.quantile(s, min(1.0, np.ceil((n + 1) * (1 - alpha)) / n), method="higher")
    pt = np.asarray(proba_test, float)
    if method == "lac":
        return (1 - pt) <= q
    order = np.argsort(-pt, axis=1)
    cum = np.cumsum(np.take_along_axis(pt, order, 1), 1)
    keep_sorted = (cum - np.take_along_axis(pt, order, 1)) < q
    out = np.zeros_like(pt, bool)
    np.put_along_axis(out, order, keep_sorted, 1)
    return out
