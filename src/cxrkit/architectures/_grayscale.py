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

The layer keeps the original 3-channel weight as its parameter and folds it
on the fly (a tiny cost), so state dicts are unchanged and gradients are
exactly those of the original layer: training follows the same trajectory.
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
    """A ``Conv2d`` on C identical (up to per-channel affine normalisation) input channels, computed from channel 0 only.

    Takes the same ``(N, C, H, W)`` input as the layer it replaces (so the data
    pipeline is unchanged) and reads only ``x[:, :1]``. It keeps the original
    layer's ``weight`` (``(out, C, kh, kw)``) and ``bias`` parameters and folds
    them in ``forward``, so the state dict is unchanged and autograd gives every
    input-channel kernel exactly the gradient the original layer would: training
    follows the same trajectory with any optimizer.
    """

    scale: torch.Tensor
    shift: torch.Tensor

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
        a = std_t[0] / std_t
        d = (mean_t[0] - mean_t) / std_t
        self.weight = conv.weight
        self.bias = conv.bias
        dtype = conv.weight.dtype
        self.register_buffer("scale", a.to(dtype)[None, :, None, None], persistent=False)
        self.register_buffer("shift", d.to(dtype)[None, :, None, None], persistent=False)
        self.needs_map = bool(torch.any(d != 0))
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.in_channels, self.out_channels = c, conv.out_channels
        self.kernel_size = conv.kernel_size
        self._map: tuple[tuple, torch.Tensor] | None = None

    def _offset_map(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(pad(ones), sum_c d_c W_c)``: what the per-channel offsets contribute."""
        live = torch.is_grad_enabled() and self.weight.requires_grad
        key = (
            x.shape[-2],
            x.shape[-1],
            x.device,
            x.dtype,
            self.weight._version,
            self.weight.data_ptr(),
        )
        if not live and self._map is not None and self._map[0] == key:
            return self._map[1]
        ones = torch.ones(1, 1, x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
        k = (self.weight * self.shift).sum(1, keepdim=True).to(x.dtype)
        m = F.conv2d(ones, k, None, self.stride, self.padding, self.dilation)
        if not live:
            self._map = (key, m)
        return m

    def folded_weight(self) -> torch.Tensor:
        """Return the one-channel kernel ``sum_c a_c W_c`` (differentiable in ``weight``)."""
        return (self.weight * self.scale).sum(1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.folded_weight()
        out = F.conv2d(x[:, :1], w, self.bias, self.stride, self.padding, self.dilation)
        if self.needs_map:
            out = out + self._offset_map(x)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels} identical channels -> 1, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        )


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


def grayscale_first_conv(
    module: nn.Module,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    inplace: bool = False,
) -> nn.Module:
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
