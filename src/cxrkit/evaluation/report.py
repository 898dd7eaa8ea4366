"""The output folder of a run: HTML report, metrics.json, predictions.csv and figures.

:func:`write_report` writes::

    report.html        self-contained (figures embedded as base64 PNG, inline CSS, no JS)
    metrics.json       every figure with its CI, configuration, data summary, validity,
                       efficiency, warnings, library versions and seed
    predictions.csv    image, patient, fold, label, probability
    roc.png            pooled ROC curve with a bootstrap band (resampling patients)
    confusion_matrix.png
    per_fold.png       per-fold figures as a table
    gradcam.png        Grad-CAM overlays of true/false positives/negatives (when given)
    efficiency.png     model vs radiologist images per minute (when measured)
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import importlib.metadata
import json
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import METRIC_NAMES, compute_metrics
from .results import GRADCAM_KINDS, RunResult, describe_hardware

__all__ = [
    "write_report",
    "format_summary_table",
    "library_versions",
    "fold_summary",
    "METRIC_LABELS",
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

_LIBRARIES = (
    "cxrkit",
    "torch",
    "torchvision",
    "skorch",
    "scikit-learn",
    "numpy",
    "scipy",
    "matplotlib",
    "pillow",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a result depends on (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


# -- helpers -------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def format_number_value(x: Any, *, max_items: int = 4, digits: int = 3, depth: int = 0) -> str:
    """A validity-check number as short readable text.

    Floats are rounded to ``digits``; ``None``/NaN read ``n/a`` and empty strings
    ``(empty)``; lists show their first ``max_items`` entries and ``(+N more)``;
    nested dicts and lists deeper than one level are summarised by their size.
    """
    x = _jsonable(x)
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) >= 10**digits else f"{round(x, digits):g}"
    if isinstance(x, str):
        return x if x.strip() else "(empty)"
    if isinstance(x, dict):
        if depth >= 1:
            return f"{{{len(x)} fields}}"
        items = list(x.items())
        body = ", ".join(
            f"{k}: {format_number_value(v, max_items=max_items, digits=digits, depth=depth + 1)}"
            for k, v in items[:max_items]
        )
        more = f", (+{len(items) - max_items} more)" if len(items) > max_items else ""
        return "{" + body + more + "}"
    if isinstance(x, list):
        if depth >= 1 and any(isinstance(v, (dict, list)) for v in x):
            return f"[{len(x)} items]"
        body = ", ".join(
            format_number_value(v, max_items=max_items, digits=digits, depth=depth + 1)
            for v in x[:max_items]
        )
        more = f", (+{len(x) - max_items} more)" if len(x) > max_items else ""
        return "[" + body + more + "]"
    return str(x)


def format_validity_numbers(numbers: Any) -> str:
    """The "Numbers" cell of the Validity table: ``key=value`` pairs, each readable."""
    if not isinstance(numbers, dict):
        return format_number_value(numbers)
    return "; ".join(f"{k}={format_number_value(v)}" for k, v in numbers.items())


def _value(v: Any) -> float:
    if isinstance(v, dict):
        v = v.get("value")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _fmt(v: Any, digits: int = 3) -> str:
    x = _value(v)
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _pooled(result: RunResult) -> dict[str, Any]:
    """``result.metrics``, computed with the configuration's settings when empty."""
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


def fold_summary(per_fold: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over folds of each metric present in ``per_fold``.

    Returns
    -------
    dict
        ``{metric: {"mean", "sd", "n_folds"}}`` (NaN folds left out; sd with ddof=1).
    """
    out: dict[str, dict[str, float]] = {}
    for name in METRIC_NAMES:
        vals = np.array([_value(f[name]) for f in per_fold if name in f], dtype=float)
        vals = vals[np.isfinite(vals)]
        if len(vals) == 0:
            continue
        out[name] = {
            "mean": float(vals.mean()),
            "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
            "n_folds": int(len(vals)),
        }
    return out


def format_summary_table(result: RunResult) -> str:
    """The text table the command line prints at the end of a run.

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
    m = _pooled(result)
    settings = m.get("settings", {})
    conf = settings.get("confidence", 0.95)
    ci_head = f"{conf:.0%} CI"
    folds = fold_summary(result.per_fold)
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
    rows = [("Metric", "Pooled", ci_head) + (("Mean over folds (SD)",) if folds else ())]
    for name in METRIC_NAMES:
        if name not in m:
            continue
        e = m[name]
        ci = f"[{_fmt(e.get('ci_low'))}, {_fmt(e.get('ci_high'))}]"
        row: tuple[str, ...] = (METRIC_LABELS[name], _fmt(e), ci)
        if folds:
            f = folds.get(name)
            row += (f"{_fmt(f['mean'])} ({_fmt(f['sd'])})" if f else "n/a",)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head, sub]
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(widths[j + 1]) if j == 0 else c.ljust(widths[j + 1])
            for j, c in enumerate(r[1:])
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
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
    for w in result.warnings:
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)


