"""Alternative constructors of :class:`CXRClassifier`: a paper's recipe, or an already-trained network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np

from ..architectures import CXRNet, Preprocessing
from ..errors import DataError
from ._recipes import recipe_params
from ._targets import Target
from ._training import resolve_device

__all__ = ["ConstructorsMixin"]


class ConstructorsMixin:
    """``from_recipe`` and ``from_module`` of :class:`CXRClassifier`."""

    target_: Target
    device: Any
    device_: str
    preprocessing_: Preprocessing
    net_: Any
    interrupted_: str | None

    if TYPE_CHECKING:  # CXRClassifier's

        def __init__(self, architecture: str = ..., **kwargs: Any) -> None: ...

        def _make_net(self, module: Any, train_split: Any) -> Self: ...

    @classmethod
    def from_recipe(cls, recipe: str, architecture: str | None = None, **overrides: Any) -> Self:
        """Return a classifier configured as in one of the papers.

        ``"hall2020"`` (Hall, Paul, Goldgof & Goldgof 2020): head GAP -> dense 64
        -> ReLU -> dropout 0.5 -> one logit; convolutional layers frozen with their
        batch-norm statistics (``hall2020_cnn`` is trained whole); RMSprop
        (rho 0.9, eps 1e-8) on binary cross-entropy; triangular cyclic learning rate
        1e-4..1e-3 stepped every batch, step size 15 batches; horizontal flips;
        batch 16; 100 epochs (the snapshot ensemble decides the epochs it keeps).
        Default architecture ``resnet50``.

        ``"opacity2020"`` (ResNet-101 airspace-opacity study, 2020): a new fully
        connected layer with two-class softmax, everything else frozen
        (``all_but_last``); SGD with momentum 0.9; mini-batch 10; 8 epochs; learning
        rate 1e-4; shuffled every epoch. Default architecture ``resnet101``.

        Any parameter can be overridden by keyword.
        """
        default_arch = {"hall2020": "resnet50", "opacity2020": "resnet101"}.get(recipe, "resnet50")
        arch = architecture or default_arch
        params = recipe_params(recipe, arch)
        # Overriding the optimizer or the schedule drops the recipe's options for it.
        for key, prefix in (("optimizer", "optimizer__"), ("lr_schedule", "lr_schedule__")):
            if key in overrides and overrides[key] != params.get(key):
                params = {k: v for k, v in params.items() if not k.startswith(prefix)}
        params.update(overrides)
        return cls(arch, **params)

    @classmethod
    def from_module(
        cls,
        module: CXRNet,
        classes: Any,
        *,
        task: str | None = None,
        preprocessing: Preprocessing | None = None,
        **params: Any,
    ) -> Self:
        """Return a fitted classifier around an already-trained network.

        ``classes`` are the labels in the order of the network's logits (binary:
        two labels, the logit scores ``classes[1]``), or the finding names of a
        multi-label network. ``task`` (``"binary"``, ``"multiclass"``,
        ``"multilabel-indicator"``) defaults to binary for two classes and
        multi-class for more.
        """
        est = cls(params.pop("architecture", module.arch_name or "custom"), **params)
        est._set_target(_target_of_module(module, classes, task))
        est.device_ = resolve_device(est.device)
        est.preprocessing_ = preprocessing or module.preprocessing
        est.net_ = est._make_net(module, None)
        est.net_.initialize()
        est.interrupted_ = None
        module.eval()
        return est

    def _set_target(self, target: Target) -> None:
        """Record the fitted task and its scikit-learn attributes."""
        self.target_ = target
        self.task_ = target.task
        self.classes_ = target.classes
        self.labels_ = list(target.labels)
        self.n_outputs_ = target.n_outputs


def _target_of_module(module: CXRNet, classes: Any, task: str | None) -> Target:
    """Return the target of an already-trained network with the given labels."""
    classes = np.asarray(classes)
    k = len(classes)
    if len(np.unique(classes)) != k or k < 2:
        raise DataError(f"from_module needs at least two distinct classes; got {list(classes)}.")
    task = task or ("binary" if k == 2 else "multiclass")
    if task == "binary" and k != 2:
        raise DataError(f"from_module: a binary network needs two classes; got {list(classes)}.")
    if task != "binary" and module.n_outputs != k:
        raise DataError(
            f"from_module: the network has {module.n_outputs} output(s) but {k} classes were "
            f"given ({list(classes)}); a {task} network needs one logit per class or finding."
        )
    if task == "multilabel-indicator":
        return Target(task, np.arange(k), [str(c) for c in classes])
    return Target(task, classes, [str(c.item() if hasattr(c, "item") else c) for c in classes])
