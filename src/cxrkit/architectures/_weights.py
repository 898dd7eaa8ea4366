"""Loading pretrained weights: ImageNet through torchvision, or a local file.

Nothing here unpickles arbitrary objects: torch files are read with
``weights_only=True`` and safetensors files with :mod:`safetensors`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError

__all__ = ["read_state_dict", "load_imagenet_state_dict", "load_into", "hub_checkpoint_dir"]


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, where torchvision looks for weight files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(
            f"Weights file '{p}' does not exist. Pass pretrained=None, 'imagenet', or the path "
            "of an existing .pth/.pt/.safetensors file."
        ) from None
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code, ...
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise WeightsError(
            f"Weights file '{p}' could not be read as a state dict ({type(exc).__name__}: {reason}). "
            "cxrkit only reads safetensors files and torch files that hold tensors "
            "(weights_only=True); re-save the weights with torch.save(model.state_dict(), path)."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"Weights file '{p}' does not hold a flat mapping of names to tensors.")
    return state


def load_imagenet_state_dict(weights_enum: Any) -> dict[str, torch.Tensor]:
    """Fetch a torchvision weights enum's file through the ``torch.hub`` cache.

    A file already present in ``$TORCH_HOME/hub/checkpoints`` under the name
    torchvision expects is used without touching the network.
    """
    url = weights_enum.url
    fname = os.path.basename(url)
    target = hub_checkpoint_dir() / fname
    try:
        return torch.hub.load_state_dict_from_url(
            url, progress=False, check_hash=False, weights_only=True, map_location="cpu"
        )
    except Exception as exc:
        raise WeightsError(
            f"ImageNet weights {weights_enum} are not in the torch hub cache and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). Place the file at '{target}' "
            "(or set TORCH_HOME), or pass pretrained=None or a local weights path."
        ) from None


def load_into(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    strict: bool = True,
    key_map: Callable[[str], str | None] | None = None,
    source: str = "weights",
) -> None:
    """Copy ``state`` into ``module`` with clear errors.

    Keys are used as they are when they match the module; otherwise
    ``key_map`` (e.g. torchvision names -> cxrkit names) translates them.
    ``strict=True`` fails on any missing or unexpected key; ``strict=False``
    allows missing keys (a backbone-only file) but still fails on shape
    mismatches and when no key matches at all.
    """
    own = module.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        target = key if key in own else (key_map(key) if key_map else None)
        if target is None or target not in own:
            unexpected.append(key)
        else:
            mapped[target] = tensor
    missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs network {tuple(own[k].shape)}"
        for k, v in mapped.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]

    def _fmt(keys: list[str]) -> str:
        return ", ".join(keys[:10]) + (f" (+{len(keys) - 10} more)" if len(keys) > 10 else "")

    if mismatched:
        raise WeightsError(f"Shapes in {source} do not fit the network: {_fmt(mismatched)}.")
    if not mapped:
        raise WeightsError(
            f"No tensor in {source} matches the network (file keys start with "
            f"{_fmt(sorted(state)[:3])}; network keys with {_fmt(sorted(own)[:3])})."
        )
    if strict and (missing or unexpected):
        raise WeightsError(
            f"{source} does not match the network exactly. Missing keys: "
            f"{_fmt(missing) or 'none'}. Unexpected keys: {_fmt(unexpected) or 'none'}. "
            "For a backbone-only file pass pretrained_strict=False."
        )
    if unexpected:
        warnings.warn(
            f"Ignored keys in {source} that the network lacks: {_fmt(unexpected)}.", stacklevel=3
        )
    with torch.no_grad():
        for k, v in mapped.items():
            own[k].copy_(v)


def load_pretrained_file(
    net: nn.Module,
    pretrained: str | os.PathLike[str] | None,
    *,
    strict: bool = True,
    arch: str = "",
) -> None:
    """Load a local weights file into an architecture that has no ImageNet weights."""
    if pretrained is None or pretrained == "none":
        return
    if pretrained == "imagenet":
        raise WeightsError(
            f"Architecture {arch!r} has no ImageNet weights. Pass pretrained=None or the path "
            "of a weights file."
        )
    load_into(
        net, read_state_dict(pretrained), strict=strict, source=f"weights file '{pretrained}'"
    )
