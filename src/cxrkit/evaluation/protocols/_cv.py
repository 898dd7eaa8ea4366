"""Hall et al. (2020): k-fold cross-validation of a snapshot ensemble."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone

from ...datasets import CXRDataset
from ...errors import ConfigurationError
from ...estimators import CXRClassifier, SnapshotEnsembleClassifier
from .._multioutput import compute_multiclass_metrics
from ..metrics import compute_metrics, per_fold_metrics
from ..results import RunResult, model_efficiency
from ._base import Evaluation, InputSlot, Protocol
from ._common import (
    HALL2020_LABELS,
    ClinicalFolds,
    balanced_subset,
    concurrent_fits,
    folds_in_this_process,
    label_counts,
    run_folds,
    two_labels,
    with_epoch_progress,
)
from ._held_out import held_out_labels
from ._multiclass import multiclass_per_fold, run_multiclass_folds

__all__ = ["Hall2020CV", "snapshot_rule_summary"]


def snapshot_rule_summary(
    rules: list[str], n_snapshots: int, interval: int, monitor: str, threshold: float
) -> str | None:
    """Return a plain sentence when some fits fell back from the threshold rule, else ``None``."""
    fell = sum(r != "threshold" for r in rules)
    if not fell:
        return None
    return (
        f"Snapshot rule: {monitor} > {threshold} was met in {len(rules) - fell} of "
        f"{len(rules)} fits; the other {fell} kept the last {n_snapshots} epochs "
        f"{interval} apart instead (if_threshold_not_reached='last')."
    )


@dataclass
class Hall2020CV(Protocol):
    """Hall et al. (2020) k-fold cross-validation of a snapshot ensemble.

    Snapshot rule: from the epoch in which training accuracy first exceeds 0.9,
    keep 7 epochs 10 apart and average them; ``max_epochs`` is the epoch by
    which the threshold must be met, and training continues long enough for
    the 7 members. A fit whose threshold is never met keeps its last 7 epochs
    10 apart (``if_threshold_not_reached="last"``), and the report says in how
    many folds that happened. Class-balanced subset of ``n_per_class`` images
    per class (``"balanced"``: as many as the rarest label has, as the paper's
    102 + 102; ``None`` uses all images). Folds are patient-grouped
    (``StratifiedGroupKFold``) unless ``grouped=False``, which reproduces the
    paper's ungrouped split and is flagged in the report. With ``refit=True``
    (set by ``cxrkit run --save``) a final model is trained on all the
    (balanced) data after the folds, as scikit-learn's ``refit``, and kept as
    ``fitted_``; otherwise ``fitted_`` is the last fold's model. With a
    ``test`` dataset (``--test-data``) a model refit on all the data is scored
    on it, beside the cross-validation figures: the ensemble (then also kept as
    ``fitted_``), or with ``calibration``/``operating_point`` the
    ClinicalClassifier around it. On a dataset
    with more than two labels and no ``labels`` given, COVID-19 is compared
    with pneumonia, as in the paper. With three or more ``labels`` (e.g.
    ``--labels covid,pneumonia,normal``) the run is multi-class: the ensemble
    predicts every label, and the report has one-vs-rest AUC per class, macro
    AUC and accuracy with patient-bootstrap CIs and the ``k x k`` confusion
    matrix (:func:`~cxrkit.evaluation.compute_multiclass_metrics`); the
    clinical-validation section, the probes, Grad-CAM and the last-epoch
    comparison are binary-only and left out.
    """

    inputs: ClassVar[tuple[InputSlot, ...]] = (
        InputSlot("data", "the images, labels and patient ids to cross-validate"),
        InputSlot(
            "test",
            "a held-out test set, scored once by the model refit on all of --data",
            required=False,
        ),
    )
    supports_clinical_fit: ClassVar[bool] = True

    architecture: str = "hall2020_cnn"
    n_splits: int = 10
    grouped: bool = True
    n_per_class: int | str | None = "balanced"
    n_snapshots: int = 7
    interval: int = 10
    threshold: float = 0.9
    max_epochs: int = 150
    if_threshold_not_reached: str = "last"
    compare_last_epoch: bool = True
    refit: bool = False
    name: str = "hall2020-cv"

    def build(self) -> tuple[SnapshotEnsembleClassifier, Any]:
        """Return the scikit-learn estimator and CV splitter this protocol uses."""
        base = CXRClassifier.from_recipe(
            "hall2020", architecture=self.architecture, **self.estimator_options()
        )
        est = SnapshotEnsembleClassifier(
            base,
            n_snapshots=self.n_snapshots,
            interval=self.interval,
            policy="threshold",
            monitor="train_acc",
            threshold=self.threshold,
            max_epochs=self.max_epochs,
            if_threshold_not_reached=self.if_threshold_not_reached,
        )
        return est, self.splitter(self.n_splits, self.grouped)

    def _subset(
        self, dataset: CXRDataset, result_warnings: list[str]
    ) -> tuple[CXRDataset, str, str]:
        ds, pos, neg = two_labels(dataset, self.labels, self.positive_label, HALL2020_LABELS)
        return self._balance(ds, result_warnings), pos, neg

    def _balance(self, ds: CXRDataset, result_warnings: list[str]) -> CXRDataset:
        """Draw the class-balanced subset and note it (and ungrouped folds) in the warnings."""
        full_counts = label_counts(ds)
        ds = balanced_subset(ds, self.n_per_class, self.random_state)
        used = label_counts(ds)
        if used != full_counts:
            result_warnings.append(
                f"Class-balanced subset (n_per_class={self.n_per_class!r}, as in the paper; seed "
                f"{self.random_state}): used "
                + ", ".join(f"{used[k]} of {full_counts[k]} {k!r}" for k in sorted(full_counts))
                + " images. Pass n_per_class=None (--set n_per_class=none) to use every image."
            )
        if not self.grouped:
            result_warnings.append(
                "Folds were NOT grouped by patient (grouped=False, as in the paper): images of "
                "one patient can be in training and test folds, which inflates every figure."
            )
        return ds

    def is_multiclass(self) -> bool:
        """Whether ``labels`` names three or more labels (a multi-class run)."""
        return bool(self.labels) and len(self.labels or ()) > 2

    def check_clinical_options(self) -> None:
        """Refuse the clinical options, and ``positive_label``, in a multi-class run."""
        super().check_clinical_options()
        if not self.is_multiclass():
            return
        asked = [
            k
            for k in ("calibration", "operating_point", "conformal_alpha", "positive_label")
            if getattr(self, k) is not None
        ] + (["subgroups"] if self.subgroups else [])
        if asked:
            raise ConfigurationError(
                f"labels={list(self.labels or ())} makes {self.name!r} multi-class; {asked} "
                "apply to binary runs only. Leave them unset, or pass two labels."
            )

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        if self.is_multiclass():
            if inputs.get("test") is not None:
                raise ConfigurationError(
                    f"--test-data is scored for two-label runs of {self.name!r}; "
                    f"labels={list(self.labels or ())} make this run multi-class. Pass two "
                    "labels, or leave --test-data out."
                )
            return self._evaluate_multiclass(inputs["data"], progress)
        notes: list[str] = []
        ds, pos, neg = self._subset(inputs["data"], notes)
        est, cv = self.build()
        with_epoch_progress(est, progress and folds_in_this_process(self.n_jobs))
        X, y, groups = ds.X, np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
        images = [str(v) for v in (X if X.dtype == object else range(len(y)))]
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=pos,
            classes=[neg, pos],
            images=images,
            y_true=y,
            y_score=np.full(len(y), np.nan),
            groups=groups,
        )
        result.warnings.extend(notes)
        from ...validity import splitter_leakage

        result.validity.append(splitter_leakage(cv, X, y, groups).to_dict())
        splits = list(cv.split(X, y, groups))
        fit_est = self.clinical_estimator(est) if self.wants_clinical_fit() else est
        clin = ClinicalFolds(len(y))
        fitted = self._binary_folds(fit_est, X, y, groups, splits, pos, result, clin, progress)
        result.data_summary = ds.summary()
        test = inputs.get("test")
        test = held_out_labels(test, [neg, pos]) if test is not None else None
        # With recalibration or a threshold the test set is scored by a ClinicalClassifier
        # refit on all the data; else by the plain refit, which --save keeps as well.
        clinical_test = test is not None and self.wants_clinical_fit()
        refit_plain = self.refit or (test is not None and not clinical_test)
        self.fitted_ = self._refit(est, X, y, groups, result, progress) if refit_plain else fitted
        held_out_model = None
        if test is not None:
            held_out_model = (
                self._refit(fit_est, X, y, groups, None, progress)
                if clinical_test
                else self.fitted_
            )
        return Evaluation(
            result=result,
            data=ds,
            prevalence=self.prevalence,
            **clin.evaluation_fields(
                self.calibration is not None, self.operating_point is not None
            ),
            probe_estimator=est.estimator,
            explain_model=fitted,
            explain_X=X,
            explain_pool=splits[-1][1] if splits else None,
            test=test,
            held_out_model=held_out_model,
        )

    def _binary_folds(
        self,
        fit_est: Any,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray,
        splits: list[Any],
        pos: str,
        result: RunResult,
        clin: ClinicalFolds,
        progress: bool,
    ) -> Any:
        """Fit and score every fold into ``result`` and ``clin``; return the last fold's model."""
        last_scores = np.full(len(y), np.nan)
        folds = np.full(len(y), -1)
        fold_info, seconds, n_pred, fitted, device, threads = [], 0.0, 0, None, None, set()
        for r in run_folds(
            fit_est, X, y, groups, splits, pos, self.compare_last_epoch, self.n_jobs, progress
        ):
            te = splits[r["fold"]][1]
            clin.add(r["clinical"], te)
            result.y_score[te], folds[te] = r["scores"], r["fold"]
            seconds += r["seconds"]
            n_pred += len(te)
            if self.compare_last_epoch:
                last_scores[te] = r["last_scores"]
            fold_info.append(r["info"])
            fitted = r["model"] if r["model"] is not None else fitted
            device = r["device"]
            threads.add(r["threads"])
        result.folds = folds
        result.per_fold = [dict(info) for info in fold_info]
        result.extra["last_scores"] = last_scores if self.compare_last_epoch else None
        rules = [info["snapshot_rule"] for info in fold_info]
        result.extra["snapshot_rule"] = {
            "folds_meeting_rule": sum(r == "threshold" for r in rules),
            "folds": len(rules),
        }
        note = snapshot_rule_summary(
            rules, self.n_snapshots, self.interval, "train_acc", self.threshold
        )
        if note:
            result.warnings.append(note)
        result.efficiency = model_efficiency(
            n_pred,
            max(seconds, 1e-9),
            device=device,
            threads=max(threads) if threads else None,
            processes=concurrent_fits(self.n_jobs, len(splits)),
        )
        return fitted

    def _evaluate_multiclass(self, dataset: CXRDataset, progress: bool) -> Evaluation:
        """Cross-validate on three or more labels, keeping every probability column."""
        from ...validity import splitter_leakage

        notes: list[str] = []
        ds = self._balance(dataset.select(list(self.labels or ())), notes)
        est, cv = self.build()
        with_epoch_progress(est, progress and folds_in_this_process(self.n_jobs))
        X, y, groups = ds.X, np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
        classes = sorted(set(y.tolist()))
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=", ".join(classes),
            classes=classes,
            images=[str(v) for v in (X if X.dtype == object else range(len(y)))],
            y_true=y,
            y_score=np.full((len(y), len(classes)), np.nan),
            groups=groups,
        )
        result.warnings.extend(notes)
        result.validity.append(splitter_leakage(cv, X, y, groups).to_dict())
        splits = list(cv.split(X, y, groups))
        folds = np.full(len(y), -1)
        seconds, info, fitted, device, threads = 0.0, [], None, None, set()
        for r in run_multiclass_folds(est, X, y, groups, splits, classes, self.n_jobs, progress):
            te = splits[r["fold"]][1]
            result.y_score[te], folds[te] = r["proba"], r["fold"]
            seconds += r["seconds"]
            info.append(r["info"])
            fitted = r["model"] if r["model"] is not None else fitted
            device = r["device"]
            threads.add(r["threads"])
        result.folds, result.per_fold = folds, info
        note = snapshot_rule_summary(
            [i["snapshot_rule"] for i in info],
            self.n_snapshots,
            self.interval,
            "train_acc",
            self.threshold,
        )
        if note:
            result.warnings.append(note)
        result.efficiency = model_efficiency(
            len(y),
            max(seconds, 1e-9),
            device=device,
            threads=max(threads) if threads else None,
            processes=concurrent_fits(self.n_jobs, len(splits)),
        )
        result.data_summary = ds.summary()
        self.fitted_ = self._refit(est, X, y, groups, result, progress) if self.refit else fitted
        return Evaluation(result=result, data=ds)

    def clinical(self, ev: Evaluation) -> None:
        """Add the clinical-validation section (binary runs only)."""
        if ev.result.task == "binary":
            super().clinical(ev)

    def checklist(self, ev: Evaluation) -> None:
        """Add the TRIPOD+AI / CLAIM checklist (binary runs only)."""
        if ev.result.task == "binary":
            super().checklist(ev)

    def _refit(
        self,
        est: Any,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray,
        result: RunResult | None,
        progress: bool,
    ) -> Any:
        """Return ``est`` trained on every image the folds used.

        ``est`` is the snapshot ensemble (the final model, described in
        ``result.extra["final_model"]``), or the ClinicalClassifier around it
        scored on a held-out test set (``result=None``).
        """
        final = with_epoch_progress(clone(est), progress)
        final.fit(X, y, groups=groups)
        if result is not None:
            result.extra["final_model"] = {
                "trained_on": int(len(y)),
                "snapshot_epochs": [s["epoch"] for s in final.snapshots_],
                "snapshot_rule": final.policy_used_,
                "note": "The saved model (--save) was refit on all the images above after the "
                "cross-validation; the figures are those of the fold models.",
            }
        return final

    def score(self, ev: Evaluation) -> None:
        r = ev.result
        if r.task == "multiclass":
            r.metrics = compute_multiclass_metrics(
                r.y_true,
                r.y_score,
                classes=r.classes,
                groups=r.groups,
                n_bootstraps=self.n_bootstraps,
                random_state=self.random_state,
            )
            if r.folds is not None:
                rows = multiclass_per_fold(r.y_true, r.y_score, r.folds, r.classes)
                r.per_fold = [{**row, **info} for row, info in zip(rows, r.per_fold)]
            return
        super().score(ev)
        pos = r.positive_label
        per_fold = per_fold_metrics(r.y_true, r.y_score, r.folds, positive_label=pos)
        for row, info in zip(per_fold, r.per_fold):
            row.update(info)
        r.per_fold = per_fold
        last_scores = r.extra.pop("last_scores", None)
        if last_scores is not None:
            r.extra["last_epoch_network"] = compute_metrics(
                r.y_true,
                last_scores,
                positive_label=pos,
                groups=r.groups,
                n_bootstraps=min(self.n_bootstraps, 500),
                random_state=self.random_state,
            )
