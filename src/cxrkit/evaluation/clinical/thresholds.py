"""Operating-point selection on validation data only."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_curve

from ...errors import ConfigurationError

__all__ = ["select_threshold"]


def select_threshold(y_true: np.ndarray, score: np.ndarray, rule: str | float = "youden") -> float:
    """Choose a threshold from validation labels.

    ``rule`` is ``"youden"``, ``"sensitivity:0.95"``, ``"specificity:0.9"``,
    ``"f1"`` or a number (returned as is).
    """
    if isinstance(rule, (int, float)):
        return float(rule)
    y, s = np.asarray(y_true, int), np.asarray(score, float)
    fpr, tpr, thr = roc_curve(y, s)
    thr = np.minimum(thr, 1.0)
    if rule == "youden":
        return float(thr[np.argmax(tpr - fpr)])
    if rule == "f1":
        cand = np.unique(s)
        return float(cand[np.argmax([f1_score(y, s >= t) for t in cand])])
    kind, _, value = str(rule).partition(":")
    if kind == "sensitivity" and value:
        return float(thr[np.argmax(tpr >= float(value))])
    if kind == "specificity" and value:
        ok = np.where(1 - fpr >= float(value))[0]
        return float(thr[ok[-1]])
    raise ConfigurationError(
        f"threshold rule {rule!r} is not known; expected 'youden', 'f1', "
        "'sensitivity:0.95', 'specificity:0.9' or a number."
    )
