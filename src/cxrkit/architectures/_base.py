"""The network container every cxrkit architecture returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import ConfigurationError
from ._heads import TwoClassSoftmaxHead

__all__ = ["Preprocessing", "CXRNet", "IMAGENET_MEAN", "IMAGENET_STD", "FREEZE_MODES"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FREEZE_MODES = ("none", "backbone", "all_but_last")
FreezeMode = Literal["none", "backbone", "all_but_last"]


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a network.

    Attributes
    ----------
    input_size : int
        Side of the square input in pixels.
    interpolation : {"nearest", "bilinear", "bicubic"}
        Resampling used to reach ``input_size`` (bilinear and bicubic are antialiased).
    mean, std : tuple of 3 floats
        Per-channel normalisation applied after scaling to ``[0, 1]``;
        ``(0, 0, 0)`` and ``(1, 1, 1)`` mean "values / 255" only.
    channels : int
        Number of identical grayscale channels the network takes.
    crop : {"none", "square"}
        ``"square"`` keeps the largest central square before resizing (the aspect
        ratio is kept, as torchxrayvision's ``XRayCenterCrop`` and the resize-then-
        centre-crop of timm and Hugging Face image processors do); ``"none"``
        stretches the whole image to the square input.
    crop_pct : float in (0, 1]
        timm's ``crop_pct``: the image is resized to
        ``floor(input_size / crop_pct)`` and the central ``input_size`` square kept.

    With ``interpolation="skimage"`` images are resized as torchxrayvision's
    ``XRayResizer`` does (``skimage.transform.resize``, order 1, antialiased when
    shrinking, edges padded with the value that normalises to 0).
    """

    input_size: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channels: int = 3
    crop: str = "none"
    crop_pct: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resize(self, img: np.ndarray) -> np.ndarray:
        """Crop and resize a 2-D image in ``[0, 1]`` to ``(input_size, input_size)``, float32."""
        from ._geometry import crop_and_resize

        return crop_and_resize(img, self)


