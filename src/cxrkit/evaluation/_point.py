"""Point estimates of binary figures, computed with :mod:`sklearn.metrics`."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from ..errors import DataError
from ._metric_inputs import as_binary, as_scores, check_prevalence

__all__ = [
    "binary_confusion_matrix",
    "accuracy_score",
    "sensitivity_score",
    "specificity_score",
    "ppv_at_prevalence",
    "npv_at_prevalence",
    "roc_auc",
]


def _paired(y_true: Any, y_pred: Any, positive_label: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_binary(y_true, positive_label)
    p = as_binary(y_pred, positive_label, name="y_pred")
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} labels but y_pred has {len(p)}; they must match.")
    return t, p


def binary_confusion_matrix(y_true: Any, y_pred: Any, *, positive_label: Any) -> np.ndarray:
    """Count the confusion matrix of a binary task, positive class last.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels; every label other than ``positive_label``
        counts as negative.
    positive_label : object
        The label of the positive class (the disease).

    Returns
    -------
    ndarray of shape (2, 2)
        ``[[TN, FP], [FN, TP]]``: rows are the truth (negative, positive),
        columns the prediction (negative, positive).

    Examples
    --------
    >>> binary_confusion_matrix(["a", "b", "b"], ["b", "b", "a"], positive_label="b")
    array([[0, 1],
           [1, 1]])
    """
    t, p = _paired(y_true, y_pred, positive_label)
    return skm.confusion_matrix(t, p, labels=[False, True]).astype(np.int64)


def accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Return the fraction of images whose predicted label equals the true label."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} labels but y_pred has {len(p)}; they must match.")
    return float(skm.accuracy_score(t, p)) if len(t) else float("nan")


def sensitivity_score(y_true: Any, y_pred: Any, *, positive_label: Any) -> float:
    """Return the true positive rate ``TP / (TP + FN)``; NaN when there are no positives."""
    t, p = _paired(y_true, y_pred, positive_label)
    return float(skm.recall_score(t, p, pos_label=True, zero_division=np.nan))


def specificity_score(y_true: Any, y_pred: Any, *, positive_label: Any) -> float:
    """Return the true negative rate ``TN / (TN + FP)``; NaN when there are no negatives."""
    t, p = _paired(y_true, y_pred, positive_label)
    return float(skm.recall_score(t, p, pos_label=False, zero_division=np.nan))


def _bayes(num: np.ndarray, den: np.ndarray) -> Any:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def ppv_at_prevalence(sensitivity: Any, specificity: Any, prevalence: float) -> Any:
    """Return the positive predictive value at ``prevalence`` by Bayes' rule.

    ``PPV = sens p / (sens p + (1 - spec) (1 - p))``. Works element-wise on arrays.

    Examples
    --------
    >>> round(ppv_at_prevalence(0.9, 0.9, 0.1), 4)
    0.5
    """
    p = check_prevalence(prevalence)
    sens, spec = np.asarray(sensitivity, float), np.asarray(specificity, float)
    return _bayes(sens * p, sens * p + (1.0 - spec) * (1.0 - p))


def npv_at_prevalence(sensitivity: Any, specificity: Any, prevalence: float) -> Any:
    """Return the negative predictive value at ``prevalence`` by Bayes' rule.

    ``NPV = spec (1 - p) / (spec (1 - p) + (1 - sens) p)``. Works element-wise.

    Examples
    --------
    >>> round(npv_at_prevalence(0.9, 0.9, 0.1), 4)
    0.9878
    """
    p = check_prevalence(prevalence)
    sens, spec = np.asarray(sensitivity, float), np.asarray(specificity, float)
    return _bayes(spec * (1.0 - p), spec * (1.0 - p) + (1.0 - sens) * p)


def roc_auc(y_true: Any, y_score: Any, *, positive_label: Any) -> float:
    """Return the area under the ROC curve; NaN when only one class is present."""
    t = as_binary(y_true, positive_label)
    s = as_scores(y_score, len(t))
    if t.all() or not t.any():
        return float("nan")
    return float(skm.roc_auc_score(t, s))
