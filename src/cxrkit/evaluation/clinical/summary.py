"""The figures of a clinical-validation report, computed from a run's predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ..metrics import compute_metrics
from .bootstrap import interval, patient_bootstrap
from .calibration import brier_score, calibration_intercept_slope, expected_calibration_error
from .conformal import conformal_sets
from .decision_curve import net_benefit

__all__ = [
    "calibration_summary",
    "operating_point_summary",
    "decision_curve_summary",
    "subgroup_summary",
    "conformal_summary",
    "age_band",
    "MIN_SUBGROUP",
]

#: A subgroup with fewer positives or negatives than this is "too small to say".
MIN_SUBGROUP = 10
_POINT = ("sensitivity", "specificity", "ppv", "npv")


def _calib_stats(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    if len(np.unique(y)) < 2:
        raise ValueError("one class")
    a, b = calibration_intercept_slope(y, p)
    return np.array(
        [
            expected_calibration_error(y, p),
            expected_calibration_error(y, p, adaptive=True),
            brier_score(y, p),
            a,
            b,
        ]
    )


def calibration_summary(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray | None,
    *,
    n_bins: int = 10,
    n_bootstraps: int = 200,
    random_state: int = 0,
) -> dict[str, Any]:
    """ECE (binned, adaptive), Brier, intercept, slope and a reliability curve, with patient CIs.

    Parameters
    ----------
    y : ndarray of shape (n,)
        0/1 outcomes.
    p : ndarray of shape (n,)
        Predicted probabilities of the outcome.
    groups : ndarray or None
        Patient ids (the bootstrap resamples patients).
    n_bins : int, default=10
    n_bootstraps : int, default=200
    random_state : int, default=0

    Returns
    -------
    dict
        ``ece``, ``ece_adaptive``, ``brier``, ``intercept``, ``slope`` (each
        ``{"value", "ci_low", "ci_high"}``) and ``reliability`` (per bin: ``bin``,
        ``mean_predicted``, ``observed``, ``ci_low``, ``ci_high``, ``n``).
    """
    names = ("ece", "ece_adaptive", "brier", "intercept", "slope")
    point = _calib_stats(y, p)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)

    def stat(i: np.ndarray) -> np.ndarray:
        obs = np.bincount(idx[i], weights=y[i], minlength=n_bins)
        cnt = np.bincount(idx[i], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.concatenate([_calib_stats(y[i], p[i]), obs / cnt])

    boot = np.array(
        patient_bootstrap(
            stat, groups, len(y), n_bootstraps=n_bootstraps, random_state=random_state
        )
    )
    out: dict[str, Any] = {
        k: interval(point[j], list(boot[:, j]) if len(boot) else []) for j, k in enumerate(names)
    }
    rel = []
    for b in range(n_bins):
        m = idx == b
        if not m.any():
            continue
        col = boot[:, len(names) + b] if len(boot) else np.array([])
        e = interval(float(y[m].mean()), list(col))
        rel.append(
            {
                "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                "mean_predicted": float(p[m].mean()),
                "observed": e["value"],
                "ci_low": e["ci_low"],
                "ci_high": e["ci_high"],
                "n": int(m.sum()),
            }
        )
    out["reliability"] = rel
    out["n_bootstraps"] = int(n_bootstraps)
    return out


def _point(
    y_true: np.ndarray,
    score: np.ndarray,
    pos: str,
    groups: Any,
    prevalence: float | None,
    **kw: Any,
) -> dict[str, Any]:
    m = compute_metrics(
        y_true, score, positive_label=pos, groups=groups, prevalence=prevalence, **kw
    )
    return {k: {f: m[k][f] for f in ("value", "ci_low", "ci_high")} for k in _POINT}


def operating_point_summary(
    y_true: np.ndarray,
    p: np.ndarray,
    pos: str,
    groups: np.ndarray | None,
    thresholds: np.ndarray | None,
    *,
    rule: Any,
    prevalences: Sequence[float] = (),
    n_bootstraps: int = 1000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Sensitivity, specificity, PPV and NPV at the fitted threshold(s) and at 0.5, with CIs.

    ``thresholds`` holds the threshold applied to each image (each fold's own,
    fitted on its training data); ``None`` means the 0.5 default only. PPV and
    NPV are also given at each of ``prevalences`` (Bayes' rule).
    """
    kw = {"n_bootstraps": n_bootstraps, "random_state": random_state}
    out: dict[str, Any] = {
        "default": {"threshold": 0.5, **_point(y_true, p, pos, groups, None, **kw)},
    }
    if thresholds is not None:
        shifted = np.clip(p - thresholds + 0.5, 0.0, 1.0)  # each image against its fold's threshold
        t = np.unique(np.round(thresholds, 6))
        out["fitted"] = {
            "rule": str(rule),
            "thresholds": [float(v) for v in t],
            **_point(y_true, shifted, pos, groups, None, **kw),
        }
    base = "fitted" if thresholds is not None else "default"
    score = shifted if thresholds is not None else p
    out["basis"] = base
    out["prevalence"] = [
        {
            "prevalence": float(q),
            **{
                k: v
                for k, v in _point(y_true, score, pos, groups, q, **kw).items()
                if k in ("ppv", "npv")
            },
        }
        for q in prevalences
    ]
    return out


