"""The skorch net of CXRClassifier: trains on images or on cached backbone features."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from skorch import NeuralNet
from skorch.utils import to_tensor

from ..architectures import CXRNet
from ._cache import FeatureBatches, FeatureDataset

__all__ = ["FeatureAwareNet"]


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the previous number."""
    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class FeatureAwareNet(NeuralNet):
    """A skorch net whose ``module_`` is the full :class:`CXRNet` and that accepts either images ``(N, C, H, W)`` or cached features ``(N, F)``.

    Feature batches go through ``module_.forward_head`` only, so callbacks see
    the real network (its ``state_dict``, ``trainable_state_dict``, head) and
    schedules, accuracy and snapshot callbacks work unchanged.
    """

    #: Whether image batches are made channels-last before the forward pass
    #: (set by :class:`CXRClassifier` for the network it trains).
    channels_last_input: bool = False

    def fit_loop(
        self, X: Any, y: Any = None, epochs: int | None = None, **fit_params: Any
    ) -> FeatureAwareNet:
        # The head's tensors are small: splitting each op over threads gains nothing, and on
        # a busy CPU every op waits for a descheduled thread (benchmarks/b1_training_cache.py).
        one = isinstance(X, FeatureDataset) and str(self.device).startswith("cpu")
        with _torch_threads(1) if one else contextlib.nullcontext():
            return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def get_all_learnable_params(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """Skorch's learnable parameters, less those that do not require gradients when the optimizer is built (a frozen backbone's).

        ``torch.optim`` skips parameters without a gradient anyway, but looks at
        every one of them in every ``zero_grad`` and ``step``: the 161 frozen
        tensors of a ResNet50 cost more than the step of its ``hall2020`` head.
        Parameters frozen later by a callback (skorch's ``Freezer``) stay in the
        optimizer, so ``Unfreezer`` works as usual.
        """
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """:class:`FeatureBatches` for cached features with the default ``DataLoader`` and options it reproduces; otherwise skorch's iterator."""
        iterator = self.iterator_train if training else self.iterator_valid
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        if (
            isinstance(dataset, FeatureDataset)
            and iterator is torch.utils.data.DataLoader
            and set(kwargs) <= FeatureBatches.OPTIONS
        ):
            bs = kwargs.pop("batch_size", self.batch_size)
            return FeatureBatches(dataset, len(dataset) if bs == -1 else bs, **kwargs)
        return super().get_iterator(dataset, training=training)

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:
        x = to_tensor(x, device=self.device)
        if (
            isinstance(x, torch.Tensor)
            and x.ndim == 2
            and isinstance(self.module_, CXRNet)
            and x.shape[1] == self.module_.num_features
        ):
            return self.module_.forward_head(x, **fit_params)
        if isinstance(x, torch.Tensor) and x.ndim == 4 and self.channels_last_input:
            x = x.contiguous(memory_format=torch.channels_last)
        return super().infer(x, **fit_params)
