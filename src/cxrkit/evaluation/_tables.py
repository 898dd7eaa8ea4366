"""The tables of a report, built once and shown as text (command line) and HTML.

Every table is a list of rows of plain strings; the text summary and the HTML
template both read them, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._format import fmt, format_validity_numbers, value_of
from .metrics import METRIC_NAMES, compute_metrics
from .results import RunResult, describe_hardware

__all__ = [
    "METRIC_LABELS",
    "GUARD_ADVICE",
    "Table",
    "fold_summary",
    "pooled_metrics",
    "metrics_table",
    "per_fold_table",
    "guard_advice",
    "validity_rows",
    "last_epoch_comparison",
    "last_epoch_table",
    "format_summary_table",
]

#: Display names of the metrics.
METRIC_LABELS: dict[str, str] = {
    "auc": "AUC",
    "sensitivity": "Sensitivity (TPR)",
    "specificity": "Specificity (TNR)",
    "accuracy": "Accuracy",
    "ppv": "PPV",
    "npv": "NPV",
}

#: Advice shown for a guard that is not PASS and gave none, by guard name (the part
#: before ``":"``, so ``"confounding:view"`` reads ``"confounding"``).
GUARD_ADVICE: dict[str, str] = {
    "patient_leakage": "Split by patient (a grouped splitter with groups=patient ids).",
    "patient_ids": "Give every image a patient id so that splits can be grouped.",
    "near_duplicates": "Merge the ids of duplicated patients or drop one copy of each pair.",
    "train_test_duplicates": "Remove test images that have a copy in the training data.",
    "train_test_leakage": "Remove the patients shared by the training and test sets.",
    "confounding": "Balance this variable across classes or report results per level.",
    "source_probe": "Evaluate with LeaveOneSourceOut and balance classes within sources.",
    "shortcut_probe": "Look for markers, borders or devices; crop or mask them.",
    "outside_lungs_probe": "Train and evaluate with transforms=['lung_crop'] or ['lung_mask'].",
    "attribution_in_lungs": "Check the Grad-CAM overlays; retrain on lung crops or masks.",
}
_DEFAULT_ADVICE = "Read the summary and numbers: the figures above may be inflated."


@dataclass
class Table:
    """A table as header cells and rows of cells (all plain strings)."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


