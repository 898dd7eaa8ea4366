"""How :class:`CXRClassifier` trains: the network, its data, its skorch net and schedule."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler
from torch import nn

from .._config import get_config
from .._memory import glibc_malloc_available
from ..architectures import CXRNet, Preprocessing, create_architecture, get_preprocessing
from ..errors import ConfigurationError
from ..transforms import resolve_augment
from ._cache import FeatureDataset, feature_cache_reason, get_feature_cache
from ._callbacks import CosineRestarts, EpochAccuracy, EpochProgress, FiniteLoss
from ._data import AugmentedImageDataset, ImageTensorDataset
from ._feature_net import FeatureAwareNet
from ._optim import RMSprop
from ._targets import Target

__all__ = ["ROUTED_PREFIXES", "TrainingMixin", "predict_channels_last", "resolve_device"]
logger = logging.getLogger("cxrkit.estimators")

ROUTED_PREFIXES = (
    "optimizer__",
    "module__",
    "lr_schedule__",
    "iterator_train__",
    "iterator_valid__",
    "callbacks__",
    "criterion__",
)

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "rmsprop": RMSprop,  # torch.optim.RMSprop, bit for bit, without subnormal stalls
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def resolve_device(device: str | torch.device | None) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = str(device)
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(
            f"device={dev!r} was requested but no CUDA GPU is visible. Use device='auto' or 'cpu'."
        )
    return dev


def predict_channels_last() -> bool:
    """Whether prediction and feature-cache passes run channels-last (config ``channels_last``)."""
    return get_config()["channels_last"] in (True, "auto")


def _show_progress(callbacks: list[Any]) -> bool:
    """Whether ``fit`` adds an epoch progress bar (config ``show_progress``).

    ``"auto"``: when standard error is a terminal or the code runs in a Jupyter
    kernel (tqdm draws a widget there). Never twice: not when the callbacks
    already hold an :class:`EpochProgress`.
    """
    show = get_config()["show_progress"]
    if show == "auto":
        show = bool(getattr(sys.stderr, "isatty", lambda: False)()) or "ipykernel" in sys.modules
    given = (c[1] if isinstance(c, tuple) else c for c in callbacks)
    return bool(show) and not any(isinstance(c, EpochProgress) for c in given)


class TrainingMixin:
    """The training steps of :class:`CXRClassifier` (``fit`` calls them in order)."""

    architecture: str
    pretrained: Any
    head: str | None
    freeze: str
    input_size: int | None
    interpolation: str | None
    augment: Any
    transforms: Sequence[Any]
    optimizer: Any
    lr: float
    lr_schedule: str | None
    batch_size: int
    max_epochs: int
    validation: float | int | None
    random_state: int | None
    callbacks: list[Any] | None
    verbose: int
    feature_cache: bool | str
    cache_dir: str | None
    device_: str
    preprocessing_: Preprocessing
    target_: Target

    def _routed(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.startswith(ROUTED_PREFIXES)}

    def _prefixed(self, prefix: str) -> dict[str, Any]:
        return {k[len(prefix) :]: v for k, v in self._routed().items() if k.startswith(prefix)}

    def _transform_callables(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        from ..transforms import resolve_transforms

        return resolve_transforms(self.transforms, type(self).__name__)

    def _make_preprocessing(self, module: CXRNet | None = None) -> Preprocessing:
        # The built network's own (it may depend on module__ options such as in_chans).
        base = getattr(module, "preprocessing", None) or get_preprocessing(self.architecture)
        changes: dict[str, Any] = {}
        if self.input_size is not None:
            changes["input_size"] = int(self.input_size)
        if self.interpolation is not None:
            changes["interpolation"] = self.interpolation
        return Preprocessing(**{**base.to_dict(), **changes})

    def build_module(self, n_outputs: int = 1) -> CXRNet:
        """Create the (untrained) network this estimator trains, with ``n_outputs`` logits."""
        module = create_architecture(
            self.architecture,
            pretrained=self.pretrained,
            head=self.head,
            freeze=self.freeze,
            **self._prefixed("module__"),
        )
        return module.set_outputs(n_outputs) if n_outputs != 1 else module

    def _lr_callbacks(self) -> list[tuple[str, Callback]]:
        opts = self._prefixed("lr_schedule__")
        if self.lr_schedule == "cyclic":
            kw = {
                "base_lr": self.lr,
                "max_lr": self.lr * 10,
                "step_size_up": 15,
                "mode": "triangular",
                "cycle_momentum": False,
            }
            kw.update(opts)
            return [
                (
                    "lr_schedule",
                    LRScheduler(policy=torch.optim.lr_scheduler.CyclicLR, step_every="batch", **kw),
                )
            ]
        if self.lr_schedule == "cosine_restarts":
            return [("lr_schedule", CosineRestarts(**{"cycle_epochs": self.max_epochs, **opts}))]
        return []

    def _validation_split(self, y: np.ndarray, groups: Any) -> tuple[np.ndarray, np.ndarray]:
        from ..validity.splits import holdout_split

        key = self.target_.stratify_key(y)
        return holdout_split(key, groups, self.validation or 0, random_state=self.random_state)

    def _tune_malloc(self) -> bool:
        """Whether ``fit`` and prediction keep freed buffers in the heap (config ``tune_malloc``)."""
        asked = get_config()["tune_malloc"]
        tune = str(self.device_) == "cpu" if asked == "auto" else bool(asked)
        if tune and not glibc_malloc_available():
            logger.log(
                logging.WARNING if asked is True else logging.DEBUG,
                "tune_malloc: the C library is not glibc; the allocator is left as it is.",
            )
            return False
        return tune

    def _training_formats(self, module: nn.Module) -> tuple[bool, bool]:
        """``(grayscale first conv, channels-last)`` for training ``module``."""
        config = get_config()
        trained_whole = self.freeze == "none"
        gray = config["grayscale_conv"]
        if gray == "auto":
            gray = trained_whole and bool(getattr(module, "first_conv_reads_input", False))
        channels_last = config["channels_last"] is True or (
            config["channels_last"] == "auto" and trained_whole
        )
        return bool(gray), channels_last

    def _predict_batch_size(self) -> int:
        """Images per prediction batch: config ``predict_batch_size``, else ``batch_size`` (>= 32)."""
        return int(get_config()["predict_batch_size"] or max(int(self.batch_size), 32))

    def _dataset_factory(self, module: CXRNet, images: np.ndarray) -> Callable[..., Any]:
        """``(index, y, hflip) -> dataset`` of images, or of cached features when exact."""
        views = self._cached_views(module, self.augment, training=True)
        if views is None:
            prep = self.preprocessing_
            aug = resolve_augment(self.augment, self.random_state)
            if aug not in (None, "hflip"):  # a random augmentation, per image and epoch
                return lambda idx, y, train: (
                    AugmentedImageDataset(images[idx], y, prep, aug)
                    if train
                    else ImageTensorDataset(images[idx], y, prep)
                )
            return lambda idx, y, hflip: ImageTensorDataset(images[idx], y, prep, hflip=hflip)
        cache = get_feature_cache()
        feats = cache.features(
            module,
            images,
            self.preprocessing_,
            views=views,
            device=self.device_,
            cache_dir=self.cache_dir,
            batch_size=self._predict_batch_size(),
            channels_last=predict_channels_last(),
        )
        logging.getLogger("cxrkit.feature_cache").info(
            "Feature cache used: %d images x %d view(s); %s.",
            len(images),
            len(views),
            cache.stats(),
        )
        flipped = feats.get("hflip")
        return lambda idx, y, hflip: FeatureDataset(
            feats["orig"][idx], y, None if flipped is None else flipped[idx], hflip=hflip
        )

    def _cached_views(
        self, module: nn.Module, augment: Any, training: bool = False
    ) -> tuple[str, ...] | None:
        """Return the views of cached features that training with ``augment`` (or prediction, ``None``) reads, or ``None`` when ``feature_cache`` is off or they would not be exact (in training with a log line of ``cxrkit.feature_cache`` that says why)."""
        switch = self.feature_cache
        if switch is False:
            return None
        reason = feature_cache_reason(module, augment, self._transform_callables())
        if reason is not None:
            if training:
                logging.getLogger("cxrkit.feature_cache").log(
                    logging.WARNING if switch is True else logging.INFO,
                    "Feature cache not used: %s.",
                    reason,
                )
            return None
        return ("orig", "hflip") if augment == "hflip" else ("orig",)

    def _make_net(self, module: nn.Module, train_split: Any) -> NeuralNet:
        opt = self.optimizer
        opt_cls = _OPTIMIZERS[opt.lower()] if isinstance(opt, str) else opt
        callbacks: list[Any] = [("accuracy", EpochAccuracy()), ("finite_loss", FiniteLoss())]
        callbacks += self._lr_callbacks()
        callbacks += list(self.callbacks or [])
        if _show_progress(callbacks):
            callbacks.append(("progress", EpochProgress(desc=type(self).__name__)))
        extra = {
            k: v
            for k, v in self._routed().items()
            if k.startswith(
                (
                    "optimizer__",
                    "iterator_train__",
                    "iterator_valid__",
                    "callbacks__",
                    "criterion__",
                )
            )
        }
        extra.setdefault("iterator_train__shuffle", True)
        criterion, criterion_kw = self.target_.criterion()
        for k, v in criterion_kw.items():
            extra.setdefault(f"criterion__{k}", v)
        net = self._build_net(
            module=module,
            criterion=criterion,
            optimizer=opt_cls,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device_,
            verbose=self.verbose,
            **extra,
        )
        # skorch re-initialises an instantiated module only if asked; keep ours.
        return net

    def _build_net(self, **kwargs: Any) -> NeuralNet:
        """Instantiate the skorch net from ``_make_net``'s arguments (a subclass may use another net class, e.g. for Accelerate)."""
        return FeatureAwareNet(**kwargs)
