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

import csv
import datetime as _dt
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from ._figures import (
    plot_confusion,
    plot_efficiency,
    plot_gradcam,
    plot_per_fold,
    plot_roc,
    pyplot,
)
from ._format import format_number_value, format_validity_numbers, jsonable
from ._report_html import render_html
from ._tables import (
    METRIC_LABELS,
    fold_summary,
    format_summary_table,
    last_epoch_comparison,
    pooled_metrics,
)
from .results import RunResult

__all__ = [
    "write_report",
    "format_summary_table",
    "format_number_value",
    "format_validity_numbers",
    "library_versions",
    "fold_summary",
    "METRIC_LABELS",
]

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
    """Return the installed versions of the libraries a result depends on (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _write_predictions(result: RunResult, path: Path) -> None:
    """Write predictions.csv: image, patient, fold, label, probability."""
    with path.open("w", newline="", encoding="utf-8") as fh:
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


def _write_figures(
    result: RunResult, metrics: dict[str, Any], out: Path, n_boot: int, per_kind: int
) -> dict[str, Path | None]:
    """Draw the PNG figures into ``out``; a figure with nothing to show is ``None``."""
    seed = result.seed if isinstance(result.seed, int) else 0
    roc, conf, fold, gpath, epath = (
        out / f"{name}.png"
        for name in ("roc", "confusion_matrix", "per_fold", "gradcam", "efficiency")
    )
    figs: dict[str, Path | None] = {}
    # Labels, file names and dataset names are drawn as written: a "$" starts no mathtext.
    with pyplot().rc_context({"text.parse_math": False}):
        plot_roc(result, metrics, roc, n_boot, seed)
        plot_confusion(result, metrics, conf)
        plot_per_fold(result, fold)
        figs.update(roc=roc, confusion_matrix=conf, per_fold=fold)
        figs["gradcam"] = gpath if plot_gradcam(result, gpath, per_kind) else None
        figs["efficiency"] = None
        if result.efficiency:
            plot_efficiency(result.efficiency, epath)
            figs["efficiency"] = epath
    for stale, key in ((gpath, "gradcam"), (epath, "efficiency")):
        if figs.get(key) is None:  # a figure left from an earlier run would mislead
            stale.unlink(missing_ok=True)
    return figs


def _metrics_document(
    result: RunResult,
    metrics: dict[str, Any],
    versions: dict[str, Any],
    created: str,
    files: list[str],
) -> dict[str, Any]:
    """Build the content of metrics.json."""
    return {
        "protocol": result.protocol,
        "created": created,
        "positive_label": result.positive_label,
        "classes": list(result.classes),
        "n_images": result.n_images,
        "n_patients": (len(np.unique(result.groups)) if result.groups is not None else None),
        "seed": result.seed,
        "metrics": metrics,
        "last_epoch_comparison": last_epoch_comparison(result, metrics),
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
        "files": sorted(files) + ["metrics.json", "report.html"],
    }


def _write_multi_report(result: RunResult, out: Path) -> dict[str, Path]:
    """Write the output folder of a multi-label or multi-class run (:mod:`._report_multi`)."""
    from ._report_multi import (
        multioutput_metrics,
        render_multi_html,
        write_multi_figures,
        write_multi_predictions,
    )

    metrics = multioutput_metrics(result)
    versions = library_versions()
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    paths: dict[str, Path] = {"predictions": out / "predictions.csv"}
    write_multi_predictions(result, paths["predictions"])
    figs = write_multi_figures(result, metrics, out)
    paths.update({k: v for k, v in figs.items() if v is not None})
    for sec in result.sections:
        for name, png in sec.figures.items():
            (out / name).write_bytes(png)
            paths[f"{sec.key}:{name}"] = out / name
    doc = _metrics_document(result, metrics, versions, created, [p.name for p in paths.values()])
    doc["task"] = result.task
    paths["metrics"] = out / "metrics.json"
    paths["metrics"].write_text(
        json.dumps(jsonable(doc), indent=2, allow_nan=False), encoding="utf-8"
    )
    paths["html"] = out / "report.html"
    paths["html"].write_text(
        render_multi_html(result, metrics, figs, versions, created), encoding="utf-8"
    )
    return paths


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
        show, ``"gradcam"`` and ``"efficiency"``. A multi-label or multi-class
        result (:attr:`RunResult.task`) gets its own report instead: the
        per-finding (per-class) table with CIs, macro/micro AUC, a grid of ROC
        curves in ``roc.png``, the label policy, and (multi-class) the
        ``k x k`` confusion matrix; no ``per_fold.png`` or Grad-CAM.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if result.task != "binary":
        return _write_multi_report(result, out)
    metrics = pooled_metrics(result)
    versions = library_versions()
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    paths: dict[str, Path] = {"predictions": out / "predictions.csv"}
    _write_predictions(result, paths["predictions"])
    figs = _write_figures(result, metrics, out, n_roc_bootstraps, gradcam_per_kind)
    paths.update({k: v for k, v in figs.items() if v is not None})
    for sec in result.sections:
        for name, png in sec.figures.items():
            (out / name).write_bytes(png)
            paths[f"{sec.key}:{name}"] = out / name

    doc = _metrics_document(result, metrics, versions, created, [p.name for p in paths.values()])
    paths["metrics"] = out / "metrics.json"
    paths["metrics"].write_text(
        json.dumps(jsonable(doc), indent=2, allow_nan=False), encoding="utf-8"
    )
    html = render_html(result, metrics, figs, versions, created, doc["last_epoch_comparison"])
    paths["html"] = out / "report.html"
    paths["html"].write_text(html, encoding="utf-8")
    return paths
