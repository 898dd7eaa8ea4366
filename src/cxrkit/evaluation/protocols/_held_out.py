"""The held-out test step: a cross-validating protocol's final model on a separate test set.

A protocol that cross-validates on ``--data`` can also take ``--test-data``.
The cross-validation gives the internal figures (out-of-fold predictions); the
model refit on all of ``--data`` is then scored once on the test set, which it
has never seen, so one report holds internal and external figures side by side.
Nothing is fitted on the test set: the recalibration and the operating point
(when the run fits them) come from an inner split of the training data, and the
data guards check the two sets for shared patients and near-duplicates.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np

from ...datasets import CXRDataset
from ...errors import DataError
from .._format import with_ci
from ..metrics import compute_metrics
from ..results import ReportSection

if TYPE_CHECKING:
    from ._base import Evaluation

__all__ = ["HeldOutSteps", "held_out_labels"]

COLUMNS = ("auc", "sensitivity", "specificity", "accuracy", "ppv", "npv")


def held_out_labels(test: CXRDataset, classes: list[str]) -> CXRDataset:
    """Return the images of ``test`` whose label is one of the model's ``classes``.

    Raises
    ------
    DataError
        When the test set holds none of the classes, or only one of two.
    """
    present = sorted(set(map(str, test.y)))
    missing = [c for c in classes if c not in present]
    if missing:
        raise DataError(
            f"--test-data has no {', '.join(map(repr, missing))} images (its labels: {present}); "
            f"a held-out test of this model needs images of each of {classes}."
        )
    return test if set(present) == set(classes) else test.select(list(classes))


class HeldOutSteps:
    """The :meth:`held_out` step of :class:`~cxrkit.evaluation.protocols.Protocol`."""

    n_bootstraps: int
    random_state: int

    def held_out(self, ev: Evaluation) -> None:
        """Score ``ev.held_out_model`` on ``ev.test`` and add the side-by-side table.

        Does nothing unless :meth:`evaluate` set ``held_out_model`` (protocols
        whose evaluation already is on the test set leave it ``None``).
        """
        model, test = ev.held_out_model, ev.test
        if model is None or test is None:
            return
        r = ev.result
        proba = np.asarray(model.predict_proba(test.X))
        classes = [str(c) for c in model.classes_]
        score = proba[:, classes.index(str(r.positive_label))]
        threshold = float(getattr(model, "threshold_", 0.5))
        prev = ev.prevalence[0] if isinstance(ev.prevalence, (tuple, list)) else ev.prevalence
        groups = np.asarray(test.groups).astype(str) if test.groups is not None else None
        metrics = compute_metrics(
            np.asarray(test.y).astype(str),
            score,
            positive_label=r.positive_label,
            groups=groups,
            threshold=threshold,
            prevalence=prev,
            n_bootstraps=self.n_bootstraps,
            random_state=self.random_state,
        )
        rows = [
            _row("cross-validation (out of fold)", len(r.y_true), r.groups, r.metrics),
            _row(f"held-out test: {test.name}", len(score), groups, metrics),
        ]
        note = (
            f"Threshold {threshold:.3f}, fitted on an inner split of the training data"
            if hasattr(model, "threshold_") and threshold != 0.5
            else "Threshold 0.5 (the default, not fitted)"
        )
        data = {
            "test_dataset": test.name,
            "threshold": threshold,
            "rows": rows,
            "y_score": score.tolist(),
        }
        r.extra["held_out_test"] = {"metrics": metrics, "threshold": threshold}
        r.sections.append(
            ReportSection("held-out", "Held-out test set", html=_table(rows, note), data=data)
        )


def _row(what: str, n: int, groups: Any, metrics: dict[str, Any] | None) -> dict[str, Any]:
    patients = len(set(map(str, groups))) if groups is not None else None
    return {
        "set": what,
        "n_images": int(n),
        "n_patients": patients,
        **{k: (metrics or {}).get(k) for k in COLUMNS},
    }


def _table(rows: list[dict[str, Any]], note: str) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Set", "Images", "Patients", "AUC", "Sens.", "Spec.", "Acc.", "PPV", "NPV")
    )
    body = ""
    for row in rows:
        cells = [row["set"], str(row["n_images"]), str(row["n_patients"] or "n/a")]
        cells += [with_ci(row[k]) for k in COLUMNS]
        body += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
    return (
        f"<p>{html.escape(note)}; 95 % patient-bootstrap intervals. The test row is the model "
        "refit on all the training data, scored once on images it never saw.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
    )
