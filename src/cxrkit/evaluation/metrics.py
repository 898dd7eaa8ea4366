"""Binary classification metrics with confidence intervals, and scikit-learn scorers.

Point estimates follow the usual definitions (the positive class is the
disease, e.g. ``"covid"``):

* accuracy = (TP + TN) / n
* sensitivity (true positive rate) = TP / (TP + FN)
* specificity (true negative rate) = TN / (TN + FP)
* AUC = area under the ROC curve (ties count one half)
* PPV and NPV *at a stated prevalence* ``p`` by Bayes' rule from sensitivity and
  specificity, ``PPV = sens p / (sens p + (1 - spec)(1 - p))`` and
  ``NPV = spec (1 - p) / (spec (1 - p) + (1 - sens) p)``; without a stated
  prevalence they are the plain ``TP / (TP + FP)`` and ``TN / (TN + FN)``.

Confidence intervals (:func:`compute_metrics`)
----------------------------------------------
* **Bootstrap by patient.** When ``groups`` (patient ids) are given, whole
  patients are resampled with replacement (a cluster bootstrap), so images of
  one patient stay together and the interval reflects the number of patients,
  not of images. Without groups every image is its own cluster. Percentile
  intervals; seeded by ``random_state``. Resamples in which a metric is
  undefined (e.g. no positive patient drawn) are left out of that metric's
  interval and counted in ``n_valid``.
* **DeLong for AUC.** The fast DeLong algorithm (Sun & Xu 2014) gives the
  variance of the empirical AUC; the interval is ``AUC +- z sd`` clipped to
  ``[0, 1]``. DeLong assumes independent images, so **when groups are given the
  reported AUC interval is the patient-level cluster bootstrap** and the DeLong
  interval is kept beside it (``"delong_ci"``) for reference; without groups the
  DeLong interval is reported and the image-level bootstrap is kept beside it
  (``"bootstrap_ci"``). The ``"method"`` field of every figure says which was used.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import ConfigurationError, DataError
from ._bootstrap import bootstrap_weights, cluster_index, percentile_interval
from ._delong import delong_auc_ci, delong_auc_variance
from ._metric_inputs import as_binary, as_scores, check_prevalence
from ._point import (
    accuracy_score,
    binary_confusion_matrix,
    npv_at_prevalence,
    ppv_at_prevalence,
    roc_auc,
    sensitivity_score,
    specificity_score,
)
from ._scorers import make_cxr_scorers
from ._weighted import point_stats, weighted_stats

__all__ = [
    "METRIC_NAMES",
    "binary_confusion_matrix",
    "accuracy_score",
    "sensitivity_score",
    "specificity_score",
    "ppv_at_prevalence",
    "npv_at_prevalence",
    "roc_auc",
    "delong_auc_variance",
    "delong_auc_ci",
    "compute_metrics",
    "per_fold_metrics",
    "make_cxr_scorers",
]

#: The figures :func:`compute_metrics` reports, in display order.
METRIC_NAMES: tuple[str, ...] = ("auc", "sensitivity", "specificity", "accuracy", "ppv", "npv")


# -- compute_metrics ------------------------------------------------------------------------
def _entry(value: float, low: float, high: float, method: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "value": float(value),
        "ci_low": float(low),
        "ci_high": float(high),
        "method": method,
    }
    d.update(extra)
    return d


def _check_settings(n_bootstraps: Any, confidence: Any, prevalence: float | None) -> float | None:
    if not isinstance(n_bootstraps, numbers.Integral) or n_bootstraps < 0:
        raise ConfigurationError(
            f"The 'n_bootstraps' parameter must be an int in the range [0, inf). Got "
            f"{n_bootstraps!r} instead."
        )
    if not isinstance(confidence, numbers.Real) or not 0.0 < float(confidence) < 1.0:
        raise ConfigurationError(
            f"The 'confidence' parameter must be a float in the range (0, 1). Got {confidence!r} "
            "instead."
        )
    return None if prevalence is None else check_prevalence(prevalence)


def _bootstrap_stats(
    t: np.ndarray,
    s: np.ndarray,
    threshold: float,
    index: np.ndarray,
    n_bootstraps: int,
    random_state: int | None,
) -> dict[str, np.ndarray]:
    """Compute every figure in each patient-bootstrap resample (empty dict for none)."""
    if n_bootstraps == 0:
        return {}
    pred = s >= threshold
    _, tie_id = np.unique(s, return_inverse=True)
    n_ties = int(tie_id.max()) + 1
    parts = [
        weighted_stats(w, t, pred, tie_id, n_ties)
        for w in bootstrap_weights(index, n_bootstraps, random_state)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _predictive_values(
    point: dict[str, float],
    boot: dict[str, np.ndarray],
    prevalence: float | None,
    confidence: float,
    boot_method: str,
) -> dict[str, Any]:
    """Build the PPV and NPV entries, at the sample prevalence or by Bayes' rule at ``prevalence``."""
    if prevalence is None:
        ppv_b, npv_b = boot.get("ppv_sample"), boot.get("npv_sample")
        ppv, npv = point["ppv_sample"], point["npv_sample"]
        where = "at the sample prevalence"
    else:
        ppv = ppv_at_prevalence(point["sensitivity"], point["specificity"], prevalence)
        npv = npv_at_prevalence(point["sensitivity"], point["specificity"], prevalence)
        ppv_b = npv_b = None
        if boot:
            sens_b, spec_b = boot["sensitivity"], boot["specificity"]
            ppv_b = np.asarray(ppv_at_prevalence(sens_b, spec_b, prevalence), float)
            npv_b = np.asarray(npv_at_prevalence(sens_b, spec_b, prevalence), float)
        where = f"at prevalence {prevalence:g} (Bayes' rule from sensitivity and specificity)"
    out = {}
    for name, val, b in (("ppv", ppv, ppv_b), ("npv", npv, npv_b)):
        lo, hi, nv = percentile_interval(b, confidence)
        out[name] = _entry(val, lo, hi, f"{where}; {boot_method}", n_valid=nv)
    return out


