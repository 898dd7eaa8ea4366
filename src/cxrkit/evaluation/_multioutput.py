"""Multi-label and multi-class metrics with patient-bootstrap confidence intervals.

Multi-label (:func:`compute_multilabel_metrics`)
------------------------------------------------
Each finding is a binary problem on the images whose label is observed (a NaN
label is masked out of that finding only). Its figures are those of
:func:`cxrkit.evaluation.metrics.compute_metrics` (same entries, same
intervals). A finding whose observed labels are all positive or all negative
has no AUC, sensitivity or specificity: it is reported as undefined, with the
reason, and left out of the macro average (which names the findings it used).

* **macro AUC**: mean of the per-finding AUCs (scikit-learn's ``average="macro"``).
* **micro AUC**: AUC of all observed (image, finding) cells pooled
  (``average="micro"``).

Their intervals are a percentile bootstrap over the same resamples of
patients for every finding (:mod:`._bootstrap`), so the correlation between
findings of one patient is kept. A resample in which a finding of the macro
average has no positive or no negative is left out (``n_valid`` counts the
rest), as for the binary figures.

Multi-class (:func:`compute_multiclass_metrics`)
------------------------------------------------
One-vs-rest AUC per class, their mean (macro AUC, scikit-learn's
``multi_class="ovr", average="macro"``), accuracy of the most probable class
and the ``k x k`` confusion matrix (rows: truth, columns: prediction).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from ..errors import DataError
from ._bootstrap import bootstrap_weights, cluster_index, percentile_interval
from ._weighted import point_stats, weighted_stats
from .metrics import _auc_entry, _check_settings, _entry, compute_metrics

__all__ = ["compute_multilabel_metrics", "compute_multiclass_metrics", "FINDING_METRICS"]

#: The per-finding figures of :func:`compute_multilabel_metrics`, in display order.
FINDING_METRICS: tuple[str, ...] = ("auc", "sensitivity", "specificity", "ppv", "npv")

#: Largest block (resamples x cells) scored at once by the joint bootstrap.
_MAX_CELLS = 4_000_000


def _boot_method(n_bootstraps: int, random_state: int | None, unit: str) -> str:
    if n_bootstraps == 0:
        return "point estimate only (n_bootstraps=0)"
    return f"percentile bootstrap over {unit} ({n_bootstraps} resamples, seed {random_state})"


def _undefined(reason: str) -> dict[str, Any]:
    nan = float("nan")
    return _entry(nan, nan, nan, f"undefined: {reason}", n_valid=0)


def _tie_ids(s: np.ndarray) -> tuple[np.ndarray, int]:
    _, tie = np.unique(s, return_inverse=True)
    tie = np.asarray(tie).ravel()
    return tie, int(tie.max()) + 1 if len(tie) else 0


def _blocks(index: np.ndarray, n_bootstraps: int, seed: int | None, width: int) -> Iterator[Any]:
    """Cluster-bootstrap weight rows, in blocks of at most ``_MAX_CELLS / width`` rows."""
    rows = max(1, _MAX_CELLS // max(width, 1))
    for w in bootstrap_weights(index, n_bootstraps, seed):
        for start in range(0, len(w), rows):
            yield w[start : start + rows]


# -- multi-label -----------------------------------------------------------------------------
def _as_matrix(Y: Any, name: str, n: int | None = None, k: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{name} must be numeric (0, 1 or NaN); found non-numeric values."
        ) from None
    if a.ndim != 2:
        raise DataError(f"{name} must be 2-D (images, findings); got shape {a.shape}.")
    if n is not None and a.shape != (n, k):
        raise DataError(
            f"{name} has shape {a.shape} but Y_true has shape {(n, k)}; they must match."
        )
    return a


def _check_multilabel(
    Y_true: Any, Y_score: Any, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    Y = _as_matrix(Y_true, "Y_true")
    n, k = Y.shape
    if n == 0:
        raise DataError("compute_multilabel_metrics got no images (Y_true is empty).")
    S = _as_matrix(Y_score, "Y_score", n, k)
    names = [str(x) for x in names]
    if len(names) != k:
        raise DataError(
            f"names has {len(names)} entries but Y_true has {k} finding columns; give one "
            "name per column."
        )
    bad = ~np.isnan(Y) & ~np.isin(Y, (0.0, 1.0))
    if bad.any():
        hint = (
            " Uncertain labels (-1) must be mapped first (to 1, 0 or NaN, as the model's "
            "'uncertain' policy does)."
            if (Y == -1).any()
            else ""
        )
        raise DataError(
            f"Y_true must hold 0, 1 or NaN (missing); found {int(bad.sum())} other value(s), "
            f"e.g. {Y[bad][0]!r}.{hint}"
        )
    if not np.isfinite(S).all():
        raise DataError(
            f"Y_score contains {int((~np.isfinite(S)).sum())} NaN or infinite value(s); every "
            "image needs a finite score for every finding."
        )
    return Y, S, names


def _finding(
    t: np.ndarray, s: np.ndarray, groups: Any, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Return the figures of one finding on its observed images, or the reason it has none."""
    n_pos, n_obs = int(t.sum()), len(t)
    counts = {"n_images": n_obs, "n_positive": n_pos, "n_negative": n_obs - n_pos}
    reason = None
    if n_obs == 0:
        reason = "no observed label (every label is missing)"
    elif n_pos == 0:
        reason = f"no positive image among the {n_obs} with an observed label"
    elif n_pos == n_obs:
        reason = f"no negative image among the {n_obs} with an observed label"
    if reason is not None:
        out: dict[str, Any] = {m: _undefined(reason) for m in (*FINDING_METRICS, "accuracy")}
        out.update(defined=False, reason=reason, settings=counts)
        return out, reason
    out = compute_metrics(t, s, positive_label=True, groups=groups, **kwargs)
    out["settings"].pop("positive_label", None)
    out.update(defined=True, reason=None)
    return out, None


