"""Multi-label k-fold cross-validation: several findings per image, patient-grouped folds."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone

from ...datasets import CXRDataset
from ...errors import ConfigurationError, DataError
from ...estimators import CXRClassifier, SnapshotEnsembleClassifier
from .._format import with_ci
from .._multioutput import compute_multilabel_metrics
from ..results import ReportSection, RunResult, model_efficiency
from ._base import Evaluation, InputSlot, Protocol
from ._common import (
    concurrent_fits,
    folds_in_this_process,
    run_proba_folds,
    with_epoch_progress,
)

__all__ = ["MultilabelCV", "finding_frame", "label_policy"]

_UNCERTAIN = ("ignore", "ones", "zeros")


def finding_frame(ds: CXRDataset, findings: tuple[str, ...] | list[str] | None) -> pd.DataFrame:
    """Return the ``(images, findings)`` label frame of ``ds`` (1, 0, -1 uncertain, NaN missing).

    The findings come from the dataset's label matrix (:attr:`CXRDataset.labels`)
    when it has them all, else from the metadata columns of those names (for
    a CSV with one 0/1 column per finding).
    """
    names = list(findings) if findings else ds.findings
    if not names:
        raise DataError(
            f"Dataset {ds.name!r} has no label matrix; name the findings to use, one metadata "
            "column each (--labels a,b,c, or labels=('a', 'b', 'c'))."
        )
    if ds.labels is not None and set(names) <= set(ds.findings):
        frame = ds.labels[names].astype(np.float64)
    else:
        absent = [f for f in names if f not in ds.metadata.columns]
        if absent:
            have = ds.findings or [c for c in ds.metadata.columns if c not in ("image", "label")]
            raise DataError(
                f"Dataset {ds.name!r} has no finding or metadata column {absent}; the findings "
                f"must be columns of its label matrix or metadata. Available: {have[:30]}."
            )
        try:
            frame = ds.metadata[names].apply(pd.to_numeric).astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"The finding columns {names} of dataset {ds.name!r} must hold numbers (1, 0, "
                "-1 for uncertain, empty for missing); found text."
            ) from None
    values = frame.to_numpy()
    bad = ~np.isnan(values) & ~np.isin(values, (0.0, 1.0, -1.0))
    if bad.any():
        col = names[int(np.argwhere(bad)[0][1])]
        raise DataError(
            f"Finding {col!r} holds {values[bad][0]!r}; finding labels must be 1, 0, -1 "
            "(uncertain) or empty/NaN (missing)."
        )
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in names]
    return frame


def label_policy(frame: pd.DataFrame, uncertain: str) -> dict[str, Any]:
    """Count, per finding, what the labels were and what the evaluation used.

    Returns
    -------
    dict
        ``{"uncertain": policy, "findings": {name: {"positive", "negative",
        "uncertain", "missing", "evaluated"}}}``; ``evaluated`` counts the images
        scored for that finding once the policy is applied.
    """
    out = {}
    for name in frame.columns:
        v = frame[name].to_numpy()
        n_unc, n_nan = int((v == -1).sum()), int(np.isnan(v).sum())
        out[str(name)] = {
            "positive": int((v == 1).sum()),
            "negative": int((v == 0).sum()),
            "uncertain": n_unc,
            "missing": n_nan,
            "evaluated": int(len(v) - n_nan - (n_unc if uncertain == "ignore" else 0)),
        }
    return {"uncertain": uncertain, "findings": out}


@dataclass
class MultilabelCV(Protocol):
    """Patient-grouped, multi-label stratified k-fold cross-validation of one network.

    The findings are ``labels`` (columns of the dataset's label matrix, or
    metadata columns of 1/0/-1/NaN); without ``labels`` every finding of the
    label matrix is used. One :class:`~cxrkit.estimators.CXRClassifier` with a
    logit per finding (masked binary cross-entropy) is trained per fold of
    :class:`~cxrkit.validity.PatientMultilabelStratifiedKFold` (``n_splits``
    folds, iterative stratification over patients); with ``n_snapshots > 0``
    each fold trains a :class:`~cxrkit.estimators.SnapshotEnsembleClassifier`
    keeping its last ``n_snapshots`` epochs ``interval`` apart. Uncertain labels
    (-1) follow ``uncertain`` in training and in the evaluation alike
    (``"ignore"``: left out; ``"ones"``/``"zeros"``: U-Ones/U-Zeros); missing
    labels are left out of their finding. The pooled out-of-fold
    probabilities are scored by
    :func:`~cxrkit.evaluation.compute_multilabel_metrics` (per finding, macro
    and micro AUC, patient-bootstrap CIs, ``threshold`` for sensitivity and
    specificity). The report's Grad-CAM section explains one finding's logit
    (``gradcam_finding``; default: the finding with the most positive labels)
    on held-out images of the last fold. The clinical-validation section and
    the probes are binary-only and not part of this protocol. With ``refit=True`` (set by
    ``cxrkit run --save``) a final model is trained on all the images after
    the folds and kept as ``fitted_``; otherwise ``fitted_`` is the last
    fold's model.
    """

    inputs: ClassVar[tuple[InputSlot, ...]] = (
        InputSlot("data", "the images, per-finding labels and patient ids to cross-validate"),
        InputSlot(
            "test",
            "a held-out test set with the same findings, scored by the model refit on all of --data",
            required=False,
        ),
    )

    architecture: str = "resnet18"
    n_splits: int = 5
    max_epochs: int = 10
    uncertain: str = "ignore"
    threshold: float = 0.5
    n_snapshots: int = 0
    interval: int = 1
    refit: bool = False
    probes: bool = False
    gradcam_finding: str | None = None
    name: str = "multilabel-cv"

    def build(self) -> tuple[Any, Any]:
        """Return the estimator trained per fold and the splitter."""
        from ...validity import PatientMultilabelStratifiedKFold

        if self.uncertain not in _UNCERTAIN:
            raise ConfigurationError(
                f"uncertain={self.uncertain!r} is not known; expected one of {list(_UNCERTAIN)}."
            )
        base = CXRClassifier(
            self.architecture,
            max_epochs=self.max_epochs,
            uncertain=self.uncertain,
            **self.estimator_options(),
        )
        est: Any = base
        if self.n_snapshots > 0:
            est = SnapshotEnsembleClassifier(
                base,
                n_snapshots=self.n_snapshots,
                interval=self.interval,
                policy="last",
                max_epochs=self.max_epochs,
            )
        cv = PatientMultilabelStratifiedKFold(
            self.n_splits, shuffle=True, random_state=self.random_state
        )
        return est, cv

    def check_clinical_options(self) -> None:
        """Refuse the binary-only clinical options."""
        asked = [
            k
            for k in ("calibration", "operating_point", "conformal_alpha")
            if getattr(self, k) is not None
        ]
        if asked or self.subgroups:
            raise ConfigurationError(
                f"Protocol {self.name!r} is multi-label; {asked or ['subgroups']} apply to "
                "binary protocols only. Leave them unset."
            )

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        from ...validity import splitter_leakage

        ds = inputs["data"]
        frame = finding_frame(ds, self.labels)
        names = list(frame.columns)
        if self.gradcam_finding is not None and self.gradcam_finding not in names:
            raise ConfigurationError(
                f"gradcam_finding={self.gradcam_finding!r} is not one of the findings {names}; "
                "pick one of them (--set gradcam_finding=NAME)."
            )
        est, cv = self.build()
        with_epoch_progress(est, progress and folds_in_this_process(self.n_jobs))
        X, groups = ds.X, np.asarray(ds.groups).astype(str)
        raw = frame.to_numpy()
        y_eval = self._evaluated(raw)
        test = inputs.get("test")
        if test is not None:
            finding_frame(test, names)  # the test set must hold every finding: refused early
        images = [str(v) for v in (X if X.dtype == object else range(len(X)))]
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=", ".join(names),
            classes=names,
            images=images,
            y_true=y_eval,
            y_score=np.full(raw.shape, np.nan),
            groups=groups,
        )
        result.validity.append(splitter_leakage(cv, X, raw, groups).to_dict())
        splits = list(cv.split(X, raw, groups))
        folds = np.full(len(X), -1)
        seconds, info, device, threads, fitted = 0.0, [], None, set(), None
        for r in run_proba_folds(est, X, frame, groups, splits, self.n_jobs, progress):
            te = splits[r["fold"]][1]
            result.y_score[te], folds[te] = r["proba"], r["fold"]
            seconds += r["seconds"]
            info.append({"fold": r["fold"], "epochs_trained": r["info"]["epochs_trained"]})
            device = r["device"]
            threads.add(r["threads"])
            fitted = r["model"] if r["model"] is not None else fitted
        result.folds = folds
        result.per_fold = info
        result.efficiency = model_efficiency(
            len(X),
            max(seconds, 1e-9),
            device=device,
            threads=max(threads) if threads else None,
            processes=concurrent_fits(self.n_jobs, len(splits)),
        )
        result.extra["label_policy"] = label_policy(frame, self.uncertain)
        result.data_summary = ds.summary()
        last_fold = fitted
        if self.refit or test is not None:
            fitted = with_epoch_progress(clone(est), progress).fit(X, frame, groups=groups)
            result.extra["final_model"] = {
                "trained_on": len(X),
                "note": "The saved model (--save) was refit on all the images after the "
                "cross-validation; the figures are those of the fold models.",
            }
        self.fitted_ = fitted
        return Evaluation(
            result=result,
            data=ds,
            test=test,
            held_out_model=fitted if test is not None else None,
            prevalence=None,
            explain_model=last_fold,
            explain_X=X,
            explain_pool=splits[-1][1] if splits else None,
        )

    def _evaluated(self, raw: np.ndarray) -> np.ndarray:
        """Return the labels as evaluated: -1 per ``uncertain`` (NaN, 1 or 0), NaN kept."""
        fill = {"ignore": np.nan, "ones": 1.0, "zeros": 0.0}[self.uncertain]
        return np.where(raw == -1, fill, raw).astype(float)

    def held_out(self, ev: Evaluation) -> None:
        """Score the model refit on all of ``data`` on the held-out ``test`` set, per finding."""
        model, test = ev.held_out_model, ev.test
        if model is None or test is None:
            return
        r = ev.result
        names = list(r.classes)
        truth = self._evaluated(finding_frame(test, names).to_numpy())
        groups = np.asarray(test.groups).astype(str) if test.groups is not None else None
        m = compute_multilabel_metrics(
            truth,
            np.asarray(model.predict_proba(test.X)),
            names=names,
            groups=groups,
            threshold=self.threshold,
            n_bootstraps=self.n_bootstraps,
            random_state=self.random_state,
        )
        r.extra["held_out_test"] = {"dataset": test.name, "n_images": len(test), "metrics": m}
        r.sections.append(_held_out_section(r.metrics, m, test.name, len(test)))

    def score(self, ev: Evaluation) -> None:
        """Per-finding, macro and micro figures with patient-bootstrap CIs, and per fold."""
        r = ev.result
        r.metrics = compute_multilabel_metrics(
            r.y_true,
            r.y_score,
            names=r.classes,
            groups=r.groups,
            threshold=self.threshold,
            n_bootstraps=self.n_bootstraps,
            random_state=self.random_state,
        )
        if r.folds is None:
            return
        rows = []
        for info in r.per_fold:
            sel = r.folds == info["fold"]
            m = compute_multilabel_metrics(
                r.y_true[sel], r.y_score[sel], names=r.classes, n_bootstraps=0
            )
            row = {"fold": info["fold"], "n_images": int(sel.sum())}
            row.update({f: m["findings"][f]["auc"]["value"] for f in r.classes})
            row["macro_auc"] = m["macro_auc"]["value"]
            rows.append({**row, **info})
        r.per_fold = rows

    def explain(self, ev: Evaluation) -> None:
        """Grad-CAM of one finding (``gradcam_finding``) on held-out images of the last fold."""
        from .._finding_gradcam import finding_gradcam_section

        r = ev.result
        if ev.explain_model is None or ev.explain_pool is None:
            return
        truth = np.asarray(r.y_true, dtype=float)  # after the uncertain policy
        names = list(r.classes)
        finding = self.gradcam_finding or names[int(np.argmax(np.nansum(truth == 1, axis=0)))]
        try:
            r.sections.append(
                finding_gradcam_section(
                    ev.explain_model,
                    ev.explain_X,
                    truth,
                    np.asarray(r.y_score),
                    names,
                    finding,
                    ev.explain_pool,
                    threshold=self.threshold,
                )
            )
        except DataError as exc:
            r.warnings.append(f"Grad-CAM skipped: {exc}")

    def clinical(self, ev: Evaluation) -> None:
        """No clinical-validation section: its figures are binary."""

    def checklist(self, ev: Evaluation) -> None:
        """No TRIPOD+AI checklist: it reads the binary figures."""


def _held_out_section(cv: dict[str, Any], test: dict[str, Any], name: str, n: int) -> ReportSection:
    """Per finding: cross-validation AUC beside the held-out test's AUC, sensitivity, specificity."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Finding", "AUC, cross-validation", "AUC, test", "Sens., test", "Spec., test")
    )
    rows = []
    for f, e in test["findings"].items():
        c = cv["findings"].get(f, {})
        cells = [f, with_ci(c.get("auc")), with_ci(e.get("auc")), with_ci(e.get("sensitivity"))]
        cells.append(with_ci(e.get("specificity")))
        rows.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    for key, label in (("macro_auc", "macro AUC"), ("micro_auc", "micro AUC")):
        cells = [label, with_ci(cv.get(key)), with_ci(test.get(key)), "", ""]
        rows.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    body = (
        f"<p>The model refit on all the training images, scored once on {html.escape(name)} "
        f"({n} images) beside the out-of-fold figures; 95 % patient-bootstrap intervals.</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    )
    data = {"test_dataset": name, "n_images": n, "metrics": test}
    return ReportSection("held-out", "Held-out test set", html=body, data=data)
