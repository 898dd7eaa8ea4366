"""Cross-validation folds of a multi-class (k > 2 labels) protocol run.

:func:`run_multiclass_folds` is the multi-class counterpart of
:func:`~cxrkit.evaluation.protocols._common.run_folds`: each fold keeps
every column of ``predict_proba`` (in the order of the run's classes) instead
of one positive column. :func:`multiclass_per_fold` gives the per-fold
figures the report shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DataError
from .._multioutput import compute_multiclass_metrics
from ._common import run_proba_folds

__all__ = ["run_multiclass_folds", "multiclass_per_fold"]


def run_multiclass_folds(
    est: Any,
    X: Any,
    y: np.ndarray,
    groups: np.ndarray,
    splits: list[Any],
    classes: list[str],
    n_jobs: int | None,
    progress: bool,
) -> list[dict[str, Any]]:
    """Fit every fold (:func:`run_proba_folds`); each ``proba`` with its columns in ``classes`` order.

    Raises
    ------
    DataError
        When a fold was trained without any image of one of ``classes``.
    """
    results = run_proba_folds(est, X, y, groups, splits, n_jobs, progress)
    for r in results:
        missing = [c for c in classes if c not in r["classes"]]
        if missing:
            raise DataError(
                f"Fold {r['fold']} was trained without any image of {missing}; every fold needs "
                "every class. Lower n_splits or add images of that class."
            )
        r["proba"] = r["proba"][:, [r["classes"].index(c) for c in classes]]
    return results


def multiclass_per_fold(
    y_true: np.ndarray, proba: np.ndarray, folds: np.ndarray, classes: list[str]
) -> list[dict[str, Any]]:
    """Per fold: images, one-vs-rest AUC of every class, macro AUC and accuracy (point estimates)."""
    rows = []
    for k in np.unique(folds):
        sel = folds == k
        m = compute_multiclass_metrics(y_true[sel], proba[sel], classes=classes, n_bootstraps=0)
        row: dict[str, Any] = {"fold": int(k), "n_images": int(sel.sum())}
        row.update({c: m["classes"][c]["auc"]["value"] for c in classes})
        row.update(macro_auc=m["macro_auc"]["value"], accuracy=m["accuracy"]["value"])
        rows.append(row)
    return rows
