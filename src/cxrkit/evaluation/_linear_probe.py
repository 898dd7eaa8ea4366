"""The linear-probe protocol: embeddings of a frozen backbone + logistic regression, patient-grouped k-fold cross-validation with the regularisation chosen inside each training fold."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..datasets import CXRDataset
from ..estimators import CXREmbedder
from .metrics import per_fold_metrics
from .protocols import Evaluation, InputSlot, Protocol, held_out_labels
from .protocols._common import balanced_subset, label_counts, progress_bar, two_labels
from .results import RunResult, model_efficiency

__all__ = ["LinearProbeCV"]


@dataclass
class LinearProbeCV(Protocol):
    """Linear probe of a frozen backbone, patient-grouped k-fold cross-validation.

    Every image is embedded once by :class:`~cxrkit.estimators.CXREmbedder`
    (``architecture``, ``pretrained``, ``pooling``; through the feature cache).
    In each of ``n_splits`` patient-grouped folds (``StratifiedGroupKFold``) a
    ``StandardScaler`` + ``LogisticRegression`` is fitted on the training fold,
    its ``C`` chosen from ``Cs`` by an inner patient-grouped ``inner_splits``-fold
    search on ROC AUC, and scores the test fold. This equals
    ``GridSearchCV(make_linear_probe(...), {"probe__C": Cs})`` per fold, since the
    embedder learns nothing. The report has every figure with its confidence
    interval (patient-level bootstrap), per-fold figures and the chosen ``C``.
    """

    inputs: ClassVar[tuple[InputSlot, ...]] = (
        InputSlot("data", "the images, labels and patient ids to cross-validate"),
        InputSlot(
            "test",
            "a held-out test set, scored once by the probe refit on all of --data",
            required=False,
        ),
    )

    architecture: str = "resnet50"
    n_splits: int = 10
    inner_splits: int = 3
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    pooling: str | None = None
    pretrained_strict: bool = True
    class_weight: str | None = "balanced"
    batch_size: int = 32
    cache_dir: str | None = None
    n_per_class: int | str | None = None
    probes: bool = False
    name: str = "linear-probe-cv"

    def build(self) -> tuple[CXREmbedder, GridSearchCV, StratifiedGroupKFold]:
        """Return the embedder, the per-fold probe search and the outer splitter."""
        options: dict[str, Any] = {"pretrained_strict": self.pretrained_strict}
        options.update(self.estimator_params)
        embedder = CXREmbedder(
            self.architecture,
            pretrained=self.pretrained,
            pooling=self.pooling,
            input_size=self.input_size,
            architecture_options=options,
            batch_size=self.batch_size,
            device=self.device,
            cache_dir=self.cache_dir,
        )
        probe = Pipeline(
            [
                ("scale", StandardScaler()),
                ("probe", LogisticRegression(max_iter=5000, class_weight=self.class_weight)),
            ]
        )
        inner = StratifiedGroupKFold(
            self.inner_splits, shuffle=True, random_state=self.random_state
        )
        search = GridSearchCV(probe, {"probe__C": list(self.Cs)}, cv=inner, scoring="roc_auc")
        outer = StratifiedGroupKFold(self.n_splits, shuffle=True, random_state=self.random_state)
        return embedder, search, outer

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        from sklearn.base import clone

        from ..validity import splitter_leakage

        ds, pos, neg = two_labels(inputs["data"], self.labels, self.positive_label)
        ds = balanced_subset(ds, self.n_per_class, self.random_state)
        embedder, search, outer = self.build()
        X, y, groups = ds.X, np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
        embedder.set_params(progress=progress)
        t0 = time.perf_counter()
        feats = embedder.fit(X).transform(X)
        embed_seconds = time.perf_counter() - t0
        images = [str(v) for v in (X if X.dtype == object else range(len(y)))]
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=pos,
            classes=[neg, pos],
            images=images,
            y_true=y,
            y_score=np.full(len(y), np.nan),
        )
        result.validity.append(splitter_leakage(outer, X, y, groups).to_dict())
        scores, folds, chosen = np.full(len(y), np.nan), np.full(len(y), -1), []
        splits = list(outer.split(feats, y, groups))
        t1 = time.perf_counter()
        for k, (tr, te) in enumerate(progress_bar(splits, progress, desc="folds", unit="fold")):
            fold = clone(search).fit(feats[tr], y[tr], groups=groups[tr])
            col = int(np.flatnonzero(fold.classes_ == pos)[0])
            scores[te], folds[te] = fold.predict_proba(feats[te])[:, col], k
            chosen.append(float(fold.best_params_["probe__C"]))
        probe_seconds = time.perf_counter() - t1
        result.y_score, result.folds, result.groups = scores, folds, groups
        result.per_fold = [{"C": c} for c in chosen]
        result.extra.update(
            {
                "embedding_seconds": embed_seconds,
                "probe_seconds": probe_seconds,
                "n_features": int(feats.shape[1]),
                "chosen_C": chosen,
                "label_counts": label_counts(ds),
            }
        )
        result.efficiency = model_efficiency(
            len(y), max(embed_seconds, 1e-9), device=str(embedder.device_)
        )
        result.data_summary = ds.summary()
        if self.probes:
            result.warnings.append(
                "probes=True: the source and shortcut probes train CNNs and "
                "are not part of linear-probe-cv; they were not run."
            )
        self.fitted_ = None
        test, held_out_model = inputs.get("test"), None
        if test is not None:  # the probe (and its C) refit on every image, the embedder as is
            test = held_out_labels(test, [neg, pos])
            final = clone(search).fit(feats, y, groups=groups)
            held_out_model = Pipeline([("embed", embedder), ("probe", final)])
        return Evaluation(
            result=result,
            data=ds,
            prevalence=self.prevalence,
            test=test,
            held_out_model=held_out_model,
        )

    def score(self, ev: Evaluation) -> None:
        super().score(ev)
        r = ev.result
        per_fold = per_fold_metrics(r.y_true, r.y_score, r.folds, positive_label=r.positive_label)
        for row, info in zip(per_fold, r.per_fold):
            row.update(info)
        r.per_fold = per_fold
