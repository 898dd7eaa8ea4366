"""Decision-curve analysis (Vickers & Elkin 2006)."""

from __future__ import annotations

import numpy as np

__all__ = ["net_benefit"]


def net_benefit(
    y_true: np.ndarray, prob: np.ndarray, thresholds: np.ndarray
) -> dict[str, np.ndarray]:
    """Net benefit ``TP/n - FP/n * pt/(1-pt)`` of the model, treat-all and treat-none at each ``pt``."""
    y, p = np.asarray(y_true, int), np.asarray(prob, float)
    pt = np.asarray(thresholds, float)
    n, prev = len(y), y.mean()
    w = pt / (1 - pt)
    tp = np.array([np.sum((p >= t) & (y == 1)) for t in pt]) / n
    fp = np.array([np.sum((p >= t) & (y == 0)) for t in pt]) / n
    return {
        "threshold": pt,
        "model": tp - fp * w,
        "treat_all": prev - (1 - prev) * w,
        "treat_none": np.zeros_like(pt),
    }