def _average_aucs(
    cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    index: np.ndarray,
    n_bootstraps: int,
    random_state: int | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Macro and micro AUC of every joint patient resample (None without resamples).

    ``cols`` holds, per finding with an observed label, the observed rows,
    their labels and scores: all of them enter the micro AUC, only the
    defined ones (both classes present) the macro AUC.
    """
    if n_bootstraps == 0 or not cols:
        return None, None
    rows = np.concatenate([r for r, _, _ in cols])
    t_all = np.concatenate([t for _, t, _ in cols])
    s_all = np.concatenate([s for _, _, s in cols])
    tie_all, nt_all = _tie_ids(s_all)
    no_pred = np.zeros(len(t_all), bool)
    defined = [(r, t, s, *_tie_ids(s)) for r, t, s in cols if 0 < t.sum() < len(t)]
    macro, micro = [], []
    for w in _blocks(index, n_bootstraps, random_state, len(rows)):
        micro.append(weighted_stats(w[:, rows], t_all, no_pred, tie_all, nt_all)["auc"])
        if defined:
            aucs = [
                weighted_stats(w[:, r], t, np.zeros(len(t), bool), tie, nt)["auc"]
                for r, t, _, tie, nt in defined
            ]
            macro.append(np.mean(aucs, axis=0))  # NaN when a finding lost a class
    return (np.concatenate(macro) if macro else None), np.concatenate(micro)


def compute_multilabel_metrics(
    Y_true: Any,
    Y_score: Any,
    *,
    names: Sequence[str],
    groups: Any = None,
    threshold: float = 0.5,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Compute per-finding and averaged figures of a multi-label evaluation with CIs.

    Parameters
    ----------
    Y_true : array-like of shape (n, k)
        1 (finding present), 0 (absent) or NaN (label missing: that image is
        left out of that finding).
    Y_score : array-like of shape (n, k)
        Probability of each finding per image (``predict_proba`` of a
        multi-label classifier).
    names : sequence of str
        The ``k`` finding names, in column order.
    groups : array-like of shape (n,), optional
        Patient ids; the bootstrap then resamples whole patients.
    threshold : float, default=0.5
        A finding is predicted present when its score is ``>= threshold``.
    n_bootstraps : int, default=1000
        Bootstrap resamples; 0 gives point estimates (DeLong still gives each
        finding's AUC interval).
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int or None, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``"findings"``: for each name, the entries of
        :func:`~cxrkit.evaluation.metrics.compute_metrics` (``"auc"``,
        ``"sensitivity"``, ``"specificity"``, ``"ppv"``, ``"npv"``,
        ``"accuracy"``, ``"confusion_matrix"``, ``"settings"``) plus
        ``"defined"`` and ``"reason"``; an undefined finding has NaN figures
        whose ``"method"`` gives the reason. ``"macro_auc"`` and ``"micro_auc"``
        (``{"value", "ci_low", "ci_high", "method", "n_valid"}``; the macro
        entry lists its ``"findings"``), ``"undefined"`` (name to reason) and
        ``"settings"``.

    Examples
    --------
    >>> Y = [[1, 0], [0, 1], [1, float("nan")], [0, 0]]
    >>> S = [[0.9, 0.2], [0.3, 0.8], [0.7, 0.5], [0.2, 0.1]]
    >>> m = compute_multilabel_metrics(Y, S, names=["a", "b"], n_bootstraps=0)
    >>> m["findings"]["b"]["settings"]["n_images"], m["macro_auc"]["value"]
    (3, 1.0)
    """
    Y, S, names = _check_multilabel(Y_true, Y_score, names)
    _check_settings(n_bootstraps, confidence, None)
    n = len(Y)
    index = cluster_index(groups, n)
    g = None if groups is None else np.asarray(groups)
    kwargs = dict(
        threshold=threshold,
        n_bootstraps=n_bootstraps,
        confidence=confidence,
        random_state=random_state,
    )
    findings: dict[str, Any] = {}
    undefined: dict[str, str] = {}
    cols = []
    for j, name in enumerate(names):
        rows = np.flatnonzero(~np.isnan(Y[:, j]))
        t, s = Y[rows, j] == 1, S[rows, j]
        findings[name], reason = _finding(t, s, None if g is None else g[rows], kwargs)
        if reason is not None:
            undefined[name] = reason
        if len(rows):
            cols.append((rows, t, s))
    used = [nm for nm in names if nm not in undefined]
    unit = "patients" if groups is not None else "images"
    method = _boot_method(n_bootstraps, random_state, unit)
    macro_b, micro_b = _average_aucs(cols, index, n_bootstraps, random_state)

    if used:
        point = float(np.mean([findings[nm]["auc"]["value"] for nm in used]))
        lo, hi, nv = percentile_interval(macro_b, confidence)
        what = f"mean of the AUCs of {len(used)} of {len(names)} findings"
        macro = _entry(point, lo, hi, f"{what}; {method}", n_valid=nv, findings=used)
    else:
        macro = _undefined("no finding has both positive and negative images")
        macro["findings"] = []
    t_all = np.concatenate([t for _, t, _ in cols]) if cols else np.zeros(0, bool)
    if 0 < t_all.sum() < len(t_all):
        s_all = np.concatenate([s for _, _, s in cols])
        micro_point = point_stats(t_all, s_all, threshold)["auc"]
        lo, hi, nv = percentile_interval(micro_b, confidence)
        micro = _entry(
            micro_point, lo, hi, f"AUC of all observed cells pooled; {method}", n_valid=nv
        )
    else:
        micro = _undefined("the observed cells are all positive or all negative")
    return {
        "findings": findings,
        "macro_auc": macro,
        "micro_auc": micro,
        "undefined": undefined,
        "settings": {
            "task": "multilabel-indicator",
            "names": names,
            "threshold": float(threshold),
            "confidence": float(confidence),
            "n_bootstraps": int(n_bootstraps),
            "random_state": random_state,
            "resampling_unit": unit,
            "n_images": int(n),
            "n_groups": int(index.max()) + 1,
            "n_missing": {nm: int(np.isnan(Y[:, j]).sum()) for j, nm in enumerate(names)},
        },
    }


# -- multi-class -----------------------------------------------------------------------------
def _check_multiclass(
    y_true: Any, proba: Any, classes: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise DataError(f"y_true must be 1-D (one class per image); got shape {y.shape}.")
    if len(y) == 0:
        raise DataError("compute_multiclass_metrics got no images (y_true is empty).")
    P = _as_matrix(proba, "proba")
    classes = list(classes)
    if P.shape != (len(y), len(classes)):
        raise DataError(
            f"proba has shape {P.shape} but y_true has {len(y)} images and classes names "
            f"{len(classes)}; expected ({len(y)}, {len(classes)}) (predict_proba, columns in "
            "the order of classes)."
        )
    if len(classes) < 2:
        raise DataError(f"classes must name at least two classes; got {classes!r}.")
    if not np.isfinite(P).all():
        raise DataError("proba contains NaN or infinite values; every image needs finite scores.")
    unknown = sorted({str(v) for v in y.tolist()} - {str(c) for c in classes})
    if unknown:
        raise DataError(
            f"y_true holds label(s) {unknown[:5]} that are not in classes {classes}; pass "
            "every class (the classifier's classes_)."
        )
    return y, P, classes


def compute_multiclass_metrics(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any],
    groups: Any = None,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Compute one-vs-rest AUCs, macro AUC, accuracy and the confusion matrix with CIs.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True class of each image.
    proba : array-like of shape (n, k)
        Class probabilities, columns in the order of ``classes``.
    classes : sequence
        The ``k`` classes (the classifier's ``classes_``).
    groups : array-like of shape (n,), optional
        Patient ids; the bootstrap then resamples whole patients and each
        class's AUC interval is that bootstrap (else DeLong, as in
        :func:`~cxrkit.evaluation.metrics.compute_metrics`).
    n_bootstraps, confidence, random_state
        As in :func:`~cxrkit.evaluation.metrics.compute_metrics`.

    Returns
    -------
    dict
        ``"classes"``: for each class (as text) ``{"auc", "defined", "reason",
        "n_positive"}``; ``"macro_auc"``, ``"accuracy"`` (entries ``{"value",
        "ci_low", "ci_high", "method", "n_valid"}``), ``"confusion_matrix"``
        (``{"labels", "matrix"}``, rows truth, columns prediction),
        ``"undefined"`` and ``"settings"``.

    Examples
    --------
    >>> m = compute_multiclass_metrics(["a", "b", "c", "a"],
    ...     [[.8, .1, .1], [.2, .7, .1], [.3, .3, .4], [.4, .5, .1]],
    ...     classes=["a", "b", "c"], n_bootstraps=0)
    >>> m["accuracy"]["value"], m["confusion_matrix"]["matrix"][0]
    (0.75, [1, 1, 0])
    """
    y, P, classes = _check_multiclass(y_true, proba, classes)
    _check_settings(n_bootstraps, confidence, None)
    n, k = P.shape
    index = cluster_index(groups, n)
    unit = "patients" if groups is not None else "images"
    method = _boot_method(n_bootstraps, random_state, unit)
    labels = [str(c) for c in classes]
    ys = np.array([str(v) for v in y.tolist()])
    T = np.column_stack([ys == c for c in labels])
    pred = P.argmax(axis=1)
    correct = T[np.arange(n), pred]
    defined = [j for j in range(k) if 0 < T[:, j].sum() < n]
    ties = {j: _tie_ids(P[:, j]) for j in defined}
    no_pred = np.zeros(n, bool)

    boot_auc: dict[int, list[np.ndarray]] = {j: [] for j in defined}
    boot_acc = []
    for w in _blocks(index, n_bootstraps, random_state, n * max(len(defined), 1)):
        boot_acc.append((w * correct).sum(1) / w.sum(1))
        for j in defined:
            boot_auc[j].append(weighted_stats(w, T[:, j], no_pred, *ties[j])["auc"])
    patient_level = groups is not None and n_bootstraps > 0

    per_class: dict[str, Any] = {}
    undefined: dict[str, str] = {}
    for j, c in enumerate(labels):
        n_pos = int(T[:, j].sum())
        if j not in defined:
            reason = "no image of this class" if n_pos == 0 else "every image is of this class"
            undefined[c] = reason
            per_class[c] = {"auc": _undefined(reason), "defined": False, "reason": reason}
        else:
            b = {"auc": np.concatenate(boot_auc[j])} if boot_auc[j] else {}
            point = point_stats(T[:, j], P[:, j], 0.5)["auc"]
            auc = _auc_entry(T[:, j], P[:, j], point, b, confidence, method, patient_level)
            per_class[c] = {"auc": auc, "defined": True, "reason": None}
        per_class[c]["n_positive"] = n_pos

    if defined:
        stack = np.vstack([np.concatenate(boot_auc[j]) for j in defined]) if boot_acc else None
        lo, hi, nv = percentile_interval(None if stack is None else stack.mean(0), confidence)
        used = [labels[j] for j in defined]
        point = float(np.mean([per_class[c]["auc"]["value"] for c in used]))
        what = f"mean of the one-vs-rest AUCs of {len(used)} of {k} classes"
        macro = _entry(point, lo, hi, f"{what}; {method}", n_valid=nv, classes=used)
    else:
        macro = _undefined("no class has both positive and negative images")
    acc_b = np.concatenate(boot_acc) if boot_acc else None
    lo, hi, nv = percentile_interval(acc_b, confidence)
    accuracy = _entry(float(correct.mean()), lo, hi, f"most probable class; {method}", n_valid=nv)
    cm = confusion_matrix(ys, np.array(labels)[pred], labels=labels)
    return {
        "classes": per_class,
        "macro_auc": macro,
        "accuracy": accuracy,
        "confusion_matrix": {"labels": labels, "matrix": cm.astype(int).tolist()},
        "undefined": undefined,
        "settings": {
            "task": "multiclass",
            "classes": labels,
            "confidence": float(confidence),
            "n_bootstraps": int(n_bootstraps),
            "random_state": random_state,
            "resampling_unit": unit,
            "n_images": int(n),
            "n_groups": int(index.max()) + 1,
        },
    }
