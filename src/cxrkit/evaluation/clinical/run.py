"""The clinical-validation step of a protocol run: from an evaluation to a report section."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..results import ReportSection
from .section import clinical_section
from .summary import (
    calibration_summary,
    conformal_summary,
    decision_curve_summary,
    operating_point_summary,
    subgroup_summary,
)

__all__ = ["clinical_report"]


def clinical_report(protocol: Any, ev: Any) -> ReportSection:
    """Compute every clinical figure of ``ev`` (a protocol's Evaluation) and build the section.

    Parameters
    ----------
    protocol : Protocol
        The run's options (``calibration``, ``operating_point``,
        ``prevalence``, ``subgroups``, ``conformal_alpha``, ``n_bootstraps``).
    ev : Evaluation
        Predictions and what the fitted steps kept (uncalibrated scores,
        per-image thresholds, conformal calibration data, metadata).

    Returns
    -------
    ReportSection
    """
    r = ev.result
    pos = r.positive_label
    y = (np.asarray(r.y_true).astype(str) == str(pos)).astype(int)
    p = np.asarray(r.y_score, float)
    seed, nb = protocol.random_state, protocol.n_bootstraps
    small_nb = min(nb, 200)
    calib = _calibration(ev, y, p, small_nb, seed)
    op = operating_point_summary(
        r.y_true,
        p,
        pos,
        r.groups,
        ev.thresholds,
        rule=protocol.operating_point,
        prevalences=protocol.prevalences(),
        n_bootstraps=nb,
        random_state=seed,
    )
    data: dict[str, Any] = {
        "config": {
            "calibration": protocol.calibration,
            "rule": protocol.operating_point or "0.5 (default)",
            "inner_split": protocol.inner_split,
        },
        "calibration": calib,
        "operating_point": op,
        "decision_curve": decision_curve_summary(
            y, p, r.groups, n_bootstraps=small_nb, random_state=seed
        ),
    }
    if protocol.subgroups:
        subgroups = _subgroups(protocol, ev, y, p, small_nb, seed)
        if subgroups is not None:
            data["subgroups"] = subgroups
    if protocol.conformal_alpha is not None and ev.conformal_folds:
        data["conformal"] = _conformal(protocol, ev, small_nb, seed)
    return clinical_section(data)


def _calibration(
    ev: Any, y: np.ndarray, p: np.ndarray, n_bootstraps: int, seed: int
) -> dict[str, Any]:
    """Return the calibration summaries (before recalibration, when it was done, then after)."""
    r = ev.result
    calib = {}
    name = "recalibrated" if ev.y_score_uncalibrated is not None else "model"
    if ev.y_score_uncalibrated is not None:
        calib["before recalibration"] = calibration_summary(
            y,
            np.asarray(ev.y_score_uncalibrated, float),
            r.groups,
            n_bootstraps=n_bootstraps,
            random_state=seed,
        )
    calib[name] = calibration_summary(y, p, r.groups, n_bootstraps=n_bootstraps, random_state=seed)
    return calib


def _subgroups(
    protocol: Any, ev: Any, y: np.ndarray, p: np.ndarray, n_bootstraps: int, seed: int
) -> list[dict[str, Any]] | None:
    """Return the subgroup summary rows, or ``None`` (with a warning) without metadata.

    Missing columns and WARN rows are added to the result's warnings.
    """
    r = ev.result
    md = ev.metadata
    if md is None:
        md = ev.data.metadata if len(ev.data.metadata) == len(y) else None
    if md is None:
        r.warnings.append(
            "Subgroups skipped: the predictions have no per-image metadata to group by."
        )
        return None
    missing = [c for c in protocol.subgroups if (c if c != "age_band" else "age") not in md.columns]
    if missing:
        r.warnings.append(
            f"Subgroup column(s) {missing} are not in the metadata (columns: "
            f"{sorted(md.columns)}); they were left out."
        )
    cols = [c for c in protocol.subgroups if c not in missing]
    thr = ev.thresholds if ev.thresholds is not None else 0.5
    rows = subgroup_summary(
        r.y_true,
        p,
        r.positive_label,
        r.groups,
        md.reset_index(drop=True),
        cols,
        float(r.metrics["auc"]["value"]),
        threshold=thr,
        n_bootstraps=n_bootstraps,
        random_state=seed,
    )
    for row in rows:
        if row["status"] == "WARN":
            r.warnings.append(f"Subgroup {row['column']}={row['level']}: {row['note']}.")
    return rows


def _conformal(protocol: Any, ev: Any, n_bootstraps: int, seed: int) -> dict[str, Any]:
    """Return the conformal-prediction summary of the stored calibration folds."""
    r = ev.result
    classes = list(r.classes)
    y_index = np.array([classes.index(str(v)) for v in np.asarray(r.y_true).astype(str)])
    return conformal_summary(
        ev.conformal_folds,
        y_index,
        r.groups,
        alpha=protocol.conformal_alpha,
        n_bootstraps=n_bootstraps,
        random_state=seed,
    )