def decision_curve_summary(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray | None,
    *,
    n_bootstraps: int = 200,
    random_state: int = 0,
) -> dict[str, Any]:
    """Net benefit of the model, treat-all and treat-none on a grid, with a patient-bootstrap band."""
    grid = np.round(np.arange(0.01, 0.991, 0.01), 2)
    nb = net_benefit(y, p, grid)
    boot = np.array(
        patient_bootstrap(
            lambda i: net_benefit(y[i], p[i], grid)["model"],
            groups,
            len(y),
            n_bootstraps=n_bootstraps,
            random_state=random_state,
        )
    )
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=0) if len(boot) else (grid * np.nan,) * 2
    return {
        "threshold": grid.tolist(),
        "model": nb["model"].tolist(),
        "model_ci_low": np.asarray(lo).tolist(),
        "model_ci_high": np.asarray(hi).tolist(),
        "treat_all": nb["treat_all"].tolist(),
        "treat_none": nb["treat_none"].tolist(),
        "useful_range": _useful(grid, nb),
    }


def _useful(grid: np.ndarray, nb: dict[str, np.ndarray]) -> list[float] | None:
    """Return the thresholds where the model beats both treat-all and treat-none."""
    ok = (nb["model"] > np.maximum(nb["treat_all"], 0.0) + 1e-12) & (nb["model"] > 0)
    if not ok.any():
        return None
    return [float(grid[ok].min()), float(grid[ok].max())]


def age_band(age: Any) -> str:
    """Return the age band of ``age`` in years: ``"<18 (paediatric)"``, ``"18-39"``, ... ``"80+"``."""
    try:
        a = float(age)
    except (TypeError, ValueError):
        return "unknown"
    if not np.isfinite(a):
        return "unknown"
    if a < 18:
        return "<18 (paediatric)"
    for hi, name in ((40, "18-39"), (60, "40-59"), (80, "60-79")):
        if a < hi:
            return name
    return "80+"


