"""Cross-validation folds of a multi-class (k > 2 labels) protocol run.

:func:`run_multiclass_folds` is the multi-class counterpart of
:func:`~cxrkit.evaluation.protocols._common.run_folds`: each fold keeps
every column of ``predict_proba`` (in the order of the run's classes) instead
of one positive column. :func:`multiclass_per_fold` gives the per-fold
figures the report shows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from ...errors import DataError
from .._multioutput import compute_multiclass_metrics
from ._common import _localize, progress_bar

__all__ = ["run_multiclass_folds", "multiclass_per_fold"]


def _fit_multiclass_fold(
    est: Any,
    k: int,
    X_tr: Any,
    y_tr: np.ndarray,
    groups_tr: np.ndarray,
    X_te: Any,
    classes: list[str],
    keep_model: bool,
) -> dict[str, Any]:
    """Fit one fold's clone and return its test probabilities, columns in ``classes`` order."""
    fold = clone(est)
    fold.fit(X_tr, y_tr, groups=groups_tr)
    t0 = time.perf_counter()
    proba = fold.predict_proba(X_te)
    seconds = time.perf_counter() - t0
    have = [str(c) for c in fold.classes_]
    missing = [c for c in classes if c not in have]
    if missing:
        raise DataError(
            f"Fold {k} was trained without any image of {missing}; every fold needs every "
            "class. Lower n_splits or add images of that class."
        )
    proba = proba[:, [have.index(c) for c in classes]]
    net = fold.estimator_ if hasattr(fold, "estimator_") else fold
    info: dict[str, Any] = {"fold": k, "epochs_trained": len(net.history_)}
    if hasattr(fold, "snapshots_"):
        info.update(
            snapshot_epochs=[s["epoch"] for s in fold.snapshots_],
            threshold_epoch=fold.threshold_epoch_,
            snapshot_rule=fold.policy_used_,
        )
    return {
        "fold": k,
        "proba": proba,
        "seconds": seconds,
        "info": info,
        "device": str(net.device_),
        "threads": torch.get_num_threads(),
        "model": _localize(fold) if keep_model else None,
    }


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
    """Fit every fold through :class:`joblib.Parallel`, in fold order (see ``run_folds``)."""
    from joblib import Parallel, delayed

    last = len(splits) - 1
    tasks = (
        delayed(_fit_multiclass_fold)(est, k, X[tr], y[tr], groups[tr], X[te], classes, k == last)
        for k, (tr, te) in enumerate(splits)
    )
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    return list(progress_bar(results, progress, desc="folds", unit="fold", total=len(splits)))


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
