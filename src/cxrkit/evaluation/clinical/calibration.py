"""Calibration metrics of binary probabilities: ECE, Brier score, intercept and slope."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

__all__ = ["expected_calibration_error", "brier_score", "calibration_intercept_slope"]


def expected_calibration_error(
    y_true: np.ndarray, prob: np.ndarray, *, n_bins: int = 10, adaptive: bool = False
) -> float:
    """Compute the expected calibration error with equal-width (or equal-count) bins."""
    y, p = np.asarray(y_true, float), np.asarray(prob, float)
    if adaptive:
        edges = np.quantile(p, np.linspace(0, 1, n_bins + 1))
    else:
        edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)


def brier_score(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared difference between the 0/1 outcome and the probability."""
    return float(brier_score_loss(np.asarray(y_true, int), np.asarray(prob, float)))


def calibration_intercept_slope(y_true: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    """Logistic recalibration ``logit P(y=1) = a + b logit(p)``: returns ``(a, b)``; ideal is (0, 1)."""
    p = np.clip(np.asarray(prob, float), 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p)).reshape(-1, 1)
    lr = LogisticRegression(C=1e6).fit(z, np.asarray(y_true, int))
    return float(lr.intercept_[0]), float(lr.coef_[0, 0])
