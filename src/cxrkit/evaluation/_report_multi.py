"""The report of a multi-label or multi-class run: tables, ROC grid, confusion matrix, HTML.

A :class:`~cxrkit.evaluation.RunResult` whose ``y_score`` is ``(n, k)`` is
multi-output (:attr:`RunResult.task`); :func:`cxrkit.evaluation.write_report`
hands it to this module instead of the binary figures. Multi-label: a
per-finding table (AUC, sensitivity, specificity, PPV, NPV, each with its CI),
macro and micro AUC, a grid of per-finding ROC curves and the label policy
(positive, negative, uncertain and missing labels per finding, and the
``uncertain`` policy). Multi-class: one-vs-rest AUC per class, macro AUC,
accuracy, the ``k x k`` confusion matrix and the one-vs-rest ROC grid.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._format import fmt, with_ci
from ._multioutput import FINDING_METRICS, compute_multiclass_metrics, compute_multilabel_metrics
from ._tables import METRIC_LABELS, Table, _text_table
from .results import RunResult, describe_hardware

__all__ = [
    "multioutput_metrics",
    "finding_table",
    "summary_table",
    "label_policy_table",
    "multi_per_fold_table",
    "write_multi_predictions",
    "write_multi_figures",
    "format_multi_summary",
    "render_multi_html",
]


def multioutput_metrics(result: RunResult) -> dict[str, Any]:
    """Return ``result.metrics``, computed with the configuration's settings when empty."""
    if result.metrics:
        return result.metrics
    cfg = result.config
    kw = dict(
        groups=result.groups,
        n_bootstraps=cfg.get("n_bootstraps", 1000),
        random_state=result.seed if isinstance(result.seed, int) else 0,
    )
    if result.task == "multiclass":
        return compute_multiclass_metrics(
            result.y_true, result.y_score, classes=result.classes, **kw
        )
    return compute_multilabel_metrics(
        result.y_true,
        result.y_score,
        names=result.classes,
        threshold=cfg.get("threshold", 0.5),
        **kw,
    )


def finding_table(metrics: dict[str, Any]) -> Table:
    """One row per finding (multi-label) or class (multi-class), each figure with its CI."""
    if metrics["settings"]["task"] == "multiclass":
        table = Table(["Class", "Images of the class", "One-vs-rest AUC", "Note"])
        for name, c in metrics["classes"].items():
            table.rows.append([name, str(c["n_positive"]), with_ci(c["auc"]), c["reason"] or ""])
        return table
    header = ["Finding", "Images", "Positive"]
    header += [METRIC_LABELS[m].split(" (")[0] for m in FINDING_METRICS] + ["Note"]
    table = Table(header)
    for name, f in metrics["findings"].items():
        s = f["settings"]
        cells = [name, str(s["n_images"]), str(s["n_positive"])]
        cells += [with_ci(f[m]) for m in FINDING_METRICS]
        table.rows.append(cells + [f"undefined: {f['reason']}" if not f["defined"] else ""])
    return table


def summary_table(metrics: dict[str, Any]) -> Table:
    """Build the averaged figures: macro and micro AUC (multi-label), macro AUC and accuracy (multi-class)."""
    conf = metrics["settings"]["confidence"]
    table = Table(["Figure", "Value", f"{conf:.0%} CI", "Interval method"])
    keys = ("macro_auc", "accuracy") if "classes" in metrics else ("macro_auc", "micro_auc")
    labels = {"macro_auc": "Macro AUC", "micro_auc": "Micro AUC", "accuracy": "Accuracy"}
    for key in keys:
        e = metrics[key]
        ci = f"[{fmt(e.get('ci_low'))}, {fmt(e.get('ci_high'))}]"
        table.rows.append([labels[key], fmt(e), ci, str(e.get("method", ""))])
    return table


def label_policy_table(result: RunResult) -> Table | None:
    """Count each kind of label per finding (from ``extra["label_policy"]``)."""
    policy = result.extra.get("label_policy")
    if not isinstance(policy, dict):
        return None
    table = Table(
        ["Finding", "Positive (1)", "Negative (0)", "Uncertain (-1)", "Missing (NaN)", "Evaluated"]
    )
    for name, c in policy.get("findings", {}).items():
        keys = ("positive", "negative", "uncertain", "missing", "evaluated")
        table.rows.append([str(name)] + [str(c.get(k, "")) for k in keys])
    return table


