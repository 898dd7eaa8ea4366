"""Confounding: metadata that predicts the label (source, view, sex, age).

Thresholds (documented in docs/validity.md):

- categorical (``source``, ``view``, ``sex``): **WARN** when Cramér's V >= 0.2
  *or* some level is over-represented in one class: its share of that class is
  at least 2x its share of another class and at least 10 percentage points
  higher (levels with >= 5 images). **FAIL** when V >= 0.5 (the metadata
  almost determines the label, e.g. each class from its own hospital).
- ``age``: **WARN** when age alone separates two classes with AUC >= 0.7 (or
  <= 0.3), or when pediatric images (age < 18) make up >= 10 % of one class and
  at least twice the share of another class (pediatric controls).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency
from sklearn.metrics import roc_auc_score

from ..errors import DataError
from ._result import GuardResult

__all__ = [
    "cramers_v",
    "categorical_confounding",
    "age_confounding",
    "check_confounding",
    "V_WARN",
    "V_FAIL",
]

V_WARN = 0.2
V_FAIL = 0.5
RATIO_WARN = 2.0
DIFF_WARN = 0.10
MIN_LEVEL = 5
AGE_AUC_WARN = 0.7
PEDIATRIC_AGE = 18
PEDIATRIC_SHARE = 0.10


def cramers_v(table: Any) -> float:
    """Cramér's V of a contingency table (no continuity correction).

    Parameters
    ----------
    table : array-like of shape (n_levels, n_classes)

    Returns
    -------
    float
        In ``[0, 1]``; 0 for a table with a single row or column.

    Examples
    --------
    >>> round(cramers_v([[10, 0], [0, 10]]), 3)
    1.0
    """
    t = np.asarray(table, dtype=float)
    t = t[t.sum(1) > 0][:, t.sum(0) > 0]
    if min(t.shape) < 2:
        return 0.0
    chi2 = chi2_contingency(t, correction=False)[0]
    return float(np.sqrt(chi2 / t.sum() / (min(t.shape) - 1)))


def categorical_confounding(values: Any, y: Any, name: str) -> GuardResult:
    """Association of one categorical variable with the label.

    Parameters
    ----------
    values : array-like of shape (n,)
        E.g. the ``view`` column; missing values become the level ``"unknown"``.
    y : array-like of shape (n,)
    name : str
        Variable name used in the result (``confounding:<name>``).

    Returns
    -------
    GuardResult
        Numbers: ``cramers_v``, ``n_levels``, ``table`` (level -> class -> count),
        ``share`` (level -> class -> fraction of the class), and the most
        over-represented level (``top_level``, ``top_ratio``, ``top_diff``).
    """
    v = pd.Series(np.asarray(values, dtype=object)).where(lambda s: s.notna(), "unknown")
    v = v.astype(str).replace({"": "unknown", "nan": "unknown"})
    yy = pd.Series(np.asarray(y)).astype(str)
    if len(v) != len(yy):
        raise DataError(f"{name} has {len(v)} values but y has {len(yy)} labels.")
    table = pd.crosstab(v.to_numpy(), yy.to_numpy())
    share = table / table.sum(axis=0)
    vval = cramers_v(table.to_numpy())
    numbers: dict[str, Any] = {
        "cramers_v": round(vval, 4),
        "n_levels": int(len(table)),
        "table": {
            str(lv): {str(c): int(k) for c, k in row.items()} for lv, row in table.iterrows()
        },
        "share": {
            str(lv): {str(c): round(float(k), 4) for c, k in row.items()}
            for lv, row in share.iterrows()
        },
    }
    gname = f"confounding:{name}"
    if len(table) < 2:
        return GuardResult(
            gname,
            "PASS",
            f"{name}: a single level ({table.index[0]!r}); nothing to confound.",
            numbers,
        )
    best = (0.0, 0.0, "", "", "")
    for lv, row in share.iterrows():
        if table.loc[lv].sum() < MIN_LEVEL:
            continue
        hi_c, lo_c = row.idxmax(), row.idxmin()
        hi, lo = float(row[hi_c]), float(row[lo_c])
        ratio = hi / lo if lo > 0 else float("inf")
        if hi - lo > best[1] and ratio >= RATIO_WARN or (best[4] == "" and hi - lo > best[1]):
            best = (ratio, hi - lo, str(lv), str(hi_c), str(lo_c))
    ratio, diff, lv, hi_c, lo_c = best
    numbers.update(
        {
            "top_level": lv,
            "top_ratio": round(ratio, 2) if np.isfinite(ratio) else None,
            "top_diff": round(diff, 4),
        }
    )
    over = lv != "" and ratio >= RATIO_WARN and diff >= DIFF_WARN
    detail = ""
    if lv:
        detail = (
            f"; {lv!r} is {share.loc[lv, hi_c]:.0%} of {hi_c} "
            f"({table.loc[lv, hi_c]} of {table[hi_c].sum()}) but "
            f"{share.loc[lv, lo_c]:.0%} of {lo_c} ({table.loc[lv, lo_c]} of {table[lo_c].sum()})"
        )
    summary = f"{name}: Cramér's V = {vval:.2f} with the label{detail}."
    advice = (
        f"The label can partly be predicted from {name}. Balance {name} across classes "
        f"(or stratify the evaluation by it), report results per {name}, and run the "
        "source/shortcut probes; a model may learn the acquisition rather than the disease."
    )
    if vval >= V_FAIL:
        return GuardResult(gname, "FAIL", summary, numbers, advice)
    if vval >= V_WARN or over:
        return GuardResult(gname, "WARN", summary, numbers, advice)
    return GuardResult(gname, "PASS", summary, numbers)


def age_confounding(age: Any, y: Any) -> GuardResult:
    """Age ranges per class, pediatric share per class, and how well age separates classes.

    Parameters
    ----------
    age : array-like of shape (n,)
        Years; missing values are counted and left out.
    y : array-like of shape (n,)

    Returns
    -------
    GuardResult
        Numbers: ``per_class`` (class -> n, missing, min, median, max, pediatric,
        pediatric_share), ``max_age_auc`` (largest |AUC - 0.5| + 0.5 of age
        between two classes) and the pair it was found for.
    """
    a = pd.to_numeric(pd.Series(np.asarray(age, dtype=object)), errors="coerce").to_numpy(float)
    yy = np.asarray(y).astype(str)
    if len(a) != len(yy):
        raise DataError(f"age has {len(a)} values but y has {len(yy)} labels.")
    classes = sorted(set(yy))
    per: dict[str, dict[str, Any]] = {}
    for c in classes:
        ac = a[yy == c]
        known = ac[~np.isnan(ac)]
        ped = int((known < PEDIATRIC_AGE).sum())
        per[c] = {
            "n": int(len(ac)),
            "missing": int(np.isnan(ac).sum()),
            "min": float(known.min()) if len(known) else None,
            "median": float(np.median(known)) if len(known) else None,
            "max": float(known.max()) if len(known) else None,
            "pediatric": ped,
            "pediatric_share": round(ped / len(known), 4) if len(known) else None,
        }
    best_auc, pair = 0.5, ("", "")
    for i, c1 in enumerate(classes):
        for c2 in classes[i + 1 :]:
            m = np.isin(yy, [c1, c2]) & ~np.isnan(a)
            if len(set(yy[m])) < 2:
                continue
            auc = float(roc_auc_score(yy[m] == c2, a[m]))
            if abs(auc - 0.5) > abs(best_auc - 0.5):
                best_auc, pair = auc, (c1, c2)
    ped_flag = []
    shares = {
        c: per[c]["pediatric_share"] for c in classes if per[c]["pediatric_share"] is not None
    }
    for c, s in shares.items():
        others = [o for o in shares.values()]
        if s >= PEDIATRIC_SHARE and any(s >= RATIO_WARN * o for o in others):
            ped_flag.append(c)
    numbers = {
        "per_class": per,
        "age_auc": round(best_auc, 4),
        "age_auc_pair": list(pair),
        "n_missing": int(np.isnan(a).sum()),
        "pediatric_classes": ped_flag,
    }
    ranges = "; ".join(
        f"{c}: {per[c]['min']:.0f}-{per[c]['max']:.0f} (median {per[c]['median']:.0f}, "
        f"{per[c]['pediatric']} under {PEDIATRIC_AGE})"
        if per[c]["min"] is not None
        else f"{c}: no ages"
        for c in classes
    )
    summary = f"age per class: {ranges}."
    if pair[0]:
        summary += f" Age alone gives AUC {best_auc:.2f} for {pair[0]} vs {pair[1]}."
    warn = abs(best_auc - 0.5) >= AGE_AUC_WARN - 0.5 or bool(ped_flag)
    if ped_flag:
        summary += f" Pediatric images are concentrated in: {', '.join(ped_flag)}."
    advice = (
        "Age differs between classes: children's and adults' chest X-rays look different, "
        "so a model can learn age. Match ages across classes (drop pediatric controls "
        "when the positives are adults) or report results per age band."
    )
    return GuardResult(
        "confounding:age", "WARN" if warn else "PASS", summary, numbers, advice if warn else ""
    )


def check_confounding(
    metadata: pd.DataFrame,
    y: Any | None = None,
    *,
    columns: Sequence[str] = ("source", "view", "sex"),
    age_column: str = "age",
    label_column: str = "label",
) -> list[GuardResult]:
    """Confounding guards for every metadata column present.

    Parameters
    ----------
    metadata : DataFrame
        One row per image.
    y : array-like, optional
        Labels; default ``metadata[label_column]``.
    columns : sequence of str, default=("source", "view", "sex")
        Categorical columns to test (absent ones are skipped).
    age_column, label_column : str

    Returns
    -------
    list of GuardResult
    """
    if y is None:
        if label_column not in metadata:
            raise DataError(f"metadata has no {label_column!r} column; pass y explicitly.")
        y = metadata[label_column].to_numpy()
    if len(y) != len(metadata):
        raise DataError(f"metadata has {len(metadata)} rows but y has {len(y)} labels.")
    out = [
        categorical_confounding(metadata[c].to_numpy(), y, c)
        for c in columns
        if c in metadata.columns
    ]
    if age_column in metadata.columns:
        out.append(age_confounding(metadata[age_column].to_numpy(), y))
    return out
