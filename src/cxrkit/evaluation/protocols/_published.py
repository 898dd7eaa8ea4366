"""Evaluate the Hall et al. (2020) authors' published small-CNN snapshot ensemble."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ...datasets import CXRDataset
from ...errors import ConfigurationError, DataError
from ..results import RunResult, model_efficiency
from ._base import Evaluation, InputSlot, Protocol
from ._common import HALL2020_LABELS, timed_predict, two_labels

__all__ = ["Hall2020Published"]


@dataclass
class Hall2020Published(Protocol):
    """Evaluate the authors' published small-CNN snapshot ensemble (7 Keras files)."""

    inputs: ClassVar[tuple[InputSlot, ...]] = (InputSlot("data", "the images to score"),)

    weights: str | None = None
    name: str = "hall2020-published"

    def build(self) -> Any:
        """Return the published ensemble, imported from its Keras HDF5 files."""
        from ...importers.published import load_hall2020_published

        if not self.weights:
            raise ConfigurationError(
                "hall2020-published needs --weights DIR (the folder with "
                "the seven weights2-improvement-*.hdf5 files)."
            )
        return load_hall2020_published(self.weights)

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        ds, pos, neg = two_labels(inputs["data"], self.labels, self.positive_label, HALL2020_LABELS)
        est = self.build()
        known = [str(c) for c in est.classes_]
        if pos not in known:
            raise DataError(
                f"The published ensemble scores {known}; the positive label {pos!r} "
                f"is not one of them. Use positive_label='covid'."
            )
        pos_idx = int(np.flatnonzero(est.classes_ == pos)[0])
        y = np.asarray(ds.y).astype(str)
        scores, dt = timed_predict(est, ds.X, pos_idx)
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=pos,
            classes=[neg, pos],
            images=[str(v) for v in ds.X],
            y_true=y,
            y_score=scores,
            groups=np.asarray(ds.groups).astype(str),
        )
        if neg not in known:
            # The network outputs P(covid); any other label is "not covid" for it.
            result.warnings.append(
                f"The published ensemble was trained on {known}; here its P({pos}) separates "
                f"{pos!r} from {neg!r}, a class it never saw in training."
            )
        result.efficiency = model_efficiency(
            len(y), max(dt, 1e-9), device=est.estimator_.device_, threads=torch.get_num_threads()
        )
        result.data_summary = ds.summary()
        self.fitted_ = est
        return Evaluation(
            result=result, data=ds, prevalence=self.prevalence, explain_model=est, explain_X=ds.X
        )