def fold_summary(per_fold: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Summarise each metric present in ``per_fold`` by its mean and SD over folds.

    Returns
    -------
    dict
        ``{metric: {"mean", "sd", "n_folds"}}`` (NaN folds left out; sd with ddof=1).
    """
    out: dict[str, dict[str, float]] = {}
    for name in METRIC_NAMES:
        vals = np.array([value_of(f[name]) for f in per_fold if name in f], dtype=float)
        vals = vals[np.isfinite(vals)]
        if len(vals) == 0:
            continue
        out[name] = {
            "mean": float(vals.mean()),
            "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
            "n_folds": int(len(vals)),
        }
    return out


def pooled_metrics(result: RunResult) -> dict[str, Any]:
    """Return ``result.metrics``, computed with the configuration's settings when empty."""
    if result.metrics:
        return result.metrics
    cfg = result.config
    return compute_metrics(
        result.y_true,
        result.y_score,
        positive_label=result.positive_label,
        groups=result.groups,
        threshold=cfg.get("threshold", 0.5),
        prevalence=cfg.get("prevalence"),
        n_bootstraps=cfg.get("n_bootstraps", 1000),
        random_state=result.seed if isinstance(result.seed, int) else 0,
    )


def _ci(entry: Any) -> str:
    entry = entry if isinstance(entry, dict) else {}
    return f"[{fmt(entry.get('ci_low'))}, {fmt(entry.get('ci_high'))}]"


def metrics_table(metrics: dict[str, Any], per_fold: list[dict[str, Any]]) -> Table:
    """Build the metrics table: metric, pooled value, CI, mean (SD) over folds, method.

    The "Mean over folds (SD)" column is present only when there are folds.
    """
    conf = metrics.get("settings", {}).get("confidence", 0.95)
    folds = fold_summary(per_fold)
    header = ["Metric", "Pooled", f"{conf:.0%} CI"]
    header += ["Mean over folds (SD)"] if folds else []
    table = Table(header + ["Interval method"])
    for name in METRIC_NAMES:
        if name not in metrics:
            continue
        e = metrics[name]
        row = [METRIC_LABELS[name], fmt(e), _ci(e)]
        if folds:
            f = folds.get(name)
            row.append(f"{fmt(f['mean'])} ({fmt(f['sd'])})" if f else "n/a")
        row.append(str(e.get("method", "")))
        table.rows.append(row)
    return table


def per_fold_table(result: RunResult) -> Table:
    """Build the per-fold figures with mean and SD rows (no rows for a single split)."""
    names = [n for n in METRIC_NAMES if any(n in f for f in result.per_fold)]
    table = Table(["Fold", "Images"] + [METRIC_LABELS[n].split(" (")[0] for n in names])
    for f in result.per_fold:
        cells = [str(f.get("fold", "")), str(f.get("n_images", ""))]
        table.rows.append(cells + [fmt(f.get(n)) for n in names])
    summ = fold_summary(result.per_fold)
    if table.rows:
        for label, key in (("mean", "mean"), ("SD", "sd")):
            cells = [fmt(summ[n][key]) if n in summ else "n/a" for n in names]
            table.rows.append([label, ""] + cells)
    return table


def guard_advice(entry: dict[str, Any]) -> str:
    """Return the advice for a guard result: its own, else one by its name (none for PASS)."""
    if entry.get("status") == "PASS":
        return ""
    own = str(entry.get("advice") or "").strip()
    if own:
        return own
    name = str(entry.get("name", ""))
    return GUARD_ADVICE.get(name, GUARD_ADVICE.get(name.split(":")[0], _DEFAULT_ADVICE))


def validity_rows(validity: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Build the rows of the Validity table: name, status, summary, numbers and advice."""
    return [
        {
            "name": str(v.get("name", "")),
            "status": str(v.get("status")),
            "summary": str(v.get("summary", "")),
            "numbers": format_validity_numbers(v.get("numbers") or {}),
            "advice": guard_advice(v),
        }
        for v in validity
    ]


def last_epoch_comparison(result: RunResult, metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Compare the snapshot ensemble with its last-epoch network, figure by figure.

    Reads ``result.extra["last_epoch_network"]`` (metrics of the last epoch's
    scores on the same folds, from :func:`compute_metrics`); ``None`` without it.

    Returns
    -------
    dict or None
        ``{metric: {"ensemble": {...}, "last_epoch": {...}, "difference"}}``,
        each side ``{"value", "ci_low", "ci_high"}``; ``difference`` is ensemble
        minus last epoch.
    """
    last = result.extra.get("last_epoch_network")
    if not isinstance(last, dict):
        return None
    keys = ("value", "ci_low", "ci_high")
    out: dict[str, Any] = {}
    for name in METRIC_NAMES:
        if name in metrics and name in last:
            ens = {k: value_of(metrics[name].get(k)) for k in keys}
            lst = {k: value_of(last[name].get(k)) for k in keys}
            out[name] = {
                "ensemble": ens,
                "last_epoch": lst,
                "difference": ens["value"] - lst["value"],
            }
    return out


def last_epoch_table(comparison: dict[str, Any] | None) -> Table | None:
    """Build the ensemble vs last-epoch table from :func:`last_epoch_comparison`."""
    if not comparison:
        return None
    table = Table(["Metric", "Ensemble", "CI", "Last epoch", "CI", "Difference"])
    for name, c in comparison.items():
        e, last = c["ensemble"], c["last_epoch"]
        d = c["difference"]
        table.rows.append(
            [
                METRIC_LABELS[name],
                fmt(e),
                _ci(e),
                fmt(last),
                _ci(last),
                f"{d:+.3f}" if np.isfinite(d) else "n/a",
            ]
        )
    return table


def _text_table(table: Table) -> list[str]:
    widths = [max(len(r[i]) for r in [table.header, *table.rows]) for i in range(len(table.header))]
    lines = []
    for i, r in enumerate([table.header, *table.rows]):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(widths[j + 1]) if j == 0 else c.ljust(widths[j + 1])
            for j, c in enumerate(r[1:])
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
    return lines


def format_summary_table(result: RunResult) -> str:
    """Format the text table the command line prints at the end of a run.

    One row per metric: pooled value, its confidence interval and, when the run
    has folds, the mean (SD) over folds. Warnings follow the table.

    Examples
    --------
    >>> import numpy as np
    >>> r = RunResult("demo", {}, "pos", ["neg", "pos"], ["a", "b", "c", "d"],
    ...               np.array(["neg", "pos", "pos", "neg"]), np.array([.2, .9, .4, .1]),
    ...               metrics=compute_metrics(["neg", "pos", "pos", "neg"], [.2, .9, .4, .1],
    ...                                       positive_label="pos", n_bootstraps=0))
    >>> print(format_summary_table(r).splitlines()[2])
    Metric             Pooled  95% CI
    """
    if result.task != "binary":
        from ._report_multi import format_multi_summary

        return format_multi_summary(result)
    m = pooled_metrics(result)
    settings = m.get("settings", {})
    n_groups = len(np.unique(result.groups)) if result.groups is not None else None
    head = (
        f"{result.protocol}: {result.n_images} images"
        + (f", {n_groups} patients" if n_groups is not None else "")
        + f"; positive = {result.positive_label!s}"
    )
    prev = settings.get("prevalence")
    sub = f"threshold {settings.get('threshold', 0.5):g}; PPV/NPV at " + (
        f"prevalence {prev:g}" if prev is not None else "the sample prevalence"
    )
    table = metrics_table(m, result.per_fold)
    # the interval method is too long for a terminal; the HTML and metrics.json carry it
    text = Table(table.header[:-1], [r[:-1] for r in table.rows])
    lines = [head, sub, *_text_table(text)]
    cm = m.get("confusion_matrix")
    if cm:
        lines.append(
            f"Confusion matrix: TP {cm['tp']}, FN {cm['fn']}, TN {cm['tn']}, FP {cm['fp']}"
        )
    if result.efficiency:
        eff = result.efficiency
        lines.append(
            f"Model efficiency: {eff['images_per_minute']:.1f} images/minute "
            f"({describe_hardware(eff)}) = {eff['ratio']:.0f}x a radiologist "
            f"({eff['radiologist_images_per_minute']:g} images/minute)"
        )
    lines.extend(f"WARNING: {w}" for w in result.warnings)
    return "\n".join(lines)