class CXRNet(nn.Module):
    """Backbone -> pooling -> head, returning one logit per image.

    The split lets cxrkit freeze the backbone, cache its pooled output
    (``features``) and train only the head.

    Parameters
    ----------
    backbone : nn.Module
        Maps ``(N, C, H, W)`` images to a feature map or vector.
    pool : nn.Module
        Maps the backbone output to ``(N, num_features)``.
    head : nn.Module
        Maps ``(N, num_features)`` to ``(N, 1)`` or ``(N,)`` logits.
    num_features : int
        Width of the pooled features.
    preprocessing : Preprocessing
        What the network expects as input.
    name : str
        Registered architecture name.
    """

    def __init__(
        self,
        backbone: nn.Module,
        pool: nn.Module,
        head: nn.Module,
        *,
        num_features: int,
        preprocessing: Preprocessing,
        name: str = "",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = pool
        self.head = head
        self.num_features = num_features
        self.preprocessing = preprocessing
        self.arch_name = name
        self.freeze_mode: str = "none"
        #: True when the first registered ``Conv2d`` is the first operation applied to
        #: the input, so that :func:`grayscale_first_conv` may replace it (architecture
        #: builders set it; the ``grayscale_conv="auto"`` config key relies on it).
        self.first_conv_reads_input: bool = False
        #: The only input size the network's layers accept (e.g. a dense layer sized for
        #: a fixed feature map), or ``None`` when any size works.
        self.fixed_input_size: int | None = None

    def check_input_size(self, size: int) -> None:
        """Raise a :class:`ConfigurationError` if the network cannot take ``size`` px inputs."""
        fixed = self.fixed_input_size
        if fixed is not None and int(size) != fixed:
            raise ConfigurationError(
                f"Architecture {self.arch_name!r} takes {fixed} px inputs only (its layer "
                f"sizes are fixed); got input_size={size}. Leave input_size unset or pass {fixed}."
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features, ``(N, num_features)``."""
        return self.pool(self.backbone(x))

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features: ``(N,)`` for one output, else ``(N, k)``."""
        out = self.head(feats)
        out = out.reshape(out.shape[0], -1)
        return out.reshape(out.shape[0]) if out.shape[1] == 1 else out

    @property
    def n_outputs(self) -> int:
        """Logits per image (1: a binary classifier's score of the positive class)."""
        last = self.last_layer()
        out = getattr(last, "out_features", 1)
        return 1 if isinstance(self.head, TwoClassSoftmaxHead) else int(out)

    def set_outputs(self, k: int) -> CXRNet:
        """Give the head ``k`` logits (multi-class or multi-label), in place.

        The head's final linear layer is replaced by a freshly initialised one
        with ``k`` outputs (the two-class softmax head of the opacity study
        becomes a ``k``-class one); the layers before it are kept, and the
        freezing mode is applied again. ``k = 1`` leaves a one-logit head as it is.
        """
        if k == self.n_outputs:
            return self
        if isinstance(self.head, TwoClassSoftmaxHead):
            self.head = nn.Linear(self.head.fc.in_features, k)
        else:
            parent, name, last = self._last_linear()
            setattr(parent, name, nn.Linear(last.in_features, k, bias=last.bias is not None))
        return self.freeze(self.freeze_mode)

    def _last_linear(self) -> tuple[nn.Module, str, nn.Linear]:
        found = None
        for parent in self.head.modules():
            for name, child in parent.named_children():
                if isinstance(child, nn.Linear):
                    found = (parent, name, child)
        if isinstance(self.head, nn.Linear):
            return self, "head", self.head
        if found is None:
            raise ConfigurationError(
                f"Architecture {self.arch_name!r} has a head without a linear layer, so it "
                "cannot be given one logit per class or finding. Pass head='hall2020' or "
                "head='fc' for multi-class and multi-label tasks."
            )
        return found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.features(x))

    # -- freezing ----------------------------------------------------------
    def last_layer(self) -> nn.Module:
        """Return the final parametrised layer of the head."""
        last = None
        for m in self.head.modules():
            if any(True for _ in m.parameters(recurse=False)):
                last = m
        if last is None:
            raise ValueError(f"Architecture {self.arch_name!r} has a head without parameters.")
        return last

    def freeze(self, mode: FreezeMode | str) -> CXRNet:
        """Freeze parameters (and batch-norm statistics) according to ``mode``.

        ``"none"`` trains everything; ``"backbone"`` fixes every parameter and
        batch-norm statistic of the backbone (Hall et al. 2020); ``"all_but_last"``
        trains only the final layer of the head (the opacity study's new_fc).
        """
        if mode not in FREEZE_MODES:
            raise ValueError(
                f"The 'freeze' parameter must be one of {FREEZE_MODES}. Got {mode!r} instead."
            )
        for p in self.parameters():
            p.requires_grad_(True)
        if mode == "backbone":
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        elif mode == "all_but_last":
            keep = {id(p) for p in self.last_layer().parameters()}
            for p in self.parameters():
                if id(p) not in keep:
                    p.requires_grad_(False)
        self.freeze_mode = mode
        self.train(self.training)
        return self

    @property
    def backbone_frozen(self) -> bool:
        return self.freeze_mode in ("backbone", "all_but_last")

    def train(self, mode: bool = True) -> CXRNet:
        if self.backbone_frozen:
            # Frozen layers keep their batch-norm statistics and no dropout. skorch sets the
            # mode before every batch; walking a ResNet's ~300 frozen modules each time cost
            # ~1 ms a batch, so the backbone is put in eval mode only when it is not already.
            self.training = mode
            if self.backbone.training:
                self.backbone.eval()
            self.pool.train(mode)
            self.head.train(mode)
            for name, child in self.named_children():
                if name not in ("backbone", "pool", "head"):
                    child.train(mode)
        else:
            super().train(mode)
        if self.freeze_mode == "all_but_last":
            self.pool.eval()
            last = self.last_layer()
            for m in self.head.modules():
                if m is not last:
                    m.eval()
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the tensors that training can change (trainable parameters and the buffers of modules that are not frozen)."""
        frozen_prefixes = []
        if self.backbone_frozen:
            frozen_prefixes.append("backbone.")
        params = dict(self.named_parameters())
        state = {}
        for name, tensor in self.state_dict().items():
            if name in params:
                keep = params[name].requires_grad
            else:
                keep = not any(name.startswith(f) for f in frozen_prefixes)
            if keep:
                state[name] = tensor.detach().clone()
        return state
