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

import math
import numbers
from statistics import NormalDist
from typing import Any

import numpy as np
from sklearn.metrics import make_scorer, roc_auc_score

from ..errors import ConfigurationError, DataError

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


# -- input checks -------------------------------------------------------------------
def _as_binary(y_true: Any, positive_label: Any, *, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise DataError(f"{name} must be 1-D (one label per image); got shape {y.shape}.")
    is_pos = y == positive_label
    if not isinstance(is_pos, np.ndarray) or is_pos.shape != y.shape:
        raise DataError(f"Could not compare {name} with positive_label={positive_label!r}.")
    return is_pos.astype(bool)


def _as_scores(y_score: Any, n: int) -> np.ndarray:
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s.ravel()
    if s.ndim != 1:
        raise DataError(
            f"y_score must be 1-D (the probability of the positive label per image); got shape "
            f"{s.shape}. For predict_proba output pass the positive column, e.g. proba[:, 1]."
        )
    if len(s) != n:
        raise DataError(f"y_true has {n} labels but y_score has {len(s)} scores; they must match.")
    bad = ~np.isfinite(s)
    if bad.any():
        raise DataError(
            f"y_score contains {int(bad.sum())} NaN or infinite value(s); every image needs a "
            "finite score. Remove those images or fix the model output."
        )
    return s


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


# -- point metrics ------------------------------------------------------------------------
def binary_confusion_matrix(y_true: Any, y_pred: Any, *, positive_label: Any) -> np.ndarray:
    """Confusion matrix of a binary task, positive class last.

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
    t = _as_binary(y_true, positive_label)
    p = _as_binary(y_pred, positive_label, name="y_pred")
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} labels but y_pred has {len(p)}; they must match.")
    return np.array(
        [[np.sum(~t & ~p), np.sum(~t & p)], [np.sum(t & ~p), np.sum(t & p)]], dtype=np.int64
    )


def accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Fraction of images whose predicted label equals the true label."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} labels but y_pred has {len(p)}; they must match.")
    return _ratio(np.sum(t == p), len(t))


def sensitivity_score(y_true: Any, y_pred: Any, *, positive_label: Any) -> float:
    """True positive rate ``TP / (TP + FN)``; NaN when there are no positives."""
    (tn, fp), (fn, tp) = binary_confusion_matrix(y_true, y_pred, positive_label=positive_label)
    return _ratio(tp, tp + fn)


def specificity_score(y_true: Any, y_pred: Any, *, positive_label: Any) -> float:
    """True negative rate ``TN / (TN + FP)``; NaN when there are no negatives."""
    (tn, fp), (fn, tp) = binary_confusion_matrix(y_true, y_pred, positive_label=positive_label)
    return _ratio(tn, tn + fp)


def _check_prevalence(prevalence: float) -> float:
    if not isinstance(prevalence, numbers.Real) or not 0.0 < float(prevalence) < 1.0:
        raise ConfigurationError(
            f"The 'prevalence' parameter must be a float in the range (0, 1). Got {prevalence!r} "
            "instead (e.g. 0.0257 for 2.57%)."
        )
    return float(prevalence)


def ppv_at_prevalence(sensitivity: Any, specificity: Any, prevalence: float) -> Any:
    """Positive predictive value at ``prevalence`` by Bayes' rule.

    ``PPV = sens p / (sens p + (1 - spec) (1 - p))``. Works element-wise on arrays.

    Examples
    --------
    >>> round(ppv_at_prevalence(0.9, 0.9, 0.1), 4)
    0.5
    """
    p = _check_prevalence(prevalence)
    sens, spec = np.asarray(sensitivity, float), np.asarray(specificity, float)
    num, den = sens * p, sens * p + (1.0 - spec) * (1.0 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def npv_at_prevalence(sensitivity: Any, specificity: Any, prevalence: float) -> Any:
    """Negative predictive value at ``prevalence`` by Bayes' rule.

    ``NPV = spec (1 - p) / (spec (1 - p) + (1 - sens) p)``. Works element-wise.

    Examples
    --------
    >>> round(npv_at_prevalence(0.9, 0.9, 0.1), 4)
    0.9878
    """
    p = _check_prevalence(prevalence)
    sens, spec = np.asarray(sensitivity, float), np.asarray(specificity, float)
    num, den = spec * (1.0 - p), spec * (1.0 - p) + (1.0 - sens) * p
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def roc_auc(y_true: Any, y_score: Any, *, positive_label: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    t = _as_binary(y_true, positive_label)
    s = _as_scores(y_score, len(t))
    if t.all() or not t.any():
        return float("nan")
    return float(roc_auc_score(t, s))


# -- DeLong --------------------------------------------------------------------------------
def _midrank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = len(x)
    ranks_sorted = np.empty(n, dtype=np.float64)
    # boundaries of tie blocks
    starts = np.r_[0, np.flatnonzero(np.diff(xs)) + 1]
    ends = np.r_[starts[1:], n]
    mid = (starts + ends + 1) / 2.0  # average of 1-based ranks start+1..end
    ranks_sorted[:] = np.repeat(mid, ends - starts)
    out = np.empty(n, dtype=np.float64)
    out[order] = ranks_sorted
    return out


def delong_auc_variance(
    y_true: Any, y_score: Any, *, positive_label: Any = 1
) -> tuple[float, float]:
    """Empirical AUC and its DeLong variance (fast algorithm of Sun & Xu, 2014).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels; ``positive_label`` marks the positives.
    y_score : array-like of shape (n,)
        Scores, higher meaning more likely positive.
    positive_label : object, default=1

    Returns
    -------
    auc : float
    variance : float
        ``Var(V10) / m + Var(V01) / n`` from the structural components
        (DeLong, DeLong & Clarke-Pearson 1988), computed with mid-ranks in
        ``O(N log N)``. NaN when a class has fewer than two images.

    Examples
    --------
    >>> auc, var = delong_auc_variance([1, 1, 1, 0, 0], [0.9, 0.8, 0.4, 0.7, 0.3])
    >>> round(auc, 4), round(var, 4)
    (0.8333, 0.0556)
    """
    t = _as_binary(y_true, positive_label)
    s = _as_scores(y_score, len(t))
    x, y = s[t], s[~t]
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    tx, ty, tz = _midrank(x), _midrank(y), _midrank(np.r_[x, y])
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    if m < 2 or n < 2:
        return float(auc), float("nan")
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return float(auc), float(var)


def delong_auc_ci(
    y_true: Any, y_score: Any, *, positive_label: Any = 1, confidence: float = 0.95
) -> tuple[float, float, float]:
    """AUC with a DeLong confidence interval ``AUC +- z sd``, clipped to ``[0, 1]``.

    Returns
    -------
    auc, ci_low, ci_high : float
    """
    auc, var = delong_auc_variance(y_true, y_score, positive_label=positive_label)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    if not np.isfinite(var):
        return auc, float("nan"), float("nan")
    sd = math.sqrt(max(var, 0.0))
    return auc, max(0.0, auc - z * sd), min(1.0, auc + z * sd)


# -- weighted (bootstrap) statistics --------------------------------------------------------
def _weighted_stats(
    w: np.ndarray, t: np.ndarray, pred: np.ndarray, tie_id: np.ndarray, n_ties: int
) -> dict[str, np.ndarray]:
    """Metrics for each row of image weights ``w`` (B, n); all vectorised."""
    tp = w[:, t & pred].sum(1)
    fn = w[:, t & ~pred].sum(1)
    tn = w[:, ~t & ~pred].sum(1)
    fp = w[:, ~t & pred].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pos, neg = tp + fn, tn + fp
        out = {
            "accuracy": (tp + tn) / (pos + neg),
            "sensitivity": tp / pos,
            "specificity": tn / neg,
            "ppv_sample": tp / (tp + fp),
            "npv_sample": tn / (tn + fn),
        }
        # AUC: weighted positive and negative mass per tie block of the sorted scores
        order = np.argsort(tie_id, kind="stable")
        ends = np.searchsorted(tie_id[order], np.arange(n_ties), side="right") - 1
        ws = w[:, order]
        ts = t[order]
        cum_p = np.cumsum(np.where(ts, ws, 0.0), axis=1)[:, ends]
        cum_n = np.cumsum(np.where(ts, 0.0, ws), axis=1)[:, ends]
        P = np.diff(cum_p, axis=1, prepend=0.0)
        N = np.diff(cum_n, axis=1, prepend=0.0)
        below = np.cumsum(N, axis=1) - N  # negative mass strictly below each block
        out["auc"] = (P * (below + 0.5 * N)).sum(1) / (pos * neg)
    for v in out.values():
        v[~np.isfinite(v)] = np.nan
    return out


def _entry(value: float, low: float, high: float, method: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "value": float(value),
        "ci_low": float(low),
        "ci_high": float(high),
        "method": method,
    }
    d.update(extra)
    return d


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
    """Every figure of a binary evaluation with its confidence interval.

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
    t = _as_binary(y_true, positive_label)
    n = len(t)
    if n == 0:
        raise DataError("compute_metrics got no images (y_true is empty).")
    s = _as_scores(y_score, n)
    if not t.any():
        raise DataError(
            f"positive_label={positive_label!r} does not occur in y_true (labels seen: "
            f"{sorted(map(str, set(np.asarray(y_true).tolist())))[:10]}). Pass the label of the "
            "positive class as it appears in y_true."
        )
    if not isinstance(n_bootstraps, numbers.Integral) or n_bootstraps < 0:
        raise ConfigurationError(
            f"The 'n_bootstraps' parameter must be an int in the range [0, inf). Got "
            f"{n_bootstraps!r} instead."
        )
    if not isinstance(confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise ConfigurationError(
            f"The 'confidence' parameter must be a float in the range (0, 1). Got {confidence!r} "
            "instead."
        )
    if prevalence is not None:
        prevalence = _check_prevalence(prevalence)
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1 or len(g) != n:
            raise DataError(
                f"groups must hold one patient id per image ({n}); got shape {g.shape}."
            )
        if g.dtype == object and any(v is None for v in g):
            raise DataError("groups contains missing patient ids (None); give every image one.")
        _, group_index = np.unique(g.astype(str) if g.dtype == object else g, return_inverse=True)
    else:
        group_index = np.arange(n)
    n_groups = int(group_index.max()) + 1

    pred = s >= threshold
    # tie blocks of the scores (for the weighted AUC)
    _, tie_id = np.unique(s, return_inverse=True)
    n_ties = int(tie_id.max()) + 1
    point = {
        k: float(v[0]) for k, v in _weighted_stats(np.ones((1, n)), t, pred, tie_id, n_ties).items()
    }

    # bootstrap: counts of each patient in each resample -> image weights
    alpha = (1.0 - confidence) / 2.0
    boot: dict[str, np.ndarray] = {}
    if n_bootstraps > 0:
        rng = np.random.default_rng(random_state)
        chunk = max(1, min(n_bootstraps, int(4_000_000 // max(n, 1))))
        parts: list[dict[str, np.ndarray]] = []
        done = 0
        while done < n_bootstraps:
            b = min(chunk, n_bootstraps - done)
            draws = rng.integers(0, n_groups, size=(b, n_groups))
            draws += np.arange(b)[:, None] * n_groups
            counts = np.bincount(draws.ravel(), minlength=b * n_groups).reshape(b, n_groups)
            parts.append(
                _weighted_stats(counts[:, group_index].astype(np.float64), t, pred, tie_id, n_ties)
            )
            done += b
        boot = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def interval(values: np.ndarray | None) -> tuple[float, float, int]:
        if values is None:
            return float("nan"), float("nan"), 0
        ok = values[np.isfinite(values)]
        if len(ok) == 0:
            return float("nan"), float("nan"), 0
        lo, hi = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
        return float(lo), float(hi), int(len(ok))

    unit = "patients" if groups is not None else "images"
    pct = f"{confidence:.0%}"
    boot_method = (
        f"percentile bootstrap over {unit} ({n_bootstraps} resamples, seed {random_state})"
    )
    if n_bootstraps == 0:
        boot_method = "point estimate only (n_bootstraps=0)"
    out: dict[str, Any] = {}
    for name in ("accuracy", "sensitivity", "specificity"):
        lo, hi, nv = interval(boot.get(name))
        out[name] = _entry(point[name], lo, hi, boot_method, n_valid=nv)

    # PPV / NPV
    if prevalence is None:
        ppv_b, npv_b = boot.get("ppv_sample"), boot.get("npv_sample")
        ppv, npv = point["ppv_sample"], point["npv_sample"]
        where = "at the sample prevalence"
    else:
        ppv = ppv_at_prevalence(point["sensitivity"], point["specificity"], prevalence)
        npv = npv_at_prevalence(point["sensitivity"], point["specificity"], prevalence)
        ppv_b = npv_b = None
        if boot:
            ppv_b = np.asarray(
                ppv_at_prevalence(boot["sensitivity"], boot["specificity"], prevalence), float
            )
            npv_b = np.asarray(
                npv_at_prevalence(boot["sensitivity"], boot["specificity"], prevalence), float
            )
        where = f"at prevalence {prevalence:g} (Bayes' rule from sensitivity and specificity)"
    for name, val, b in (("ppv", ppv, ppv_b), ("npv", npv, npv_b)):
        lo, hi, nv = interval(b)
        out[name] = _entry(val, lo, hi, f"{where}; {boot_method}", n_valid=nv)

    # AUC
    auc_d, d_lo, d_hi = delong_auc_ci(t, s, positive_label=True, confidence=confidence)
    b_lo, b_hi, b_nv = interval(boot.get("auc"))
    delong_method = f"DeLong {pct} interval (fast DeLong, Sun & Xu 2014), independent images"
    if groups is not None and n_bootstraps > 0:
        out["auc"] = _entry(
            point["auc"],
            b_lo,
            b_hi,
            boot_method + "; DeLong interval kept in 'delong_ci' (it assumes independent images)",
            n_valid=b_nv,
            delong_ci=[d_lo, d_hi],
            bootstrap_ci=[b_lo, b_hi],
        )
    else:
        out["auc"] = _entry(
            point["auc"],
            d_lo,
            d_hi,
            delong_method,
            n_valid=b_nv,
            delong_ci=[d_lo, d_hi],
            bootstrap_ci=[b_lo, b_hi],
        )

    cm = binary_confusion_matrix(t, pred, positive_label=True)
    out["confusion_matrix"] = {
        "tn": int(cm[0, 0]),
        "fp": int(cm[0, 1]),
        "fn": int(cm[1, 0]),
        "tp": int(cm[1, 1]),
    }
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
        "n_groups": n_groups,
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
    """Point estimates of every figure, one dict per fold.

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
    s = _as_scores(y_score, len(t))
    f = np.asarray(folds)
    if len(f) != len(t):
        raise DataError(f"folds has {len(f)} entries but y_true has {len(t)}; they must match.")
    rows = []
    for k in np.unique(f):
        sel = f == k
        tb = _as_binary(t[sel], positive_label)
        pred = s[sel] >= threshold
        _, tie_id = np.unique(s[sel], return_inverse=True)
        st = {
            k2: float(v[0])
            for k2, v in _weighted_stats(
                np.ones((1, int(sel.sum()))), tb, pred, tie_id, int(tie_id.max()) + 1
            ).items()
        }
        if prevalence is None:
            ppv, npv = st["ppv_sample"], st["npv_sample"]
        else:
            ppv = ppv_at_prevalence(st["sensitivity"], st["specificity"], prevalence)
            npv = npv_at_prevalence(st["sensitivity"], st["specificity"], prevalence)
        rows.append(
            {
                "fold": k.item() if hasattr(k, "item") else k,
                "n_images": int(sel.sum()),
                "n_positive": int(tb.sum()),
                "auc": st["auc"],
                "sensitivity": st["sensitivity"],
                "specificity": st["specificity"],
                "accuracy": st["accuracy"],
                "ppv": float(ppv),
                "npv": float(npv),
            }
        )
    return rows


# -- scikit-learn scorers ------------------------------------------------------------------------
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
