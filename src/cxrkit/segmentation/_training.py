"""The pieces a segmentation network is trained with: loss, augmentation, skorch net."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from torch import nn

__all__ = ["DiceBCELoss", "SegmentationNet", "random_affine", "valid_dice"]


class DiceBCELoss(nn.Module):
    """Soft Dice loss plus binary cross-entropy on mask logits.

    Parameters
    ----------
    dice_weight : float, default=1.0
    bce_weight : float, default=1.0
    smooth : float, default=1.0
        Added to the Dice numerator and denominator (keeps empty masks finite).
    """

    def __init__(
        self, dice_weight: float = 1.0, bce_weight: float = 1.0, smooth: float = 1.0
    ) -> None:
        super().__init__()
        self.dice_weight = dice_weight
        self.bce_weight = bce_weight
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        prob = torch.sigmoid(logits).flatten(1)
        t = target.flatten(1)
        dice = (2 * (prob * t).sum(1) + self.smooth) / (prob.sum(1) + t.sum(1) + self.smooth)
        return self.bce_weight * bce + self.dice_weight * (1 - dice.mean())


def random_affine(
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    *,
    flip: float = 0.5,
    degrees: float = 10.0,
    scale: float = 0.1,
    shift: float = 0.06,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the same random flip, rotation, zoom and shift for a batch of images and masks.

    Each image of the batch draws its own transformation; images are resampled
    bilinearly (border values repeated), masks bilinearly and rounded back to 0/1.
    """
    n = x.shape[0]

    def uniform(a: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * a

    angle = uniform(math.radians(degrees))
    zoom = 1 + uniform(scale)
    sign = torch.where(torch.rand(n, generator=generator) < flip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sign, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * sign, cos
    theta[:, 0, 2], theta[:, 1, 2] = uniform(shift), uniform(shift)
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    xa = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    ya = F.grid_sample(
        y.to(x.dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return xa, (ya > 0.5).to(y.dtype)


class SegmentationNet(NeuralNet):
    """skorch's ``NeuralNet`` whose training step augments each batch first.

    Parameters
    ----------
    augment : bool, default=True
        Apply :func:`random_affine` to every training batch.
    augment_seed : int, default=0
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(
        self, *args: Any, augment: bool = True, augment_seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.augment = augment
        self.augment_seed = augment_seed

    def initialize(self) -> SegmentationNet:
        super().initialize()
        self.generator_ = torch.Generator().manual_seed(int(self.augment_seed))
        return self

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        Xi, yi = batch
        if self.augment:
            Xi, yi = random_affine(Xi, yi, self.generator_)
        return super().train_step_single((Xi, yi), **fit_params)


def valid_dice(net: NeuralNet, X: Any, y: Any) -> float:
    """Mean Dice of thresholded predictions on a validation set (a skorch scoring)."""
    logits = net.forward(X)
    pred = (logits > 0).cpu().numpy().reshape(len(logits), -1)
    truth = np.asarray(y).reshape(len(logits), -1) > 0.5
    inter = (pred & truth).sum(1)
    total = pred.sum(1) + truth.sum(1)
    return float(np.mean(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)))
