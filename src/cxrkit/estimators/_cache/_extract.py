"""Computing pooled backbone features, and when cached ones are exact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...architectures import CXRNet, Preprocessing
from .._data import to_tensor

__all__ = ["compute_features", "feature_cache_reason"]


def feature_cache_reason(module: Any, augment: str | None, transforms: Sequence[Any]) -> str | None:
    """Why cached features would be wrong for a training run, or ``None`` if they are exact.

    Parameters
    ----------
    module : torch.nn.Module
        The network to be trained.
    augment : None or str
        Training-time augmentation of the backbone input; the cache holds the
        views of ``None`` and ``"hflip"`` only.
    transforms : sequence of callables
        Applied to each image before resizing; one marked ``deterministic=False``
        changes the input every epoch.

    Returns
    -------
    str or None
        A sentence fragment for a log line, or ``None``.
    """
    if not isinstance(module, CXRNet):
        return f"the network is a {type(module).__name__}, not a CXRNet with a features/head split"
    if not module.backbone_frozen:
        return (
            f"the backbone is trained (freeze={module.freeze_mode!r}); use "
            "freeze='backbone' or 'all_but_last' to train the head on cached features"
        )
    if any(p.requires_grad for p in module.backbone.parameters()):
        return "some backbone parameters require gradients"
    if augment not in (None, "hflip"):
        return f"augmentation {augment!r} changes the backbone input every epoch"
    for t in transforms:
        if getattr(t, "deterministic", True) is False:
            return f"transform {t!r} is random (deterministic=False)"
    return None


def compute_features(
    module: CXRNet,
    images: np.ndarray,
    positions: list[int],
    prep: Preprocessing,
    flip: bool,
    device: str,
    batch_size: int,
    channels_last: bool = False,
) -> np.ndarray:
    """``module.features`` of ``images[positions]`` (flipped if ``flip``), in eval mode.

    Returns
    -------
    ndarray of shape (len(positions), num_features)
    """
    was_training = module.training
    module.eval()
    if channels_last:
        _backbone_channels_last(module)
    chunks = []
    try:
        with torch.inference_mode():
            for s in range(0, len(positions), batch_size):
                idx = positions[s : s + batch_size]
                xb = torch.stack([to_tensor(images[i], prep, flip) for i in idx]).to(device)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                chunks.append(module.features(xb).float().cpu().numpy())
    finally:
        module.train(was_training)
    return np.concatenate(chunks)


def _backbone_channels_last(module: CXRNet) -> None:
    """Store the backbone's 4-D weights channels-last (once; the values are unchanged, so the fingerprint stays the same), so channels-last input is not converted back."""
    weights = [p for p in module.backbone.parameters() if p.ndim == 4]
    if weights and not weights[0].is_contiguous(memory_format=torch.channels_last):
        # Outside inference mode even when called inside it (a snapshot ensemble's
        # prediction): tensors made in inference mode would become the parameters,
        # and they carry no version counter for the fingerprint or later training.
        with torch.inference_mode(False):
            module.backbone.to(memory_format=torch.channels_last)
