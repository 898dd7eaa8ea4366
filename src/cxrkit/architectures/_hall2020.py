"""The small CNN of Hall, Paul, Goldgof and Goldgof (2020)."""

from __future__ import annotations

import torch
from torch import nn

from ._base import CXRNet, Preprocessing
from ._weights import load_pretrained_file

__all__ = ["Hall2020Features", "build_hall2020_cnn", "HALL2020_PREPROCESSING"]

#: The authors' preprocessing: 100x100 nearest-neighbour, values / 255, gray x3.
HALL2020_PREPROCESSING = Preprocessing(
    input_size=100, interpolation="nearest", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
)


class Hall2020Features(nn.Module):
    """The convolutional part of the small CNN, up to the flatten layer.

    Layer names follow the authors' Keras model (``conv1``, ``conv2``, ``conv4``)
    so their weight files map by name::

        input 100x100x3
        a: conv1 5x5x64 -> LeakyReLU(0.01) -> maxpool 3 -> conv2 2x2x64
           -> LeakyReLU(0.01) -> maxpool 3 -> dropout 0.1           (64 x 10 x 10)
        b: LeakyReLU(0.01)(input) -> maxpool 10 -> dropout 0.1      (3 x 10 x 10)
        concat [b, a] (67 channels) -> conv4 2x2x64 ReLU -> maxpool 3 (64 x 3 x 3)
        flatten in Keras channels-last order -> 576
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 5)
        self.conv2 = nn.Conv2d(64, 64, 2)
        self.conv4 = nn.Conv2d(64 + in_channels, 64, 2)
        self.act = nn.LeakyReLU(0.01)
        self.pool3 = nn.MaxPool2d(3)
        self.pool10 = nn.MaxPool2d(10)
        self.drop_a = nn.Dropout(0.1)
        self.drop_b = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pool3(self.act(self.conv1(x)))
        a = self.drop_a(self.pool3(self.act(self.conv2(a))))
        b = self.drop_b(self.pool10(self.act(x)))
        h = torch.cat([b, a], dim=1)
        h = self.pool3(torch.relu(self.conv4(h)))
        # Keras flattens channels-last: (N, H, W, C) -> (N, H*W*C).
        return h.permute(0, 2, 3, 1).flatten(1)


def build_hall2020_cnn(pretrained: str | None = None, head: str = "hall2020", *,
                       dropout: float = 0.25, pretrained_strict: bool = True,
                       **_: object) -> CXRNet:
    """Hall et al. (2020) small CNN: two branches, 39,105 parameters, 100 px input.

    The head is the authors' own (dropout 0.25 -> dense 1); ``head`` is accepted
    for interface compatibility and must be ``"hall2020"``.
    """
    if head not in ("hall2020", None):
        raise ValueError(
            f"Architecture 'hall2020_cnn' has a fixed head (dropout -> dense 1); got head={head!r}. "
            "Use head='hall2020'."
        )
    backbone = Hall2020Features()
    classifier = nn.Sequential()
    classifier.add_module("dropout", nn.Dropout(dropout))
    classifier.add_module("fc", nn.Linear(576, 1))
    net = CXRNet(backbone, nn.Identity(), classifier, num_features=576,
                 preprocessing=HALL2020_PREPROCESSING, name="hall2020_cnn")
    # Keras' default initialisation (Glorot uniform), as in the authors' script.
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    load_pretrained_file(net, pretrained, strict=pretrained_strict, arch="hall2020_cnn")
    return net
