"""The papers' evaluation protocols, built from ordinary scikit-learn pieces.

Each protocol is a small, printable object: :meth:`build` returns the
scikit-learn estimator and splitter it uses, and :meth:`run` applies them to a
:class:`cxrkit.datasets.CXRDataset` and returns a :class:`RunResult` for
:func:`cxrkit.evaluation.write_report`. The hand-written equivalent of
``Hall2020CV().run(ds)`` is, in essence::

    est, cv = Hall2020CV().build()
    for tr, te in cv.split(ds.X, ds.y, ds.groups):
        fold = clone(est).fit(ds.X[tr], ds.y[tr], groups=ds.groups[tr])
        scores[te] = fold.predict_proba(ds.X[te])[:, pos]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..errors import ConfigurationError, DataError
from ..estimators import CXRClassifier, SnapshotEnsembleClassifier
from .metrics import compute_metrics, per_fold_metrics
from .results import RunResult, model_efficiency

__all__ = ["Hall2020CV", "Hall2020Unseen", "Opacity2020", "Hall2020Published", "Protocol",
           "list_protocols", "create_protocol"]


def _progress(iterable: Any, enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


#: The two labels the Hall et al. protocols compare when a dataset has more.
HALL2020_LABELS = ("covid", "pneumonia")


def _two_labels(ds: Any, labels: Sequence[str] | None, positive: str | None,
                default: Sequence[str] | None = None) -> tuple[Any, str, str]:
    present = sorted(set(map(str, ds.y)))
    if not labels and default and len(present) > 2 and set(default) <= set(present):
        labels = default  # e.g. covid vs pneumonia on a covid/pneumonia/normal dataset
    if labels:
        ds = ds.select(list(labels))
        present = [str(v) for v in labels]
    if len(present) != 2:
        raise DataError(
            f"The protocol needs exactly two labels; the dataset has {present}. Pass labels=('covid', "
            "'pneumonia') (or --labels covid,pneumonia on the command line)."
        )
    pos = positive or ("covid" if "covid" in present else sorted(present)[0])
    if pos not in present:
        raise DataError(f"positive_label {pos!r} is not one of the labels {present}.")
    neg = [p for p in present if p != pos][0]
    return ds, pos, neg


def _balanced_subset(ds: Any, n_per_class: int | str | None, seed: int) -> Any:
    """``n_per_class`` images of every label, drawn with ``seed``.

    ``"balanced"`` takes as many as the rarest label has; ``None`` keeps all.
    """
    if not n_per_class:
        return ds
    if n_per_class == "balanced":
        counts = [int(np.sum(ds.y == label)) for label in sorted(set(ds.y))]
        if len(set(counts)) == 1:
            return ds
        n_per_class = min(counts)
    elif not isinstance(n_per_class, (int, np.integer)) or isinstance(n_per_class, bool):
        raise ConfigurationError(f"n_per_class must be a positive integer, 'balanced' or None; "
                                 f"got {n_per_class!r}.")
    rng = np.random.default_rng(seed)
    idx: list[int] = []
    for label in sorted(set(ds.y)):
        members = np.flatnonzero(ds.y == label)
        if len(members) < n_per_class:
            raise DataError(f"n_per_class={n_per_class} but label {label!r} has only "
                            f"{len(members)} images.")
        idx.extend(int(i) for i in rng.choice(members, n_per_class, replace=False))
    return ds.subset(np.sort(np.asarray(idx)))


def _label_counts(ds: Any) -> dict[str, int]:
    labels, counts = np.unique(np.asarray(ds.y).astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(labels, counts)}


def _gradcam_examples(est: Any, X: Any, y: np.ndarray, scores: np.ndarray, pos: str,
                      idx_pool: np.ndarray, per_kind: int = 2) -> list[dict[str, Any]]:
    """Grad-CAM maps of the network (the last epoch for an ensemble) for a few
    true/false positives/negatives."""
    from .gradcam import gradcam

    base = est.estimator_ if hasattr(est, "estimator_") else est
    out = []
    pred = scores >= 0.5
    truth = y == pos
    kinds = {"TP": pred & truth, "FP": pred & ~truth, "TN": ~pred & ~truth, "FN": ~pred & truth}
    for kind, mask in kinds.items():
        chosen = [i for i in idx_pool if mask[i]][:per_kind]
        if not chosen:
            continue
        src_X = X[np.asarray(chosen)]
        from ..estimators._data import as_image_source

        batch = next(base.iter_batches(as_image_source(src_X), batch_size=len(chosen)))
        maps = gradcam(base.module_, batch.to(base.device_))
        prep = base.preprocessing_
        for j, i in enumerate(chosen):
            img = batch[j, 0].numpy() * prep.std[0] + prep.mean[0]
            out.append({"id": str(X[i]) if X.dtype == object else f"image {i}", "label": str(y[i]),
                        "score": float(scores[i]), "kind": kind,
                        "image": np.clip(img, 0, 1), "heatmap": maps[j]})
    return out


def _with_epoch_progress(est: Any, enabled: bool) -> Any:
    """Add an epoch progress bar to every CXRClassifier inside ``est``."""
    if not enabled:
        return est
    from ..estimators import EpochProgress

    if hasattr(est, "estimators") and isinstance(est.estimators, list):  # VotingClassifier
        for _, member in est.estimators:
            _with_epoch_progress(member, enabled)
        return est
    inner = getattr(est, "estimator", None)
    if inner is not None and not isinstance(inner, str):
        _with_epoch_progress(inner, enabled)
        return est
    if hasattr(est, "callbacks"):
        kept = [c for c in (est.callbacks or []) if not (isinstance(c, tuple) and c[0] == "progress")]
        est.set_params(callbacks=[*kept, ("progress", EpochProgress(position=1))])
    return est


def _timed_predict(est: Any, X: Any, pos_index: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    p = est.predict_proba(X)[:, pos_index]
    return p, time.perf_counter() - t0


def _fit_cv_fold(est: Any, k: int, X_tr: Any, y_tr: np.ndarray, groups_tr: np.ndarray,
                 X_te: Any, pos: str, compare_last_epoch: bool,
                 keep_model: bool) -> dict[str, Any]:
    """One cross-validation fold: fit a clone, score the test fold.

    A module-level function so that :class:`joblib.Parallel` can ship it to
    worker processes or Dask workers. Only the fold's own images travel (paths
    for file datasets), and the fitted model travels back only when
    ``keep_model`` (the last fold, for ``--save`` and Grad-CAM). The estimator
    is seeded through ``random_state``, so the result does not depend on which
    process runs the fold (at the same number of torch threads).
    """
    fold = clone(est)
    fold.fit(X_tr, y_tr, groups=groups_tr)
    pos_idx = int(np.flatnonzero(fold.classes_ == pos)[0])
    p, dt = _timed_predict(fold, X_te, pos_idx)
    last = fold.estimator_.predict_proba(X_te)[:, pos_idx] if compare_last_epoch else None
    return {"fold": k, "scores": p, "seconds": dt, "last_scores": last,
            "info": {"fold": k, "snapshot_epochs": [s["epoch"] for s in fold.snapshots_],
                     "threshold_epoch": fold.threshold_epoch_,
                     "snapshot_rule": fold.policy_used_,
                     "epochs_trained": len(fold.estimator_.history_)},
            "device": str(fold.estimator_.device_),
            "threads": torch.get_num_threads(),
            "model": _localize(fold) if keep_model else None}


def _localize(est: Any) -> Any:
    """A model trained on a worker's GPU, usable where no GPU is visible: skorch
    maps its tensors to the CPU when unpickled; point the estimator there too."""
    base = est.estimator_ if hasattr(est, "estimator_") else est
    if str(getattr(base, "device_", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        base.device_ = "cpu"
        base.net_.device = "cpu"
    return est


def _folds_in_this_process(n_jobs: int | None) -> bool:
    """Whether :func:`_run_folds` will fit the folds here, one after the other
    (epoch progress bars only make sense then)."""
    from joblib import effective_n_jobs
    from joblib.parallel import get_active_backend

    backend = type(get_active_backend()[0]).__name__
    return "Dask" not in backend and effective_n_jobs(n_jobs) == 1


def _concurrent_fits(n_jobs: int | None, n_tasks: int) -> int:
    """How many of ``n_tasks`` fits :func:`_run_folds` runs side by side."""
    from joblib import effective_n_jobs

    return 1 if _folds_in_this_process(n_jobs) else max(1, min(n_tasks, effective_n_jobs(n_jobs)))


def _run_folds(est: Any, X: Any, y: np.ndarray, groups: np.ndarray, splits: list[Any],
               pos: str, compare_last_epoch: bool, n_jobs: int | None,
               progress: bool) -> list[dict[str, Any]]:
    """Fit every fold through :class:`joblib.Parallel`, in fold order.

    With ``n_jobs=None`` and no active :func:`joblib.parallel_config` the folds
    run one after the other in this process; inside
    ``joblib.parallel_config(backend="dask")`` they run on the Dask workers.
    """
    from joblib import Parallel, delayed

    last = len(splits) - 1
    tasks = (delayed(_fit_cv_fold)(est, k, X[tr], y[tr], groups[tr], X[te], pos,
                                   compare_last_epoch, k == last)
             for k, (tr, te) in enumerate(splits))
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    out = []
    for r in _progress(results, progress, desc="folds", unit="fold", total=len(splits)):
        out.append(r)
    return out


@dataclass
class Protocol:
    """Shared settings of every protocol.

    ``n_jobs`` is the number of folds (or models) trained at the same time,
    through :class:`joblib.Parallel`: ``None`` means one at a time unless a
    :func:`joblib.parallel_config` (or :func:`cxrkit.parallel.parallel_backend`)
    says otherwise, e.g. ``backend="dask"`` to use a Dask cluster; ``-1`` means
    one per CPU core. Results do not depend on it (each fit is seeded by
    ``random_state``), provided every process uses the same number of torch
    threads.
    """

    architecture: str = "hall2020_cnn"
    pretrained: str | None = None
    labels: tuple[str, ...] | None = None
    positive_label: str | None = None
    input_size: int | None = None
    device: str = "auto"
    random_state: int = 0
    n_bootstraps: int = 1000
    prevalence: float | None = None
    validity_checks: bool = True
    probes: bool = True
    probe_epochs: int = 30
    probe_splits: int = 5
    estimator_params: dict[str, Any] = field(default_factory=dict)
    n_jobs: int | None = None
    name: str = "protocol"

    def config(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def _data_checks(self, ds: Any, result: RunResult) -> None:
        if not self.validity_checks:
            return
        from ..validity import run_data_checks

        try:
            result.validity.extend(r.to_dict() for r in run_data_checks(ds))
        except Exception as exc:  # a guard must never hide the run's results
            result.warnings.append(f"Data checks could not run: {type(exc).__name__}: {exc}")

    def _probes(self, estimator: Any, ds: Any, result: RunResult, progress: bool = True) -> None:
        """Source and shortcut probes (DeGrave et al. 2021; Maguolo & Nanni 2020).

        The protocol's single network (``estimator``, a CXRClassifier; not the
        ensemble) is trained for ``probe_epochs`` epochs in ``probe_splits``
        patient-grouped folds, once to predict the image source (when the
        metadata names more than one) and once on images whose centre is
        blacked out. Both go into the report's Validity section. With ``n_jobs``
        their folds run side by side, as the protocol's own do.
        """
        if not (self.validity_checks and self.probes):
            return
        from ..validity import shortcut_probe, source_probe

        probe = clone(estimator)
        kept = [c for c in (probe.callbacks or []) if not (isinstance(c, tuple)
                                                            and c[0] == "progress")]
        cap = getattr(self, "max_epochs", None) or probe.max_epochs or self.probe_epochs
        probe.set_params(max_epochs=max(1, min(self.probe_epochs, cap)), callbacks=kept or None)
        X, y = ds.X, np.asarray(ds.y).astype(str)
        groups = np.asarray(ds.groups).astype(str) if ds.groups is not None else None
        n_splits = int(min(self.probe_splits, *np.unique(y, return_counts=True)[1]))
        if groups is not None:
            n_splits = min(n_splits, len(np.unique(groups)))
        if n_splits < 2:
            result.warnings.append("Probes skipped: fewer than 2 images per class.")
            return
        cv_cls = StratifiedGroupKFold if groups is not None else StratifiedKFold
        cv = cv_cls(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        md = getattr(ds, "metadata", None)
        sources = (md["source"].to_numpy() if md is not None and "source" in md.columns
                   else None)
        jobs = [("source_probe", lambda: source_probe(probe, X, sources, groups, cv,
                                                      max_sources=1, n_jobs=self.n_jobs))] \
            if sources is not None else []
        full = (result.metrics or {}).get("auc", {}).get("value")
        jobs.append(("shortcut_probe", lambda: shortcut_probe(probe, X, y, groups, cv,
                                                              reference_auc=full,
                                                              n_jobs=self.n_jobs)))
        for name, job in _progress(jobs, progress, desc="validity probes", unit="probe"):
            try:
                guard = job().to_dict()
            except Exception as exc:  # a probe must never hide the run's results
                result.warnings.append(f"{name} could not run: {type(exc).__name__}: {exc}")
                continue
            guard.setdefault("numbers", {}).update(
                {"probe_epochs": probe.max_epochs, "probe_splits": n_splits})
            result.validity.append(guard)


@dataclass
class Hall2020CV(Protocol):
    """Hall et al. (2020) 10-fold cross-validation of a snapshot ensemble.

    Snapshot rule: once training accuracy exceeds 0.9, keep 7 epochs 10 apart
    and average them. Class-balanced subset of ``n_per_class`` images per class
    (the paper: 102 + 102; ``None`` uses all images). Folds are
    patient-grouped (``StratifiedGroupKFold``) unless ``grouped=False``, which
    reproduces the paper's ungrouped split and is flagged in the report.

    ``n_per_class="balanced"`` (the default) draws as many images of each label
    as the rarest label has, as the paper did; an integer draws that many;
    ``None`` uses every image. On a dataset with more than two labels and no
    ``labels`` given, COVID-19 is compared with pneumonia, as in the paper.
    """

    n_splits: int = 10
    grouped: bool = True
    n_per_class: int | str | None = "balanced"
    n_snapshots: int = 7
    interval: int = 10
    threshold: float = 0.9
    max_epochs: int = 150
    if_threshold_not_reached: str = "raise"
    compare_last_epoch: bool = True
    name: str = "hall2020-cv"

    def build(self) -> tuple[SnapshotEnsembleClassifier, Any]:
        """The scikit-learn estimator and CV splitter this protocol uses."""
        params = {"random_state": self.random_state, "device": self.device,
                  **({"input_size": self.input_size} if self.input_size else {}),
                  **({"pretrained": self.pretrained} if self.pretrained else {}),
                  **self.estimator_params}
        base = CXRClassifier.from_recipe("hall2020", architecture=self.architecture, **params)
        est = SnapshotEnsembleClassifier(
            base, n_snapshots=self.n_snapshots, interval=self.interval, policy="threshold",
            monitor="train_acc", threshold=self.threshold, max_epochs=self.max_epochs,
            if_threshold_not_reached=self.if_threshold_not_reached)
        cv_cls = StratifiedGroupKFold if self.grouped else StratifiedKFold
        return est, cv_cls(n_splits=self.n_splits, shuffle=True, random_state=self.random_state)

    def run(self, dataset: Any, *, progress: bool = True) -> RunResult:
        ds, pos, neg = _two_labels(dataset, self.labels, self.positive_label, HALL2020_LABELS)
        full_counts = _label_counts(ds)
        ds = _balanced_subset(ds, self.n_per_class, self.random_state)
        est, cv = self.build()
        _with_epoch_progress(est, progress and _folds_in_this_process(self.n_jobs))
        X, y, groups = ds.X, np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
        scores = np.full(len(y), np.nan)
        last_scores = np.full(len(y), np.nan)
        folds = np.full(len(y), -1)
        fold_info, seconds, n_pred = [], 0.0, 0
        images = [str(v) for v in (X if X.dtype == object else range(len(y)))]
        result = RunResult(protocol=self.name, config=self.config(), positive_label=pos,
                           classes=[neg, pos], images=images, y_true=y, y_score=scores)
        if _label_counts(ds) != full_counts:
            used = _label_counts(ds)
            result.warnings.append(
                f"Class-balanced subset (n_per_class={self.n_per_class!r}, as in the paper; seed "
                f"{self.random_state}): used " + ", ".join(
                    f"{used[k]} of {full_counts[k]} {k!r}" for k in sorted(full_counts))
                + " images. Pass n_per_class=None to use every image.")
        if not self.grouped:
            result.warnings.append(
                "Folds were NOT grouped by patient (grouped=False, as in the paper): images of "
                "one patient can be in training and test folds, which inflates every figure.")
        from ..validity import splitter_leakage

        leak = splitter_leakage(cv, X, y, groups)
        result.validity.append(leak.to_dict())
        splits = list(cv.split(X, y, groups))
        fitted, device, threads = None, None, set()
        for r in _run_folds(est, X, y, groups, splits, pos, self.compare_last_epoch,
                            self.n_jobs, progress):
            te = splits[r["fold"]][1]
            scores[te], folds[te] = r["scores"], r["fold"]
            seconds += r["seconds"]
            n_pred += len(te)
            if self.compare_last_epoch:
                last_scores[te] = r["last_scores"]
            fold_info.append(r["info"])
            if r["model"] is not None:
                fitted = r["model"]
            device = r["device"]
            threads.add(r["threads"])
        result.y_score = scores
        result.folds = folds
        result.groups = groups
        result.metrics = compute_metrics(y, scores, positive_label=pos, groups=groups,
                                         prevalence=self.prevalence,
                                         n_bootstraps=self.n_bootstraps,
                                         random_state=self.random_state)
        result.per_fold = per_fold_metrics(y, scores, folds, positive_label=pos)
        for row, info in zip(result.per_fold, fold_info):
            row.update(info)
        if self.compare_last_epoch:
            last = compute_metrics(y, last_scores, positive_label=pos, groups=groups,
                                   n_bootstraps=min(self.n_bootstraps, 500),
                                   random_state=self.random_state)
            result.extra["last_epoch_network"] = last
        result.efficiency = model_efficiency(n_pred, max(seconds, 1e-9), device=device,
                                             threads=max(threads) if threads else None,
                                             processes=_concurrent_fits(self.n_jobs, len(splits)))
        result.data_summary = ds.summary()
        self._data_checks(ds, result)
        self._probes(est.estimator, ds, result, progress)
        self.fitted_ = fitted  # the last fold's model (for --save)
        if fitted is not None:
            te = splits[-1][1]
            result.gradcam = _gradcam_examples(fitted, X, y, scores, pos, te)
        return result


@dataclass
class Hall2020Unseen(Protocol):
    """Hall et al. (2020) unseen-test experiment: the 21-model ensemble.

    Train ResNet50, VGG16 and the small CNN on all training data (snapshot rule:
    validation accuracy > 0.8 on 18 held-out training images per class, 7
    snapshots 10 epochs apart) and average the 21 members on an unseen test set
    whose control images (``recompress_label``, default the negative class) are
    re-encoded as JPEG quality 90 in training and test, so that compression
    cannot reveal the class. The test set is a separate dataset or, with
    ``test_size``, a patient-grouped split.
    """

    architectures: tuple[str, ...] = ("resnet50", "vgg16", "hall2020_cnn")
    test_size: float = 0.25
    validation: int = 18
    n_snapshots: int = 7
    interval: int = 10
    threshold: float = 0.8
    max_epochs: int = 150
    jpeg_quality: int = 90
    recompress_label: str | None = None
    if_threshold_not_reached: str = "raise"
    name: str = "hall2020-unseen"

    def build(self) -> Any:
        from ..ensembles import hall2020_ensemble

        params = {"random_state": self.random_state, "device": self.device,
                  **({"input_size": self.input_size} if self.input_size else {}),
                  **self.estimator_params}
        vote = hall2020_ensemble(self.architectures, pretrained=self.pretrained,
                                 n_snapshots=self.n_snapshots, interval=self.interval,
                                 threshold=self.threshold, validation=self.validation,
                                 max_epochs=self.max_epochs, n_jobs=self.n_jobs, **params)
        for _, ens in vote.estimators:
            ens.set_params(if_threshold_not_reached=self.if_threshold_not_reached)
        return vote

    def _recompress(self, ds: Any, label: str, folder: Path) -> Any:
        from ..estimators._data import as_image_source
        from ..transforms import create_transform

        jpeg = create_transform("jpeg_recompress", quality=self.jpeg_quality)
        src = as_image_source(ds.X)
        X = np.asarray(ds.X).copy() if ds.X.dtype != object else ds.X.copy()
        for i in np.flatnonzero(np.asarray(ds.y).astype(str) == label):
            img = jpeg(src.load(int(i)))
            if ds.X.dtype == object:
                from PIL import Image

                out = folder / f"{i:06d}.png"  # the JPEG artefacts, stored losslessly
                Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(out)
                X[i] = str(out)
            else:
                X[i] = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        ds = ds.subset(np.arange(len(ds.y)))
        ds.X = X
        return ds

    def run(self, dataset: Any, test_dataset: Any = None, *, progress: bool = True) -> RunResult:
        from ..validity import check_train_test_leakage

        ds, pos, neg = _two_labels(dataset, self.labels, self.positive_label, HALL2020_LABELS)
        if test_dataset is None:
            from ..validity.splits import holdout_split

            tr, te = holdout_split(ds.y, ds.groups, self.test_size, random_state=self.random_state)
            train, test = ds.subset(tr), ds.subset(te)
        else:
            train = ds
            test, _, _ = _two_labels(test_dataset, self.labels or (neg, pos), pos)
        check_train_test_leakage(train.groups, test.groups)
        label = self.recompress_label or neg
        tmp = Path(tempfile.mkdtemp(prefix="cxrkit-jpeg90-"))
        train = self._recompress(train, label, tmp)
        test = self._recompress(test, label, tmp)
        vote = _with_epoch_progress(self.build(), progress)
        y_tr = np.asarray(train.y).astype(str)
        vote.fit(train.X, y_tr, groups=np.asarray(train.groups).astype(str))
        pos_idx = int(np.flatnonzero(vote.classes_ == pos)[0])
        y_te = np.asarray(test.y).astype(str)
        scores, dt = _timed_predict(vote, test.X, pos_idx)
        groups = np.asarray(test.groups).astype(str)
        result = RunResult(protocol=self.name, config=self.config(), positive_label=pos,
                           classes=[neg, pos], images=[str(v) for v in (
                               test.X if test.X.dtype == object else range(len(y_te)))],
                           y_true=y_te, y_score=scores, groups=groups)
        result.metrics = compute_metrics(y_te, scores, positive_label=pos, groups=groups,
                                         prevalence=self.prevalence,
                                         n_bootstraps=self.n_bootstraps,
                                         random_state=self.random_state)
        result.extra["members"] = {name: [s["epoch"] for s in ens.snapshots_]
                                   for name, ens in zip(self.architectures, vote.estimators_)}
        result.extra["per_architecture"] = {
            name: compute_metrics(y_te, ens.predict_proba(test.X)[:, pos_idx],
                                  positive_label=pos, groups=groups, n_bootstraps=0)
            for name, ens in zip(self.architectures, vote.estimators_)}
        result.efficiency = model_efficiency(len(y_te), max(dt, 1e-9),
                                             device=vote.estimators_[0].estimator_.device_,
                                             threads=torch.get_num_threads())
        result.data_summary = {"train": train.summary(), "test": test.summary(),
                               "jpeg_recompressed_label": label,
                               "jpeg_quality": self.jpeg_quality}
        self._data_checks(ds, result)
        members = dict(zip(self.architectures, (e.estimator for _, e in vote.estimators)))
        self._probes(members.get("hall2020_cnn", next(iter(members.values()))), train, result,
                     progress)
        self.fitted_ = vote
        result.gradcam = _gradcam_examples(vote.estimators_[0], test.X, y_te, scores, pos,
                                           np.arange(len(y_te)))
        return result


@dataclass
class Opacity2020(Protocol):
    """The ResNet-101 airspace-opacity study (2020).

    Train ResNet-101 (new two-class fully connected layer only; SGD momentum
    0.9, mini-batch 10, 8 epochs, lr 1e-4, validation every epoch) on the proxy
    label: Google's adjudicated airspace opacity for ChestX-ray14, split 70/30
    into training and validation by patient. Test on COVID-19 images against
    ChestX-ray14 "No Finding" images sampled to a prevalence of 2.57 % (the
    sampling seed is reported), with sensitivity, specificity, accuracy, AUC,
    confusion matrix and PPV/NPV at that prevalence.
    """

    architecture: str = "resnet101"
    pretrained: str | None = "imagenet"
    validation_fraction: float = 0.3
    test_prevalence: float = 0.0257
    opacity_label: str = "opacity"
    covid_label: str = "covid"
    max_epochs: int = 8
    name: str = "opacity2020"

    def build(self) -> CXRClassifier:
        params = {"random_state": self.random_state, "device": self.device,
                  "validation": self.validation_fraction,
                  **({"input_size": self.input_size} if self.input_size else {}),
                  **({"pretrained": self.pretrained} if self.pretrained else {}),
                  "max_epochs": self.max_epochs, **self.estimator_params}
        return CXRClassifier.from_recipe("opacity2020", architecture=self.architecture, **params)

    def run(self, train_dataset: Any, covid_dataset: Any, controls_dataset: Any, *,
            progress: bool = True) -> RunResult:
        from ..validity import check_train_test_leakage

        est = _with_epoch_progress(self.build(), progress)
        y_tr = np.asarray(train_dataset.y).astype(str)
        if self.opacity_label not in set(y_tr):
            raise DataError(f"The training data has no {self.opacity_label!r} label; load "
                            "chestxray14 with target='airspace_opacity'.")
        est.fit(train_dataset.X, y_tr, groups=np.asarray(train_dataset.groups).astype(str))
        pos_idx = int(np.flatnonzero(est.classes_ == self.opacity_label)[0])
        covid = covid_dataset.select([self.covid_label])
        n_pos = len(covid.y)
        n_neg = int(round(n_pos * (1 - self.test_prevalence) / self.test_prevalence))
        rng = np.random.default_rng(self.random_state)
        if len(controls_dataset.y) < n_neg:
            raise DataError(
                f"A prevalence of {self.test_prevalence:.2%} with {n_pos} COVID-19 images needs "
                f"{n_neg} controls; the control dataset has {len(controls_dataset.y)}.")
        neg_idx = np.sort(rng.choice(len(controls_dataset.y), n_neg, replace=False))
        controls = controls_dataset.subset(neg_idx)
        check_train_test_leakage(train_dataset.groups, controls.groups)
        Xc = np.concatenate([np.asarray(covid.X, dtype=object), np.asarray(controls.X, dtype=object)])
        y = np.array(["covid"] * n_pos + ["no_finding"] * n_neg)
        groups = np.concatenate([np.asarray(covid.groups).astype(str),
                                 np.asarray(controls.groups).astype(str)])
        scores, dt = _timed_predict(est, Xc, pos_idx)
        result = RunResult(protocol=self.name, config=self.config(), positive_label="covid",
                           classes=["no_finding", "covid"], images=[str(v) for v in Xc],
                           y_true=y, y_score=scores, groups=groups)
        result.metrics = compute_metrics(y, scores, positive_label="covid", groups=groups,
                                         prevalence=self.test_prevalence,
                                         n_bootstraps=self.n_bootstraps,
                                         random_state=self.random_state)
        hist = est.history_
        result.extra["training"] = [{k: h.get(k) for k in ("epoch", "train_loss", "train_acc",
                                                            "valid_loss", "valid_acc")}
                                    for h in hist]
        result.extra["test_sampling"] = {"n_covid": n_pos, "n_no_finding": n_neg,
                                         "prevalence": n_pos / (n_pos + n_neg),
                                         "sampling_seed": self.random_state}
        result.efficiency = model_efficiency(len(y), max(dt, 1e-9), device=est.device_,
                                             threads=torch.get_num_threads())
        result.data_summary = {"train": train_dataset.summary(), "covid": covid.summary(),
                               "controls": controls.summary()}
        # COVID-19 images and controls come from different collections: can the
        # network tell them apart with the lungs hidden?
        from types import SimpleNamespace

        self._probes(est, SimpleNamespace(X=Xc, y=y, groups=groups, metadata=None), result,
                     progress)
        self.fitted_ = est
        result.gradcam = _gradcam_examples(est, Xc, y, scores, "covid", np.arange(len(y)))
        return result


@dataclass
class Hall2020Published(Protocol):
    """Evaluate the authors' published small-CNN snapshot ensemble (7 Keras files)."""

    weights: str | None = None
    name: str = "hall2020-published"

    def build(self) -> SnapshotEnsembleClassifier:
        from ..importers.published import load_hall2020_published

        if not self.weights:
            raise ConfigurationError("hall2020-published needs --weights DIR (the folder with "
                                     "the seven weights2-improvement-*.hdf5 files).")
        return load_hall2020_published(self.weights)

    def run(self, dataset: Any, *, progress: bool = True) -> RunResult:
        ds, pos, neg = _two_labels(dataset, self.labels, self.positive_label, HALL2020_LABELS)
        est = self.build()
        known = [str(c) for c in est.classes_]
        if pos not in known:
            raise DataError(f"The published ensemble scores {known}; the positive label {pos!r} "
                            f"is not one of them. Use positive_label='covid'.")
        notes = []
        if neg not in known:
            # The network outputs P(covid); any other label is "not covid" for it.
            notes.append(f"The published ensemble was trained on {known}; here its P({pos}) "
                         f"separates {pos!r} from {neg!r}, a class it never saw in training.")
        pos_idx = int(np.flatnonzero(est.classes_ == pos)[0])
        y = np.asarray(ds.y).astype(str)
        scores, dt = _timed_predict(est, ds.X, pos_idx)
        groups = np.asarray(ds.groups).astype(str)
        result = RunResult(protocol=self.name, config=self.config(), positive_label=pos,
                           classes=[neg, pos], images=[str(v) for v in ds.X], y_true=y,
                           y_score=scores, groups=groups)
        result.warnings.extend(notes)
        result.metrics = compute_metrics(y, scores, positive_label=pos, groups=groups,
                                         prevalence=self.prevalence,
                                         n_bootstraps=self.n_bootstraps,
                                         random_state=self.random_state)
        result.efficiency = model_efficiency(len(y), max(dt, 1e-9), device=est.estimator_.device_,
                                             threads=torch.get_num_threads())
        result.data_summary = ds.summary()
        self._data_checks(ds, result)
        self.fitted_ = est
        result.gradcam = _gradcam_examples(est, ds.X, y, scores, pos, np.arange(len(y)))
        return result


def list_protocols(pattern: str = "*") -> list[str]:
    from ..plugins import get_registry

    return get_registry("protocol").names(pattern)


def create_protocol(name: str, /, **options: Any) -> Protocol:
    """Build a registered protocol; unknown options are reported with the valid ones."""
    from dataclasses import fields

    from ..plugins import get_registry

    factory = get_registry("protocol").get(name).factory
    valid = ({f.name for f in fields(cast(Any, factory))} if hasattr(factory, "__dataclass_fields__")
             else None)
    if valid is not None and "transforms" in options and "transforms" not in valid:
        t = options.pop("transforms")  # e.g. --set transforms=lung_crop: the classifier's option
        options["estimator_params"] = {**options.get("estimator_params", {}),
                                       "transforms": [t] if isinstance(t, str) else list(t)}
    if valid is not None:
        bad = sorted(set(options) - valid)
        if bad:
            raise ConfigurationError(f"Protocol {name!r} has no option(s) {bad}. "
                                     f"Options: {sorted(valid - {'name'})}.")
    return factory(**options)


