"""Microsoft's RAD-DINO (Pérez-García et al. 2024) through ``transformers``.

A DINOv2 ViT-B/14 trained on chest X-rays, at 518 px. The feature is the CLS
token after the final layer norm (``pooling="cls"``, 768 values, what the
model card uses), or the CLS token concatenated with the mean of the patch
tokens (``pooling="cls_mean"``, 1,536 values, DINOv2's linear-probe feature).
Its preprocessing is its image processor's: shortest side to 518 px (bicubic),
central 518 px square, ``x / 255`` normalised with mean 0.5307 and std 0.2583
on three identical channels.

Saliency: convolution-free, so Grad-CAM runs on the final layer's patch tokens
laid out as their ``(D, 37, 37)`` grid (``net.gradcam_target``, the name of
that layer): gradient-
weighted token maps, the ViT form of Grad-CAM.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._base import CXRNet, Preprocessing
from ._extras import is_library_weights, is_none, missing_weights_error, require_extra
from ._heads import make_head
from ._timm import hf_hub_cache
from ._weights import load_into, read_state_dict

__all__ = [
    "RAD_DINO_REPO",
    "RAD_DINO_PREPROCESSING",
    "build_rad_dino",
    "TokenGrid",
    "TokenPool",
    "ViTBackbone",
]

RAD_DINO_REPO = "microsoft/rad-dino"
#: ``microsoft/rad-dino``'s ``preprocessor_config.json`` (a ``BitImageProcessor``).
RAD_DINO_PREPROCESSING = Preprocessing(
    input_size=518,
    interpolation="bicubic",
    mean=(0.5307, 0.5307, 0.5307),
    std=(0.2583, 0.2583, 0.2583),
    channels=3,
    crop="square",
)
#: Its ``config.json`` (a ``Dinov2Model``), used for random initialisation.
RAD_DINO_CONFIG = {
    "image_size": 518,
    "patch_size": 14,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4,
    "layerscale_value": 1.0,
    "use_swiglu_ffn": False,
}
POOLINGS = ("cls", "cls_mean")


class TokenGrid(nn.Module):
    """Identity on the patch tokens laid out as an ``(N, D, h, w)`` map: the layer Grad-CAM hooks for a ViT."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return grid


class ViTBackbone(nn.Module):
    """A ``transformers`` ViT returning its final, layer-normed tokens ``(N, 1 + h*w, D)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.token_grid = TokenGrid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.model(pixel_values=x).last_hidden_state
        cls, patches = tokens[:, :1], tokens[:, 1:]
        n, p, d = patches.shape
        side = math.isqrt(p)
        if side * side != p:  # not a square grid: no map to hook
            return tokens
        grid = self.token_grid(patches.transpose(1, 2).reshape(n, d, side, side))
        return torch.cat([cls, grid.reshape(n, d, p).transpose(1, 2)], dim=1)


class TokenPool(nn.Module):
    """``(N, T, D)`` tokens -> ``(N, D)`` CLS token, or ``(N, 2D)`` CLS + mean of patch tokens."""

    def __init__(self, mode: str = "cls") -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(
                f"The 'pooling' parameter of rad_dino must be one of {POOLINGS}. "
                f"Got {mode!r} instead."
            )
        self.mode = mode

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.mode == "cls":
            return tokens[:, 0]
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def _load_model(
    pretrained: Any, repo_id: str, revision: str | None, cache_dir: str | None, config: Any
) -> nn.Module:
    transformers = require_extra("raddino")
    if is_library_weights(pretrained):
        try:
            return transformers.AutoModel.from_pretrained(
                repo_id, revision=revision, cache_dir=cache_dir
            )
        except Exception as exc:  # offline, not cached, gated, ...
            fill = f"hf download {repo_id}"
            raise missing_weights_error(
                f"RAD-DINO weights ({repo_id!r})", hf_hub_cache(cache_dir), fill, exc
            ) from None
    if isinstance(config, transformers.PretrainedConfig):
        cfg = config
    else:
        cfg = transformers.Dinov2Config(**{**RAD_DINO_CONFIG, **(config or {})})
    return transformers.AutoModel.from_config(cfg)


def build_rad_dino(
    pretrained: Any = None,
    head: str = "hall2020",
    *,
    pooling: str = "cls",
    repo_id: str = RAD_DINO_REPO,
    revision: str | None = None,
    cache_dir: str | None = None,
    config: Any = None,
    pretrained_strict: bool = True,
    hidden: int = 64,
    dropout: float = 0.5,
    **_: object,
) -> CXRNet:
    """RAD-DINO (ViT-B/14, 518 px) with a cxrkit head.

    Parameters
    ----------
    pretrained : None, "default" (or "hub") or path
        Random weights (``config`` overrides the ViT-B/14 configuration); the
        published weights through the Hugging Face hub cache (``cache_dir``
        overrides the folder; ``repo_id``/``revision`` pick another repository);
        or a local state dict.
    pooling : {"cls", "cls_mean"}, default="cls"
        The CLS token, or CLS + mean of the patch tokens.
    """
    model = _load_model(pretrained, repo_id, revision, cache_dir, config)
    config_any: Any = model.config  # a transformers PretrainedConfig
    width = int(config_any.hidden_size)
    pool = TokenPool(pooling)
    nfeat = width * (2 if pooling == "cls_mean" else 1)
    backbone = ViTBackbone(model)
    net = CXRNet(
        backbone,
        pool,
        make_head(head, nfeat, hidden=hidden, dropout=dropout),
        num_features=nfeat,
        preprocessing=RAD_DINO_PREPROCESSING,
        name="rad_dino",
    )
    net.pooling = pooling  # type: ignore[assignment]
    net.gradcam_target = "backbone.token_grid"  # type: ignore[assignment]
    if not (is_none(pretrained) or is_library_weights(pretrained)):
        load_into(
            net,
            read_state_dict(pretrained),
            strict=pretrained_strict,
            key_map=lambda k: "backbone.model." + k,
            source=f"weights file '{pretrained}'",
        )
    return net