def multi_per_fold_table(result: RunResult) -> Table:
    """Per fold: images, the AUC of every finding or class, and the macro AUC."""
    names = [str(c) for c in result.classes]
    table = Table(["Fold", "Images"] + [f"AUC {n}" for n in names] + ["Macro AUC"])
    for row in result.per_fold:
        cells = [str(row.get("fold", "")), str(row.get("n_images", ""))]
        table.rows.append(cells + [fmt(row.get(n)) for n in names] + [fmt(row.get("macro_auc"))])
    return table


def write_multi_predictions(result: RunResult, path: Path) -> None:
    """Write predictions.csv: image, patient, fold, the label(s) and a probability per column."""
    names = [str(c) for c in result.classes]
    multilabel = result.task == "multilabel-indicator"
    head = ["image", "patient", "fold"]
    head += [f"label_{n}" for n in names] if multilabel else ["label"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head + [f"probability_{n}" for n in names])
        for i in range(result.n_images):
            row = [
                result.images[i],
                "" if result.groups is None else result.groups[i],
                "" if result.folds is None else result.folds[i],
            ]
            if multilabel:
                row += ["" if np.isnan(v) else int(v) for v in result.y_true[i]]
            else:
                row.append(result.y_true[i])
            w.writerow(row + [repr(float(p)) for p in result.y_score[i]])


