"""The protocol contract: declared inputs, one ``run`` signature, a shared tail.

Every protocol is a dataclass whose fields are its options. It declares the
datasets it takes in :attr:`Protocol.inputs` and implements one step,
:meth:`Protocol.evaluate`, which fits whatever it fits and returns an
:class:`Evaluation` (predictions plus what the shared steps need). :meth:`run`
then applies the same tail to every protocol, one small overridable step each
(in the style of skorch's ``fit -> fit_loop -> train_step``)::

    run -> check_inputs -> evaluate -> score -> held_out -> clinical -> check_data
        -> probe -> explain -> checklist

A front end (the CLI, a web page) needs nothing else: it reads ``inputs`` and
the dataclass fields (:func:`cxrkit.evaluation.protocols.protocol_options`),
builds the protocol with :func:`create_protocol` and calls :meth:`run`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ...datasets import CXRDataset
from ...errors import ConfigurationError, DataError
from ..metrics import compute_metrics
from ..results import RunResult
from ._clinical import ClinicalSteps
from ._common import gradcam_examples, progress_bar
from ._held_out import HeldOutSteps

__all__ = ["InputSlot", "Evaluation", "Protocol", "captured_warnings"]


@dataclass(frozen=True)
class InputSlot:
    """One dataset a protocol takes.

    Parameters
    ----------
    name : {"data", "test", "controls"}
        The keyword of :meth:`Protocol.run` (``data`` is positional).
    help : str
        What the dataset is for, shown by ``cxrkit run --help``.
    required : bool, default=True
    """

    name: str
    help: str
    required: bool = True


#: The keywords of :meth:`Protocol.run`, in order, with their command-line flags.
SLOT_FLAGS = {"data": "--data", "test": "--test-data", "controls": "--controls"}


@dataclass
class Evaluation:
    """What :meth:`Protocol.evaluate` hands to the shared steps.

    Attributes
    ----------
    result : RunResult
        Predictions filled in (``y_true``, ``y_score``, ``groups`` ...).
    data : CXRDataset
        The data the model was trained on (the data guards and probes use it).
    test : CXRDataset or None
        A separate test set, checked against ``data`` for shared patients and
        near-duplicates.
    prevalence : float, tuple of float or None
        Prevalence(s) at which PPV and NPV are also reported (the first is used
        by the main metrics table, all of them by the clinical section).
    probe_estimator : CXRClassifier or None
        The single network the validity probes retrain (``None``: no probes).
    probe_data : CXRDataset or None
        Data of the probes; ``None`` uses ``data``.
    explain_model, explain_X, explain_pool
        Model, images and candidate indices for the Grad-CAM examples.
    y_score_uncalibrated : ndarray or None
        Scores before recalibration (only when the protocol recalibrated).
    thresholds : ndarray or None
        The operating-point threshold applied to each prediction (each fold's
        own, fitted on its training data); ``None``: the 0.5 default.
    conformal_folds : list of dict
        Per fold: ``cal_proba``, ``cal_y`` (inner-validation probabilities and
        class indices), ``test_proba``, ``test_index``.
    metadata : pandas.DataFrame or None
        Per-prediction metadata (subgroups); ``None``: ``data.metadata`` when it
        has one row per prediction.
    held_out_model : estimator or None
        The model refit on all of ``data``, scored on ``test`` by the
        ``held_out`` step (set by cross-validating protocols given a test set;
        ``None`` when the evaluation itself is on the test set).
    """

    result: RunResult
    data: CXRDataset
    test: CXRDataset | None = None
    prevalence: float | tuple[float, ...] | None = None
    probe_estimator: Any = None
    probe_data: CXRDataset | None = None
    explain_model: Any = None
    explain_X: Any = None
    explain_pool: np.ndarray | None = None
    y_score_uncalibrated: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    conformal_folds: list[dict[str, Any]] = field(default_factory=list)
    metadata: Any = None
    held_out_model: Any = None


@contextmanager
def captured_warnings(into: list[str]) -> Iterator[None]:
    """Collect the ``UserWarning`` messages raised inside into ``into`` (deduplicated, with a count) and re-issue them afterwards, so that Python callers still see them and reports list them in plain words."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield
    counts: dict[str, int] = {}
    for w in caught:
        if issubclass(w.category, UserWarning):
            counts[str(w.message)] = counts.get(str(w.message), 0) + 1
    for msg, n in counts.items():
        text = msg if n == 1 else f"{msg} ({n} times)"
        if text not in into:
            into.append(text)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@dataclass
