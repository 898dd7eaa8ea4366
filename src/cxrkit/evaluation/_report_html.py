"""report.html: a jinja2 template shipped with cxrkit, rendered with autoescaping."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from ._format import fmt, jsonable
from ._tables import last_epoch_table, metrics_table, per_fold_table, validity_rows
from .results import RunResult, describe_hardware

__all__ = ["render_html"]


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """Return the template environment (built on first use; autoescape on for every template)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("cxrkit.evaluation", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _png_base64(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _kv_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(k), json.dumps(jsonable(v)) if isinstance(v, (dict, list, tuple)) else str(v))
        for k, v in d.items()
    ]


def _auc_sides(metrics: dict[str, Any]) -> dict[str, str] | None:
    auc = metrics.get("auc") or {}
    if "delong_ci" not in auc:
        return None
    d = auc["delong_ci"]
    b = auc.get("bootstrap_ci", [None, None])
    return {
        "delong": f"[{fmt(d[0])}, {fmt(d[1])}]",
        "bootstrap": f"[{fmt(b[0])}, {fmt(b[1])}]",
        "unit": str(metrics.get("settings", {}).get("resampling_unit", "images")),
    }


def _efficiency(eff: dict[str, Any] | None) -> dict[str, str] | None:
    if not eff:
        return None
    return {
        "rate": f"{eff['images_per_minute']:,.1f}",
        "hardware": describe_hardware(eff),
        "n_images": str(eff["n_images"]),
        "seconds": f"{eff['seconds']:.2f}",
        "ratio": f"{eff['ratio']:,.0f}",
        "radiologist": f"{eff['radiologist_images_per_minute']:g}",
    }


def run_context(
    result: RunResult, settings: dict[str, Any], versions: dict[str, Any], created: str
) -> dict[str, Any]:
    """Return the template fields every report shares: the run, its warnings, guards, sections and set-up."""
    return {
        "protocol": result.protocol,
        "n_images": result.n_images,
        "n_groups": len(np.unique(result.groups)) if result.groups is not None else None,
        "seed": str(result.seed),
        "created": created,
        "cxrkit_version": str(versions.get("cxrkit")),
        "warnings": [str(w) for w in result.warnings],
        "out_of_fold": result.folds is not None,
        "threshold": f"{settings.get('threshold', 0.5):g}",
        "confidence": f"{settings.get('confidence', 0.95):.0%}",
        "validity": validity_rows(result.validity),
        "efficiency": _efficiency(result.efficiency),
        # a section's body is markup its author escaped (see ReportSection.html)
        "sections": [
            {"key": s.key, "title": s.title, "html": Markup(s.html)}  # noqa: S704
            for s in result.sections
        ],
        "data_summary": _kv_rows(result.data_summary),
        "config": json.dumps(jsonable(result.config), indent=2, sort_keys=True),
        "versions": _kv_rows(versions),
    }


def render_html(
    result: RunResult,
    metrics: dict[str, Any],
    figures: dict[str, Path | None],
    versions: dict[str, Any],
    created: str,
    last_epoch: dict[str, Any] | None = None,
) -> str:
    """Render report.html for ``result``.

    Parameters
    ----------
    result : RunResult
    metrics : dict
        Pooled figures (:func:`cxrkit.evaluation.metrics.compute_metrics`).
    figures : dict of str to Path or None
        PNG files by key (``"roc"``, ``"confusion_matrix"``, ``"gradcam"``,
        ``"efficiency"``), embedded as base64.
    versions : dict
        Library versions.
    created : str
        When the report was written.
    last_epoch : dict, optional
        The ensemble vs last-epoch comparison
        (:func:`cxrkit.evaluation._tables.last_epoch_comparison`).

    Returns
    -------
    str
        A self-contained HTML page (inline CSS, embedded figures, no script).
    """
    settings = metrics.get("settings", {})
    context = {
        **run_context(result, settings, versions, created),
        "positive_label": str(result.positive_label),
        "classes": ", ".join(map(str, result.classes)),
        "metrics_table": metrics_table(metrics, result.per_fold),
        "auc_sides": _auc_sides(metrics),
        "last_epoch": last_epoch_table(last_epoch),
        "figures": {
            k: _png_base64(figures.get(k))
            for k in ("roc", "confusion_matrix", "gradcam", "efficiency")
        },
        "per_fold": per_fold_table(result),
    }
    return _environment().get_template("report.html.j2").render(context)