# -- figures --------------------------------------------------------------------------------
def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _plot_roc(
    result: RunResult, metrics: dict[str, Any], path: Path, n_boot: int, seed: int
) -> None:
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    t = result.y_true == result.positive_label
    s = result.y_score
    fig, ax = plt.subplots(figsize=(5.2, 5.2), dpi=110)
    ax.plot([0, 1], [0, 1], ls="--", c="0.6", lw=1, label="chance")
    if t.all() or not t.any():
        ax.text(0.5, 0.5, "ROC undefined: only one class present", ha="center")
    else:
        grid = np.linspace(0, 1, 201)
        if result.folds is not None:
            for i, k in enumerate(np.unique(result.folds)):
                sel = result.folds == k
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
        if n_boot > 0:
            if result.groups is not None:
                _, gi = np.unique(result.groups.astype(str), return_inverse=True)
            else:
                gi = np.arange(len(t))
            ng = int(gi.max()) + 1
            rng = np.random.default_rng(seed)
            curves = []
            for _ in range(n_boot):
                w = rng.multinomial(ng, np.full(ng, 1.0 / ng))[gi].astype(float)
                if w[t].sum() == 0 or w[~t].sum() == 0:
                    continue
                keep = w > 0
                fpr_b, tpr_b, _ = roc_curve(t[keep], s[keep], sample_weight=w[keep])
                curves.append(np.interp(grid, fpr_b, tpr_b))
            if curves:
                conf = metrics.get("settings", {}).get("confidence", 0.95)
                a = (1 - conf) / 2
                lo, hi = np.percentile(np.array(curves), [100 * a, 100 * (1 - a)], axis=0)
                unit = "patients" if result.groups is not None else "images"
                ax.fill_between(
                    grid,
                    lo,
                    hi,
                    color="tab:orange",
                    alpha=0.3,
                    lw=0,
                    label=f"{conf:.0%} band (bootstrap over {unit}, {len(curves)})",
                )
        fpr, tpr, _ = roc_curve(t, s)
        auc = metrics.get("auc", {})
        ax.plot(
            fpr,
            tpr,
            c="tab:red",
            lw=2,
            label=f"pooled ROC, AUC {_fmt(auc)} [{_fmt(auc.get('ci_low'))}, "
            f"{_fmt(auc.get('ci_high'))}]",
        )
        sens, spec = _value(metrics.get("sensitivity")), _value(metrics.get("specificity"))
        if math.isfinite(sens) and math.isfinite(spec):
            thr = metrics.get("settings", {}).get("threshold", 0.5)
            ax.plot([1 - spec], [sens], "o", c="k", ms=6, label=f"threshold {thr:g}")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("Sensitivity (true positive rate)")
    ax.set_title(f"ROC: {result.positive_label} vs rest ({result.n_images} images)")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _negative_label(result: RunResult) -> str:
    others = [c for c in result.classes if str(c) != str(result.positive_label)]
    return str(others[0]) if others else f"not {result.positive_label}"


