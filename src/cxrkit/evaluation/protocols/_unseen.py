"""Hall et al. (2020): the 21-model ensemble on an unseen test set."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ...datasets import CXRDataset
from ...errors import DataError
from ..results import RunResult, model_efficiency
from ._base import Evaluation, InputSlot, Protocol
from ._common import (
    HALL2020_LABELS,
    balanced_subset,
    label_counts,
    timed_predict,
    two_labels,
    with_epoch_progress,
)
from ._cv import snapshot_rule_summary

__all__ = ["Hall2020Unseen"]


def _test_labels(
    test: CXRDataset, labels: Sequence[str] | None, pos: str, test_positive: str | None
) -> tuple[CXRDataset, str, str]:
    """Return the test set's two labels: its positive is scored as the model's ``pos``."""
    if labels:
        labels = [str(v) for v in labels]
        tpos = test_positive or (pos if pos in labels else None)
        if tpos is None or tpos not in labels:
            raise DataError(
                f"The test labels {labels} do not say which one is the positive class "
                f"{pos!r}. Pass test_positive_label=NAME (--set test_positive_label=NAME)."
            )
        if len(labels) != 2:
            raise DataError(
                f"The test set needs exactly two labels; got {labels}. Pass "
                "--test-labels POSITIVE,NEGATIVE, e.g. covid,normal."
            )
        return test.select(labels), tpos, next(v for v in labels if v != tpos)
    return two_labels(test, None, test_positive or pos)


@dataclass
class Hall2020Unseen(Protocol):
    """Hall et al. (2020) unseen-test experiment: the 21-model ensemble.

    Train ResNet50, VGG16 and the small CNN on class-balanced training data
    (``n_per_class="balanced"``, as the paper's 102 + 102; snapshot rule:
    from the epoch in which validation accuracy on 18 held-out training images
    per class first exceeds 0.8, 7 snapshots 10 epochs apart) and average the
    21 members on an unseen test set whose control images are re-encoded as
    JPEG quality 90 in training and test, so that compression cannot reveal the
    class. The test set is a separate dataset (``test``) or, with
    ``test_size``, a patient-grouped split. Its labels may differ from the
    training labels (``test_labels``, e.g. covid vs normal where the model was
    trained on covid vs pneumonia, as the paper's unseen controls): the model's
    probability of the positive class scores the test set's positive class, and
    the report names the negatives the model never saw. ``pretrained`` is a
    path or ``"imagenet"`` for every torchvision member, or per architecture as
    ``{"vgg16": PATH}`` (``--pretrained vgg16=PATH``).
    """

    inputs: ClassVar[tuple[InputSlot, ...]] = (
        InputSlot("data", "the training images"),
        InputSlot(
            "test",
            "the unseen test set (default: a patient-grouped split of --data)",
            required=False,
        ),
    )

    pretrained: Any = None
    architectures: tuple[str, ...] = ("resnet50", "vgg16", "hall2020_cnn")
    test_size: float = 0.25
    test_labels: tuple[str, ...] | None = None
    test_positive_label: str | None = None
    n_per_class: int | str | None = "balanced"
    validation: int = 18
    n_snapshots: int = 7
    interval: int = 10
    threshold: float = 0.8
    max_epochs: int = 150
    jpeg_quality: int = 90
    recompress_label: str | None = None
    if_threshold_not_reached: str = "last"
    name: str = "hall2020-unseen"

    def build(self) -> Any:
        """Return the scikit-learn ``VotingClassifier`` of three snapshot ensembles."""
        from ...ensembles import hall2020_ensemble

        params = {k: v for k, v in self.estimator_options().items() if k != "pretrained"}
        vote = hall2020_ensemble(
            self.architectures,
            pretrained=self.pretrained,
            n_snapshots=self.n_snapshots,
            interval=self.interval,
            threshold=self.threshold,
            validation=self.validation,
            max_epochs=self.max_epochs,
            n_jobs=self.n_jobs,
            **params,
        )
        for _, ens in vote.estimators:
            ens.set_params(if_threshold_not_reached=self.if_threshold_not_reached)
        return vote

    def _recompress(self, ds: CXRDataset, label: str, folder: Path) -> CXRDataset:
        """``ds`` with the images labelled ``label`` re-encoded as JPEG (stored losslessly).

        File-based datasets get their re-encoded images written under ``folder``, which
        must be this dataset's own: files are named by their row number.
        """
        from PIL import Image

        from ...estimators import as_image_source
        from ...transforms import create_transform

        jpeg = create_transform("jpeg_recompress", quality=self.jpeg_quality)
        src = as_image_source(ds.X)
        X = ds.X.copy()
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(np.asarray(ds.y).astype(str) == label):
            img = (np.clip(jpeg(src.load(int(i))), 0, 1) * 255).round().astype(np.uint8)
            if ds.X.dtype == object:
                out = folder / f"{ds.name}-{i:06d}.png"
                Image.fromarray(img).save(out)
                X[i] = str(out)
            else:
                X[i] = img
        out_ds = ds.subset(np.arange(len(ds)))
        out_ds.X = X
        return out_ds

    def _split(
        self, inputs: dict[str, CXRDataset]
    ) -> tuple[CXRDataset, CXRDataset, str, str, str, str]:
        ds, pos, neg = two_labels(inputs["data"], self.labels, self.positive_label, HALL2020_LABELS)
        if "test" not in inputs:
            from ...validity.splits import holdout_split

            tr, te = holdout_split(ds.y, ds.groups, self.test_size, random_state=self.random_state)
            train, test = ds.subset(tr), ds.subset(te)
            tpos, tneg = pos, neg
        else:
            train = ds
            test, tpos, tneg = _test_labels(
                inputs["test"], self.test_labels or None, pos, self.test_positive_label
            )
        return train, test, pos, neg, tpos, tneg

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        from ...ensembles import fit_with_groups
        from ...validity import check_train_test_leakage

        train, test, pos, neg, tpos, tneg = self._split(inputs)
        check_train_test_leakage(train.groups, test.groups)
        notes: list[str] = []
        full = label_counts(train)
        train = balanced_subset(train, self.n_per_class, self.random_state)
        if label_counts(train) != full:
            used = label_counts(train)
            notes.append(
                "Class-balanced training data (n_per_class="
                f"{self.n_per_class!r}, as in the paper): used "
                + ", ".join(f"{used[k]} of {full[k]} {k!r}" for k in sorted(full))
                + " images."
            )
        if tneg != neg:
            notes.append(
                f"The test negatives {tneg!r} are a class the model never saw in "
                f"training (it was trained on {pos!r} vs {neg!r}); P({pos}) scores "
                f"{tpos!r} against {tneg!r}, as in the paper's unseen test."
            )
        label = self.recompress_label or neg
        tmp = Path(tempfile.mkdtemp(prefix="cxrkit-jpeg90-"))
        # One folder per split: row numbers repeat across splits, file names must not.
        train = self._recompress(train, label, tmp / "train")
        originals = test.X
        test = self._recompress(test, self.recompress_label or tneg, tmp / "test")
        vote = with_epoch_progress(self.build(), progress)
        fit_with_groups(
            vote, train.X, np.asarray(train.y).astype(str), np.asarray(train.groups).astype(str)
        )
        pos_idx = int(np.flatnonzero(vote.classes_ == pos)[0])
        y_te = np.asarray(test.y).astype(str)
        scores, dt = timed_predict(vote, test.X, pos_idx)
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=tpos,
            classes=[tneg, tpos],
            images=[str(v) for v in (originals if test.X.dtype == object else range(len(y_te)))],
            y_true=y_te,
            y_score=scores,
            groups=np.asarray(test.groups).astype(str),
        )
        result.warnings.extend(notes)
        self._describe(result, vote, test, pos_idx, tpos, dt)
        result.data_summary = {
            "train": train.summary(),
            "test": test.summary(),
            "jpeg_recompressed_labels": sorted({label, self.recompress_label or tneg}),
            "jpeg_quality": self.jpeg_quality,
        }
        self.fitted_ = vote
        members = dict(zip(self.architectures, (e.estimator for _, e in vote.estimators)))
        probe = members.get("hall2020_cnn", next(iter(members.values())))
        return Evaluation(
            result=result,
            data=train,
            test=test,
            prevalence=self.prevalence,
            probe_estimator=probe,
            explain_model=vote.estimators_[0],
            explain_X=test.X,
        )

    def _describe(
        self,
        result: RunResult,
        vote: Any,
        test: CXRDataset,
        pos_idx: int,
        tpos: str,
        seconds: float,
    ) -> None:
        """Members, per-architecture figures, the snapshot rule and efficiency."""
        from ..metrics import compute_metrics

        ens = list(zip(self.architectures, vote.estimators_))
        result.extra["members"] = {name: [s["epoch"] for s in e.snapshots_] for name, e in ens}
        result.extra["per_architecture"] = {
            name: compute_metrics(
                result.y_true,
                e.predict_proba(test.X)[:, pos_idx],
                positive_label=tpos,
                groups=result.groups,
                n_bootstraps=0,
            )
            for name, e in ens
        }
        rules = [e.policy_used_ for _, e in ens]
        result.extra["snapshot_rule"] = {name: e.policy_used_ for name, e in ens}
        note = snapshot_rule_summary(
            rules, self.n_snapshots, self.interval, "valid_acc", self.threshold
        )
        if note:
            result.warnings.append(note)
        result.efficiency = model_efficiency(
            len(result.y_true),
            max(seconds, 1e-9),
            device=vote.estimators_[0].estimator_.device_,
            threads=torch.get_num_threads(),
        )
