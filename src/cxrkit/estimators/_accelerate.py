"""Data-parallel training of a CXRClassifier on several GPUs (or CPU processes) with Accelerate.

Uses skorch's :class:`skorch.hf.AccelerateMixin`; the processes are started by
``accelerate launch`` (or ``torchrun``), which tells each one its rank::

    accelerate launch --multi_gpu --num_processes 4 train.py

where ``train.py`` fits an :class:`AcceleratedCXRClassifier` exactly like a
:class:`~cxrkit.estimators.CXRClassifier`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from skorch import NeuralNet
from skorch.hf import AccelerateMixin

from ..errors import ConfigurationError
from ._classifier import CXRClassifier
from ._data import ImageTensorDataset
from ._feature_net import FeatureAwareNet

__all__ = [
    "AcceleratedCXRClassifier",
    "AcceleratedFeatureAwareNet",
    "default_accelerator",
    "ACCELERATE_INSTALL_HINT",
]

ACCELERATE_INSTALL_HINT = "pip install 'cxrkit[accelerate]'"
logger = logging.getLogger("cxrkit.feature_cache")


def _silent(*args: Any, **kwargs: Any) -> None:
    """Return a print sink that prints nothing (``verbose=0``)."""


class AcceleratedFeatureAwareNet(AccelerateMixin, FeatureAwareNet):
    """skorch's Accelerate integration on cxrkit's net."""

    def _initialize_accelerator(self) -> Any:
        # A criterion without parameters (BCEWithLogitsLoss) must not be
        # prepared: DistributedDataParallel refuses modules with nothing to train.
        plain = {
            name: getattr(self, name + "_")
            for name in self._criteria
            if not any(p.requires_grad for p in getattr(self, name + "_").parameters())
        }
        for name in plain:
            setattr(self, name + "_", None)
        try:
            return super()._initialize_accelerator()
        finally:
            for name, crit in plain.items():
                setattr(self, name + "_", crit)


def default_accelerator() -> Any:
    """``Accelerator`` with ``split_batches=True``: ``batch_size`` stays the global batch, split across the processes, so learning rates and step counts mean the same as in single-process training. Without a visible GPU, CPU processes with the gloo backend."""
    try:
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration
    except ImportError as exc:
        raise ConfigurationError(
            f"AcceleratedCXRClassifier needs the 'accelerate' package, which is not installed "
            f"({exc}). Install it with: {ACCELERATE_INSTALL_HINT}"
        ) from None
    import torch

    # Without a GPU the processes train on the CPU (gloo backend) instead of failing.
    return Accelerator(
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        cpu=not torch.cuda.is_available(),
    )


class AcceleratedCXRClassifier(CXRClassifier):
    """A :class:`CXRClassifier` trained data-parallel through Hugging Face Accelerate.

    Every process started by ``accelerate launch`` runs the same script; each
    trains on its shard of every batch and gradients are averaged, so all
    processes end with the same weights (prediction then runs in each process
    on the plain network). Parameters are those of :class:`CXRClassifier`, plus:

    Parameters
    ----------
    accelerator : accelerate.Accelerator or None, default=None
        ``None`` creates one in ``fit`` with ``split_batches=True`` (so
        ``batch_size`` is the global batch, as in single-process training), on
        the CPU when no GPU is visible.
        The device comes from the accelerator; ``device`` is ignored.

    Notes
    -----
    The feature cache is not used (training goes through the DDP-wrapped full
    network). With batch norm in *trained* layers, batch statistics are
    computed per process on its shard; random augmentation and shuffling draw
    from per-process generators, so results match single-process training up
    to those effects (exactly, up to float rounding, for a frozen backbone
    without shuffling or augmentation; see ``tests/estimators/test_accelerate.py``).

    Examples
    --------
    ``train.py``::

        from cxrkit.estimators import AcceleratedCXRClassifier, save_model
        clf = AcceleratedCXRClassifier.from_recipe("hall2020", architecture="resnet50")
        clf.fit(paths, labels)
        if clf.accelerator_.is_main_process:
            save_model(clf, "model")
        clf.accelerator_.end_training()  # destroy the process group before exiting

    run with ``accelerate launch --multi_gpu --num_processes 4 train.py``.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **CXRClassifier._parameter_constraints,
        "accelerator": "no_validation",
    }

    def __init__(
        self, architecture: str = "resnet50", *, accelerator: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(architecture, **kwargs)
        self.accelerator = accelerator

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted({*CXRClassifier._get_param_names(), "accelerator"})

    def _dataset_factory(self, module: Any, images: np.ndarray) -> Any:
        if self.feature_cache is True:
            logger.warning(
                "Feature cache not used: data-parallel training (Accelerate) trains "
                "through the wrapped full network."
            )
        prep = self.preprocessing_
        return lambda idx, y, hflip: ImageTensorDataset(images[idx], y, prep, hflip=hflip)

    def _build_net(self, **kwargs: Any) -> NeuralNet:
        acc = self.accelerator if self.accelerator is not None else default_accelerator()
        self.accelerator_ = acc
        self.device_ = str(acc.device)  # where prediction runs after training
        kwargs["device"] = None if acc.device_placement else self.device_
        if not self.verbose:  # skorch's Accelerate sink would print the table regardless
            kwargs["callbacks__print_log__sink"] = _silent
        return AcceleratedFeatureAwareNet(accelerator=acc, **kwargs)