def _plot_confusion(result: RunResult, metrics: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    cm = metrics["confusion_matrix"]
    mat = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]], dtype=float)
    labels = [_negative_label(result), str(result.positive_label)]
    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=110)
    rows = mat.sum(1, keepdims=True)
    frac = np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    names = [["TN", "FP"], ["FN", "TP"]]
    for i in range(2):
        for j in range(2):
            ax.text(
                j,
                i,
                f"{names[i][j]}\n{int(mat[i, j])}\n({frac[i, j]:.0%} of row)",
                ha="center",
                va="center",
                fontsize=10,
                color="white" if frac[i, j] > 0.6 else "black",
            )
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    thr = metrics.get("settings", {}).get("threshold", 0.5)
    ax.set_title(f"Confusion matrix (threshold {thr:g})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _per_fold_rows(result: RunResult) -> tuple[list[str], list[list[str]]]:
    cols = ["Fold", "Images"] + [
        METRIC_LABELS[n].split(" (")[0]
        for n in METRIC_NAMES
        if any(n in f for f in result.per_fold)
    ]
    names = [n for n in METRIC_NAMES if any(n in f for f in result.per_fold)]
    rows = []
    for f in result.per_fold:
        rows.append(
            [str(f.get("fold", "")), str(f.get("n_images", ""))] + [_fmt(f.get(n)) for n in names]
        )
    summ = fold_summary(result.per_fold)
    if rows:
        rows.append(["mean", ""] + [_fmt(summ[n]["mean"]) if n in summ else "n/a" for n in names])
        rows.append(["SD", ""] + [_fmt(summ[n]["sd"]) if n in summ else "n/a" for n in names])
    return cols, rows


def _plot_per_fold(result: RunResult, path: Path) -> None:
    plt = _pyplot()
    cols, rows = _per_fold_rows(result)
    fig, ax = plt.subplots(
        figsize=(max(6.0, 1.05 * len(cols)), 0.9 + 0.32 * max(len(rows), 2)), dpi=110
    )
    ax.axis("off")
    if not rows:
        ax.text(
            0.5,
            0.5,
            "No per-fold figures: this run used a single train/test split.",
            ha="center",
            va="center",
        )
    else:
        table = ax.table(cellText=rows, colLabels=cols, loc="center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.3)
        table.auto_set_column_width(list(range(len(cols))))
        for (r, _c), cell in table.get_celld().items():
            if r == 0:
                cell.set_facecolor("#dde6f0")
                cell.set_text_props(weight="bold")
            elif r > len(rows) - 2:
                cell.set_facecolor("#f3f3f3")
    ax.set_title("Per-fold figures", fontsize=11)
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)


def _gradcam_image(entry: dict[str, Any]) -> np.ndarray | None:
    for key in ("image", "array", "pixels"):
        v = entry.get(key)
        if isinstance(v, np.ndarray) and v.ndim == 2:
            return v
    return None


def _gradcam_id(entry: dict[str, Any]) -> str:
    for key in ("id", "image_id", "image"):
        v = entry.get(key)
        if isinstance(v, (str, Path, int)):
            return Path(str(v)).name
    return ""


def _plot_gradcam(result: RunResult, path: Path, per_kind: int) -> int:
    plt = _pyplot()
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in GRADCAM_KINDS}
    for e in result.gradcam:
        if e.get("kind") in by_kind and _gradcam_image(e) is not None:
            by_kind[e["kind"]].append(e)
    kinds = [k for k in GRADCAM_KINDS if by_kind[k]]
    if not kinds:
        return 0
    ncol = min(per_kind, max(len(by_kind[k]) for k in kinds))
    fig, axes = plt.subplots(
        len(kinds), ncol, figsize=(2.3 * ncol, 2.55 * len(kinds)), dpi=110, squeeze=False
    )
    full = {
        "TP": "true positive",
        "FP": "false positive",
        "TN": "true negative",
        "FN": "false negative",
    }
    n = 0
    for r, kind in enumerate(kinds):
        for c in range(ncol):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(by_kind[kind]):
                continue
            e = by_kind[kind][c]
            img = _gradcam_image(e).astype(float)  # type: ignore[union-attr]
            lo, hi = np.percentile(img, [1, 99])
            img = np.clip((img - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(img)
            heat = np.asarray(e.get("heatmap"), dtype=float)
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            flat = not (heat.size and np.nanmax(heat) > 0)
            if heat.shape == img.shape and not flat:
                ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ax.set_title(
                f"{kind} ({full[kind]})\np={_fmt(e.get('score'), 2)} "
                f"{_gradcam_id(e)[:22]}" + ("\nno positive evidence" if flat else ""),
                fontsize=7.5,
            )
            n += 1
    fig.suptitle(
        f"Grad-CAM for '{result.positive_label}'\n(red = evidence for it; "
        "each map scaled to its own maximum)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return n


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _plot_efficiency(eff: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 2.4), dpi=110)
    vals = [eff["radiologist_images_per_minute"], eff["images_per_minute"]]
    dev = eff.get("device") or "this machine"
    names = ["Radiologist", f"Model ({dev})"]
    bars = ax.barh(names, vals, color=["0.6", "tab:green"])
    ax.set_xscale("log")
    ax.set_xlim(min(vals) / 2, max(vals) * 60)
    for b, v in zip(bars, vals):
        ax.text(
            v * 1.15,
            b.get_y() + b.get_height() / 2,
            f"{_rate(v)} images/min",
            va="center",
            fontsize=9,
        )
    ax.set_xlabel("Images per minute (log scale)")
    ax.set_title(
        f"Model efficiency: {eff['ratio']:,.0f}x a radiologist "
        f"({eff['n_images']} images in {eff['seconds']:.3g} s)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- HTML ------------------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;
 padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;
 vertical-align:top}th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warning{color:#b00000;font-weight:bold}.warnings{border:2px solid #b00000;background:#fff3f3;padding:.4em 1em}
.PASS{color:#126b12;font-weight:bold}.WARN{color:#a86400;font-weight:bold}.FAIL{color:#b00000;font-weight:bold}
img{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
.small{color:#666;font-size:.9em}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img_tag(path: Path | None, alt: str) -> str:
    if path is None or not path.is_file():
        return f"<p class='small'>({_esc(alt)}: not available for this run)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{_esc(alt)}' src='data:image/png;base64,{data}'>"


def _kv_table(d: dict[str, Any]) -> str:
    if not d:
        return "<p class='small'>(none)</p>"
    rows = []
    for k, v in d.items():
        val = json.dumps(_jsonable(v)) if isinstance(v, (dict, list, tuple)) else str(v)
        rows.append(f"<tr><th>{_esc(k)}</th><td>{_esc(val)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _html(
    result: RunResult,
    metrics: dict[str, Any],
    figs: dict[str, Path | None],
    versions: dict[str, Any],
    created: str,
) -> str:
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")
    add(f"<title>cxrkit report: {_esc(result.protocol)}</title><style>{_CSS}</style></head><body>")
    add(f"<h1>cxrkit report: {_esc(result.protocol)}</h1>")
    n_groups = len(np.unique(result.groups)) if result.groups is not None else None
    add(
        f"<p>{result.n_images} images"
        + (f" of {n_groups} patients" if n_groups else "")
        + f"; positive class <b>{_esc(result.positive_label)}</b>; classes "
        + _esc(", ".join(map(str, result.classes)))
        + f"; seed {_esc(result.seed)}. <span class='small'>Written {_esc(created)} by cxrkit "
        + f"{_esc(versions.get('cxrkit'))}.</span></p>"
    )
    if result.warnings:
        add("<div class='warnings' id='warnings'><h2 class='warning'>Warnings</h2><ul>")
        for w in result.warnings:
            add(f"<li class='warning'>{_esc(w)}</li>")
        add("</ul></div>")

    # metrics
    settings = metrics.get("settings", {})
    conf = settings.get("confidence", 0.95)
    folds = fold_summary(result.per_fold)
    add("<h2 id='metrics'>Metrics</h2>")
    add(
        f"<p class='small'>Pooled over all {result.n_images} "
        + ("out-of-fold " if result.folds is not None else "")
        + f"predictions at threshold {settings.get('threshold', 0.5):g}; "
        + f"{conf:.0%} confidence intervals.</p>"
    )
    head = f"<tr><th>Metric</th><th>Pooled</th><th>{conf:.0%} CI</th>"
    head += "<th>Mean over folds (SD)</th>" if folds else ""
    add("<table>" + head + "<th>Interval method</th></tr>")
    for name in METRIC_NAMES:
        if name not in metrics:
            continue
        e = metrics[name]
        row = (
            f"<tr><td>{_esc(METRIC_LABELS[name])}</td><td class='num'>{_fmt(e)}</td>"
            f"<td class='num'>[{_fmt(e.get('ci_low'))}, {_fmt(e.get('ci_high'))}]</td>"
        )
        if folds:
            f = folds.get(name)
            row += (
                f"<td class='num'>{_fmt(f['mean'])} ({_fmt(f['sd'])})</td>" if f else "<td>n/a</td>"
            )
        row += f"<td class='small'>{_esc(e.get('method', ''))}</td></tr>"
        add(row)
    add("</table>")
    if "auc" in metrics and "delong_ci" in metrics["auc"]:
        d = metrics["auc"]["delong_ci"]
        b = metrics["auc"].get("bootstrap_ci", [None, None])
        add(
            f"<p class='small'>AUC intervals side by side: DeLong [{_fmt(d[0])}, {_fmt(d[1])}]; "
            f"bootstrap over {_esc(settings.get('resampling_unit', 'images'))} "
            f"[{_fmt(b[0])}, {_fmt(b[1])}].</p>"
        )

    add("<h2 id='roc'>ROC curve</h2>" + _img_tag(figs.get("roc"), "ROC curve"))
    add(
        "<h2 id='confusion'>Confusion matrix</h2>"
        + _img_tag(figs.get("confusion_matrix"), "confusion matrix")
    )
    add("<h2 id='per-fold'>Per fold</h2>")
    cols, rows = _per_fold_rows(result)
    if rows:
        add(
            "<table><tr>"
            + "".join(f"<th>{_esc(c)}</th>" for c in cols)
            + "</tr>"
            + "".join(
                "<tr>" + "".join(f"<td class='num'>{_esc(c)}</td>" for c in r) + "</tr>"
                for r in rows
            )
            + "</table>"
        )
    else:
        add("<p>No per-fold figures: this run used a single train/test split.</p>")

    add("<h2 id='validity'>Validity</h2>")
    if result.validity:
        add(
            "<table><tr><th>Check</th><th>Status</th><th>Summary</th><th>Numbers</th>"
            "<th>Advice</th></tr>"
        )
        for v in result.validity:
            st = str(v.get("status"))
            nums = v.get("numbers") or {}
            nums_s = format_validity_numbers(nums)
            add(
                f"<tr><td>{_esc(v.get('name', ''))}</td><td class='{_esc(st)}'>{_esc(st)}</td>"
                f"<td>{_esc(v.get('summary', ''))}</td><td class='small'>{_esc(nums_s)}</td>"
                f"<td>{_esc(v.get('advice', '') or '')}</td></tr>"
            )
        add("</table>")
    else:
        add("<p class='small'>No validity checks were run.</p>")

    add("<h2 id='gradcam'>Grad-CAM</h2>" + _img_tag(figs.get("gradcam"), "Grad-CAM overlays"))
    add("<h2 id='efficiency'>Model efficiency</h2>")
    if result.efficiency:
        eff = result.efficiency
        add(
            f"<p>{eff['images_per_minute']:,.1f} images per minute on "
            f"{_esc(describe_hardware(eff))} ({eff['n_images']} images in "
            f"{eff['seconds']:.2f} s), {eff['ratio']:,.0f} times a radiologist's "
            f"{eff['radiologist_images_per_minute']:g} images per minute.</p>"
        )
        add(_img_tag(figs.get("efficiency"), "model efficiency"))
    else:
        add("<p class='small'>Not measured in this run.</p>")
    for sec in result.sections:
        add(f"<h2 id='{_esc(sec.key)}'>{_esc(sec.title)}</h2>")
        add(sec.html)
    add("<h2 id='data'>Data summary</h2>" + _kv_table(result.data_summary))
    add(
        "<h2 id='configuration'>Configuration</h2><pre>"
        + _esc(json.dumps(_jsonable(result.config), indent=2, sort_keys=True))
        + "</pre>"
    )
    add("<h2 id='versions'>Library versions</h2>" + _kv_table(versions))
    add(
        "<p class='small'>Files beside this report: metrics.json (every figure with its "
        "interval), predictions.csv (one row per image), and the figures as PNG.</p>"
    )
    add("</body></html>")
    return "\n".join(parts)


# -- entry point ---------------------------------------------------------------------------------
def write_report(
    result: RunResult,
    out_dir: str | Path,
    *,
    n_roc_bootstraps: int = 200,
    gradcam_per_kind: int = 3,
) -> dict[str, Path]:
    """Write the output folder of a run.

    Parameters
    ----------
    result : RunResult
        What the protocol produced.
    out_dir : str or Path
        Folder to write into (created if needed; existing files of the same
        names are replaced).
    n_roc_bootstraps : int, default=200
        Resamples (of patients when ``result.groups`` is set) for the ROC band.
    gradcam_per_kind : int, default=3
        At most this many Grad-CAM examples per kind (TP, FP, TN, FN).

    Returns
    -------
    dict of str to Path
        ``"html"``, ``"metrics"``, ``"predictions"``, ``"roc"``,
        ``"confusion_matrix"``, ``"per_fold"`` and, when there is something to
        show, ``"gradcam"`` and ``"efficiency"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = _pooled(result)
    versions = library_versions()
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    seed = result.seed if isinstance(result.seed, int) else 0
    paths: dict[str, Path] = {}

    # predictions.csv
    p = out / "predictions.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "patient", "fold", "label", "probability"])
        for i in range(result.n_images):
            w.writerow(
                [
                    result.images[i],
                    "" if result.groups is None else result.groups[i],
                    "" if result.folds is None else result.folds[i],
                    result.y_true[i],
                    repr(float(result.y_score[i])),
                ]
            )
    paths["predictions"] = p

    # figures
    figs: dict[str, Path | None] = {}
    roc, conf, fold, gpath, epath = (
        out / f"{name}.png"
        for name in ("roc", "confusion_matrix", "per_fold", "gradcam", "efficiency")
    )
    # Labels, file names and dataset names are drawn as written: a "$" starts no mathtext.
    with _pyplot().rc_context({"text.parse_math": False}):
        _plot_roc(result, metrics, roc, n_roc_bootstraps, seed)
        _plot_confusion(result, metrics, conf)
        _plot_per_fold(result, fold)
        figs.update(roc=roc, confusion_matrix=conf, per_fold=fold)
        figs["gradcam"] = gpath if _plot_gradcam(result, gpath, gradcam_per_kind) else None
        if result.efficiency:
            _plot_efficiency(result.efficiency, epath)
            figs["efficiency"] = epath
    for stale, key in ((gpath, "gradcam"), (epath, "efficiency")):
        if figs.get(key) is None:  # a figure left from an earlier run would mislead
            stale.unlink(missing_ok=True)
    paths.update({k: v for k, v in figs.items() if v is not None})
    for sec in result.sections:
        for name, png in sec.figures.items():
            p = out / name
            p.write_bytes(png)
            paths[f"{sec.key}:{name}"] = p

    # metrics.json
    doc = {
        "protocol": result.protocol,
        "created": created,
        "positive_label": result.positive_label,
        "classes": list(result.classes),
        "n_images": result.n_images,
        "n_patients": (len(np.unique(result.groups)) if result.groups is not None else None),
        "seed": result.seed,
        "metrics": metrics,
        "per_fold": result.per_fold,
        "per_fold_summary": fold_summary(result.per_fold),
        "config": result.config,
        "data_summary": result.data_summary,
        "validity": result.validity,
        "efficiency": result.efficiency,
        "warnings": result.warnings,
        "gradcam": [
            {k: v for k, v in e.items() if not isinstance(v, np.ndarray)} for e in result.gradcam
        ],
        "versions": versions,
        "extra": result.extra,
        "sections": {sec.key: {"title": sec.title, **sec.data} for sec in result.sections},
        "files": sorted(p.name for p in paths.values()) + ["metrics.json", "report.html"],
    }
    p = out / "metrics.json"
    p.write_text(json.dumps(_jsonable(doc), indent=2, allow_nan=False), encoding="utf-8")
    paths["metrics"] = p

    p = out / "report.html"
    p.write_text(_html(result, metrics, figs, versions, created), encoding="utf-8")
    paths["html"] = p
    return paths