class Protocol(ClinicalSteps, HeldOutSteps):
    """Shared settings and the run template of every protocol.

    ``n_jobs`` is the number of folds (or models) trained at the same time,
    through :class:`joblib.Parallel`: ``None`` means one at a time unless a
    :func:`joblib.parallel_config` (or :func:`cxrkit.parallel.parallel_backend`)
    says otherwise, e.g. ``backend="dask"`` to use a Dask cluster; ``-1`` means
    one per CPU core. Results do not depend on it (each fit is seeded by
    ``random_state``), provided every process uses the same number of torch
    threads.

    Clinical-validation options (every protocol reports calibration, the 0.5
    operating point, a decision curve and the ``subgroups`` table; the fitted
    ones need a protocol with :attr:`supports_clinical_fit`): ``calibration``
    (``"sigmoid"``, ``"isotonic"``, ``"temperature"``) and ``operating_point``
    (``"youden"``, ``"f1"``, ``"sensitivity:0.95"``, ``"specificity:0.9"`` or a
    number) are fitted by :class:`~cxrkit.evaluation.clinical.ClinicalClassifier`
    on a patient-grouped inner split (``inner_split`` of the patients) of each
    training fold; ``conformal_alpha`` adds split-conformal LAC and APS sets
    calibrated on that same inner split; ``prevalence`` may list several
    prevalences; ``subgroups`` names metadata columns (``age_band`` is derived
    from ``age``, with ``<18`` as the paediatric band). Left at their defaults,
    the figures of the main table are unchanged.

    Subclasses set :attr:`inputs` and implement :meth:`evaluate`.
    """

    #: The datasets :meth:`run` takes (class attribute, not an option).
    inputs: ClassVar[tuple[InputSlot, ...]] = (InputSlot("data", "the dataset to evaluate on"),)
    #: Whether :meth:`evaluate` wraps its estimator in a ClinicalClassifier per training fold.
    supports_clinical_fit: ClassVar[bool] = False

    pretrained: str | None = None
    labels: tuple[str, ...] | None = None
    positive_label: str | None = None
    input_size: int | None = None
    device: str = "auto"
    random_state: int = 0
    n_bootstraps: int = 1000
    prevalence: float | tuple[float, ...] | None = None
    calibration: str | None = None
    operating_point: str | None = None
    inner_split: float = 0.25
    subgroups: tuple[str, ...] = ()
    conformal_alpha: float | None = None
    validity_checks: bool = True
    probes: bool = True
    probe_epochs: int = 30
    probe_splits: int = 5
    lung_guards: bool = True
    lung_segmenter: str | None = None
    estimator_params: dict[str, Any] = field(default_factory=dict)
    n_jobs: int | None = None
    name: str = "protocol"

    def config(self) -> dict[str, Any]:
        """Return the options of this run, JSON-serialisable."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    # -- the template ---------------------------------------------------------------
    def run(
        self,
        data: CXRDataset,
        *,
        test: CXRDataset | None = None,
        controls: CXRDataset | None = None,
        progress: bool = True,
    ) -> RunResult:
        """Evaluate on the declared datasets and return everything a report needs.

        Parameters
        ----------
        data : CXRDataset
            The main dataset (training data, or the evaluation data).
        test, controls : CXRDataset, optional
            Further datasets, where :attr:`inputs` declares them.
        progress : bool, default=True
            Progress bars (tqdm) for folds, epochs and probes.

        Returns
        -------
        RunResult
        """
        given = self.check_inputs({"data": data, "test": test, "controls": controls})
        captured: list[str] = []
        with captured_warnings(captured):
            ev = self.evaluate(given, progress=progress)
            self.score(ev)
            self.held_out(ev)
            self.clinical(ev)
            self.check_data(ev)
            self.probe(ev, progress=progress)
            self.explain(ev)
            self.checklist(ev)
        ev.result.warnings.extend(m for m in captured if m not in ev.result.warnings)
        return ev.result

    def check_inputs(self, given: dict[str, Any]) -> dict[str, CXRDataset]:
        """Keep the declared datasets; refuse missing required ones and undeclared ones."""
        declared = {slot.name: slot for slot in self.inputs}
        extra = [k for k, v in given.items() if v is not None and k not in declared]
        if extra:
            raise ConfigurationError(
                f"Protocol {self.name!r} takes no {', '.join(SLOT_FLAGS.get(k, k) for k in extra)}"
                f" dataset; it takes: {', '.join(SLOT_FLAGS[s] for s in declared)}."
            )
        missing = [s for s in self.inputs if s.required and given.get(s.name) is None]
        if missing:
            raise ConfigurationError(
                f"Protocol {self.name!r} needs "
                + "; ".join(f"{SLOT_FLAGS[s.name]} NAME:ROOT ({s.help})" for s in missing)
                + "."
            )
        self.check_clinical_options()
        out = {}
        for k, v in given.items():
            if v is None:
                continue
            if not isinstance(v, CXRDataset):
                raise ConfigurationError(
                    f"Protocol {self.name!r}: {k!r} must be a CXRDataset (from "
                    f"cxrkit.load_dataset); got {type(v).__name__}."
                )
            out[k] = v
        return out

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        """Fit and predict; the one step each protocol implements."""
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate()")

    def score(self, ev: Evaluation) -> None:
        """Pooled metrics with patient-bootstrap confidence intervals."""
        r = ev.result
        prev = ev.prevalence
        if isinstance(prev, (tuple, list)):
            prev = float(prev[0]) if prev else None
        r.metrics = compute_metrics(
            r.y_true,
            r.y_score,
            positive_label=r.positive_label,
            groups=r.groups,
            prevalence=prev,
            n_bootstraps=self.n_bootstraps,
            random_state=self.random_state,
        )

    def check_data(self, ev: Evaluation) -> None:
        """Return the data guards (patients, duplicates, confounding), on the training data and, with a test set, between the two."""
        if not self.validity_checks:
            return
        from ...validity import run_data_checks

        try:
            ev.result.validity.extend(r.to_dict() for r in run_data_checks(ev.data, test=ev.test))
        except Exception as exc:  # a guard must never hide the run's results
            ev.result.warnings.append(f"Data checks could not run: {type(exc).__name__}: {exc}")

    def probe(self, ev: Evaluation, *, progress: bool = True) -> None:
        """Source and shortcut probes (DeGrave et al. 2021; Maguolo & Nanni 2020).

        The protocol's single network (``ev.probe_estimator``, a CXRClassifier;
        not the ensemble) is trained for ``probe_epochs`` epochs in
        ``probe_splits`` patient-grouped folds, once to predict the image source
        (when the metadata names more than one) and once on images whose centre
        is blacked out. With ``n_jobs`` their folds run side by side.
        """
        if not (self.validity_checks and self.probes) or ev.probe_estimator is None:
            return
        from ...validity import shortcut_probe, source_probe
        from ...validity.lungs import lung_guard_jobs

        result, ds = ev.result, ev.probe_data if ev.probe_data is not None else ev.data
        probe = clone(ev.probe_estimator)
        kept = [
            c for c in (probe.callbacks or []) if not (isinstance(c, tuple) and c[0] == "progress")
        ]
        cap = getattr(self, "max_epochs", None) or probe.max_epochs or self.probe_epochs
        probe.set_params(max_epochs=max(1, min(self.probe_epochs, cap)), callbacks=kept or None)
        X, y, groups = ds.X, np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
        n_splits = int(
            min(self.probe_splits, *np.unique(y, return_counts=True)[1], len(np.unique(groups)))
        )
        if n_splits < 2:
            result.warnings.append("Probes skipped: fewer than 2 images (or patients) per class.")
            return
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        md = ds.metadata
        sources = md["source"].to_numpy() if "source" in md.columns else None
        jobs = []
        if sources is not None and len(set(map(str, sources))) > 1:
            jobs.append(
                (
                    "source_probe",
                    lambda: source_probe(
                        probe, X, sources, groups, cv, max_sources=1, n_jobs=self.n_jobs
                    ),
                )
            )
        full = (result.metrics or {}).get("auc", {}).get("value")
        jobs.append(
            (
                "shortcut_probe",
                lambda: shortcut_probe(
                    probe, X, y, groups, cv, reference_auc=full, n_jobs=self.n_jobs
                ),
            )
        )
        jobs += lung_guard_jobs(self, ev, probe, X, y, groups, cv, full)
        for name, job in progress_bar(jobs, progress, desc="validity probes", unit="probe"):
            try:
                guard = job().to_dict()
            except Exception as exc:  # a probe must never hide the run's results
                result.warnings.append(f"{name} could not run: {type(exc).__name__}: {exc}")
                continue
            guard.setdefault("numbers", {}).update(
                {"probe_epochs": probe.max_epochs, "probe_splits": n_splits}
            )
            result.validity.append(guard)

    def explain(self, ev: Evaluation) -> None:
        """Grad-CAM maps for a few true/false positives/negatives."""
        if ev.explain_model is None:
            return
        r = ev.result
        pool = ev.explain_pool if ev.explain_pool is not None else np.arange(len(r.y_true))
        try:
            r.gradcam = gradcam_examples(
                ev.explain_model,
                ev.explain_X,
                np.asarray(r.y_true),
                np.asarray(r.y_score),
                r.positive_label,
                pool,
            )
        except DataError as exc:
            r.warnings.append(f"Grad-CAM examples skipped: {exc}")

    # -- shared building blocks -------------------------------------------------------
    def estimator_options(self) -> dict[str, Any]:
        """CXRClassifier parameters common to every network of this protocol."""
        return {
            "random_state": self.random_state,
            "device": self.device,
            **({"input_size": self.input_size} if self.input_size else {}),
            **({"pretrained": self.pretrained} if self.pretrained else {}),
            **self.estimator_params,
        }

    def splitter(self, n_splits: int, grouped: bool = True) -> Any:
        """Return a shuffled, stratified splitter, patient-grouped unless ``grouped=False``."""
        cls = StratifiedGroupKFold if grouped else StratifiedKFold
        return cls(n_splits=n_splits, shuffle=True, random_state=self.random_state)