def _auc_entry(
    t: np.ndarray,
    s: np.ndarray,
    point_auc: float,
    boot: dict[str, np.ndarray],
    confidence: float,
    boot_method: str,
    patient_level: bool,
) -> dict[str, Any]:
    """Build the AUC entry with its patient bootstrap (``patient_level``) or DeLong interval."""
    _, d_lo, d_hi = delong_auc_ci(t, s, positive_label=True, confidence=confidence)
    b_lo, b_hi, b_nv = percentile_interval(boot.get("auc"), confidence)
    both = {"n_valid": b_nv, "delong_ci": [d_lo, d_hi], "bootstrap_ci": [b_lo, b_hi]}
    if patient_level:
        method = boot_method + (
            "; DeLong interval kept in 'delong_ci' (it assumes independent images)"
        )
        return _entry(point_auc, b_lo, b_hi, method, **both)
    method = f"DeLong {confidence:.0%} interval (fast DeLong, Sun & Xu 2014), independent images"
    return _entry(point_auc, d_lo, d_hi, method, **both)


def _check_inputs(y_true: Any, y_score: Any, positive_label: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_binary(y_true, positive_label)
    if len(t) == 0:
        raise DataError("compute_metrics got no images (y_true is empty).")
    s = as_scores(y_score, len(t))
    if not t.any():
        raise DataError(
            f"positive_label={positive_label!r} does not occur in y_true (labels seen: "
            f"{sorted(map(str, set(np.asarray(y_true).tolist())))[:10]}). Pass the label of the "
            "positive class as it appears in y_true."
        )
    return t, s


def compute_metrics(
    y_true: Any,
    y_score: Any,
    *,
    positive_label: Any,
    groups: Any = None,
    threshold: float = 0.5,
    prevalence: float | None = None,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Compute every figure of a binary evaluation with its confidence interval.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels; ``positive_label`` marks the positives, anything else is negative.
    y_score : array-like of shape (n,)
        Probability (or any score) of ``positive_label`` per image.
    positive_label : object
        The label of the positive class (e.g. ``"covid"``).
    groups : array-like of shape (n,), optional
        Patient ids. When given, the bootstrap resamples patients (cluster
        bootstrap) and the AUC interval is that bootstrap, not DeLong.
    threshold : float, default=0.5
        An image is predicted positive when ``y_score >= threshold``.
    prevalence : float in (0, 1), optional
        Prevalence at which PPV and NPV are stated (Bayes' rule from sensitivity
        and specificity). ``None`` uses the prevalence of the sample.
    n_bootstraps : int, default=1000
        Number of bootstrap resamples; 0 gives point estimates only (DeLong still
        gives the AUC interval).
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int or None, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        For each name in :data:`METRIC_NAMES` a dict ``{"value", "ci_low",
        "ci_high", "method"}`` (plus ``"n_valid"``, the bootstrap resamples in
        which the figure was defined, and for ``"auc"`` both ``"delong_ci"`` and
        ``"bootstrap_ci"``). Also ``"confusion_matrix"``
        (``{"tn", "fp", "fn", "tp"}``) and ``"settings"`` (threshold, prevalence,
        confidence, n_bootstraps, random_state, n_images, n_positive, n_groups,
        resampling unit).

    Examples
    --------
    >>> m = compute_metrics(["a", "b", "b", "a"], [0.1, 0.8, 0.4, 0.3],
    ...                     positive_label="b", n_bootstraps=0)
    >>> m["sensitivity"]["value"], m["auc"]["value"]
    (0.5, 1.0)
    """
    t, s = _check_inputs(y_true, y_score, positive_label)
    n = len(t)
    prevalence = _check_settings(n_bootstraps, confidence, prevalence)
    index = cluster_index(groups, n)
    point = point_stats(t, s, threshold)
    boot = _bootstrap_stats(t, s, threshold, index, n_bootstraps, random_state)

    unit = "patients" if groups is not None else "images"
    boot_method = (
        f"percentile bootstrap over {unit} ({n_bootstraps} resamples, seed {random_state})"
        if n_bootstraps > 0
        else "point estimate only (n_bootstraps=0)"
    )
    out: dict[str, Any] = {}
    for name in ("accuracy", "sensitivity", "specificity"):
        lo, hi, nv = percentile_interval(boot.get(name), confidence)
        out[name] = _entry(point[name], lo, hi, boot_method, n_valid=nv)
    out.update(_predictive_values(point, boot, prevalence, confidence, boot_method))
    out["auc"] = _auc_entry(
        t, s, point["auc"], boot, confidence, boot_method, groups is not None and n_bootstraps > 0
    )
    (tn, fp), (fn, tp) = binary_confusion_matrix(t, s >= threshold, positive_label=True)
    out["confusion_matrix"] = {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
    out["settings"] = {
        "positive_label": positive_label
        if isinstance(positive_label, (str, int, float, bool))
        else str(positive_label),
        "threshold": float(threshold),
        "prevalence": prevalence,
        "sample_prevalence": float(t.mean()),
        "confidence": float(confidence),
        "n_bootstraps": int(n_bootstraps),
        "random_state": random_state,
        "resampling_unit": unit,
        "n_images": int(n),
        "n_positive": int(t.sum()),
        "n_negative": int((~t).sum()),
        "n_groups": int(index.max()) + 1,
    }
    return out


def per_fold_metrics(
    y_true: Any,
    y_score: Any,
    folds: Any,
    *,
    positive_label: Any,
    threshold: float = 0.5,
    prevalence: float | None = None,
) -> list[dict[str, Any]]:
    """Compute the point estimate of every figure, one dict per fold.

    Parameters
    ----------
    y_true, y_score : array-like of shape (n,)
        Pooled out-of-fold labels and scores.
    folds : array-like of shape (n,)
        The fold index of each image.
    positive_label, threshold, prevalence
        As in :func:`compute_metrics`.

    Returns
    -------
    list of dict
        ``{"fold", "n_images", "n_positive", "auc", "sensitivity", ...}`` with plain floats
        (NaN where a figure is undefined in that fold), sorted by fold.
    """
    t = np.asarray(y_true)
    s = as_scores(y_score, len(t))
    f = np.asarray(folds)
    if len(f) != len(t):
        raise DataError(f"folds has {len(f)} entries but y_true has {len(t)}; they must match.")
    rows = []
    for k in np.unique(f):
        sel = f == k
        tb = as_binary(t[sel], positive_label)
        st = point_stats(tb, s[sel], threshold)
        if prevalence is None:
            ppv, npv = st["ppv_sample"], st["npv_sample"]
        else:
            ppv = ppv_at_prevalence(st["sensitivity"], st["specificity"], prevalence)
            npv = npv_at_prevalence(st["sensitivity"], st["specificity"], prevalence)
        row = {"fold": k.item() if hasattr(k, "item") else k, "n_images": int(sel.sum())}
        row["n_positive"] = int(tb.sum())
        row.update({m: st[m] for m in ("auc", "sensitivity", "specificity", "accuracy")})
        row.update(ppv=float(ppv), npv=float(npv))
        rows.append(row)
    return rows
