"""The ResNet-101 airspace-opacity study (2020): proxy-label training, COVID-19 test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ...datasets import CXRDataset
from ...errors import DataError
from ...estimators import CXRClassifier
from ..results import RunResult, model_efficiency
from ._base import Evaluation, InputSlot, Protocol
from ._common import timed_predict, with_epoch_progress

__all__ = ["Opacity2020"]


def _concat(a: CXRDataset, b: CXRDataset, labels: tuple[str, str], name: str) -> CXRDataset:
    """Two datasets as one, relabelled ``labels[0]`` and ``labels[1]``."""
    X = np.concatenate([np.asarray(a.X, dtype=object), np.asarray(b.X, dtype=object)])
    y = np.array([labels[0]] * len(a) + [labels[1]] * len(b))
    groups = np.concatenate([np.asarray(a.groups).astype(str), np.asarray(b.groups).astype(str)])
    md = pd.concat([a.metadata, b.metadata], ignore_index=True)
    md["label"] = y
    return CXRDataset(X=X, y=y, groups=groups, metadata=md, name=name)


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

    inputs: ClassVar[tuple[InputSlot, ...]] = (
        InputSlot(
            "data", "proxy-label training data, e.g. chestxray14 with target=airspace_opacity"
        ),
        InputSlot("test", "the COVID-19 images"),
        InputSlot("controls", "the No Finding control images"),
    )

    architecture: str = "resnet101"
    pretrained: str | None = "imagenet"
    validation_fraction: float = 0.3
    test_prevalence: float = 0.0257
    opacity_label: str = "opacity"
    covid_label: str = "covid"
    max_epochs: int = 8
    name: str = "opacity2020"

    def build(self) -> CXRClassifier:
        """Return the ResNet-101 classifier of the study's recipe."""
        params = {
            **self.estimator_options(),
            "validation": self.validation_fraction,
            "max_epochs": self.max_epochs,
        }
        params.update(self.estimator_params)
        return CXRClassifier.from_recipe("opacity2020", architecture=self.architecture, **params)

    def _test_set(
        self, covid_dataset: CXRDataset, controls_dataset: CXRDataset, train: CXRDataset
    ) -> tuple[CXRDataset, dict[str, Any]]:
        from ...validity import check_train_test_leakage

        covid = covid_dataset.select([self.covid_label])
        n_pos = len(covid.y)
        n_neg = int(round(n_pos * (1 - self.test_prevalence) / self.test_prevalence))
        if len(controls_dataset.y) < n_neg:
            raise DataError(
                f"A prevalence of {self.test_prevalence:.2%} with {n_pos} COVID-19 images needs "
                f"{n_neg} controls; the control dataset has {len(controls_dataset.y)}."
            )
        rng = np.random.default_rng(self.random_state)
        controls = controls_dataset.subset(
            np.sort(rng.choice(len(controls_dataset.y), n_neg, replace=False))
        )
        check_train_test_leakage(train.groups, controls.groups)
        sampling = {
            "n_covid": n_pos,
            "n_no_finding": n_neg,
            "prevalence": n_pos / (n_pos + n_neg),
            "sampling_seed": self.random_state,
        }
        return _concat(covid, controls, ("covid", "no_finding"), "covid+controls"), sampling

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        train = inputs["data"]
        est = with_epoch_progress(self.build(), progress)
        y_tr = np.asarray(train.y).astype(str)
        if self.opacity_label not in set(y_tr):
            raise DataError(
                f"The training data has no {self.opacity_label!r} label; load "
                "chestxray14 with target=airspace_opacity (--data-option "
                "target=airspace_opacity)."
            )
        est.fit(train.X, y_tr, groups=np.asarray(train.groups).astype(str))
        pos_idx = int(np.flatnonzero(est.classes_ == self.opacity_label)[0])
        test, sampling = self._test_set(inputs["test"], inputs["controls"], train)
        scores, dt = timed_predict(est, test.X, pos_idx)
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label="covid",
            classes=["no_finding", "covid"],
            images=[str(v) for v in test.X],
            y_true=test.y,
            y_score=scores,
            groups=test.groups,
        )
        result.extra["training"] = [
            {k: h.get(k) for k in ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc")}
            for h in est.history_
        ]
        result.extra["test_sampling"] = sampling
        result.efficiency = model_efficiency(
            len(test), max(dt, 1e-9), device=est.device_, threads=torch.get_num_threads()
        )
        result.data_summary = {"train": train.summary(), "test": test.summary()}
        self.fitted_ = est
        # COVID-19 images and controls come from different collections: can the
        # network tell them apart with the lungs hidden?
        return Evaluation(
            result=result,
            data=train,
            test=test,
            prevalence=self.test_prevalence,
            probe_estimator=est,
            probe_data=test,
            explain_model=est,
            explain_X=test.X,
        )
