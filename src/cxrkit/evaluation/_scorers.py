"""scikit-learn scorers for cxrkit's binary figures."""

from __future__ import annotations

from typing import Any

from sklearn.metrics import make_scorer

from ._point import accuracy_score, roc_auc, sensitivity_score, specificity_score

__all__ = ["make_cxr_scorers"]


def _sens(y_true: Any, y_pred: Any, pos_label: Any) -> float:
    return sensitivity_score(y_true, y_pred, positive_label=pos_label)


def _spec(y_true: Any, y_pred: Any, pos_label: Any) -> float:
    return specificity_score(y_true, y_pred, positive_label=pos_label)


def _acc(y_true: Any, y_pred: Any) -> float:
    return accuracy_score(y_true, y_pred)


def _auc(y_true: Any, y_score: Any, pos_label: Any) -> float:
    return roc_auc(y_true, y_score, positive_label=pos_label)


def make_cxr_scorers(positive_label: Any) -> dict[str, Any]:
    """Scorers for ``cross_validate`` / ``GridSearchCV`` (higher is better for all).

    Parameters
    ----------
    positive_label : object
        The label of the positive class as it appears in ``y``.

    Returns
    -------
    dict of str to scorer
        ``"accuracy"``, ``"sensitivity"``, ``"specificity"`` (from ``predict``) and
        ``"roc_auc"`` (from the ``predict_proba`` column of ``positive_label``).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_validate
    >>> import numpy as np
    >>> X = np.r_[np.zeros((10, 1)), np.ones((10, 1))]
    >>> y = np.array(["neg"] * 10 + ["pos"] * 10)
    >>> res = cross_validate(LogisticRegression(), X, y, cv=2,
    ...                      scoring=make_cxr_scorers("pos"))
    >>> float(res["test_sensitivity"].mean())
    1.0
    """
    return {
        "accuracy": make_scorer(_acc),
        "sensitivity": make_scorer(_sens, pos_label=positive_label),
        "specificity": make_scorer(_spec, pos_label=positive_label),
        "roc_auc": make_scorer(_auc, response_method="predict_proba", pos_label=positive_label),
    }
