"""Run a network's first convolution on one channel when its input channels are identical.

cxrkit feeds a grayscale X-ray to ImageNet-style networks by repeating it over
three channels, optionally normalised per channel: ``x_c = (g - m_c) / s_c``.
Then, for the first convolution with weights ``W_c`` (per input channel) and
zero padding,

``conv(x, W) = conv(pad(x_0), sum_c a_c W_c) + conv(pad(1), sum_c d_c W_c) + b``

with ``a_c = s_0 / s_c`` and ``d_c = (m_0 - m_c) / s_c``, where ``1`` is an
all-ones map the size of the image. The second term does not depend on the
image: it is a bias map computed once per input size (constant away from the
border; its border values are exactly what zero padding of the three
normalised channels produces). So the rewritten layer gives the same result
everywhere, including the padded border, at about a third of the cost; when
the input is unnormalised (``m_c`` all equal, ``s_c`` all equal) the map is
not needed and the kernel is simply summed over the input channels.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigurationError

__all__ = ["GrayscaleConv2d", "grayscale_first_conv"]


class GrayscaleConv2d(nn.Module):
    """A ``Conv2d`` on C identical (up to per-channel affine normalisation)
    input channels, computed from channel 0 only.

    Takes the same ``(N, C, H, W)`` input as the layer it replaces (so the data
    pipeline is unchanged) and reads only ``x[:, :1]``.
    """

    def __init__(self, conv: nn.Conv2d, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise ConfigurationError(
                "grayscale_first_conv needs an ungrouped Conv2d with zero padding; got "
                f"groups={conv.groups}, padding_mode={conv.padding_mode!r}."
            )
        c = conv.in_channels
        mean_t = torch.tensor(list(mean)[:c], dtype=torch.float64)
        std_t = torch.tensor(list(std)[:c], dtype=torch.float64)
        w = conv.weight.detach().to(torch.float64)
        a = std_t[0] / std_t
        d = (mean_t[0] - mean_t) / std_t
        self.weight = nn.Parameter(
            (w * a[None, :, None, None]).sum(1, keepdim=True).to(conv.weight.dtype),
            requires_grad=conv.weight.requires_grad)
        self.bias = (nn.Parameter(conv.bias.detach().clone(), requires_grad=conv.bias.requires_grad)
                     if conv.bias is not None else None)
        k = (w * d[None, :, None, None]).sum(1, keepdim=True)
        self.needs_map = bool(torch.any(d != 0))
        self.register_buffer("offset_kernel", k.to(conv.weight.dtype), persistent=False)
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.in_channels, self.out_channels = c, conv.out_channels
        self.kernel_size = conv.kernel_size
        self._maps: dict[tuple, torch.Tensor] = {}

    def _offset_map(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        m = self._maps.get(key)
        if m is None:
            ones = torch.ones(1, 1, x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
            with torch.no_grad():
                m = F.conv2d(ones, self.offset_kernel.to(x.dtype), None, self.stride,
                             self.padding, self.dilation)
            self._maps = {key: m}
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x[:, :1], self.weight, self.bias, self.stride, self.padding, self.dilation)
        if self.needs_map:
            out = out + self._offset_map(x)
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}->1 identical channels, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")


def _first_conv(module: nn.Module, channels: int) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            if m.in_channels != channels:
                break
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            return parent, attr, m
    raise ConfigurationError(
        f"grayscale_first_conv found no first Conv2d taking {channels} input channels in "
        f"{type(module).__name__}; it applies to networks whose first layer is a Conv2d."
    )


def grayscale_first_conv(module: nn.Module, *, mean: Sequence[float] | None = None,
                         std: Sequence[float] | None = None, inplace: bool = False) -> nn.Module:
    """Replace the first ``Conv2d`` by a :class:`GrayscaleConv2d` (exact, ~1/3 of the cost).

    Valid when the network's input channels hold the same grayscale image,
    each normalised as ``(g - mean[c]) / std[c]`` — which is how cxrkit feeds
    every architecture. The result is identical (up to float rounding) to the
    original, border included.

    Parameters
    ----------
    module : nn.Module
        A :class:`~cxrkit.architectures.CXRNet` (its ``preprocessing`` gives
        ``mean``/``std``) or any module whose first registered ``Conv2d`` is the
        first operation applied to the input.
    mean, std : sequence of float, optional
        Per-channel normalisation; default: ``module.preprocessing``'s, else 0 and 1.
    inplace : bool, default=False
        Modify ``module`` instead of a deep copy.

    Returns
    -------
    nn.Module
        The rewritten network.
    """
    prep = getattr(module, "preprocessing", None)
    channels = getattr(prep, "channels", 3)
    mean = tuple(mean if mean is not None else getattr(prep, "mean", (0.0,) * channels))
    std = tuple(std if std is not None else getattr(prep, "std", (1.0,) * channels))
    if len(mean) < channels or len(std) < channels:
        raise ConfigurationError(
            f"grayscale_first_conv needs one mean and std per input channel ({channels}); "
            f"got mean={mean}, std={std}."
        )
    if any(s == 0 for s in std[:channels]):
        raise ConfigurationError(f"grayscale_first_conv: std must be non-zero; got {std}.")
    target = module if inplace else copy.deepcopy(module)
    parent, attr, conv = _first_conv(target, channels)
    setattr(parent, attr, GrayscaleConv2d(conv, mean, std))
    return target
