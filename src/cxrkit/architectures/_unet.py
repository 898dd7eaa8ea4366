"""A small U-Net (Ronneberger et al. 2015) for lung-field segmentation.

Registered as the ``lung_unet`` architecture with ``task="segmentation"``: it
maps ``(N, 1, S, S)`` standardised grayscale images to ``(N, 1, S, S)`` mask
logits, and is built through
:func:`cxrkit.segmentation.create_segmentation_network` (a classifier cannot
use it).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import ConfigurationError
from ._base import Preprocessing
from ._weights import load_pretrained_file

__all__ = ["LungUNet", "build_lung_unet", "UNET_PREPROCESSING"]

#: Inputs of ``lung_unet``: one channel, 128 px, standardised per image by the segmenter.
UNET_PREPROCESSING = Preprocessing(
    input_size=128, interpolation="bilinear", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channels=1
)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class LungUNet(nn.Module):
    """Encoder-decoder with skip connections returning one mask logit per pixel.

    Parameters
    ----------
    base_channels : int, default=8
        Channels of the first stage; each deeper stage doubles them.
    depth : int, default=4
        Number of 2x down-samplings; the input side must be a multiple of ``2**depth``.
    in_channels : int, default=1

    Examples
    --------
    >>> net = LungUNet(base_channels=4, depth=2)
    >>> tuple(net(torch.zeros(2, 1, 16, 16)).shape)
    (2, 1, 16, 16)
    """

    def __init__(self, base_channels: int = 8, depth: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        for name, value, low in (
            ("base_channels", base_channels, 1),
            ("depth", depth, 1),
            ("in_channels", in_channels, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigurationError(
                    f"The {name!r} parameter of LungUNet must be an int in the range [{low}, inf). "
                    f"Got {value!r} instead."
                )
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.preprocessing = UNET_PREPROCESSING
        self.down = nn.ModuleList(
            [_block(in_channels, widths[0])]
            + [_block(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [
                nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                for i in reversed(range(depth))
            ]
        )
        self.merge = nn.ModuleList(
            [_block(2 * widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.out = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = 2**self.depth
        if x.shape[-1] % side or x.shape[-2] % side:
            raise ConfigurationError(
                f"LungUNet of depth {self.depth} needs an input side that is a multiple of {side}; "
                f"got {tuple(x.shape[-2:])}. Resize the images (LungSegmenter does) or lower depth."
            )
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.out(x)


def build_lung_unet(
    pretrained: str | os.PathLike[str] | None = None,
    base_channels: int = 8,
    depth: int = 4,
    **kwargs: object,
) -> LungUNet:
    """Return a small U-Net for lung-field segmentation (128 px, ~0.5 M parameters at base 8).

    ``pretrained`` is ``None`` (random initialisation) or a state-dict /
    safetensors file, e.g. ``model.safetensors`` written by ``cxrkit train-lungs``.
    """
    if kwargs:
        raise ConfigurationError(
            f"lung_unet got unexpected options {sorted(kwargs)}; it takes pretrained, "
            "base_channels and depth."
        )
    net = LungUNet(base_channels=base_channels, depth=depth)
    load_pretrained_file(net, pretrained, arch="lung_unet")
    return net
