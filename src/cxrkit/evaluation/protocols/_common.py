"""Helpers shared by the built-in protocols: label selection, balancing, Grad-CAM examples, progress bars and the cross-validation fold runner."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from ...errors import ConfigurationError, DataError

__all__ = [
    "run_proba_folds",
    "HALL2020_LABELS",
    "two_labels",
    "balanced_subset",
    "label_counts",
    "gradcam_examples",
    "with_epoch_progress",
    "timed_predict",
    "progress_bar",
    "run_folds",
    "concurrent_fits",
    "folds_in_this_process",
    "ClinicalFolds",
    "clinical_outputs",
]


def progress_bar(iterable: Any, enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


#: The two labels the Hall et al. protocols compare when a dataset has more.
HALL2020_LABELS = ("covid", "pneumonia")


def two_labels(
    ds: Any,
    labels: Sequence[str] | None,
    positive: str | None,
    default: Sequence[str] | None = None,
) -> tuple[Any, str, str]:
    present = sorted(set(map(str, ds.y)))
    if not labels and default and len(present) > 2 and set(default) <= set(present):
        labels = default  # e.g. covid vs pneumonia on a covid/pneumonia/normal dataset
    if labels:
        ds = ds.select(list(labels))
        present = [str(v) for v in labels]
    if len(present) != 2:
        raise DataError(
            f"The protocol needs exactly two labels; the dataset has {present}. Pass labels=('covid', "
            "'pneumonia') (or --labels covid,pneumonia on the command line)."
        )
    pos = positive or ("covid" if "covid" in present else sorted(present)[0])
    if pos not in present:
        raise DataError(f"positive_label {pos!r} is not one of the labels {present}.")
    neg = [p for p in present if p != pos][0]
    return ds, pos, neg


def balanced_subset(ds: Any, n_per_class: int | str | None, seed: int) -> Any:
    """``n_per_class`` images of every label, drawn with ``seed``.

    ``"balanced"`` takes as many as the rarest label has; ``None`` keeps all.
    """
    if not n_per_class:
        return ds
    if n_per_class == "balanced":
        counts = [int(np.sum(ds.y == label)) for label in sorted(set(ds.y))]
        if len(set(counts)) == 1:
            return ds
        n_per_class = min(counts)
    elif not isinstance(n_per_class, (int, np.integer)) or isinstance(n_per_class, bool):
        raise ConfigurationError(
            f"n_per_class must be a positive integer, 'balanced' or None; got {n_per_class!r}."
        )
    rng = np.random.default_rng(seed)
    idx: list[int] = []
    for label in sorted(set(ds.y)):
        members = np.flatnonzero(ds.y == label)
        if len(members) < n_per_class:
            raise DataError(
                f"n_per_class={n_per_class} but label {label!r} has only {len(members)} images."
            )
        idx.extend(int(i) for i in rng.choice(members, n_per_class, replace=False))
    return ds.subset(np.sort(np.asarray(idx)))


def label_counts(ds: Any) -> dict[str, int]:
    labels, counts = np.unique(np.asarray(ds.y).astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(labels, counts)}


def gradcam_examples(
    est: Any,
    X: Any,
    y: np.ndarray,
    scores: np.ndarray,
    pos: str,
    idx_pool: np.ndarray,
    per_kind: int = 2,
) -> list[dict[str, Any]]:
    """Grad-CAM maps of the network (the last epoch for an ensemble) for a few true/false positives/negatives."""
    from .._finding_gradcam import gradcam_overlays

    pred = scores >= 0.5
    truth = y == pos
    kinds = {"TP": pred & truth, "FP": pred & ~truth, "TN": ~pred & ~truth, "FN": ~pred & truth}
    chosen = {kind: [i for i in idx_pool if mask[i]][:per_kind] for kind, mask in kinds.items()}
    return gradcam_overlays(est, X, chosen, y, scores)


def with_epoch_progress(est: Any, enabled: bool) -> Any:
    """Add an epoch progress bar to every CXRClassifier inside ``est``."""
    if not enabled:
        return est
    from ...estimators import EpochProgress

    if hasattr(est, "estimators") and isinstance(est.estimators, list):  # VotingClassifier
        for _, member in est.estimators:
            with_epoch_progress(member, enabled)
        return est
    inner = getattr(est, "estimator", None)
    if inner is not None and not isinstance(inner, str):
        with_epoch_progress(inner, enabled)
        return est
    if hasattr(est, "callbacks"):
        kept = [
            c for c in (est.callbacks or []) if not (isinstance(c, tuple) and c[0] == "progress")
        ]
        est.set_params(callbacks=[*kept, ("progress", EpochProgress(position=1))])
    return est


def timed_predict(est: Any, X: Any, pos_index: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    p = est.predict_proba(X)[:, pos_index]
    return p, time.perf_counter() - t0


def _fit_cv_fold(
    est: Any,
    k: int,
    X_tr: Any,
    y_tr: np.ndarray,
    groups_tr: np.ndarray,
    X_te: Any,
    pos: str,
    compare_last_epoch: bool,
    keep_model: bool,
) -> dict[str, Any]:
    """One cross-validation fold: fit a clone, score the test fold.

    A module-level function so that :class:`joblib.Parallel` can ship it to
    worker processes or Dask workers. Only the fold's own images travel (paths
    for file datasets), and the fitted model travels back only when
    ``keep_model`` (the last fold, for ``--save`` and Grad-CAM). The estimator
    is seeded through ``random_state``, so the result does not depend on which
    process runs the fold (at the same number of torch threads).
    """
    fold = clone(est)
    fold.fit(X_tr, y_tr, groups=groups_tr)
    pos_idx = int(np.flatnonzero(fold.classes_ == pos)[0])
    p, dt = timed_predict(fold, X_te, pos_idx)
    clinical = clinical_outputs(fold, X_te, pos_idx)
    ens = clinical.pop("inner") if clinical else fold
    last = ens.estimator_.predict_proba(X_te)[:, pos_idx] if compare_last_epoch else None
    return {
        "fold": k,
        "scores": p,
        "seconds": dt,
        "last_scores": last,
        "clinical": clinical,
        "info": {
            "fold": k,
            "snapshot_epochs": [s["epoch"] for s in ens.snapshots_],
            "threshold_epoch": ens.threshold_epoch_,
            "snapshot_rule": ens.policy_used_,
            "epochs_trained": len(ens.estimator_.history_),
        },
        "device": str(ens.estimator_.device_),
        "threads": torch.get_num_threads(),
        "model": _localize(ens) if keep_model else None,
    }


def _fit_proba_fold(
    est: Any, k: int, X_tr: Any, y_tr: Any, groups_tr: np.ndarray, X_te: Any, keep_model: bool
) -> dict[str, Any]:
    """One fold of a multi-output run: fit a clone, keep every ``predict_proba`` column.

    Module level for :class:`joblib.Parallel`, as :func:`_fit_cv_fold`; the
    columns are in the fold model's ``classes_`` order (returned as ``classes``).
    """
    fold = clone(est)
    fold.fit(X_tr, y_tr, groups=groups_tr)
    t0 = time.perf_counter()
    proba = fold.predict_proba(X_te)
    seconds = time.perf_counter() - t0
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
        "classes": [str(c) for c in fold.classes_],
        "seconds": seconds,
        "info": info,
        "device": str(net.device_),
        "threads": torch.get_num_threads(),
        "model": _localize(fold) if keep_model else None,
    }


def run_proba_folds(
    est: Any,
    X: Any,
    y: Any,
    groups: np.ndarray,
    splits: list[Any],
    n_jobs: int | None,
    progress: bool,
) -> list[dict[str, Any]]:
    """Fit every fold of a multi-output run (``y`` an array or a DataFrame of findings), in fold order.

    The multi-output counterpart of :func:`run_folds`: each result holds the
    fold's whole ``predict_proba``; the last fold's model comes back.
    """
    from joblib import Parallel, delayed

    rows = (lambda idx: y.iloc[idx]) if hasattr(y, "iloc") else (lambda idx: y[idx])
    last = len(splits) - 1
    tasks = (
        delayed(_fit_proba_fold)(est, k, X[tr], rows(tr), groups[tr], X[te], k == last)
        for k, (tr, te) in enumerate(splits)
    )
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    return list(progress_bar(results, progress, desc="folds", unit="fold", total=len(splits)))


def clinical_outputs(fold: Any, X_te: Any, pos_idx: int) -> dict[str, Any]:
    """Collect what a ClinicalClassifier fold adds: raw scores, its threshold, conformal data."""
    from ..clinical import ClinicalClassifier

    if not isinstance(fold, ClinicalClassifier):
        return {}
    cal = fold.validation_proba_
    return {
        "inner": fold.estimator_,
        "uncalibrated": fold.predict_uncalibrated_proba(X_te)[:, pos_idx],
        "threshold": float(fold.threshold_),
        "test_proba": fold.predict_proba(X_te),
        "cal_proba": cal,
        "cal_y": None
        if cal is None
        else np.searchsorted(fold.classes_, np.asarray(fold.validation_y_)),
        "inner_validation_patients": 0
        if fold.inner_validation_index_ is None
        else int(len(fold.inner_validation_index_)),
    }


def _localize(est: Any) -> Any:
    """Return a model trained on a worker's GPU, usable where no GPU is visible: skorch maps its tensors to the CPU when unpickled; point the estimator there too."""
    base = est.estimator_ if hasattr(est, "estimator_") else est
    if str(getattr(base, "device_", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        base.device_ = "cpu"
        base.net_.device = "cpu"
    return est


def folds_in_this_process(n_jobs: int | None) -> bool:
    """Whether :func:`run_folds` will fit the folds here, one after the other (epoch progress bars only make sense then)."""
    from joblib import effective_n_jobs
    from joblib.parallel import get_active_backend

    backend = type(get_active_backend()[0]).__name__
    return "Dask" not in backend and effective_n_jobs(n_jobs) == 1


def concurrent_fits(n_jobs: int | None, n_tasks: int) -> int:
    """How many of ``n_tasks`` fits :func:`run_folds` runs side by side."""
    from joblib import effective_n_jobs

    return 1 if folds_in_this_process(n_jobs) else max(1, min(n_tasks, effective_n_jobs(n_jobs)))


def run_folds(
    est: Any,
    X: Any,
    y: np.ndarray,
    groups: np.ndarray,
    splits: list[Any],
    pos: str,
    compare_last_epoch: bool,
    n_jobs: int | None,
    progress: bool,
) -> list[dict[str, Any]]:
    """Fit every fold through :class:`joblib.Parallel`, in fold order.

    With ``n_jobs=None`` and no active :func:`joblib.parallel_config` the folds
    run one after the other in this process; inside
    ``joblib.parallel_config(backend="dask")`` they run on the Dask workers.
    """
    from joblib import Parallel, delayed

    last = len(splits) - 1
    tasks = (
        delayed(_fit_cv_fold)(
            est, k, X[tr], y[tr], groups[tr], X[te], pos, compare_last_epoch, k == last
        )
        for k, (tr, te) in enumerate(splits)
    )
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    out = []
    for r in progress_bar(results, progress, desc="folds", unit="fold", total=len(splits)):
        out.append(r)
    return out


class ClinicalFolds:
    """Collects what ClinicalClassifier folds return, into :class:`Evaluation` fields."""

    def __init__(self, n: int) -> None:
        self.raw = np.full(n, np.nan)
        self.thresholds = np.full(n, np.nan)
        self.conformal: list[dict[str, Any]] = []
        self.used = False

    def add(self, clinical: dict[str, Any], test_index: np.ndarray) -> None:
        """Keep one fold's clinical outputs (an empty dict: a plain fold)."""
        if not clinical:
            return
        self.used = True
        self.raw[test_index] = clinical["uncalibrated"]
        self.thresholds[test_index] = clinical["threshold"]
        if clinical["cal_proba"] is not None:
            self.conformal.append(
                {
                    "cal_proba": clinical["cal_proba"],
                    "cal_y": clinical["cal_y"],
                    "test_proba": clinical["test_proba"],
                    "test_index": np.asarray(test_index),
                }
            )

    def evaluation_fields(self, calibrated: bool, thresholded: bool) -> dict[str, Any]:
        """``y_score_uncalibrated``, ``thresholds`` and ``conformal_folds`` (empty if unused)."""
        if not self.used:
            return {}
        return {
            "y_score_uncalibrated": self.raw if calibrated else None,
            "thresholds": self.thresholds if thresholded else None,
            "conformal_folds": self.conformal,
        }
