"""The PNG figures of a report.

ROC with a patient-bootstrap band, confusion matrix, per-fold table, Grad-CAM
overlays and model efficiency.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ._bootstrap import bootstrap_weights, cluster_index, percentile_interval
from ._format import fmt, value_of
from ._tables import per_fold_table
from .results import GRADCAM_KINDS, RunResult

__all__ = [
    "pyplot",
    "plot_roc",
    "plot_confusion",
    "plot_per_fold",
    "plot_gradcam",
    "plot_gradcam_entries",
    "plot_efficiency",
]


def pyplot():  # type: ignore[no-untyped-def]
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def roc_band(
    t: np.ndarray, s: np.ndarray, groups: Any, n_boot: int, seed: int, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Return a pointwise bootstrap band of the ROC curve on a grid of false positive rates.

    The resamples are those of the metric intervals (:mod:`._bootstrap`, whole
    patients when ``groups`` is given); resamples without both classes are left out.

    Returns
    -------
    grid, low, high : ndarray of shape (201,)
    n_used : int
        Resamples in the band (0: ``low`` and ``high`` are empty).
    """
    from sklearn.metrics import roc_curve

    grid = np.linspace(0, 1, 201)
    curves = []
    for weights in bootstrap_weights(cluster_index(groups, len(t)), n_boot, seed):
        for w in weights:
            if w[t].sum() == 0 or w[~t].sum() == 0:
                continue
            keep = w > 0
            fpr_b, tpr_b, _ = roc_curve(t[keep], s[keep], sample_weight=w[keep])
            curves.append(np.interp(grid, fpr_b, tpr_b))
    if not curves:
        return grid, np.array([]), np.array([]), 0
    lo, hi, n_used = percentile_interval(np.array(curves), confidence, axis=0)
    return grid, lo, hi, n_used


def _plot_fold_curves(ax: Any, result: RunResult, t: np.ndarray) -> None:
    from sklearn.metrics import roc_curve

    if result.folds is None:
        return
    for i, k in enumerate(np.unique(result.folds)):
        sel = result.folds == k
        if t[sel].all() or not t[sel].any():
            continue
        fpr_k, tpr_k, _ = roc_curve(t[sel], result.y_score[sel])
        label = "single folds" if i == 0 else None
        ax.plot(fpr_k, tpr_k, c="tab:blue", alpha=0.35, lw=0.8, label=label)


def _plot_roc_curves(
    ax: Any, result: RunResult, metrics: dict[str, Any], n_boot: int, seed: int
) -> None:
    from sklearn.metrics import roc_curve

    t, s = result.y_true == result.positive_label, result.y_score
    _plot_fold_curves(ax, result, t)
    settings = metrics.get("settings", {})
    if n_boot > 0:
        conf = settings.get("confidence", 0.95)
        grid, lo, hi, n_used = roc_band(t, s, result.groups, n_boot, seed, conf)
        if n_used:
            unit = "patients" if result.groups is not None else "images"
            label = f"{conf:.0%} band (bootstrap over {unit}, {n_used})"
            ax.fill_between(grid, lo, hi, color="tab:orange", alpha=0.3, lw=0, label=label)
    fpr, tpr, _ = roc_curve(t, s)
    auc = metrics.get("auc", {})
    label = f"pooled ROC, AUC {fmt(auc)} [{fmt(auc.get('ci_low'))}, {fmt(auc.get('ci_high'))}]"
    ax.plot(fpr, tpr, c="tab:red", lw=2, label=label)
    sens, spec = value_of(metrics.get("sensitivity")), value_of(metrics.get("specificity"))
    if math.isfinite(sens) and math.isfinite(spec):
        thr = settings.get("threshold", 0.5)
        ax.plot([1 - spec], [sens], "o", c="k", ms=6, label=f"threshold {thr:g}")


def plot_roc(
    result: RunResult, metrics: dict[str, Any], path: Path, n_boot: int, seed: int
) -> None:
    """Draw the pooled ROC curve, the single folds and the bootstrap band to ``path``."""
    plt = pyplot()
    t = result.y_true == result.positive_label
    fig, ax = plt.subplots(figsize=(5.2, 5.2), dpi=110)
    ax.plot([0, 1], [0, 1], ls="--", c="0.6", lw=1, label="chance")
    if t.all() or not t.any():
        ax.text(0.5, 0.5, "ROC undefined: only one class present", ha="center")
    else:
        _plot_roc_curves(ax, result, metrics, n_boot, seed)
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


def plot_confusion(result: RunResult, metrics: dict[str, Any], path: Path) -> None:
    """Draw the confusion matrix with row fractions to ``path``."""
    plt = pyplot()
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


def plot_per_fold(result: RunResult, path: Path) -> None:
    """Draw the per-fold figures as a table to ``path``."""
    plt = pyplot()
    table = per_fold_table(result)
    cols, rows = table.header, table.rows
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


def plot_gradcam(result: RunResult, path: Path, per_kind: int) -> int:
    """Draw Grad-CAM overlays by kind to ``path``; return how many were drawn."""
    return plot_gradcam_entries(result.gradcam, str(result.positive_label), path, per_kind)


def plot_gradcam_entries(
    entries: list[dict[str, Any]], label: str, path: Path, per_kind: int
) -> int:
    """Draw Grad-CAM overlays (dicts with ``kind``, ``image``, ``heatmap``, ``score``, ``id``) of ``label`` by kind."""
    plt = pyplot()
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in GRADCAM_KINDS}
    for e in entries:
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
                f"{kind} ({full[kind]})\np={fmt(e.get('score'), 2)} "
                f"{_gradcam_id(e)[:22]}" + ("\nno positive evidence" if flat else ""),
                fontsize=7.5,
            )
            n += 1
    fig.suptitle(
        f"Grad-CAM for '{label}'\n(red = evidence for it; each map scaled to its own maximum)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return n


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def plot_efficiency(eff: dict[str, Any], path: Path) -> None:
    """Draw model vs radiologist images per minute to ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 2.4), dpi=110)
    vals = [eff["radiologist_images_per_minute"], eff["images_per_minute"]]
    dev = eff.get("device") or "this machine"
    names = ["Radiologist", f"Model ({dev})"]
    bars = ax.barh(names, vals, color=["0.6", "tab:green"])
    ax.set_xscale("log")
    ax.set_xlim(min(vals) / 2, max(vals) * 60)
    # Plain tick labels: figure text is drawn with mathtext off, so the log axis's
    # default "$10^{k}$" labels would show as written.
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
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
