"""A tiny CNN for tests, demos and quick experiments on small images."""

from __future__ import annotations

from torch import nn

from ._base import CXRNet, Preprocessing
from ._heads import make_head
from ._weights import load_pretrained_file

__all__ = ["build_tiny_cnn", "TINY_PREPROCESSING"]

TINY_PREPROCESSING = Preprocessing(
    input_size=32, interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)
)


def build_tiny_cnn(
    pretrained: str | None = None,
    head: str = "hall2020",
    *,
    width: int = 8,
    hidden: int = 16,
    dropout: float = 0.1,
    pretrained_strict: bool = True,
    **_: object,
) -> CXRNet:
    """Three 3x3 conv blocks (``width``, 2x, 4x channels) with batch norm; any input size."""
    layers: list[nn.Module] = []
    c_in = 3
    for i in range(3):
        c_out = width * 2**i
        layers += [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        c_in = c_out
    backbone = nn.Sequential(*layers)
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net = CXRNet(
        backbone,
        pool,
        make_head(head, c_in, hidden=hidden, dropout=dropout),
        num_features=c_in,
        preprocessing=TINY_PREPROCESSING,
        name="tiny_cnn",
    )
    net.first_conv_reads_input = True
    load_pretrained_file(net, pretrained, strict=pretrained_strict, arch="tiny_cnn")
    return net