def subgroup_summary(
    y_true: np.ndarray,
    p: np.ndarray,
    pos: str,
    groups: np.ndarray | None,
    metadata: pd.DataFrame,
    columns: Sequence[str],
    overall_auc: float,
    *,
    threshold: np.ndarray | float = 0.5,
    n_bootstraps: int = 200,
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """One row per (column, level): counts, AUC, sensitivity and specificity with CIs, a status.

    ``age_band`` is derived from ``age``. The status is ``WARN`` when the
    subgroup's AUC CI lies entirely below ``overall_auc`` or when it has fewer
    than :data:`MIN_SUBGROUP` positives or negatives (too small to say), else
    ``PASS``. ``auc_difference`` is the subgroup's AUC minus that of the rest,
    with a patient-bootstrap CI.
    """
    y = (np.asarray(y_true).astype(str) == str(pos)).astype(int)
    shifted = np.clip(p - threshold + 0.5, 0.0, 1.0)
    rows = []
    for col in columns:
        values = (
            (
                metadata["age"].map(age_band)
                if col == "age_band"
                else metadata[col].fillna("unknown")
            )
            .astype(str)
            .to_numpy()
        )
        for level in sorted(set(values)):
            m = values == level
            n_pos, n_neg = int(y[m].sum()), int((1 - y[m]).sum())
            row: dict[str, Any] = {
                "column": col,
                "level": level,
                "n_images": int(m.sum()),
                "n_patients": int(len(np.unique(groups[m])))
                if groups is not None
                else int(m.sum()),
                "n_positive": n_pos,
                "n_negative": n_neg,
            }
            if n_pos and n_neg:
                g = groups[m] if groups is not None else None
                met = compute_metrics(
                    y_true[m],
                    shifted[m],
                    positive_label=pos,
                    groups=g,
                    n_bootstraps=n_bootstraps,
                    random_state=random_state,
                )
                auc = compute_metrics(
                    y_true[m],
                    p[m],
                    positive_label=pos,
                    groups=g,
                    n_bootstraps=n_bootstraps,
                    random_state=random_state,
                )["auc"]
                row["auc"] = {f: auc[f] for f in ("value", "ci_low", "ci_high")}
                for k in ("sensitivity", "specificity"):
                    row[k] = {f: met[k][f] for f in ("value", "ci_low", "ci_high")}
                row["auc_difference"] = _auc_difference(y, p, m, groups, n_bootstraps, random_state)
            small = min(n_pos, n_neg) < MIN_SUBGROUP
            below = "auc" in row and row["auc"]["ci_high"] < overall_auc
            row["status"] = "WARN" if small or below else "PASS"
            row["note"] = (
                f"too small to say ({n_pos} positive, {n_neg} negative; fewer than {MIN_SUBGROUP})"
                if small
                else "AUC CI entirely below the overall AUC"
                if below
                else ""
            )
            rows.append(row)
    return rows


def _auc_difference(
    y: np.ndarray, p: np.ndarray, m: np.ndarray, groups: Any, n_bootstraps: int, seed: int
) -> dict[str, Any] | None:
    if len(np.unique(y[~m])) < 2:
        return None

    def diff(i: np.ndarray) -> float:
        a, b = i[m[i]], i[~m[i]]
        return float(roc_auc_score(y[a], p[a]) - roc_auc_score(y[b], p[b]))

    value = diff(np.arange(len(y)))
    return interval(
        value,
        patient_bootstrap(diff, groups, len(y), n_bootstraps=n_bootstraps, random_state=seed),
    )


def conformal_summary(
    folds: list[dict[str, Any]],
    y_index: np.ndarray,
    groups: np.ndarray | None,
    *,
    alpha: float,
    n_bootstraps: int = 200,
    random_state: int = 0,
) -> dict[str, Any]:
    """Empirical coverage (patient CI) and mean set size of LAC and APS sets.

    ``folds`` holds, per fold, the calibration probabilities and class indices
    of its inner-validation part (``cal_proba``, ``cal_y``), the test-fold
    probabilities (``test_proba``) and the test rows (``test_index``);
    ``y_index`` is each image's class index.
    """
    out: dict[str, Any] = {"alpha": float(alpha), "target_coverage": 1 - float(alpha)}
    for method in ("lac", "aps"):
        covered = np.zeros(len(y_index), bool)
        size = np.zeros(len(y_index))
        for f in folds:
            sets = conformal_sets(
                f["cal_proba"], f["cal_y"], f["test_proba"], alpha=alpha, method=method
            )
            te = f["test_index"]
            covered[te] = sets[np.arange(len(te)), y_index[te]]
            size[te] = sets.sum(1)
        rows = np.concatenate([f["test_index"] for f in folds])
        c, s = covered[rows].astype(float), size[rows]
        g = groups[rows] if groups is not None else None
        boot = patient_bootstrap(
            _mean_of(c), g, len(rows), n_bootstraps=n_bootstraps, random_state=random_state
        )
        out[method] = {
            "coverage": interval(float(c.mean()), boot),
            "mean_set_size": float(s.mean()),
            "n_calibration": int(sum(len(f["cal_y"]) for f in folds)),
        }
    return out


def _mean_of(values: np.ndarray) -> Any:
    """Return the statistic ``index -> mean of values[index]``."""

    def mean(i: np.ndarray) -> float:
        return float(values[i].mean())

    return mean