# -- figures ------------------------------------------------------------------------------------
def _column(result: RunResult, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (bool), scores and row indices of column ``j`` on its observed images."""
    if result.task == "multilabel-indicator":
        rows = np.flatnonzero(~np.isnan(result.y_true[:, j]))
        return result.y_true[rows, j] == 1, result.y_score[rows, j], rows
    rows = np.arange(result.n_images)
    truth = np.array([str(v) for v in result.y_true]) == str(result.classes[j])
    return truth, result.y_score[:, j], rows


def _entry_of(metrics: dict[str, Any], name: str) -> dict[str, Any]:
    return (metrics.get("findings") or metrics.get("classes") or {}).get(name, {})


def _roc_panel(ax: Any, result: RunResult, metrics: dict[str, Any], j: int) -> None:
    from sklearn.metrics import roc_curve

    name = str(result.classes[j])
    t, s, rows = _column(result, j)
    entry = _entry_of(metrics, name)
    ax.plot([0, 1], [0, 1], ls="--", c="0.6", lw=1)
    if not entry.get("defined", False):
        ax.text(
            0.5,
            0.5,
            f"undefined:\n{entry.get('reason', 'one class only')}",
            ha="center",
            va="center",
            fontsize=7,
            wrap=True,
        )
    else:
        if result.folds is not None:
            f = result.folds[rows]
            for i, k in enumerate(np.unique(f)):
                sel = f == k
                if t[sel].all() or not t[sel].any():
                    continue
                fpr_k, tpr_k, _ = roc_curve(t[sel], s[sel])
                ax.plot(
                    fpr_k,
                    tpr_k,
                    c="tab:blue",
                    alpha=0.35,
                    lw=0.8,
                    label="single folds" if i == 0 else None,
                )
        fpr, tpr, _ = roc_curve(t, s)
        ax.plot(fpr, tpr, c="tab:red", lw=1.8, label=f"AUC {with_ci(entry['auc'])}")
        sens, spec = entry.get("sensitivity"), entry.get("specificity")
        if isinstance(sens, dict) and isinstance(spec, dict):
            thr = metrics["settings"].get("threshold", 0.5)
            ax.plot(
                [1 - spec["value"]], [sens["value"]], "o", c="k", ms=4, label=f"threshold {thr:g}"
            )
        ax.legend(loc="lower right", fontsize=6.5)
    ax.set_title(f"{name} ({int(t.sum())} of {len(t)} positive)", fontsize=9)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)


def plot_roc_grid(result: RunResult, metrics: dict[str, Any], path: Path) -> None:
    """Draw one ROC panel per finding (or class, one-vs-rest) into one figure."""
    from ._figures import pyplot

    plt = pyplot()
    k = len(result.classes)
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.3 * ncols, 3.4 * nrows), dpi=110, squeeze=False
    )
    for j in range(nrows * ncols):
        ax = axes[j // ncols][j % ncols]
        if j < k:
            _roc_panel(ax, result, metrics, j)
        else:
            ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("1 - specificity", fontsize=8)
    for row in axes:
        row[0].set_ylabel("Sensitivity", fontsize=8)
    kind = "one-vs-rest " if result.task == "multiclass" else "per-finding "
    fig.suptitle(f"{kind}ROC curves ({result.n_images} images)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion_k(metrics: dict[str, Any], path: Path) -> None:
    """Draw the k x k confusion matrix with row fractions."""
    from ._figures import pyplot

    plt = pyplot()
    labels = metrics["confusion_matrix"]["labels"]
    mat = np.array(metrics["confusion_matrix"]["matrix"], dtype=float)
    rows = mat.sum(1, keepdims=True)
    frac = np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.4 * k + 2, 1.2 * k + 1.6), dpi=110)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{int(mat[i, j])}\n({frac[i, j]:.0%})",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if frac[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("Predicted (most probable class)")
    ax.set_ylabel("True")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_multi_figures(
    result: RunResult, metrics: dict[str, Any], out: Path
) -> dict[str, Path | None]:
    """Draw roc.png (the grid) and, for multi-class, confusion_matrix.png."""
    from ._figures import plot_efficiency, pyplot

    figs: dict[str, Path | None] = {"roc": out / "roc.png", "confusion_matrix": None}
    with pyplot().rc_context({"text.parse_math": False}):
        plot_roc_grid(result, metrics, out / "roc.png")
        if result.task == "multiclass":
            figs["confusion_matrix"] = out / "confusion_matrix.png"
            plot_confusion_k(metrics, out / "confusion_matrix.png")
        figs["efficiency"] = None
        if result.efficiency:
            figs["efficiency"] = out / "efficiency.png"
            plot_efficiency(result.efficiency, out / "efficiency.png")
    for name in ("confusion_matrix", "per_fold", "gradcam", "efficiency"):
        if figs.get(name) is None:  # a figure left from an earlier run would mislead
            (out / f"{name}.png").unlink(missing_ok=True)
    return figs


# -- text and HTML ----------------------------------------------------------------------------
def format_multi_summary(result: RunResult) -> str:
    """Format the text the command line prints at the end of a multi-output run."""
    m = multioutput_metrics(result)
    n_groups = len(np.unique(result.groups)) if result.groups is not None else None
    kind = "classes" if result.task == "multiclass" else "findings"
    head = (
        f"{result.protocol}: {result.n_images} images"
        + (f", {n_groups} patients" if n_groups is not None else "")
        + f"; {len(result.classes)} {kind}: {', '.join(map(str, result.classes))}"
    )
    ft = finding_table(m)
    short = Table(ft.header[:-1], [r[:-1] for r in ft.rows])
    st = summary_table(m)
    lines = [
        head,
        *_text_table(short),
        "",
        *_text_table(Table(st.header[:-1], [r[:-1] for r in st.rows])),
    ]
    lines += [f"Undefined: {n}: {why}" for n, why in m.get("undefined", {}).items()]
    policy = result.extra.get("label_policy")
    if isinstance(policy, dict):
        lines.append(f"Uncertain labels (-1): policy {policy.get('uncertain')!r}")
    if result.efficiency:
        eff = result.efficiency
        lines.append(
            f"Model efficiency: {eff['images_per_minute']:.1f} images/minute ({describe_hardware(eff)})"
        )
    lines.extend(f"WARNING: {w}" for w in result.warnings)
    return "\n".join(lines)


_POLICY_WORDS = {
    "ignore": "left out of training and of the evaluation of that finding (masked, like missing)",
    "ones": "counted as positive in training and evaluation (U-Ones)",
    "zeros": "counted as negative in training and evaluation (U-Zeros)",
}


def render_multi_html(
    result: RunResult,
    metrics: dict[str, Any],
    figures: dict[str, Path | None],
    versions: dict[str, Any],
    created: str,
) -> str:
    """Render report.html of a multi-output run (template ``report_multi.html.j2``)."""
    from ._report_html import _environment, _png_base64, run_context

    settings = metrics["settings"]
    policy = result.extra.get("label_policy") or {}
    context = {
        **run_context(result, settings, versions, created),
        "task": "multi-class" if result.task == "multiclass" else "multi-label",
        "names": ", ".join(map(str, result.classes)),
        "unit": str(settings.get("resampling_unit", "images")),
        "finding_table": finding_table(metrics),
        "summary_table": summary_table(metrics),
        "policy_table": label_policy_table(result),
        "policy": str(policy.get("uncertain", "")),
        "policy_words": _POLICY_WORDS.get(str(policy.get("uncertain")), ""),
        "per_fold": multi_per_fold_table(result),
        "figures": {
            k: _png_base64(figures.get(k)) for k in ("roc", "confusion_matrix", "efficiency")
        },
    }
    return _environment().get_template("report_multi.html.j2").render(context)
