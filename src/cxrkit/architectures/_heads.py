"""Classification heads of the two papers."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HEADS", "make_head", "TwoClassSoftmaxHead"]

HEADS = ("hall2020", "fc")


class TwoClassSoftmaxHead(nn.Module):
    """A new fully connected layer with two outputs, as in the opacity study.

    The study applies softmax over ``{none, COVID-19}`` and cross-entropy. The
    module returns the logit *difference* ``z1 - z0``: ``sigmoid(z1 - z0)`` is
    exactly the softmax probability of the positive class, and binary
    cross-entropy on it is exactly the two-class cross-entropy, as a function
    of the same two-row weight matrix, so training is unchanged.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(x)
        return z[:, 1] - z[:, 0]


def make_head(kind: str, in_features: int, *, hidden: int = 64, dropout: float = 0.5) -> nn.Module:
    """Build a head.

    Parameters
    ----------
    kind : {"hall2020", "fc"}
        ``"hall2020"``: dense ``hidden`` -> ReLU -> dropout -> one logit (Hall et al.
        2020, after global average pooling). ``"fc"``: one new fully connected layer
        with a two-class softmax (the opacity study).
    in_features : int
        Width of the pooled backbone features.
    hidden : int, default=64
        Units of the hidden dense layer (``"hall2020"`` only).
    dropout : float, default=0.5
        Dropout rate before the last layer (``"hall2020"`` only).
    """
    if kind == "hall2020":
        return nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )
    if kind == "fc":
        return TwoClassSoftmaxHead(in_features)
    raise ValueError(f"The 'head' parameter must be one of {HEADS}. Got {kind!r} instead.")
